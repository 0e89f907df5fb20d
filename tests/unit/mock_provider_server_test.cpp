// The mock provider server in-process on 127.0.0.1:0, called through lps::http_client the way
// the provider actors will call it: every dialect's answers, key checks, request validation,
// scripted and random faults, the control API and latency.

#include "runtime/http_client.hpp"
#include "tools/mock_provider/mock_provider_server.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

namespace json = boost::json;
using clock_type = std::chrono::steady_clock;
using lps::http_client_request;
using lps::http_client_response;

enum class provider { openai, openrouter, anthropic, gemini };

constexpr provider all_providers[] = {provider::openai, provider::openrouter, provider::anthropic,
                                      provider::gemini};

const char* name_of(provider p) {
  switch (p) {
  case provider::openai:
    return "openai";
  case provider::openrouter:
    return "openrouter";
  case provider::anthropic:
    return "anthropic";
  case provider::gemini:
    return "gemini";
  }
  return "?";
}

json::object comparison_schema() {
  json::object props{
      {"winner", json::object{{"type", "string"}, {"enum", json::array{"Essay A", "Essay B"}}}},
      {"justification", json::object{{"type", "string"}}},
      {"confidence", json::object{{"type", "number"}, {"minimum", 1}, {"maximum", 5}}}};
  return {{"type", "object"},
          {"properties", std::move(props)},
          {"required", json::array{"winner", "justification", "confidence"}}};
}

json::object openai_request(const std::string& prompt = "Compare Essay A and Essay B.",
                            const std::string& model = "gpt-4o") {
  json::array messages{
      json::object{{"role", "system"}, {"content", "You are an LLM comparison engine."}},
      json::object{{"role", "user"}, {"content", prompt}}};
  json::object format{
      {"type", "json_schema"},
      {"json_schema",
       json::object{{"name", "comparison"}, {"strict", false}, {"schema", comparison_schema()}}}};
  return {{"model", model},
          {"messages", std::move(messages)},
          {"temperature", 0.7},
          {"max_tokens", 4096},
          {"response_format", std::move(format)}};
}

json::object openrouter_request(const std::string& prompt = "Compare Essay A and Essay B.") {
  json::array messages{json::object{{"role", "user"}, {"content", prompt + " Answer in JSON."}}};
  return {{"model", "anthropic/claude-sonnet-4.5"},
          {"messages", std::move(messages)},
          {"response_format", json::object{{"type", "json_object"}}}};
}

json::object anthropic_request(const std::string& prompt = "Compare Essay A and Essay B.",
                               const std::string& tool = "comparison_result") {
  json::array content{json::object{{"type", "text"}, {"text", prompt}}};
  json::array tools{json::object{{"name", tool},
                                 {"description", "Record the comparison."},
                                 {"input_schema", comparison_schema()}}};
  return {{"model", "claude-sonnet-4-5-20250929"},
          {"max_tokens", 1024},
          {"system", "You are an LLM comparison engine."},
          {"messages", json::array{json::object{{"role", "user"}, {"content", content}}}},
          {"tools", std::move(tools)},
          {"tool_choice", json::object{{"type", "tool"}, {"name", tool}}}};
}

json::object gemini_request(const std::string& prompt = "Compare Essay A and Essay B.") {
  json::array contents{
      json::object{{"role", "user"}, {"parts", json::array{json::object{{"text", prompt}}}}}};
  json::object config{{"responseMimeType", "application/json"},
                      {"responseSchema", comparison_schema()}};
  return {{"contents", std::move(contents)},
          {"systemInstruction",
           json::object{{"parts", json::array{json::object{{"text", "You compare essays."}}}}}},
          {"generationConfig", std::move(config)}};
}

json::object request_for(provider p, const std::string& prompt = "Compare Essay A and Essay B.") {
  switch (p) {
  case provider::openai:
    return openai_request(prompt);
  case provider::openrouter:
    return openrouter_request(prompt);
  case provider::anthropic:
    return anthropic_request(prompt);
  case provider::gemini:
    return gemini_request(prompt);
  }
  return {};
}

std::optional<std::string> header_of(const http_client_response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name)
      return v;
  return std::nullopt;
}

json::object parse_object(const std::string& text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  INFO(text);
  REQUIRE(!ec);
  REQUIRE(v.is_object());
  return v.get_object();
}

bool is_json(const std::string& text) {
  boost::system::error_code ec;
  json::parse(text, ec);
  return !ec;
}

std::string str(const json::value& v) {
  REQUIRE(v.is_string());
  return std::string(v.get_string());
}

/// One mock server and one client, both stopped at the end of the test.
class fixture {
public:
  explicit fixture(lps::mock_provider_options options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    std::string error;
    REQUIRE(server.start(options, error));
    REQUIRE(server.port() != 0);
  }

  ~fixture() {
    client.stop();
    server.stop();
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server.port()) + path;
  }

  /// The request lps would send to provider `p` (key "" sends none).
  http_client_request request(provider p, const std::string& body,
                              const std::string& key = "test-key") const {
    http_client_request r;
    r.timeout = 5000ms;
    r.body = body;
    r.headers.emplace_back("content-type", "application/json");
    switch (p) {
    case provider::openai:
    case provider::openrouter:
      r.url = url(p == provider::openai ? "/v1/chat/completions" : "/api/v1/chat/completions");
      if (!key.empty())
        r.headers.emplace_back("authorization", "Bearer " + key);
      break;
    case provider::anthropic:
      r.url = url("/v1/messages");
      r.headers.emplace_back("anthropic-version", "2023-06-01");
      if (!key.empty())
        r.headers.emplace_back("x-api-key", key);
      break;
    case provider::gemini:
      r.url = url("/v1beta/models/gemini-2.5-flash:generateContent");
      if (!key.empty())
        r.headers.emplace_back("x-goog-api-key", key);
      break;
    }
    return r;
  }

  std::future<http_client_response> send(http_client_request r) {
    auto promise = std::make_shared<std::promise<http_client_response>>();
    auto future = promise->get_future();
    client.send(std::move(r), [promise](http_client_response x) { promise->set_value(x); });
    return future;
  }

  http_client_response call(http_client_request r) {
    auto f = send(std::move(r));
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    return f.get();
  }

  http_client_response call(provider p, const json::object& body,
                            const std::string& key = "test-key") {
    return call(request(p, json::serialize(body), key));
  }

  http_client_response control(const std::string& method, const std::string& path,
                               const std::string& body = "") {
    http_client_request r;
    r.method = method;
    r.url = url(path);
    r.body = body;
    r.timeout = 5000ms;
    return call(std::move(r));
  }

  void script(const std::string& faults) {
    auto r = control("POST", "/_mock/faults", faults);
    INFO(r.body);
    REQUIRE(r.status == 200);
  }

  lps::mock_provider_server server;
  lps::http_client client{lps::http_client_options{}};
};

