// Configuration: defaults, bounds, bad values, precedence, secrets never echoed.

#include "runtime/config.hpp"
#include "runtime/system_config.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <map>

using namespace lps;

namespace {

env_lookup fake_env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    if (auto i = vars.find(name); i != vars.end())
      return i->second;
    return std::nullopt;
  };
}

std::vector<char*> make_argv(std::vector<std::string>& args) {
  std::vector<char*> result;
  for (auto& x : args)
    result.push_back(x.data());
  return result;
}

} // namespace

TEST_CASE("defaults match the contract") {
  config cfg;
  CHECK(cfg.processing_mode == queue_processing_mode::serial_bundle);
  CHECK(cfg.serial_bundle_max_requests_per_call == 4);
  CHECK(cfg.openai_batch_api_mode == batch_api_mode::disabled);
  CHECK(cfg.anthropic_batch_api_mode == batch_api_mode::disabled);
  CHECK(cfg.http_host == "127.0.0.1");
  CHECK(cfg.http_port == 8090);
  CHECK(cfg.data_dir == "./var");
  CHECK(cfg.default_llm_provider == "mock");
  CHECK(cfg.mock.seed == 42);
  CHECK(cfg.mock.error_codes == std::vector<int32_t>{429, 503, 500});
  CHECK(cfg.providers.at("openai").base_url == "https://api.openai.com/v1");
  CHECK(cfg.providers.at("anthropic").base_url == "https://api.anthropic.com");
  CHECK(validate(cfg).empty());
}

TEST_CASE("bundle size is bounded 1 to 64") {
  config cfg;
  CHECK(set_config_value(cfg, "serial-bundle-max-requests-per-call", "1").empty());
  CHECK(cfg.serial_bundle_max_requests_per_call == 1);
  CHECK(set_config_value(cfg, "SERIAL_BUNDLE_MAX_REQUESTS_PER_CALL", "64").empty());
  CHECK(cfg.serial_bundle_max_requests_per_call == 64);
  auto err = set_config_value(cfg, "serial-bundle-max-requests-per-call", "65");
  CHECK(err.find("SERIAL_BUNDLE_MAX_REQUESTS_PER_CALL") != std::string::npos);
  CHECK(err.find("'65'") != std::string::npos);
  CHECK(err.find("1..64") != std::string::npos);
  CHECK_FALSE(set_config_value(cfg, "serial-bundle-max-requests-per-call", "0").empty());
  CHECK_FALSE(set_config_value(cfg, "serial-bundle-max-requests-per-call", "four").empty());
  CHECK(cfg.serial_bundle_max_requests_per_call == 64);
}

TEST_CASE("enums accept only their values") {
  config cfg;
  CHECK(set_config_value(cfg, "queue-processing-mode", "per_request").empty());
  CHECK(cfg.processing_mode == queue_processing_mode::per_request);
  CHECK(set_config_value(cfg, "queue-processing-mode", "batch_api").empty());
  auto err = set_config_value(cfg, "queue-processing-mode", "parallel");
  CHECK(err.find("per_request, serial_bundle, batch_api") != std::string::npos);
  CHECK(set_config_value(cfg, "openai-batch-api-mode", "nightly").empty());
  CHECK(cfg.openai_batch_api_mode == batch_api_mode::nightly);
  CHECK_FALSE(set_config_value(cfg, "anthropic-batch-api-mode", "sometimes").empty());
  CHECK_FALSE(set_config_value(cfg, "default-llm-provider", "acme").empty());
  CHECK_FALSE(set_config_value(cfg, "no-such-key", "1").empty());
}

TEST_CASE("secrets are masked in dumps and errors") {
  config cfg;
  CHECK(set_config_value(cfg, "OPENAI_API_KEY", "sk-very-secret").empty());
  CHECK(cfg.providers.at("openai").api_key.reveal() == "sk-very-secret");
  auto text = dump(cfg);
  CHECK(text.find("sk-very-secret") == std::string::npos);
  CHECK(text.find("openai-api-key = ***") != std::string::npos);
  CHECK(text.find("anthropic-api-key = \n") != std::string::npos);
}

