// The inspection routes through the binary: every /api/v1/inspect/* view answers JSON with
// its documented fields (operator token required), the history grows a snapshot a second,
// and the stream delivers snapshots as server-sent events. Everything binds 127.0.0.1.

#include "fixtures/raw_socket.hpp"
#include "fixtures/temp_dir.hpp"
#include "integration/lps_process.hpp"
#include "integration/service_clients.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <set>
#include <string>
#include <thread>

using namespace lps;
namespace json = boost::json;

namespace {

const std::string token = "inspect-token-7f3a";

// GET `path` as the operator until it answers other than 503 (the first snapshot comes a
// second after start), bounded.
test::json_answer get_view(test::json_client& c, const test::lps_process& lps,
                           const std::string& path) {
  test::json_answer res;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  do {
    res = c.call("GET", lps.url(path), {}, token);
    if (res.status != 503)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  } while (std::chrono::steady_clock::now() < deadline);
  return res;
}

// Every member of `names` is in `x`.
void check_fields(const json::object& x, std::initializer_list<const char*> names) {
  for (const auto* name : names) {
    INFO(name << " in " << json::serialize(x));
    CHECK(x.contains(name));
  }
}

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (auto pos = text.find(part); pos != std::string::npos; pos = text.find(part, pos + 1))
    ++n;
  return n;
}

} // namespace

TEST_CASE("every inspection view answers JSON with its documented fields") {
  test::temp_dir dir;
  test::lps_process lps{dir.path().string(), {"--admin-token=" + token, "--mock-latency-ms=20"}};
  REQUIRE(lps.port() != 0);
  test::json_client c;
  for (int i = 0; i < 8; ++i)
    REQUIRE(c.call("POST", lps.url("/api/v1/comparison"),
                   R"({"user_prompt":"Which essay is better? )" + std::to_string(i) + "\"}")
                .status
            == 202);
  CHECK(c.call("GET", lps.url("/api/v1/inspect/actors")).status == 401);

  auto actors = get_view(c, lps, "/api/v1/inspect/actors");
  REQUIRE(actors.status == 200);
  check_fields(actors.body, {"seq", "at", "node", "actors"});
  std::set<std::string> kinds;
  for (const auto& x : actors.body.at("actors").as_array()) {
    check_fields(x.as_object(),
                 {"name", "kind", "node", "responsive", "mailbox_size", "messages_handled",
                  "handled_per_second", "processing_ms", "last_error", "figures", "facts"});
    kinds.insert(std::string{x.as_object().at("kind").as_string()});
    CHECK(x.as_object().at("responsive").as_bool());
  }
  CHECK(kinds.count("queue_manager") == 1);
  CHECK(kinds.count("bundler") == 1);

  auto queue = get_view(c, lps, "/api/v1/inspect/queue");
  REQUIRE(queue.status == 200);
  REQUIRE(queue.body.at("queue").is_array());
  for (const auto& row : queue.body.at("queue").as_array())
    check_fields(row.as_object(), {"provider", "model", "waiting", "oldest_age_seconds"});

  // The mock answers within 20 ms: the bundles come back soon.
  test::json_answer bundles;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  do {
    bundles = get_view(c, lps, "/api/v1/inspect/bundles");
    if (bundles.status == 200 && !bundles.body.at("recent_bundles").as_array().empty())
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
  } while (std::chrono::steady_clock::now() < deadline);
  REQUIRE(bundles.status == 200);
  REQUIRE(!bundles.body.at("recent_bundles").as_array().empty());
  check_fields(
      bundles.body.at("recent_bundles").as_array().front().as_object(),
      {"bundle_id", "provider", "model", "items", "succeeded", "failed", "outcome", "duration_ms"});
  REQUIRE(!bundles.body.at("items_per_call").as_array().empty());
  check_fields(bundles.body.at("items_per_call").as_array().front().as_object(),
               {"items", "calls"});

  auto providers = get_view(c, lps, "/api/v1/inspect/providers");
  REQUIRE(providers.status == 200);
  REQUIRE(!providers.body.at("providers").as_array().empty());
  check_fields(providers.body.at("providers").as_array().front().as_object(),
               {"provider", "circuit_state", "inflight_bundles", "max_inflight_bundles",
                "blocked_ms", "breaker_opened_total"});

  auto nodes = get_view(c, lps, "/api/v1/inspect/nodes");
  REQUIRE(nodes.status == 200);
  REQUIRE(nodes.body.at("nodes").as_array().size() == 1);
  check_fields(nodes.body.at("nodes").as_array().front().as_object(),
               {"name", "self", "address", "leader", "state", "last_heartbeat",
                "heartbeat_age_seconds", "version", "in_flight_calls", "actors",
                "unresponsive_actors"});
  CHECK(nodes.body.at("cluster").is_null()); // not a cluster

  auto jobs = get_view(c, lps, "/api/v1/inspect/jobs");
  REQUIRE(jobs.status == 200);
  CHECK(jobs.body.at("jobs").is_array());

  std::this_thread::sleep_for(std::chrono::milliseconds{1100}); // a second snapshot
  auto history = get_view(c, lps, "/api/v1/inspect/history?seconds=2");
  REQUIRE(history.status == 200);
  CHECK(history.body.at("seconds").as_int64() == 2);
  const auto& snapshots = history.body.at("snapshots").as_array();
  REQUIRE(snapshots.size() == 2);
  CHECK(snapshots[0].as_object().at("seq").as_int64() + 1
        == snapshots[1].as_object().at("seq").as_int64());
  check_fields(snapshots[1].as_object(), {"seq", "at", "node", "actors"});
  CHECK(get_view(c, lps, "/api/v1/inspect/history?seconds=601").status == 400);
  CHECK(get_view(c, lps, "/api/v1/inspect/nothing").status == 404);
}