/// The structured verdict of a 200 answer, wherever the dialect puts it.
json::object verdict_of(provider p, const json::object& body) {
  if (p == provider::anthropic) {
    const auto& content = body.at("content").as_array();
    REQUIRE(content.size() == 1);
    REQUIRE(str(content[0].at("type")) == "tool_use");
    return content[0].at("input").as_object();
  }
  if (p == provider::gemini)
    return parse_object(
        str(body.at("candidates").at(0).at("content").at("parts").at(0).at("text")));
  return parse_object(str(body.at("choices").at(0).at("message").at("content")));
}

void check_verdict(const json::object& v) {
  auto winner = str(v.at("winner"));
  CHECK((winner == "Essay A" || winner == "Essay B"));
  auto justification = str(v.at("justification"));
  CHECK(!justification.empty());
  CHECK(justification.size() <= 50);
  REQUIRE(v.at("confidence").is_int64());
  CHECK(v.at("confidence").get_int64() >= 1);
  CHECK(v.at("confidence").get_int64() <= 5);
}

/// Checks the dialect's error envelope and returns the inner error object.
json::object check_error_shape(provider p, const http_client_response& r, unsigned status) {
  INFO(name_of(p) << " " << r.body);
  CHECK(r.status == status);
  auto body = parse_object(r.body);
  switch (p) {
  case provider::openai: {
    const auto& e = body.at("error").as_object();
    CHECK(e.at("message").is_string());
    CHECK(e.at("type").is_string());
    CHECK((e.at("param").is_null() || e.at("param").is_string()));
    CHECK((e.at("code").is_null() || e.at("code").is_string()));
    return e;
  }
  case provider::openrouter: {
    const auto& e = body.at("error").as_object();
    CHECK(e.at("code").to_number<int64_t>() == status);
    CHECK(e.at("message").is_string());
    return e;
  }
  case provider::anthropic: {
    CHECK(str(body.at("type")) == "error");
    CHECK(str(body.at("request_id")).rfind("req_", 0) == 0);
    const auto& e = body.at("error").as_object();
    CHECK(e.at("type").is_string());
    CHECK(e.at("message").is_string());
    return e;
  }
  case provider::gemini: {
    const auto& e = body.at("error").as_object();
    CHECK(e.at("code").to_number<int64_t>() == status);
    CHECK(e.at("message").is_string());
    CHECK(e.at("status").is_string());
    return e;
  }
  }
  return {};
}

std::chrono::milliseconds since(clock_type::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0);
}

} // namespace

// -- success answers -------------------------------------------------------------------------

TEST_CASE("openai success has the chat completion shape and rate-limit headers") {
  fixture fx;
  auto r = fx.call(provider::openai, openai_request());
  REQUIRE(r.status == 200);
  auto body = parse_object(r.body);
  CHECK(str(body.at("id")).rfind("chatcmpl-", 0) == 0);
  CHECK(str(body.at("object")) == "chat.completion");
  CHECK(body.at("created").to_number<int64_t>() > 1700000000);
  CHECK(str(body.at("model")) == "gpt-4o");
  const auto& choice = body.at("choices").at(0).as_object();
  CHECK(choice.at("index").to_number<int>() == 0);
  CHECK(str(choice.at("message").at("role")) == "assistant");
  CHECK(str(choice.at("finish_reason")) == "stop");
  check_verdict(verdict_of(provider::openai, body));
  const auto& usage = body.at("usage").as_object();
  auto prompt = usage.at("prompt_tokens").to_number<int64_t>();
  auto completion = usage.at("completion_tokens").to_number<int64_t>();
  CHECK(prompt > 0);
  CHECK(completion > 0);
  CHECK(usage.at("total_tokens").to_number<int64_t>() == prompt + completion);
  CHECK(usage.at("prompt_tokens_details").at("cached_tokens").to_number<int64_t>() == 0);

  std::regex duration{R"(\d+ms|\d+(\.\d+)?s|\d+m\d+s)"};
  for (const char* kind : {"requests", "tokens"}) {
    auto limit = header_of(r, std::string("x-ratelimit-limit-") + kind);
    auto remaining = header_of(r, std::string("x-ratelimit-remaining-") + kind);
    auto reset = header_of(r, std::string("x-ratelimit-reset-") + kind);
    REQUIRE(limit);
    REQUIRE(remaining);
    REQUIRE(reset);
    CHECK(std::stoull(*remaining) < std::stoull(*limit));
    CHECK(std::regex_match(*reset, duration));
  }
  REQUIRE(header_of(r, "x-request-id"));
  CHECK(header_of(r, "x-request-id")->rfind("req_", 0) == 0);
}

