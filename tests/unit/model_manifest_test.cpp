// The model manifest: parsing, refusal of bad files, and cost estimates from its prices.

#include "runtime/model_manifest.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

using namespace lps;

TEST_CASE("the shipped manifest parses and prices its models") {
  std::ifstream in{std::string{LPS_SOURCE_DIR} + "/config/models.json"};
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  model_manifest manifest;
  std::string error;
  REQUIRE(parse_model_manifest(text.str(), manifest, error));
  CHECK(manifest.prices.at("mock-model-v1").input_per_1m == 0.0);
  CHECK(manifest.prices.at("gpt-5-mini-2025-08-07").input_per_1m == 0.25);
  CHECK(manifest.prices.at("gpt-5-mini-2025-08-07").output_per_1m == 2.0);
  CHECK(manifest.prices.at("claude-haiku-4-5-20251001").batch_discount == 0.5);
  CHECK(manifest.json == text.str());
  // Request parameters: the GPT-5 family takes max_completion_tokens, no temperature.
  const auto& gpt5 = manifest.parameters.at("gpt-5-mini-2025-08-07");
  CHECK(gpt5.uses_max_completion_tokens);
  CHECK_FALSE(gpt5.supports_temperature);
  CHECK(gpt5.supports_reasoning_controls);
  const auto& gpt4 = manifest.parameters.at("gpt-4o-mini-2024-07-18");
  CHECK_FALSE(gpt4.uses_max_completion_tokens);
  CHECK(gpt4.supports_temperature);
  CHECK_FALSE(gpt4.supports_reasoning_controls);
}

TEST_CASE("request parameter flags default when absent and must be booleans") {
  model_manifest manifest;
  std::string error;
  REQUIRE(parse_model_manifest(R"({"models":[{"model_id":"m1"},
      {"model_id":"m2","supports_temperature":false,"uses_max_completion_tokens":true}]})",
                               manifest, error));
  CHECK(manifest.parameters.at("m1").supports_temperature);
  CHECK_FALSE(manifest.parameters.at("m1").uses_max_completion_tokens);
  CHECK_FALSE(manifest.parameters.at("m2").supports_temperature);
  CHECK(manifest.parameters.at("m2").uses_max_completion_tokens);
  CHECK_FALSE(parse_model_manifest(R"({"models":[{"model_id":"m3","supports_temperature":"no"}]})",
                                   manifest, error));
  CHECK(error == "model m3: supports_temperature must be true or false");
}

TEST_CASE("cost uses input output and cache prices and the batch discount") {
  model_price price{1.0, 5.0, 0.1, 0.5};
  token_usage usage{1'000'000, 200'000, 1'200'000, 400'000, 0};
  // 600k uncached at $1/M + 400k cached at $0.10/M + 200k output at $5/M = 0.6 + 0.04 + 1.0
  CHECK(estimate_cost(price, usage) == Approx(1.64));
  CHECK(estimate_cost(price, usage, true) == Approx(0.82));
  CHECK(estimate_cost(model_price{}, usage) == 0.0);
}

TEST_CASE("a broken manifest is refused with a clear line") {
  model_manifest manifest;
  std::string error;
  CHECK_FALSE(parse_model_manifest("{", manifest, error));
  CHECK(error.find("not valid JSON") != std::string::npos);
  CHECK_FALSE(parse_model_manifest(R"({"models": 3})", manifest, error));
  CHECK(error.find("models") != std::string::npos);
  CHECK_FALSE(parse_model_manifest(R"({"models": [{"input_per_1m": 1}]})", manifest, error));
  CHECK(error.find("model_id") != std::string::npos);
  CHECK_FALSE(parse_model_manifest(R"({"models": [{"model_id": "m", "input_per_1m": "1"}]})",
                                   manifest, error));
  CHECK(error == "model m: input_per_1m must be a number");
  CHECK_FALSE(parse_model_manifest(R"({"models": [{"model_id": "m", "output_per_1m": -1}]})",
                                   manifest, error));
  CHECK(error.find("output_per_1m") != std::string::npos);
}
