// GET /api/v1/config through the binary: an operator route (401 without ADMIN_TOKEN when one
// is set), every key with its effective value, and secrets masked as --dump-config masks them.
// Everything binds 127.0.0.1.

#include "fixtures/temp_dir.hpp"
#include "integration/lps_process.hpp"
#include "integration/service_clients.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <map>

using namespace lps;

TEST_CASE("GET /api/v1/config needs the admin token and shows the configuration, secrets "
          "masked") {
  test::temp_dir dir;
  // Short enough to live in std::string's inline buffer: a token read through a view of a
  // destroyed header string was refused (401) at this length only.
  const std::string token = "c0nf1g";
  const std::string openai_key = "sk-config-route-test-9d2e";
  const std::string signing = "signing-secret-config-7b1";
  auto data_dir = (dir.path() / "data").string();
  test::lps_process lps{data_dir,
                        {"--admin-token=" + token, "--openai-api-key=" + openai_key,
                         "--callback-signing-secret=" + signing, "--queue-max-retries=7"}};
  REQUIRE(lps.port() != 0);
  test::client c;
  auto get = [&](const std::string& bearer) {
    test::header_list headers;
    if (!bearer.empty())
      headers.emplace_back("Authorization", "Bearer " + bearer);
    return c.call_with("GET", lps.url("/api/v1/config"), {}, headers);
  };
  CHECK(get("").status == 401);
  CHECK(get(token + "x").status == 401);
  auto answer = get(token);
  REQUIRE(answer.status == 200);
  for (const auto& secret : {token, openai_key, signing})
    CHECK(answer.body.find(secret) == std::string::npos);
  std::map<std::string, std::string> values;
  auto body = boost::json::parse(answer.body);
  for (const auto& x : body.at("settings").as_array())
    values[std::string{x.at("key").as_string()}] = std::string{x.at("value").as_string()};
  CHECK(values.at("QUEUE_MAX_RETRIES") == "7");
  CHECK(values.at("DATA_DIR") == data_dir);
  CHECK(values.at("HTTP_PORT") == "0"); // as configured; the bound port is announced
  CHECK(values.at("OPENAI_API_KEY") == "***");
  CHECK(values.at("CALLBACK_SIGNING_SECRET") == "***");
  CHECK(values.at("ADMIN_TOKEN") == "***");
  CHECK(values.at("ANTHROPIC_API_KEY").empty());
}
