// GET /api/v1/config's body (runtime/config_body): exact text, and the same masked values as
// --dump-config (runtime/config dump) for every key.

#include "runtime/config_body.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <map>
#include <sstream>

using namespace lps;

namespace {

// The secrets a test deployment sets, each through its own key.
const std::map<std::string, std::string> test_secrets{
    {"OPENAI_API_KEY", "sk-test-openai-4242"},
    {"ADMIN_TOKEN", "admin-test-token-4242"},
    {"CALLBACK_SIGNING_SECRET", "signing-test-secret-4242"},
    {"POSTGRES_URL", "postgresql://lps:pg-test-password-4242@127.0.0.1:5432/lps"},
};

config config_with_secrets() {
  config cfg;
  for (const auto& [key, value] : test_secrets)
    REQUIRE(set_config_value(cfg, key, value).empty());
  return cfg;
}

// dump()'s "file-key = value" lines as file key -> value.
std::map<std::string, std::string> dumped_values(const std::string& text) {
  std::map<std::string, std::string> result;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find(" = ");
    REQUIRE(eq != std::string::npos);
    result[line.substr(0, eq)] = line.substr(eq + 3);
  }
  return result;
}

} // namespace

TEST_CASE("the config body lists each setting with its key, file key, value and secrecy") {
  std::vector<shown_setting> settings{{"HTTP_HOST", "http-host", "127.0.0.1", false},
                                      {"ADMIN_TOKEN", "admin-token", "***", true},
                                      {"DATA_DIR", "data-dir", "./var \"x\"", false}};
  CHECK(render_config(settings)
        == R"({"settings":[{"key":"HTTP_HOST","file_key":"http-host","value":"127.0.0.1",)"
           R"("secret":false},{"key":"ADMIN_TOKEN","file_key":"admin-token","value":"***",)"
           R"("secret":true},{"key":"DATA_DIR","file_key":"data-dir","value":"./var \"x\"",)"
           R"("secret":false}]})");
  CHECK(render_config({}) == R"({"settings":[]})");
}

TEST_CASE("the config body shows every key as --dump-config does, secrets masked in both") {
  auto cfg = config_with_secrets();
  auto body = render_config(shown_settings(cfg));
  auto dumped = dump(cfg);
  for (const auto& [key, value] : test_secrets) {
    CHECK(body.find(value) == std::string::npos);
    CHECK(dumped.find(value) == std::string::npos);
  }
  CHECK(body.find("pg-test-password-4242") == std::string::npos);
  auto dumped_by_key = dumped_values(dumped);
  auto settings = boost::json::parse(body).at("settings").as_array();
  REQUIRE(settings.size() == config_keys().size());
  REQUIRE(settings.size() == dumped_by_key.size());
  for (size_t i = 0; i < settings.size(); ++i) {
    const auto& x = settings[i].as_object();
    auto key = std::string{x.at("key").as_string()};
    auto value = std::string{x.at("value").as_string()};
    INFO(key);
    CHECK(key == config_keys()[i].env_name);
    CHECK(x.at("secret").as_bool() == config_keys()[i].is_secret);
    CHECK(value == dumped_by_key.at(std::string{x.at("file_key").as_string()}));
  }
}

TEST_CASE("set secrets show masked, unset ones empty") {
  auto cfg = config_with_secrets();
  std::map<std::string, std::string> shown;
  for (const auto& x : shown_settings(cfg))
    shown[x.env_name] = x.value;
  CHECK(shown.at("OPENAI_API_KEY") == "***");
  CHECK(shown.at("ADMIN_TOKEN") == "***");
  CHECK(shown.at("CALLBACK_SIGNING_SECRET") == "***");
  CHECK(shown.at("ANTHROPIC_API_KEY").empty());
  CHECK(shown.at("POSTGRES_URL").find("127.0.0.1:5432/lps") != std::string::npos);
  CHECK(shown.at("HTTP_PORT") == "8090");
}