TEST_CASE("environment overrides and bare provider keys") {
  config cfg;
  auto errors = apply_environment(
      cfg, fake_env({{"LLM_PROVIDER_SERVICE_QUEUE_PROCESSING_MODE", "per_request"},
                     {"LLM_PROVIDER_SERVICE_MOCK_ERROR_CODES", "500, 502"},
                     {"ANTHROPIC_API_KEY", "bare"},
                     {"OPENAI_API_KEY", "bare-openai"},
                     {"LLM_PROVIDER_SERVICE_OPENAI_API_KEY", "prefixed"}}));
  CHECK(errors.empty());
  CHECK(cfg.processing_mode == queue_processing_mode::per_request);
  CHECK(cfg.mock.error_codes == std::vector<int32_t>{500, 502});
  CHECK(cfg.providers.at("anthropic").api_key.reveal() == "bare");
  CHECK(cfg.providers.at("openai").api_key.reveal() == "prefixed");
  auto bad = apply_environment(cfg, fake_env({{"LLM_PROVIDER_SERVICE_MOCK_ERROR_RATE", "2"}}));
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].find("MOCK_ERROR_RATE") != std::string::npos);
}

TEST_CASE("file then environment then command line") {
  auto path = std::string{"/tmp/lps-config-test-"} + std::to_string(::getpid()) + ".ini";
  {
    std::ofstream out{path};
    out << "[lps]\nserial-bundle-max-requests-per-call=8\nqueue-processing-mode=\"per_request\"\n"
           "mock-latency-ms=5\nhttp-port=9000\n";
  }
  std::vector<std::string> args{"lps", "--config-file=" + path, "--lps.http-port=9100",
                                "--mock-latency-ms=7"};
  auto argv = make_argv(args);
  system_config sys_cfg;
  auto result =
      load_startup(sys_cfg, static_cast<int>(argv.size()), argv.data(),
                   fake_env({{"LLM_PROVIDER_SERVICE_HTTP_PORT", "9050"},
                             {"LLM_PROVIDER_SERVICE_MOCK_LATENCY_MS", "6"},
                             {"LLM_PROVIDER_SERVICE_QUEUE_PROCESSING_MODE", "serial_bundle"}}));
  std::remove(path.c_str());
  INFO((result.errors.empty() ? "" : result.errors.front()));
  REQUIRE(result.errors.empty());
  CHECK(result.cfg.serial_bundle_max_requests_per_call == 8);                // file
  CHECK(result.cfg.processing_mode == queue_processing_mode::serial_bundle); // env over file
  CHECK(result.cfg.http_port == 9100);                                       // CLI over env
  CHECK(result.cfg.mock.latency_ms == 7);                                    // CLI
}

TEST_CASE("a bad value in the file refuses to start with a clear line") {
  auto path = std::string{"/tmp/lps-config-bad-"} + std::to_string(::getpid()) + ".ini";
  {
    std::ofstream out{path};
    out << "[lps]\nserial-bundle-max-requests-per-call=100\nbogus-key=1\n";
  }
  std::vector<std::string> args{"lps", "--config-file=" + path, "--dump-config"};
  auto argv = make_argv(args);
  system_config sys_cfg;
  auto result = load_startup(sys_cfg, static_cast<int>(argv.size()), argv.data(), fake_env({}));
  std::remove(path.c_str());
  CHECK(result.dump_config);
  REQUIRE(result.errors.size() == 2);
  CHECK(result.errors[0].find("bogus-key") != std::string::npos);
  CHECK(result.errors[1].find("'100'") != std::string::npos);
}

TEST_CASE("unknown lps command-line options are errors") {
  auto split = split_command_line(
      3, std::array<const char*, 3>{"lps", "--lps.nope=1", "--scheduler.max-threads=1"}.data());
  REQUIRE(split.errors.size() == 1);
  CHECK(split.caf_args == std::vector<std::string>{"--scheduler.max-threads=1"});
}

TEST_CASE("the callback signing secret is masked and read from its bare variable too") {
  config cfg;
  CHECK(set_config_value(cfg, "CALLBACK_SIGNING_SECRET", " whsec-123 ").empty());
  CHECK(cfg.callback_signing_secret.reveal() == "whsec-123");
  auto text = dump(cfg);
  CHECK(text.find("callback-signing-secret = ***") != std::string::npos);
  CHECK(text.find("whsec-123") == std::string::npos);
  config from_env;
  CHECK(
      apply_environment(from_env, fake_env({{"CALLBACK_SIGNING_SECRET", "bare-secret"}})).empty());
  CHECK(from_env.callback_signing_secret.reveal() == "bare-secret");
}

TEST_CASE("CALLBACK_ALLOW_PRIVATE defaults to true and takes a boolean") {
  config cfg;
  CHECK(cfg.callback_allow_private);
  CHECK(set_config_value(cfg, "CALLBACK_ALLOW_PRIVATE", "false").empty());
  CHECK_FALSE(cfg.callback_allow_private);
  CHECK(set_config_value(cfg, "CALLBACK_ALLOW_PRIVATE", "maybe").find("true or false")
        != std::string::npos);
}
