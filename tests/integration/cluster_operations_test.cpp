// The cluster's operations (issue #11) with real processes: two lps nodes on one database of
// the test run's PostgreSQL server (the ctest fixture "postgres"), all on 127.0.0.1:
// - cancels and status through the node that does not lead (the in-process mock provider
//   takes 8 s a call, one call at a time and one request a call, so requests wait at the
//   leader long enough to be cancelled or seen processing, even on a loaded CI machine);
// - the leader stopped by SIGTERM under load: it is `leaving` meanwhile, the other node leads
//   within 3 s, and every request ends exactly once;
// - a provider batch job (batch_api, OpenAI's Batch API on the mock provider server) in
//   flight while the leader is SIGKILLed: the next leader finishes it, submitted once.

#include "fixtures/process_helpers.hpp"
#include "fixtures/cluster_database.hpp"
#include "fixtures/temp_dir.hpp"
#include "integration/exactly_once.hpp"
#include "integration/lps_process.hpp"
#include "integration/service_clients.hpp"
#include "runtime/json_codec.hpp"
#include "tools/mock_provider/mock_provider_server.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace lps;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

using test::count_of;
using test::eventually;
using test::scoped_env;

std::string bulk_body(int first, int n, const std::string& callback_url,
                      const std::string& provider = "") {
  std::string body = "{\"requests\":[";
  for (int i = first; i < first + n; ++i)
    body += std::string{i > first ? "," : ""}
            + "{\"user_prompt\":" + json_quote("Which essay is better? " + std::to_string(i))
            + ",\"callback_url\":" + json_quote(callback_url)
            + (provider.empty() ? std::string{}
                                : ",\"llm_config_overrides\":{\"provider_override\":"
                                      + json_quote(provider) + "}")
            + ",\"metadata\":{\"essay_a_id\":\"a\",\"essay_b_id\":\"b\"}}";
  return body + "]}";
}

struct two_nodes {
  test::cluster_database database;
  scoped_env backend{"LLM_PROVIDER_SERVICE_STORE_BACKEND", "postgres"};
  scoped_env url;
  std::vector<std::unique_ptr<test::temp_dir>> dirs;
  std::vector<std::unique_ptr<test::lps_process>> nodes;
  test::json_client http;
  size_t leader = 0;
  size_t follower = 1;

  /// `flags` go to both nodes after the cluster's own.
  two_nodes(const std::string& name, const std::vector<std::string>& flags)
      : database(name), url("LLM_PROVIDER_SERVICE_POSTGRES_URL", database.url) {
    for (int i = 0; i < 2; ++i) {
      dirs.push_back(std::make_unique<test::temp_dir>());
      std::vector<std::string> args{
          "--cluster-enabled=true", "--cluster-node-name=node-" + std::to_string(i + 1),
          "--cluster-port=" + std::to_string(4110 + i + 1), "--cluster-lease-seconds=5"};
      args.insert(args.end(), flags.begin(), flags.end());
      nodes.push_back(std::make_unique<test::lps_process>(dirs.back()->str(), args));
      REQUIRE(nodes.back()->port() != 0);
    }
    std::string name_of_leader;
    REQUIRE(eventually(
        [&] {
          auto view = http.call("GET", nodes[0]->url("/api/v1/cluster"));
          if (view.status != 200 || !view.body.at("leader").is_string())
            return false;
          name_of_leader = view.body.at("leader").as_string();
          return true;
        },
        15s));
    leader = name_of_leader == "node-1" ? 0 : 1;
    follower = 1 - leader;
  }

  test::lps_process& at_follower() {
    return *nodes.at(follower);
  }

  /// The leader as node `asked` sees it ("" while nobody leads).
  std::string leader_seen_by(size_t asked) {
    auto view = http.call("GET", nodes.at(asked)->url("/api/v1/cluster"));
    if (view.status != 200 || !view.body.contains("leader") || !view.body.at("leader").is_string())
      return "";
    return std::string{view.body.at("leader").as_string()};
  }

