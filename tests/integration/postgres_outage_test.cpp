// lps on a PostgreSQL server of its own (tools/pg.sh, LPS_PG_FSYNC=off) that the test stops
// under a steady load of submissions with callbacks and starts again on the same port: new
// submissions get 503 STORE_UNAVAILABLE with Retry-After and /healthz 503 while it is down,
// lps serves again without a restart, and every request that got a 202 ends with exactly one
// result event. Not the shared server of the ctest fixture "postgres": this one is stopped.

#include "fixtures/process_helpers.hpp"
#include "fixtures/shell_output.hpp"
#include "integration/lps_process.hpp"
#include "integration/service_clients.hpp"
#include "fixtures/temp_dir.hpp"
#include "runtime/json_codec.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace lps;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

using test::scoped_env;

using lps::test::output_of;

/// A throw-away server in /tmp (as root it runs as the postgres user, which must reach it),
/// destroyed at the end.
struct own_server {
  std::string dir = "/tmp/lps-outage-pg-" + std::to_string(::getpid());

  std::string pg(const std::string& command) {
    return output_of("LPS_PG_FSYNC=off bash " LPS_SOURCE_DIR "/tools/pg.sh " + command + " " + dir
                     + " 2>&1");
  }
  ~own_server() {
    pg("destroy");
  }
};

std::string comparison_body(int n, const std::string& callback_url) {
  return "{\"user_prompt\":" + json_quote("outage " + std::to_string(n)) + ",\"callback_url\":"
         + json_quote(callback_url) + ",\"metadata\":{\"essay_a_id\":\"a\",\"essay_b_id\":\"b\"}}";
}

std::string error_code_of(const std::string& body) {
  auto value = json::parse(body);
  auto* error = value.is_object() ? value.as_object().if_contains("error") : nullptr;
  return error != nullptr ? std::string{error->as_object().at("code").as_string()} : "";
}

std::string header_of(const http_client_response& res, const std::string& name) {
  for (const auto& [key, value] : res.headers)
    if (key == name)
      return value;
  return "";
}

/// One client submitting requests one after the other until stopped, keeping what each
/// answer said.
struct steady_load {
  test::client http;
  std::string url;
  std::string callback_url;
  std::atomic<bool> stopping{false};
  std::mutex mutex;
  std::vector<std::string> accepted;      // queue ids answered 202
  std::vector<std::string> refused_retry; // Retry-After of 503 STORE_UNAVAILABLE answers
  std::set<std::string> other_answers;    // anything else: status and error code
  std::atomic<size_t> accepted_count{0};
  std::atomic<size_t> store_unavailable_count{0};
  std::thread thread;

  steady_load(std::string u, std::string cb) : url(std::move(u)), callback_url(std::move(cb)) {
    thread = std::thread([this] { run(); });
  }
  ~steady_load() {
    finish();
  }
  void finish() {
    stopping = true;
    if (thread.joinable())
      thread.join();
  }

  void run() {
    for (int n = 0; !stopping; ++n) {
      auto res = http.call("POST", url, comparison_body(n, callback_url));
      std::lock_guard lock(mutex);
      if (res.status == 202) {
        auto id = json::parse(res.body).as_object().at("queue_id").as_string();
        accepted.emplace_back(id);
        ++accepted_count;
      } else if (res.status == 503 && error_code_of(res.body) == "STORE_UNAVAILABLE") {
        refused_retry.push_back(header_of(res, "retry-after"));
        ++store_unavailable_count;
        std::this_thread::sleep_for(20ms); // a client told to retry later backs off a little
      } else {
        other_answers.insert(std::to_string(res.status) + " " + error_code_of(res.body));
      }
    }
  }
};

std::string password_of(const std::string& url) {
  auto colon = url.find(':', url.find("://") + 3);
  return url.substr(colon + 1, url.find('@') - colon - 1);
}

size_t events_received(test::receiver& sink) {
  std::lock_guard lock(sink.mtx);
  return sink.total;
}

/// Polls `done` every 50 ms for up to `limit`.
template <class F>
bool eventually(F done, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

/// The value of one unlabelled series in lps' /metrics (-1 when it is absent).
double metric_value(test::client& c, const test::lps_process& lps, const std::string& series) {
  auto text = c.call("GET", lps.url("/metrics")).body;
  auto at = text.find("\n" + series + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 2));
}

} // namespace

