// GET /api/v1/status through the binary: a request held for a nightly batch window says when
// the window opens.

#include "fixtures/temp_dir.hpp"
#include "integration/lps_process.hpp"
#include "integration/service_clients.hpp"
#include "runtime/http_client.hpp"
#include "runtime/ids.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <future>
#include <string>

namespace json = boost::json;

namespace {

json::object call(const std::string& method, const std::string& url, std::string body = {}) {
  static lps::test::client http;
  return http.call_json(method, url, std::move(body));
}

// "HH:MM" of a minute after local midnight.
std::string clock_text(int minute) {
  char text[8];
  std::snprintf(text, sizeof text, "%02d:%02d", minute / 60, minute % 60);
  return text;
}

} // namespace

TEST_CASE("status of a request held for the nightly batch window says when the window opens") {
  // A window that opens two hours from now (local time) and lasts one hour.
  auto now = caf::make_timestamp();
  auto now_t = std::chrono::system_clock::to_time_t(now);
  std::tm local{};
  localtime_r(&now_t, &local);
  auto start = (local.tm_hour * 60 + local.tm_min + 120) % 1440;
  auto window = clock_text(start) + "-" + clock_text((start + 60) % 1440);
  auto minute_began = now - now.time_since_epoch() % std::chrono::minutes{1};
  auto opens_at = minute_began + std::chrono::hours{2};

  lps::test::temp_dir dir;
  ::setenv("OPENAI_API_KEY", "test-key", 1);
  // Nothing answers on port 9: outside the window no job is formed, so nothing is called.
  lps::test::lps_process lps{
      dir.path().string(),
      {"--queue-processing-mode=batch_api", "--openai-batch-api-mode=nightly",
       "--batch-api-nightly-window=" + window, "--openai-base-url=http://127.0.0.1:9/v1"}};
  ::unsetenv("OPENAI_API_KEY");
  REQUIRE(lps.port() != 0);
  auto held = call("POST", lps.url("/api/v1/comparison"),
                   R"({"user_prompt":"Which essay?","llm_config_overrides":)"
                   R"({"provider_override":"openai"}})");
  auto status = call("GET", lps.url("/api/v1/status/" + std::string{held["queue_id"].as_string()}));
  CHECK(status["status"] == "queued");
  CHECK(status["provider"] == "openai");
  CHECK(status["window_opens_at"] == lps::iso8601(opens_at).c_str());
  CHECK(status["window_closes_at"] == lps::iso8601(opens_at + std::chrono::hours{1}).c_str());
}