  /// Posts `body` to POST /api/v1/comparisons on node `i`; the accepted queue ids.
  std::vector<std::string> submit_bulk(size_t i, const std::string& body) {
    auto answer = http.call("POST", nodes.at(i)->url("/api/v1/comparisons"), body);
    INFO(json::serialize(answer.body));
    REQUIRE(answer.status == 202);
    std::vector<std::string> ids;
    for (const auto& item : answer.body.at("results").as_array())
      ids.emplace_back(item.as_object().at("queue_id").as_string());
    return ids;
  }

  /// Submits one request on the node that does not lead; its queue id.
  std::string submit(const std::string& run) {
    auto body = "{\"user_prompt\":\"A or B?\",\"metadata\":{\"essay_a_id\":\"a\","
                "\"essay_b_id\":\"b\""
                + (run.empty() ? std::string{} : ",\"bos_batch_id\":" + json_quote(run)) + "}}";
    auto answer = http.call("POST", at_follower().url("/api/v1/comparison"), body);
    INFO(json::serialize(answer.body));
    REQUIRE(answer.status == 202);
    return std::string{answer.body.at("queue_id").as_string()};
  }

  test::json_answer cancel(const std::string& path) {
    return http.call("POST", at_follower().url(path));
  }

  std::string status_of(const std::string& id) {
    auto answer = http.call("GET", at_follower().url("/api/v1/status/" + id));
    if (answer.status != 200 || !answer.body.contains("status"))
      return "";
    return std::string{answer.body.at("status").as_string()};
  }
};

} // namespace

TEST_CASE("a node that does not lead cancels requests and runs as a single node does, and "
          "shows the leader's processing",
          "[cluster]") {
  two_nodes c{"operations-cancel",
              {"--mock-latency-ms=8000", "--mock-max-concurrent-calls=1",
               "--serial-bundle-max-requests-per-call=1"}};
  auto first = c.submit("");
  // One call at a time: the first is processing for 8 s, the others wait. The checks below
  // need it still processing: 1.5 s were not enough under load (it completed first, and the
  // one queued behind it started).
  REQUIRE(eventually([&] { return c.status_of(first) == "processing"; }, 10s));
  auto queued = c.submit("");
  auto run_a = c.submit("run-9");
  auto run_b = c.submit("run-9");
  CHECK(c.status_of(queued) == "queued");

  // Accepted and cancelled at once: the leader may not have polled it yet.
  auto cancelled = c.cancel("/api/v1/requests/" + queued + "/cancel");
  INFO(json::serialize(cancelled.body));
  CHECK(cancelled.status == 200);
  CHECK(cancelled.body.at("status") == "cancelled");

  auto processing = c.cancel("/api/v1/requests/" + first + "/cancel");
  CHECK(processing.status == 409);
  CHECK(json::serialize(processing.body).find("already processing") != std::string::npos);

  auto again = c.cancel("/api/v1/requests/" + queued + "/cancel");
  CHECK(again.status == 409);
  CHECK(json::serialize(again.body).find("already final") != std::string::npos);

  auto unknown = c.cancel("/api/v1/requests/no-such-request/cancel");
  CHECK(unknown.status == 404);

  auto run = c.cancel("/api/v1/runs/run-9/cancel");
  INFO(json::serialize(run.body));
  CHECK(run.status == 200);
  CHECK(run.body.at("cancelled") == 2);
  CHECK(c.cancel("/api/v1/runs/no-such-run/cancel").status == 404);

  // Exactly one final each: the processing one completes, the three others are cancelled.
  auto db = c.database.connect();
  REQUIRE(eventually([&] { return count_of(*db, "SELECT count(*) FROM results") == 4; }, 30s));
  std::this_thread::sleep_for(2s); // a second final would have landed by now
  CHECK(count_of(*db, "SELECT count(*) FROM results") == 4);
  CHECK(count_of(*db, "SELECT count(*) FROM requests") == 0);
  CHECK(count_of(*db, "SELECT count(*) FROM results WHERE status = 'completed' AND queue_id = '"
                          + first + "'")
        == 1);
  CHECK(count_of(*db, "SELECT count(*) FROM results WHERE event_json LIKE '%CANCELLED%'") == 3);
  CHECK(c.status_of(first) == "completed");
}