TEST_CASE("the inspection stream delivers a snapshot a second as server-sent events") {
  test::temp_dir dir;
  test::lps_process lps{dir.path().string(), {"--admin-token=" + token}};
  REQUIRE(lps.port() != 0);
  test::raw_socket client{lps.port()};
  client.write("GET /api/v1/inspect/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token
               + "\r\n\r\n");
  std::string text;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  while (count_of(text, "\ndata: ") < 2 && std::chrono::steady_clock::now() < deadline)
    text += client.read_until_ends_with("\n\n\r\n", std::chrono::milliseconds{3000});
  CHECK(text.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(text.find("Content-Type: text/event-stream\r\n") != std::string::npos);
  CHECK(text.find(": lps inspection stream\nretry: 1000\n\n") != std::string::npos);
  REQUIRE(count_of(text, "\ndata: ") >= 2);
  // Each event's data is one snapshot: valid JSON with every view.
  auto start = text.find("\ndata: ") + 7;
  auto event = json::parse(text.substr(start, text.find('\n', start) - start)).as_object();
  check_fields(event, {"seq", "at", "node", "actors", "queue", "recent_bundles", "items_per_call",
                       "providers", "cluster", "nodes"});
}

TEST_CASE("metrics show the waiting requests by provider and model as the queue view does") {
  test::temp_dir dir;
  // One call at a time, one request per call, a minute each: the rest of the run waits.
  test::lps_process lps{dir.path().string(),
                        {"--admin-token=" + token, "--mock-latency-ms=60000",
                         "--mock-max-concurrent-calls=1",
                         "--serial-bundle-max-requests-per-call=1"}};
  REQUIRE(lps.port() != 0);
  test::json_client c;
  for (int i = 0; i < 5; ++i)
    REQUIRE(c.call("POST", lps.url("/api/v1/comparison"),
                   R"({"user_prompt":"Which essay is better? )" + std::to_string(i) + "\"}")
                .status
            == 202);
  const std::string series =
      "llm_provider_queue_waiting{provider=\"mock\",model=\"mock-model-v1\"} ";
  std::string metrics;
  test::json_answer queue;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds{1100}); // a snapshot (and gauges) later
    queue = get_view(c, lps, "/api/v1/inspect/queue");
    metrics = c.http.call("GET", lps.url("/metrics")).body;
  } while (metrics.find(series + "4\n") == std::string::npos
           && std::chrono::steady_clock::now() < deadline);
  INFO(metrics);
  CHECK(metrics.find(series + "4\n") != std::string::npos);
  REQUIRE(queue.status == 200);
  const auto& rows = queue.body.at("queue").as_array();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].at("provider") == "mock");
  CHECK(rows[0].at("model") == "mock-model-v1");
  CHECK(rows[0].at("waiting").as_int64() == 4);
  // The oldest has waited since its submission: above 0, and far below the test's length.
  auto age_line = std::string{
      "llm_provider_queue_oldest_age_seconds{provider=\"mock\",model=\"mock-model-v1\"} "};
  auto at = metrics.find(age_line);
  REQUIRE(at != std::string::npos);
  auto age = std::stod(metrics.substr(at + age_line.size()));
  CHECK(age > 0);
  CHECK(age < 30);
}