TEST_CASE("lps rides out a PostgreSQL outage under load: 503 STORE_UNAVAILABLE while it is down, "
          "served again after it returns, and one result event per accepted request") {
  own_server server;
  auto url = server.pg("start");
  REQUIRE(url.rfind("postgresql://", 0) == 0);
  test::temp_dir data_dir;
  scoped_env backend{"LLM_PROVIDER_SERVICE_STORE_BACKEND", "postgres"};
  scoped_env postgres_url{"LLM_PROVIDER_SERVICE_POSTGRES_URL", url};
  test::lps_process lps{data_dir.str()};
  REQUIRE(lps.port() != 0);
  test::receiver sink;
  test::client c;
  steady_load load{lps.url("/api/v1/comparison"), sink.url()};
  REQUIRE(eventually([&] { return load.accepted_count >= 50; }, 30s));

  server.pg("stop");
  REQUIRE(eventually([&] { return load.store_unavailable_count >= 5; }, 30s));
  auto health = c.call("GET", lps.url("/healthz"));
  CHECK(health.status == 503);
  CHECK(health.body.find("store unavailable: ") != std::string::npos);
  CHECK(health.body.find(password_of(url)) == std::string::npos);
  auto bulk = c.call("POST", lps.url("/api/v1/comparisons"),
                     "{\"requests\":[" + comparison_body(-1, sink.url()) + ","
                         + comparison_body(-2, sink.url()) + "]}");
  CHECK(bulk.status == 503);
  CHECK(error_code_of(bulk.body) == "STORE_UNAVAILABLE");
  CHECK(header_of(bulk, "retry-after") == "5");
  CHECK(eventually([&] { return metric_value(c, lps, "llm_provider_store_up") == 0; }, 5s));
  auto accepted_while_down = load.accepted_count.load();

  // Same directory, same port (tools/pg.sh keeps it when it is free): the same URL.
  CHECK(server.pg("start") == url);
  CHECK(eventually([&] { return load.accepted_count >= accepted_while_down + 50; }, 30s));
  CHECK(c.call("GET", lps.url("/healthz")).status == 200);
  CHECK(eventually([&] { return metric_value(c, lps, "llm_provider_store_up") == 1; }, 5s));
  CHECK(metric_value(c, lps, "llm_provider_store_reconnects_total") >= 1);
  load.finish();

  INFO("other answers: " << [&] {
    std::string xs;
    for (const auto& x : load.other_answers)
      xs += x + "; ";
    return xs;
  }());
  CHECK(load.other_answers.empty());
  for (const auto& retry_after : load.refused_retry)
    CHECK(retry_after == "5");
  CHECK(sink.wait_for(load.accepted.size(), 60s));
  std::this_thread::sleep_for(500ms); // a second event for some request would arrive by now
  for (const auto& id : load.accepted) {
    INFO(id);
    CHECK(sink.count(id) == 1);
  }
  CHECK(events_received(sink) == load.accepted.size());
}

TEST_CASE("an idle lps notices a PostgreSQL outage within seconds and its end by itself: "
          "/healthz, llm_provider_store_up and 503 STORE_UNAVAILABLE with no traffic") {
  own_server server;
  auto url = server.pg("start");
  REQUIRE(url.rfind("postgresql://", 0) == 0);
  test::temp_dir data_dir;
  scoped_env backend{"LLM_PROVIDER_SERVICE_STORE_BACKEND", "postgres"};
  scoped_env postgres_url{"LLM_PROVIDER_SERVICE_POSTGRES_URL", url};
  test::lps_process lps{data_dir.str()};
  REQUIRE(lps.port() != 0);
  test::client c;
  test::receiver sink;
  REQUIRE(c.call("GET", lps.url("/healthz")).status == 200);

  // Nothing is submitted from here on until the outage is seen: only the probe can see it.
  server.pg("stop");
  auto stopped = std::chrono::steady_clock::now();
  CHECK(eventually([&] { return c.call("GET", lps.url("/healthz")).status == 503; }, 5s));
  auto noticed = std::chrono::steady_clock::now() - stopped;
  INFO("noticed after " << std::chrono::duration_cast<std::chrono::milliseconds>(noticed).count()
                        << " ms");
  CHECK(noticed < 5s);
  auto health = c.call("GET", lps.url("/healthz"));
  CHECK(health.body.find("store unavailable: ") != std::string::npos);
  CHECK(health.body.find(password_of(url)) == std::string::npos);
  CHECK(eventually([&] { return metric_value(c, lps, "llm_provider_store_up") == 0; }, 5s));
  auto refused = c.call("POST", lps.url("/api/v1/comparison"), comparison_body(1, sink.url()));
  CHECK(refused.status == 503);
  CHECK(error_code_of(refused.body) == "STORE_UNAVAILABLE");
  CHECK(header_of(refused, "retry-after") == "5");

  // Back with no submission to trigger a reconnect: the writer's backoff finds it.
  CHECK(server.pg("start") == url);
  CHECK(eventually([&] { return c.call("GET", lps.url("/healthz")).status == 200; }, 10s));
  CHECK(eventually([&] { return metric_value(c, lps, "llm_provider_store_up") == 1; }, 5s));
  CHECK(metric_value(c, lps, "llm_provider_store_reconnects_total") >= 1);
  CHECK(c.call("POST", lps.url("/api/v1/comparison"), comparison_body(2, sink.url())).status
        == 202);
}