TEST_CASE("the leader stopped by SIGTERM under load is leaving, hands the lease over at once, "
          "and every request ends exactly once",
          "[cluster]") {
  // 300 ms a call, 8 calls at a time, bundles of 4: about 100 requests a second, so the
  // SIGTERM lands with bundles in flight.
  two_nodes c{"operations-sigterm",
              {"--mock-latency-ms=300", "--mock-max-concurrent-calls=8",
               "--serial-bundle-max-requests-per-call=4", "--shutdown-grace-seconds=10"}};
  test::receiver rx;
  std::vector<std::string> ids;
  for (int start = 0; start < 600; start += 50) {
    auto more = c.submit_bulk(start / 50 % 2, bulk_body(start, 50, rx.url()));
    ids.insert(ids.end(), more.begin(), more.end());
  }
  REQUIRE(rx.wait_for(100, 30s));
  auto db = c.database.connect();
  auto leader_name = "node-" + std::to_string(c.leader + 1);
  std::atomic<bool> watching{true};
  std::atomic<bool> seen_leaving{false};
  std::thread watcher{[&] {
    auto watch = c.database.connect();
    while (watching)
      if (count_of(*watch, "SELECT count(*) FROM cluster_nodes WHERE leaving AND name = '"
                               + leader_name + "'")
          > 0)
        seen_leaving = true;
      else
        std::this_thread::sleep_for(2ms);
  }};
  auto stopped_at = std::chrono::steady_clock::now();
  c.nodes.at(c.leader)->signal(SIGTERM);
  auto other = "node-" + std::to_string(c.follower + 1);
  bool took_over = eventually([&] { return c.leader_seen_by(c.follower) == other; }, 10s);
  auto takeover = std::chrono::steady_clock::now() - stopped_at;
  watching = false;
  watcher.join();
  REQUIRE(took_over);
  CHECK(takeover < 3s);
  CHECK(seen_leaving);
  CHECK(c.nodes.at(c.leader)->stop() == 0);
  CHECK(count_of(*db, "SELECT count(*) FROM cluster_nodes WHERE name = '" + leader_name + "'")
        == 0);
  test::require_exactly_once(*db, rx, ids);
}

TEST_CASE("a provider batch job in flight while the leader is killed is finished by the next "
          "leader and submitted once",
          "[cluster]") {
  mock_provider_options options;
  options.batch.processing = std::chrono::milliseconds{4000};
  mock_provider_server mock;
  std::string error;
  REQUIRE(mock.start(options, error));
  scoped_env key{"OPENAI_API_KEY", "test-key"};
  auto base = "http://127.0.0.1:" + std::to_string(mock.port());
  two_nodes c{"operations-batch",
              {"--queue-processing-mode=batch_api", "--openai-batch-api-mode=opportunistic",
               "--openai-base-url=" + base + "/v1", "--batch-api-min-items=10",
               "--batch-api-max-wait-seconds=0.2", "--batch-api-poll-interval-seconds=0.05",
               "--retry-base-delay-ms=10"}};
  test::receiver rx;
  auto ids = c.submit_bulk(c.follower, bulk_body(0, 20, rx.url(), "openai"));
  auto created = [&] {
    auto stats = mock.stats();
    auto i = stats.batch.batches_created.find("openai");
    return i == stats.batch.batches_created.end() ? uint64_t{0} : i->second;
  };
  REQUIRE(eventually([&] { return created() >= 1; }, 20s));
  auto db = c.database.connect();
  // The job is stored with the provider's batch id before the leader dies.
  REQUIRE(eventually(
      [&] {
        return count_of(*db, "SELECT count(*) FROM batch_jobs WHERE provider_job_id <> '' AND "
                             "state NOT IN ('collected', 'failed')")
               == 1;
      },
      10s));
  c.nodes.at(c.leader)->stop(SIGKILL);
  auto other = "node-" + std::to_string(c.follower + 1);
  REQUIRE(eventually([&] { return c.leader_seen_by(c.follower) == other; }, 15s));
  test::require_exactly_once(*db, rx, ids);
  CHECK(created() == 1);
  CHECK(count_of(*db, "SELECT count(*) FROM batch_jobs") == 1);
  CHECK(count_of(*db, "SELECT count(*) FROM batch_jobs WHERE state = 'collected'") == 1);
}