TEST_CASE("anthropic success has the messages shape with the forced tool") {
  fixture fx;
  auto r = fx.call(provider::anthropic, anthropic_request("Essays here.", "record_judgement"));
  REQUIRE(r.status == 200);
  auto body = parse_object(r.body);
  CHECK(str(body.at("id")).rfind("msg_", 0) == 0);
  CHECK(str(body.at("type")) == "message");
  CHECK(str(body.at("role")) == "assistant");
  CHECK(str(body.at("model")) == "claude-sonnet-4-5-20250929");
  CHECK(str(body.at("stop_reason")) == "tool_use");
  CHECK(body.at("stop_sequence").is_null());
  const auto& block = body.at("content").at(0).as_object();
  CHECK(str(block.at("id")).rfind("toolu_", 0) == 0);
  CHECK(str(block.at("name")) == "record_judgement");
  check_verdict(verdict_of(provider::anthropic, body));
  const auto& usage = body.at("usage").as_object();
  CHECK(usage.at("input_tokens").to_number<int64_t>() > 0);
  CHECK(usage.at("output_tokens").to_number<int64_t>() > 0);
  CHECK(usage.at("cache_creation_input_tokens").to_number<int64_t>() == 0);
  CHECK(usage.at("cache_read_input_tokens").to_number<int64_t>() == 0);

  std::regex rfc3339{R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"};
  for (const char* kind : {"requests", "tokens"}) {
    auto prefix = std::string("anthropic-ratelimit-") + kind;
    REQUIRE(header_of(r, prefix + "-limit"));
    REQUIRE(header_of(r, prefix + "-remaining"));
    auto reset = header_of(r, prefix + "-reset");
    REQUIRE(reset);
    CHECK(std::regex_match(*reset, rfc3339));
  }
  REQUIRE(header_of(r, "request-id"));
  CHECK(header_of(r, "request-id")->rfind("req_", 0) == 0);
}

// Without tools the real API can only answer in text: the mock treats such a call as a
// general chat call (tools/mock_provider/general_chat), which lps's comparisons never are.
TEST_CASE("anthropic without tools answers in text, as a general chat call") {
  fixture fx;
  auto req = anthropic_request();
  req.erase("tools");
  req.erase("tool_choice");
  auto r = fx.call(provider::anthropic, req);
  REQUIRE(r.status == 200);
  auto body = parse_object(r.body);
  CHECK(str(body.at("content").at(0).at("type")) == "text");
  CHECK(str(body.at("content").at(0).at("text")).rfind("Mock answer to: Compare Essay A", 0) == 0);
  CHECK(str(body.at("stop_reason")) == "end_turn");
}

TEST_CASE("gemini success has the generateContent shape") {
  fixture fx;
  auto r = fx.call(provider::gemini, gemini_request());
  REQUIRE(r.status == 200);
  auto body = parse_object(r.body);
  const auto& candidate = body.at("candidates").at(0).as_object();
  CHECK(str(candidate.at("content").at("role")) == "model");
  CHECK(str(candidate.at("finishReason")) == "STOP");
  CHECK(candidate.at("index").to_number<int>() == 0);
  check_verdict(verdict_of(provider::gemini, body));
  const auto& usage = body.at("usageMetadata").as_object();
  auto prompt = usage.at("promptTokenCount").to_number<int64_t>();
  auto output = usage.at("candidatesTokenCount").to_number<int64_t>();
  CHECK(prompt > 0);
  CHECK(usage.at("totalTokenCount").to_number<int64_t>() == prompt + output);
  CHECK(str(body.at("modelVersion")) == "gemini-2.5-flash");
}

TEST_CASE("openrouter speaks chat completions under api v1") {
  fixture fx;
  auto r = fx.call(provider::openrouter, openrouter_request());
  REQUIRE(r.status == 200);
  auto body = parse_object(r.body);
  CHECK(str(body.at("object")) == "chat.completion");
  CHECK(str(body.at("model")) == "anthropic/claude-sonnet-4.5");
  CHECK(str(body.at("choices").at(0).at("finish_reason")) == "stop");
  check_verdict(verdict_of(provider::openrouter, body));
  CHECK(header_of(r, "x-ratelimit-remaining-requests"));

  // OpenRouter adapts parameters to the upstream model instead of applying OpenAI's rules.
  auto gpt5 = openai_request("x json", "openai/gpt-5");
  CHECK(fx.call(provider::openrouter, gpt5).status == 200);
}

TEST_CASE("the judgement is deterministic in prompt and seed") {
  fixture fx;
  std::set<std::string> winners;
  std::vector<json::object> first;
  for (int i = 0; i < 16; ++i) {
    auto prompt = "Essay A (ID: a" + std::to_string(i) + ") versus Essay B. Respond in JSON.";
    auto a = verdict_of(provider::openai,
                        parse_object(fx.call(provider::openai, openai_request(prompt)).body));
    auto b = verdict_of(provider::openai,
                        parse_object(fx.call(provider::openai, openai_request(prompt)).body));
    CHECK(a == b);
    // The verdict depends on the user turns only, so every dialect agrees on it.
    for (auto p : {provider::anthropic, provider::gemini})
      CHECK(verdict_of(p, parse_object(fx.call(p, request_for(p, prompt)).body)) == a);
    winners.insert(str(a.at("winner")));
    first.push_back(a);
  }
  CHECK(winners.size() == 2);

  lps::mock_provider_options other;
  other.seed = 7;
  fixture fx7{other};
  int differing = 0;
  for (int i = 0; i < 16; ++i) {
    auto prompt = "Essay A (ID: a" + std::to_string(i) + ") versus Essay B. Respond in JSON.";
    auto v = verdict_of(provider::openai,
                        parse_object(fx7.call(provider::openai, openai_request(prompt)).body));
    differing += v == first[static_cast<size_t>(i)] ? 0 : 1;
  }
  CHECK(differing > 0);
}

// -- keys ------------------------------------------------------------------------------------

TEST_CASE("missing and wrong keys get 401 in each dialect's shape") {
  fixture fx;
  for (auto p : all_providers) {
    for (std::string key : {"", "sk-wrong-key-123456"}) {
      INFO(name_of(p) << " key '" << key << "'");
      auto r = fx.call(p, request_for(p), key);
      auto e = check_error_shape(p, r, 401);
      CHECK(r.body.find("sk-wrong-key-123456") == std::string::npos);
      if (p == provider::openai) {
        CHECK(str(e.at("type")) == "invalid_request_error");
        if (key.empty())
          CHECK(e.at("code").is_null());
        else
          CHECK(str(e.at("code")) == "invalid_api_key");
      }
      if (p == provider::anthropic)
        CHECK(str(e.at("type")) == "authentication_error");
      if (p == provider::gemini)
        CHECK(str(e.at("status")) == "UNAUTHENTICATED");
    }
  }
  CHECK(fx.server.stats().by_outcome["unauthorized"] == 8);
}

TEST_CASE("chat dialects want the key with the Bearer scheme") {
  fixture fx;
  auto r = fx.request(provider::openai, json::serialize(openai_request()), "");
  r.headers.emplace_back("authorization", "test-key");
  auto e = check_error_shape(provider::openai, fx.call(r), 401);
  CHECK(str(e.at("code")) == "invalid_api_key");
  r.headers.back().second = "Bearer test-key";
  CHECK(fx.call(r).status == 200);
}

TEST_CASE("a custom api key replaces the default") {
  lps::mock_provider_options o;
  o.api_key = "sk-custom";
  fixture fx{o};
  CHECK(fx.call(provider::openai, openai_request()).status == 401);
  CHECK(fx.call(provider::openai, openai_request(), "sk-custom").status == 200);
}

TEST_CASE("gemini accepts the key as a query parameter") {
  fixture fx;
  auto r = fx.request(provider::gemini, json::serialize(gemini_request()), "");
  r.url += "?key=test-key";
  CHECK(fx.call(r).status == 200);
  r.url = fx.url("/v1beta/models/gemini-2.5-flash:generateContent?alt=json&key=wrong");
  check_error_shape(provider::gemini, fx.call(r), 401);
}

TEST_CASE("anthropic requires the anthropic-version header") {
  fixture fx;
  auto r = fx.request(provider::anthropic, json::serialize(anthropic_request()));
  std::erase_if(r.headers, [](const auto& h) { return h.first == "anthropic-version"; });
  auto resp = fx.call(r);
  auto e = check_error_shape(provider::anthropic, resp, 400);
  CHECK(str(e.at("type")) == "invalid_request_error");
  CHECK(str(e.at("message")).find("anthropic-version") != std::string::npos);
}

// -- validation ------------------------------------------------------------------------------

namespace {

struct rule_case {
  const char* what;
  json::object body;
  /// OpenAI error.param; "" for null.
  std::string param;
};

void check_openai_rejects(fixture& fx, const rule_case& c, provider p = provider::openai) {
  INFO(c.what);
  auto e = check_error_shape(p, fx.call(p, c.body), 400);
  if (p != provider::openai)
    return;
  CHECK(str(e.at("type")) == "invalid_request_error");
  if (c.param.empty())
    CHECK(e.at("param").is_null());
  else
    CHECK(str(e.at("param")) == c.param);
}

} // namespace

TEST_CASE("openai validation rules answer 400 in the openai error shape") {
  fixture fx;
  std::vector<rule_case> cases;
  auto add = [&](const char* what, auto change, std::string param) {
    auto body = openai_request("Respond with JSON.");
    change(body);
    cases.push_back({what, std::move(body), std::move(param)});
  };
  add(
      "no model", [](json::object& b) { b.erase("model"); }, "");
  add(
      "no messages", [](json::object& b) { b.erase("messages"); }, "messages");
  add(
      "empty messages", [](json::object& b) { b["messages"] = json::array{}; }, "messages");
  add(
      "message without role",
      [](json::object& b) {
        b["messages"] = json::array{json::object{{"content", "x"}}};
      },
      "messages[0].role");
  add(
      "unknown role",
      [](json::object& b) {
        b["messages"] = json::array{json::object{{"role", "robot"}, {"content", "x"}}};
      },
      "messages[0].role");
  add(
      "user message without content",
      [](json::object& b) {
        b["messages"] = json::array{json::object{{"role", "user"}}};
      },
      "messages[0].content");
  add(
      "unknown response_format type",
      [](json::object& b) {
        b["response_format"] = json::object{{"type", "xml"}};
      },
      "response_format.type");
  add(
      "json_schema without json_schema",
      [](json::object& b) {
        b["response_format"] = json::object{{"type", "json_schema"}};
      },
      "response_format.json_schema");
  add(
      "json_schema without name",
      [](json::object& b) {
        b["response_format"].as_object()["json_schema"].as_object().erase("name");
      },
      "response_format.json_schema.name");
  add(
      "json_schema without schema",
      [](json::object& b) {
        b["response_format"].as_object()["json_schema"].as_object().erase("schema");
      },
      "response_format.json_schema.schema");
  add(
      "json_object without the word json in the messages",
      [](json::object& b) {
        b["messages"] = json::array{json::object{{"role", "user"}, {"content", "Compare."}}};
        b["response_format"] = json::object{{"type", "json_object"}};
      },
      "messages");
  for (const auto& c : cases)
    check_openai_rejects(fx, c);
  // The same rules hold under OpenRouter, in OpenRouter's envelope.
  for (const auto& c : cases)
    check_openai_rejects(fx, c, provider::openrouter);

  auto bad_json = fx.call(fx.request(provider::openai, "{not json"));
  auto e = check_error_shape(provider::openai, bad_json, 400);
  CHECK(str(e.at("message")).find("parse the JSON body") != std::string::npos);
  CHECK(fx.server.stats().by_dialect_outcome["openai"]["invalid_request"] == cases.size() + 1);
}

TEST_CASE("openai accepts the response_format variants lps and others send") {
  fixture fx;
  auto body = openai_request("Please respond with a valid JSON object.");
  CHECK(fx.call(provider::openai, body).status == 200);
  body["response_format"] = json::object{{"type", "json_object"}};
  CHECK(fx.call(provider::openai, body).status == 200);
  body["response_format"] = json::object{{"type", "text"}};
  CHECK(fx.call(provider::openai, body).status == 200);
  body.erase("response_format");
  CHECK(fx.call(provider::openai, body).status == 200);
  // Content as an array of text parts is as good as a string.
  body["messages"] = json::array{
      json::object{{"role", "user"},
                   {"content", json::array{json::object{{"type", "text"}, {"text", "Compare."}}}}}};
  CHECK(fx.call(provider::openai, body).status == 200);
}

TEST_CASE("openai gpt-5 models reject temperature other than 1 and max_tokens") {
  fixture fx;
  auto body = openai_request("Respond with JSON.", "gpt-5-mini");
  body.erase("max_tokens");
  auto e = check_error_shape(provider::openai, fx.call(provider::openai, body), 400);
  CHECK(str(e.at("param")) == "temperature");
  CHECK(str(e.at("code")) == "unsupported_value");

  body["temperature"] = 1;
  body["max_tokens"] = 100;
  e = check_error_shape(provider::openai, fx.call(provider::openai, body), 400);
  CHECK(str(e.at("param")) == "max_tokens");
  CHECK(str(e.at("code")) == "unsupported_parameter");
  CHECK(str(e.at("message")).find("max_completion_tokens") != std::string::npos);

  body.erase("max_tokens");
  body["max_completion_tokens"] = 100;
  CHECK(fx.call(provider::openai, body).status == 200);
  body.erase("temperature");
  CHECK(fx.call(provider::openai, body).status == 200);
  // Older models keep accepting both.
  CHECK(fx.call(provider::openai, openai_request("json", "gpt-4.1")).status == 200);
}

TEST_CASE("anthropic validation rules answer 400 in the anthropic error shape") {
  fixture fx;
  std::vector<std::pair<const char*, json::object>> cases;
  auto add = [&](const char* what, auto change) {
    auto body = anthropic_request();
    change(body);
    cases.emplace_back(what, std::move(body));
  };
  add("no model", [](json::object& b) { b.erase("model"); });
  add("no max_tokens", [](json::object& b) { b.erase("max_tokens"); });
  add("zero max_tokens", [](json::object& b) { b["max_tokens"] = 0; });
  add("fractional max_tokens", [](json::object& b) { b["max_tokens"] = 1.5; });
  add("no messages", [](json::object& b) { b.erase("messages"); });
  add("empty messages", [](json::object& b) { b["messages"] = json::array{}; });
  add("bad role", [](json::object& b) {
    b["messages"] = json::array{json::object{{"role", "system"}, {"content", "x"}}};
  });
  add("forced tool missing from tools", [](json::object& b) {
    b["tool_choice"] = json::object{{"type", "tool"}, {"name", "other"}};
  });
  add("forced tool without tools", [](json::object& b) { b.erase("tools"); });
  add("unknown tool_choice type", [](json::object& b) {
    b["tool_choice"] = json::object{{"type", "required"}};
  });
  add("tool without input_schema",
      [](json::object& b) { b["tools"].as_array()[0].as_object().erase("input_schema"); });
  add("system as a number", [](json::object& b) { b["system"] = 3; });
  add("system block that is not text", [](json::object& b) {
    b["system"] = json::array{json::object{{"type", "image"}, {"text", "x"}}};
  });
  for (const auto& [what, body] : cases) {
    INFO(what);
    auto e = check_error_shape(provider::anthropic, fx.call(provider::anthropic, body), 400);
    CHECK(str(e.at("type")) == "invalid_request_error");
  }
  auto sys = anthropic_request();
  sys["system"] = json::array{json::object{{"type", "text"}, {"text", "Rules."}}};
  CHECK(fx.call(provider::anthropic, sys).status == 200);
}

namespace {

json::object cache_control(const char* ttl) {
  json::object cc{{"type", "ephemeral"}};
  if (ttl)
    cc["ttl"] = ttl;
  return cc;
}

/// An Anthropic request with cache_control on the tool, the system block and the user block.
json::object cached_request(const char* tool_ttl, const char* system_ttl, const char* user_ttl,
                            const std::string& system_text = "Rules.") {
  auto body = anthropic_request();
  auto& tool = body["tools"].as_array()[0].as_object();
  if (tool_ttl)
    tool["cache_control"] = cache_control(*tool_ttl ? tool_ttl : nullptr);
  json::object sys{{"type", "text"}, {"text", system_text}};
  if (system_ttl)
    sys["cache_control"] = cache_control(*system_ttl ? system_ttl : nullptr);
  body["system"] = json::array{std::move(sys)};
  auto& block = body["messages"].as_array()[0].at("content").as_array()[0].as_object();
  if (user_ttl)
    block["cache_control"] = cache_control(*user_ttl ? user_ttl : nullptr);
  return body;
}

} // namespace

TEST_CASE("anthropic cache_control ttl order follows tools then system then messages") {
  fixture fx;
  // nullptr: no cache_control; "": cache_control without ttl (5 minutes).
  CHECK(fx.call(provider::anthropic, cached_request("1h", "1h", "5m")).status == 200);
  CHECK(fx.call(provider::anthropic, cached_request("1h", "5m", nullptr)).status == 200);
  CHECK(fx.call(provider::anthropic, cached_request(nullptr, "1h", "")).status == 200);
  for (auto body : {cached_request(nullptr, "5m", "1h"), cached_request("5m", "1h", nullptr),
                    cached_request("", nullptr, "1h"), cached_request(nullptr, "", "1h")}) {
    auto e = check_error_shape(provider::anthropic, fx.call(provider::anthropic, body), 400);
    CHECK(str(e.at("message")).find("ttl='1h'") != std::string::npos);
  }
  auto bad_ttl = cached_request(nullptr, "2h", nullptr);
  check_error_shape(provider::anthropic, fx.call(provider::anthropic, bad_ttl), 400);

  auto many = cached_request("5m", "5m", "5m");
  auto& content = many["messages"].as_array()[0].at("content").as_array();
  for (int i = 0; i < 2; ++i)
    content.push_back(
        json::object{{"type", "text"}, {"text", "more"}, {"cache_control", cache_control("5m")}});
  auto e = check_error_shape(provider::anthropic, fx.call(provider::anthropic, many), 400);
  CHECK(str(e.at("message")).find("maximum of 4") != std::string::npos);
}

TEST_CASE("anthropic prompt caching is simulated per prefix and ttl") {
  fixture fx;
  std::string rubric(8000, 'r'); // about 2000 tokens: above the 1024-token minimum
  auto usage_of = [&](const json::object& body) {
    auto r = fx.call(provider::anthropic, body);
    REQUIRE(r.status == 200);
    return parse_object(r.body).at("usage").as_object();
  };
  auto first = usage_of(cached_request(nullptr, "5m", nullptr, rubric));
  auto written = first.at("cache_creation_input_tokens").to_number<int64_t>();
  CHECK(written >= 2000);
  CHECK(first.at("cache_read_input_tokens").to_number<int64_t>() == 0);
  CHECK(first.at("cache_creation").at("ephemeral_5m_input_tokens").to_number<int64_t>() == written);

  auto second = usage_of(cached_request(nullptr, "5m", nullptr, rubric));
  CHECK(second.at("cache_read_input_tokens").to_number<int64_t>() == written);
  CHECK(second.at("cache_creation_input_tokens").to_number<int64_t>() == 0);
  CHECK(second.at("input_tokens").to_number<int64_t>()
        < first.at("input_tokens").to_number<int64_t>() + written);

  // One hour entries are reported apart; a short prefix is never cached.
  auto hour = usage_of(cached_request(nullptr, "1h", nullptr, rubric + "x"));
  CHECK(hour.at("cache_creation").at("ephemeral_1h_input_tokens").to_number<int64_t>() > 0);
  auto small = usage_of(cached_request(nullptr, "5m", nullptr, "short rules"));
  CHECK(small.at("cache_creation_input_tokens").to_number<int64_t>() == 0);

  fx.server.reset();
  auto again = usage_of(cached_request(nullptr, "5m", nullptr, rubric));
  CHECK(again.at("cache_creation_input_tokens").to_number<int64_t>() == written);
}

TEST_CASE("gemini validation rules answer 400 in the gemini error shape") {
  fixture fx;
  std::vector<std::pair<const char*, json::object>> cases;
  auto add = [&](const char* what, auto change) {
    auto body = gemini_request();
    change(body);
    cases.emplace_back(what, std::move(body));
  };
  add("no contents", [](json::object& b) { b.erase("contents"); });
  add("empty contents", [](json::object& b) { b["contents"] = json::array{}; });
  add("content without parts", [](json::object& b) {
    b["contents"] = json::array{json::object{{"role", "user"}}};
  });
  add("unknown role", [](json::object& b) {
    b["contents"] = json::array{
        json::object{{"role", "assistant"}, {"parts", json::array{json::object{{"text", "x"}}}}}};
  });
  add("schema without json mime type", [](json::object& b) {
    b["generationConfig"].as_object()["responseMimeType"] = "text/plain";
  });
  for (const auto& [what, body] : cases) {
    INFO(what);
    auto e = check_error_shape(provider::gemini, fx.call(provider::gemini, body), 400);
    CHECK(str(e.at("status")) == "INVALID_ARGUMENT");
  }
  auto bad = fx.call(fx.request(provider::gemini, "[1,2]"));
  check_error_shape(provider::gemini, bad, 400);
}

TEST_CASE("unknown paths and methods get 404 and are counted") {
  fixture fx;
  auto r = fx.request(provider::openai, json::serialize(openai_request()));
  r.url = fx.url("/v1/completions");
  CHECK(fx.call(r).status == 404);
  r.url = fx.url("/v1beta/models/gemini-2.5-flash:countTokens");
  CHECK(fx.call(r).status == 404);
  r.url = fx.url("/v1/chat/completions");
  r.method = "GET";
  r.body.clear();
  auto resp = fx.call(r);
  CHECK(resp.status == 404);
  check_error_shape(provider::openai, resp, 404);
  CHECK(fx.server.stats().by_dialect["unknown"] == 3);
  CHECK(fx.server.stats().by_outcome["not_found"] == 3);
}

// -- faults ----------------------------------------------------------------------------------

TEST_CASE("status faults answer that status in each dialect's shape with retry-after") {
  fixture fx;
  for (auto p : all_providers) {
    INFO(name_of(p));
    fx.script(R"({"faults":[{"kind":"status","status":429,"retry_after":"2"},)"
              R"({"kind":"status","status":500},{"kind":"status","status":503}]})");
    auto r = fx.call(p, request_for(p));
    auto e = check_error_shape(p, r, 429);
    CHECK(header_of(r, "retry-after") == std::optional<std::string>("2"));
    if (p == provider::openai) {
      CHECK(str(e.at("code")) == "rate_limit_exceeded");
      CHECK(str(e.at("type")) == "requests");
      CHECK(header_of(r, "x-ratelimit-remaining-requests"));
    }
    if (p == provider::anthropic)
      CHECK(str(e.at("type")) == "rate_limit_error");
    if (p == provider::gemini) {
      CHECK(str(e.at("status")) == "RESOURCE_EXHAUSTED");
      CHECK(str(e.at("details").at(0).at("retryDelay")) == "2s");
    }

    r = fx.call(p, request_for(p));
    e = check_error_shape(p, r, 500);
    CHECK(!header_of(r, "retry-after"));
    if (p == provider::openai)
      CHECK(str(e.at("type")) == "server_error");
    if (p == provider::anthropic)
      CHECK(str(e.at("type")) == "api_error");
    if (p == provider::gemini)
      CHECK(str(e.at("status")) == "INTERNAL");

    e = check_error_shape(p, fx.call(p, request_for(p)), 503);
    if (p == provider::gemini)
      CHECK(str(e.at("status")) == "UNAVAILABLE");
    CHECK(fx.call(p, request_for(p)).status == 200); // the script is used up
  }
  auto s = fx.server.stats();
  CHECK(s.by_outcome["rate_limited"] == 4);
  CHECK(s.by_outcome["server_error"] == 4);
  CHECK(s.by_outcome["unavailable"] == 4);
  CHECK(s.scripted_faults == 12);
  CHECK(s.pending_faults == 0);
}

TEST_CASE("quota faults use each provider's quota-exhausted shape") {
  fixture fx;
  fx.script(R"({"faults":[{"kind":"quota"},{"kind":"quota"},{"kind":"quota"},{"kind":"quota"}]})");
  auto e = check_error_shape(provider::openai, fx.call(provider::openai, openai_request()), 429);
  CHECK(str(e.at("type")) == "insufficient_quota");
  CHECK(str(e.at("code")) == "insufficient_quota");

  auto r = fx.call(provider::anthropic, anthropic_request());
  e = check_error_shape(provider::anthropic, r, 429);
  CHECK(str(e.at("type")) == "rate_limit_error");
  CHECK(str(e.at("details").at("error_code")) == "enforced_spend_limit_reached");
  CHECK(!header_of(r, "retry-after"));

  e = check_error_shape(provider::gemini, fx.call(provider::gemini, gemini_request()), 429);
  CHECK(str(e.at("status")) == "RESOURCE_EXHAUSTED");
  CHECK(str(e.at("details").at(0).at("@type")).find("QuotaFailure") != std::string::npos);

  check_error_shape(provider::openrouter, fx.call(provider::openrouter, openrouter_request()), 402);
  CHECK(fx.server.stats().by_outcome["quota_exhausted"] == 4);
}

TEST_CASE("overloaded faults are 529 for anthropic and 503 elsewhere") {
  fixture fx;
  fx.script(R"({"faults":[{"kind":"overloaded","retry_after":1.5},{"kind":"overloaded"}]})");
  auto r = fx.call(provider::anthropic, anthropic_request());
  auto e = check_error_shape(provider::anthropic, r, 529);
  CHECK(str(e.at("type")) == "overloaded_error");
  CHECK(header_of(r, "retry-after") == std::optional<std::string>("1.5"));
  e = check_error_shape(provider::openai, fx.call(provider::openai, openai_request()), 503);
  CHECK(str(e.at("type")) == "server_error");
  CHECK(fx.server.stats().by_outcome["overloaded"] == 2);
}

TEST_CASE("malformed faults answer 200 with a body that is not json") {
  fixture fx;
  for (auto p : all_providers) {
    INFO(name_of(p));
    fx.script(R"({"faults":[{"kind":"malformed"}]})");
    auto r = fx.call(p, request_for(p));
    CHECK(r.status == 200);
    CHECK(!r.body.empty());
    CHECK(!is_json(r.body));
  }
  CHECK(fx.server.stats().by_outcome["malformed"] == 4);
}

TEST_CASE("truncated faults end the answer like a length limit") {
  fixture fx;
  fx.script(R"({"faults":[{"kind":"truncated","count":4}]})");
  for (auto p : {provider::openai, provider::openrouter}) {
    auto body = parse_object(fx.call(p, request_for(p)).body);
    const auto& choice = body.at("choices").at(0);
    CHECK(str(choice.at("finish_reason")) == "length");
    CHECK(!is_json(str(choice.at("message").at("content"))));
  }
  auto body = parse_object(fx.call(provider::anthropic, anthropic_request()).body);
  CHECK(str(body.at("stop_reason")) == "max_tokens");
  for (const auto& block : body.at("content").as_array())
    CHECK(str(block.at("type")) != "tool_use");
  body = parse_object(fx.call(provider::gemini, gemini_request()).body);
  const auto& candidate = body.at("candidates").at(0);
  CHECK(str(candidate.at("finishReason")) == "MAX_TOKENS");
  CHECK(!is_json(str(candidate.at("content").at("parts").at(0).at("text"))));
  CHECK(fx.server.stats().by_outcome["truncated"] == 4);
}

TEST_CASE("no_tool_use faults answer without structured output") {
  fixture fx;
  fx.script(R"({"faults":[{"kind":"no_tool_use"},{"kind":"no_tool_use"}]})");
  auto body = parse_object(fx.call(provider::anthropic, anthropic_request()).body);
  CHECK(str(body.at("stop_reason")) == "end_turn");
  const auto& content = body.at("content").as_array();
  REQUIRE(content.size() == 1);
  CHECK(str(content[0].at("type")) == "text");
  body = parse_object(fx.call(provider::openai, openai_request()).body);
  CHECK(!is_json(str(body.at("choices").at(0).at("message").at("content"))));
}

TEST_CASE("bad_winner faults name Essay C") {
  fixture fx;
  for (auto p : all_providers) {
    INFO(name_of(p));
    fx.script(R"({"faults":[{"kind":"bad_winner"}]})");
    auto r = fx.call(p, request_for(p));
    REQUIRE(r.status == 200);
    CHECK(str(verdict_of(p, parse_object(r.body)).at("winner")) == "Essay C");
  }
  CHECK(fx.server.stats().by_outcome["bad_winner"] == 4);
}

TEST_CASE("drop faults leave the call unanswered until the client gives up") {
  fixture fx;
  fx.script(R"({"faults":[{"kind":"drop"}]})");
  auto req = fx.request(provider::openai, json::serialize(openai_request()));
  req.timeout = 300ms;
  auto t0 = clock_type::now();
  auto r = fx.call(req);
  CHECK(r.status == 0);
  CHECK(r.error == lps::transport_error::timeout);
  CHECK(since(t0) >= 250ms);
  CHECK(fx.call(provider::openai, openai_request()).status == 200);
  CHECK(fx.server.stats().by_outcome["dropped"] == 1);

  // A held connection does not keep stop() waiting.
  fx.script(R"({"faults":[{"kind":"drop"}]})");
  auto pending = fx.send(fx.request(provider::anthropic, json::serialize(anthropic_request())));
  REQUIRE(fx.server.wait_for_calls(
      [](const lps::mock_provider_stats& s) {
        auto dropped = s.by_outcome.find("dropped");
        return dropped != s.by_outcome.end() && dropped->second >= 2;
      },
      5s));
  t0 = clock_type::now();
  fx.server.stop();
  CHECK(since(t0) < 2s);
  REQUIRE(pending.wait_for(5s) == std::future_status::ready);
  CHECK(pending.get().status == 0);
}

TEST_CASE("delay faults answer normally after the delay") {
  fixture fx;
  fx.script(R"({"faults":[{"kind":"delay","ms":300}]})");
  auto t0 = clock_type::now();
  auto r = fx.call(provider::gemini, gemini_request());
  auto took = since(t0);
  CHECK(r.status == 200);
  CHECK(took >= 300ms);
  CHECK(took < 3s);
  check_verdict(verdict_of(provider::gemini, parse_object(r.body)));
  CHECK(fx.server.stats().by_outcome["delayed"] == 1);
}

TEST_CASE("faults apply in order to the matching dialect only") {
  fixture fx;
  fx.script(R"({"dialect":"anthropic","faults":[{"kind":"status","status":500},)"
            R"({"kind":"status","status":503},{"kind":"quota","dialect":"gemini"}]})");
  CHECK(fx.call(provider::openai, openai_request()).status == 200);
  CHECK(fx.call(provider::gemini, gemini_request()).status == 429);
  CHECK(fx.call(provider::anthropic, anthropic_request()).status == 500);
  CHECK(fx.call(provider::openai, openai_request()).status == 200);
  CHECK(fx.call(provider::anthropic, anthropic_request()).status == 503);
  CHECK(fx.call(provider::anthropic, anthropic_request()).status == 200);

  fx.script(R"({"faults":[{"kind":"status","status":502,"count":3}]})");
  CHECK(fx.server.stats().pending_faults == 3);
  for (int i = 0; i < 3; ++i)
    CHECK(fx.call(provider::openrouter, openrouter_request()).status == 502);
  CHECK(fx.call(provider::openrouter, openrouter_request()).status == 200);
  CHECK(fx.server.stats().by_outcome["error_502"] == 3);
}

TEST_CASE("faults are consumed only by calls that pass the key and request checks") {
  fixture fx;
  fx.script(R"({"faults":[{"kind":"status","status":500}]})");
  CHECK(fx.call(provider::openai, openai_request(), "wrong").status == 401);
  auto bad = openai_request();
  bad.erase("model");
  CHECK(fx.call(provider::openai, bad).status == 400);
  CHECK(fx.server.stats().pending_faults == 1);
  CHECK(fx.call(provider::openai, openai_request()).status == 500);
}

TEST_CASE("invalid fault scripts are rejected") {
  fixture fx;
  for (const char* body :
       {"", "[]", "{\"faults\":{}}", R"({"faults":[{"kind":"explode"}]})",
        R"({"faults":[{"status":500}]})", R"({"faults":[{"kind":"status"}]})",
        R"({"faults":[{"kind":"status","status":200}]})", R"({"faults":[{"kind":"delay"}]})",
        R"({"faults":[{"kind":"delay","ms":-1}]})",
        R"({"faults":[{"kind":"drop","dialect":"cohere"}]})", R"({"dialect":"cohere","faults":[]})",
        R"({"faults":[{"kind":"drop","count":0}]})",
        R"({"faults":[{"kind":"status","status":429,"retry_after":-3}]})"}) {
    INFO(body);
    auto r = fx.control("POST", "/_mock/faults", body);
    CHECK(r.status == 400);
    CHECK(parse_object(r.body).at("error").at("message").is_string());
    std::string error;
    CHECK(!fx.server.add_faults(body, error));
    CHECK(!error.empty());
  }
  CHECK(fx.server.stats().pending_faults == 0);
  std::string error;
  CHECK(fx.server.add_faults(R"({"faults":[{"kind":"bad_winner"}]})", error));
  CHECK(fx.server.stats().pending_faults == 1);
}

TEST_CASE("random errors follow the error rate and codes") {
  lps::mock_provider_options o;
  o.error_rate = 1.0;
  o.error_codes = {500};
  {
    fixture fx{o};
    for (auto p : all_providers)
      check_error_shape(p, fx.call(p, request_for(p)), 500);
    CHECK(fx.server.stats().random_errors == 4);
    CHECK(fx.server.stats().scripted_faults == 0);
  }
  o.error_codes = {529};
  {
    // 529 is Anthropic's overload; the other dialects say it with 503.
    fixture fx{o};
    check_error_shape(provider::anthropic, fx.call(provider::anthropic, anthropic_request()), 529);
    check_error_shape(provider::openai, fx.call(provider::openai, openai_request()), 503);
    CHECK(fx.server.stats().by_outcome["overloaded"] == 2);
  }
  o.error_rate = 0.5;
  o.error_codes = {429, 503};
  {
    fixture fx{o};
    int errors = 0;
    for (int i = 0; i < 60; ++i) {
      auto status = fx.call(provider::openai, openai_request()).status;
      CHECK((status == 200 || status == 429 || status == 503));
      errors += status == 200 ? 0 : 1;
    }
    CHECK(errors > 10);
    CHECK(errors < 50);
    CHECK(fx.server.stats().random_errors == static_cast<uint64_t>(errors));
  }
}

// -- control API, stats and latency ----------------------------------------------------------

TEST_CASE("stats count calls per dialect and outcome") {
  fixture fx;
  fx.call(provider::openai, openai_request());
  fx.call(provider::openai, openai_request());
  fx.call(provider::anthropic, anthropic_request(), "");
  fx.call(provider::gemini, json::object{{"contents", json::array{}}});
  fx.script(R"({"faults":[{"kind":"bad_winner"}]})");
  fx.call(provider::openrouter, openrouter_request());

  auto s = fx.server.stats();
  CHECK(s.calls == 5);
  CHECK(s.by_dialect["openai"] == 2);
  CHECK(s.by_dialect["anthropic"] == 1);
  CHECK(s.by_dialect["gemini"] == 1);
  CHECK(s.by_dialect["openrouter"] == 1);
  CHECK(s.by_outcome["ok"] == 2);
  CHECK(s.by_dialect_outcome["anthropic"]["unauthorized"] == 1);
  CHECK(s.by_dialect_outcome["gemini"]["invalid_request"] == 1);
  CHECK(s.by_dialect_outcome["openrouter"]["bad_winner"] == 1);
  CHECK(s.scripted_faults == 1);

  auto r = fx.control("GET", "/_mock/stats");
  REQUIRE(r.status == 200);
  auto body = parse_object(r.body);
  CHECK(body.at("calls").to_number<int64_t>() == 5);
  CHECK(body.at("by_dialect").at("openai").to_number<int64_t>() == 2);
  CHECK(body.at("by_outcome").at("ok").to_number<int64_t>() == 2);
  CHECK(body.at("by_dialect_outcome").at("gemini").at("invalid_request").to_number<int64_t>() == 1);
  CHECK(body.at("scripted_faults").to_number<int64_t>() == 1);
  CHECK(body.at("pending_faults").to_number<int64_t>() == 0);
  CHECK(fx.server.stats().calls == 5); // control calls are not counted
}

TEST_CASE("reset through the control api clears counters and faults") {
  fixture fx;
  fx.call(provider::openai, openai_request());
  fx.script(R"({"faults":[{"kind":"quota"},{"kind":"quota"}]})");
  CHECK(fx.call(provider::openai, openai_request()).status == 429);
  auto r = fx.control("POST", "/_mock/reset");
  CHECK(r.status == 200);
  auto s = fx.server.stats();
  CHECK(s.calls == 0);
  CHECK(s.by_outcome.empty());
  CHECK(s.pending_faults == 0);
  CHECK(fx.call(provider::openai, openai_request()).status == 200);
}

TEST_CASE("the control api answers health and rejects unknown paths and methods") {
  fixture fx;
  auto r = fx.control("GET", "/_mock/health");
  CHECK(r.status == 200);
  CHECK(str(parse_object(r.body).at("status")) == "ok");
  CHECK(fx.control("GET", "/_mock/faults").status == 405);
  CHECK(fx.control("GET", "/_mock/reset").status == 405);
  CHECK(fx.control("POST", "/_mock/nothing").status == 404);
  CHECK(fx.server.stats().calls == 0);
}

TEST_CASE("latency delays answers without blocking the io thread") {
  lps::mock_provider_options o;
  o.latency = 250ms;
  o.io_threads = 1;
  fixture fx{o};
  auto t0 = clock_type::now();
  CHECK(fx.call(provider::openai, openai_request()).status == 200);
  CHECK(since(t0) >= 250ms);

  // Eight calls waiting at once: answered together, and the control API stays responsive.
  std::vector<std::future<http_client_response>> calls;
  t0 = clock_type::now();
  for (int i = 0; i < 8; ++i) {
    auto p = all_providers[i % 4];
    calls.push_back(fx.send(fx.request(p, json::serialize(request_for(p)))));
  }
  auto c0 = clock_type::now();
  CHECK(fx.control("GET", "/_mock/health").status == 200);
  CHECK(since(c0) < 200ms);
  for (auto& f : calls) {
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    CHECK(f.get().status == 200);
  }
  auto took = since(t0);
  CHECK(took >= 250ms);
  CHECK(took < 1500ms); // serially it would take 2000 ms
}

TEST_CASE("jitter adds a bounded random wait") {
  lps::mock_provider_options o;
  o.latency = 100ms;
  o.jitter = 100ms;
  fixture fx{o};
  for (int i = 0; i < 4; ++i) {
    auto t0 = clock_type::now();
    CHECK(fx.call(provider::anthropic, anthropic_request()).status == 200);
    auto took = since(t0);
    CHECK(took >= 100ms);
    CHECK(took < 1500ms);
  }
}

TEST_CASE("stop abandons answers still waiting for their latency") {
  lps::mock_provider_options o;
  o.latency = 10s;
  fixture fx{o};
  auto pending = fx.send(fx.request(provider::openai, json::serialize(openai_request())));
  REQUIRE(
      fx.server.wait_for_calls([](const lps::mock_provider_stats& s) { return s.calls >= 1; }, 5s));
  auto t0 = clock_type::now();
  fx.server.stop();
  CHECK(since(t0) < 2s);
  REQUIRE(pending.wait_for(5s) == std::future_status::ready);
  CHECK(pending.get().status == 0);
  fx.server.stop(); // idempotent
}

TEST_CASE("start rejects invalid options") {
  auto rejects = [](lps::mock_provider_options o) {
    lps::mock_provider_server server;
    std::string error;
    o.port = 0;
    bool ok = server.start(o, error);
    INFO(error);
    CHECK(!ok);
    CHECK(!error.empty());
  };
  lps::mock_provider_options o;
  o.error_rate = 1.5;
  rejects(o);
  o = {};
  o.error_codes = {200};
  rejects(o);
  o = {};
  o.error_rate = 0.1;
  o.error_codes.clear();
  rejects(o);
  o = {};
  o.api_key.clear();
  rejects(o);
  o = {};
  o.io_threads = 0;
  rejects(o);

  lps::mock_provider_server server;
  std::string error;
  o = {};
  o.port = 0;
  REQUIRE(server.start(o, error));
  CHECK(!server.start(o, error));
  CHECK(!error.empty());
}

TEST_CASE("stats count calls in flight and their peak") {
  lps::mock_provider_options o;
  o.latency = 300ms;
  fixture fx{o};
  std::vector<std::future<http_client_response>> calls;
  for (int i = 0; i < 6; ++i)
    calls.push_back(fx.send(fx.request(provider::openai, json::serialize(openai_request()))));
  // All six wait for their latency at once.
  CHECK(fx.server.wait_for_calls([](const auto& s) { return s.in_flight == 6; }, 5000ms));
  for (auto& f : calls) {
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    CHECK(f.get().status == 200);
  }
  CHECK(fx.server.wait_for_calls([](const auto& s) { return s.in_flight == 0; }, 5000ms));
  CHECK(fx.server.stats().peak_in_flight == 6);
  auto body = parse_object(fx.control("GET", "/_mock/stats").body);
  CHECK(body.at("peak_in_flight").to_number<int64_t>() == 6);
  CHECK(body.at("in_flight").to_number<int64_t>() == 0);
  fx.call(provider::openai, openai_request());
  CHECK(fx.server.stats().peak_in_flight == 6); // one at a time does not raise it
  CHECK(fx.control("POST", "/_mock/reset").status == 200);
  CHECK(fx.server.stats().peak_in_flight == 0);
}
