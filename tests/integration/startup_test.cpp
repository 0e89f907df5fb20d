// Start-up through the binary: while the queue manager recovers a large store, the port
// answers at once (/healthz 503 "starting", submissions 503), and serves once it is done.

#include "fixtures/temp_dir.hpp"
#include "integration/lps_process.hpp"
#include "integration/service_clients.hpp"
#include "runtime/http_client.hpp"
#include "runtime/store.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <string>

namespace json = boost::json;

namespace {

// Enough queued rows that recovery takes about a second on this machine (1,000,000 take
// about 5 s, docs/benchmarks.md), far longer than one probe on loopback.
constexpr int queued_rows = 200'000;

lps::http_client_response call(const std::string& method, const std::string& url,
                               std::string body = {}) {
  static lps::test::client http;
  return http.call(method, url, std::move(body));
}

std::string header_of(const lps::http_client_response& res, const std::string& name) {
  for (const auto& [key, value] : res.headers)
    if (key == name)
      return value;
  return "";
}

std::string field_of(const lps::http_client_response& res, const char* name) {
  auto doc = json::parse(res.body);
  const auto* value = doc.as_object().if_contains(name);
  return value != nullptr && value->is_string() ? std::string{value->as_string()} : "";
}

constexpr const char* comparison = R"({"user_prompt":"Which essay is better?"})";

// A store holding `n` queued requests: one accepted by a real lps (held by a mock latency of
// a minute, then killed) and copies of its row under new ids.
void seed_queue(const std::string& data_dir, int n) {
  std::string first_id;
  {
    lps::test::lps_process lps{data_dir, {"--mock-latency-ms=60000"}};
    REQUIRE(lps.port() != 0);
    auto res = call("POST", lps.url("/api/v1/comparison"), comparison);
    REQUIRE(res.status == 202);
    first_id = field_of(res, "queue_id");
    lps.stop(SIGKILL);
  }
  std::string error;
  auto db = lps::store::open({.data_dir = data_dir, .fsync_every_commit = false}, error);
  REQUIRE(db);
  auto rows = db->load_rows({first_id});
  REQUIRE(rows.size() == 1);
  lps::store_write write;
  for (int i = 1; i < n; ++i) {
    auto copy = rows.front();
    copy.queue_id = first_id + "-" + std::to_string(i);
    write.inserts.push_back(std::move(copy));
  }
  bool ok = false;
  db->submit(std::move(write), [&](bool committed, const std::string&) { ok = committed; });
  db->flush();
  REQUIRE(ok);
  REQUIRE(db->count_active_requests() == static_cast<uint64_t>(n));
}

} // namespace

TEST_CASE("while recovery runs /healthz and submissions answer 503 at once, then lps serves") {
  lps::test::temp_dir dir;
  auto data_dir = (dir.path() / "var").string();
  seed_queue(data_dir, queued_rows);
  // One mock call at a time, held a minute: recovered requests stay queued during the test.
  lps::test::lps_process lps{
      data_dir, {"--mock-latency-ms=60000", "--mock-max-concurrent-calls=1"}, false};
  REQUIRE(lps.port() != 0);

  auto asked = std::chrono::steady_clock::now();
  auto probe = call("GET", lps.url("/healthz"));
  auto waited = std::chrono::steady_clock::now() - asked;
  CHECK(probe.status == 503);
  CHECK(field_of(probe, "status") == "starting");
  CHECK(header_of(probe, "retry-after") == "1");
  // Answered without waiting for recovery (which takes about a second here).
  CHECK(waited < std::chrono::milliseconds{500});
  auto head = call("HEAD", lps.url("/healthz"));
  CHECK(head.status == 503);
  auto refused = call("POST", lps.url("/api/v1/comparison"), comparison);
  CHECK(refused.status == 503);
  CHECK(header_of(refused, "retry-after") == "1");
  CHECK(json::parse(refused.body).at("error").at("code") == "SERVICE_UNAVAILABLE");

  REQUIRE(lps.wait_until_serving());
  auto healthy = call("GET", lps.url("/healthz"));
  CHECK(healthy.status == 200);
  CHECK(field_of(healthy, "status") == "healthy");
  CHECK(call("POST", lps.url("/api/v1/comparison"), comparison).status == 202);
}
