// The running cluster (issue #11) with real processes: three lps nodes on one database of the
// test run's PostgreSQL server (the ctest fixture "postgres"), the in-process mock provider,
// and a callback receiver, all on 127.0.0.1. Requests go to all three HTTP ports; the leader
// is killed (SIGKILL) or paused (SIGSTOP for 15 s) mid-flight. Every accepted request must end
// with exactly one final result and one callback event id, and another node must lead within
// 10 s; a paused leader, once resumed, must step down without writing anything final.

#include "fixtures/process_helpers.hpp"
#include "fixtures/cluster_database.hpp"
#include "fixtures/temp_dir.hpp"
#include "integration/exactly_once.hpp"
#include "integration/lps_process.hpp"
#include "integration/service_clients.hpp"
#include "runtime/json_codec.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>

#include <chrono>
#include <map>
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

constexpr int node_count = 3;

std::string request_body(int i, const std::string& callback_url) {
  return "{\"user_prompt\":" + json_quote("Which essay is better? " + std::to_string(i))
         + ",\"callback_url\":" + json_quote(callback_url)
         + ",\"metadata\":{\"essay_a_id\":\"a\",\"essay_b_id\":\"b\"}}";
}

/// Three nodes on one database; node i is named node-<i+1>.
struct cluster {
  test::cluster_database database;
  scoped_env backend{"LLM_PROVIDER_SERVICE_STORE_BACKEND", "postgres"};
  scoped_env url;
  std::vector<std::unique_ptr<test::temp_dir>> dirs;
  std::vector<std::unique_ptr<test::lps_process>> nodes;
  test::json_client http;

  explicit cluster(const std::string& name)
      : database(name), url("LLM_PROVIDER_SERVICE_POSTGRES_URL", database.url) {
    for (int i = 0; i < node_count; ++i) {
      dirs.push_back(std::make_unique<test::temp_dir>());
      // Bundles of 4 at the mock, 8 calls at a time, 40 ms each: 3,000 requests take
      // several seconds, so a failure lands mid-flight.
      nodes.push_back(std::make_unique<test::lps_process>(
          dirs.back()->str(),
          std::vector<std::string>{
              "--cluster-enabled=true", "--cluster-node-name=node-" + std::to_string(i + 1),
              "--cluster-port=0", "--cluster-lease-seconds=5", "--mock-latency-ms=40",
              "--mock-max-concurrent-calls=8", "--serial-bundle-max-requests-per-call=4"}));
      REQUIRE(nodes.back()->port() != 0);
    }
  }

  /// GET /api/v1/cluster on node i.
  test::json_answer view(size_t i) {
    return http.call("GET", nodes.at(i)->url("/api/v1/cluster"));
  }

  /// The index of the node that node `asked` sees leading, or -1.
  int leader_seen_by(size_t asked) {
    auto answer = view(asked);
    if (answer.status != 200 || !answer.body.contains("leader")
        || !answer.body.at("leader").is_string())
      return -1;
    std::string name{answer.body.at("leader").as_string()};
    for (int i = 0; i < node_count; ++i)
      if (name == "node-" + std::to_string(i + 1))
        return i;
    return -1;
  }

  int64_t epoch_seen_by(size_t asked) {
    auto answer = view(asked);
    const auto* epoch = answer.body.if_contains("epoch");
    return epoch != nullptr && epoch->is_int64() ? epoch->as_int64() : 0;
  }

  /// Submits `n` requests as bulk posts of 50, spread round-robin over `targets`; returns
  /// the accepted queue ids.
  std::vector<std::string> submit(int first, int n, const std::vector<size_t>& targets,
                                  const std::string& callback_url) {
    std::vector<std::string> ids;
    size_t turn = 0;
    for (int start = first; start < first + n; start += 50) {
      std::string body = "{\"requests\":[";
      for (int i = start; i < std::min(first + n, start + 50); ++i)
        body += (i > start ? "," : "") + request_body(i, callback_url);
      body += "]}";
      auto& node = *nodes.at(targets.at(turn++ % targets.size()));
      auto answer = http.call("POST", node.url("/api/v1/comparisons"), body);
      // A node whose database session was ended (a paused node: idle in transaction) answers
      // 503 STORE_UNAVAILABLE with Retry-After while it reconnects; a client tries again.
      for (int retry = 0; answer.status == 503 && retry < 20; ++retry) {
        std::this_thread::sleep_for(std::chrono::milliseconds{500});
        answer = http.call("POST", node.url("/api/v1/comparisons"), body);
      }
      INFO(json::serialize(answer.body));
      REQUIRE(answer.status == 202);
      for (const auto& item : answer.body.at("results").as_array())
        ids.emplace_back(item.as_object().at("queue_id").as_string());
    }
    return ids;
  }
};

} // namespace

TEST_CASE("three nodes: the leader is killed mid-flight, another leads within 10 s, and every "
          "request ends exactly once",
          "[cluster]") {
  cluster c{"failover-kill"};
  test::receiver rx;
  REQUIRE(eventually([&] { return c.leader_seen_by(0) >= 0; }, 15s));
  auto leader = static_cast<size_t>(c.leader_seen_by(0));
  auto first_epoch = c.epoch_seen_by(0);
  // Every node sees all three up once each has ticked after the last one registered.
  for (size_t i = 0; i < node_count; ++i)
    CHECK(eventually(
        [&] {
          auto view = c.view(i);
          if (view.status != 200 || view.body.at("nodes").as_array().size() != node_count)
            return false;
          for (const auto& n : view.body.at("nodes").as_array())
            if (n.as_object().at("state") != "up")
              return false;
          return true;
        },
        5s));

  auto ids = c.submit(0, 3000, {0, 1, 2}, rx.url());
  REQUIRE(rx.wait_for(300, 60s));
  {
    std::lock_guard lock{rx.mtx};
    REQUIRE(rx.total < 3000); // mid-flight
  }
  c.nodes.at(leader)->stop(SIGKILL);
  auto killed_at = std::chrono::steady_clock::now();

  auto survivor = (leader + 1) % node_count;
  REQUIRE(eventually(
      [&] {
        auto now = c.leader_seen_by(survivor);
        return now >= 0 && static_cast<size_t>(now) != leader;
      },
      10s));
  auto failover = std::chrono::steady_clock::now() - killed_at;
  WARN(
      "new leader after " << std::chrono::duration_cast<std::chrono::milliseconds>(failover).count()
                          << " ms");
  CHECK(c.epoch_seen_by(survivor) == first_epoch + 1);
  // The dead node is reported down once its heartbeat is older than the lease.
  CHECK(eventually(
      [&] {
        auto view = c.view(survivor);
        for (const auto& n : view.body.at("nodes").as_array())
          if (n.as_object().at("name").as_string() == "node-" + std::to_string(leader + 1))
            return n.as_object().at("state") == "down";
        return false;
      },
      10s));

  test::require_exactly_once(*c.database.connect(), rx, ids);
}

TEST_CASE("three nodes: the leader paused for 15 s under load loses the lease within 10 s and "
          "steps down without writing anything final",
          "[cluster]") {
  cluster c{"failover-stop"};
  test::receiver rx;
  REQUIRE(eventually([&] { return c.leader_seen_by(0) >= 0; }, 15s));
  auto old = static_cast<size_t>(c.leader_seen_by(0));
  auto old_epoch = c.epoch_seen_by(0);
  std::vector<size_t> others;
  for (size_t i = 0; i < node_count; ++i)
    if (i != old)
      others.push_back(i);

  auto ids = c.submit(0, 1500, {0, 1, 2}, rx.url());
  REQUIRE(rx.wait_for(200, 60s));
  c.nodes.at(old)->signal(SIGSTOP);
  auto stopped_at = std::chrono::steady_clock::now();
  REQUIRE(eventually(
      [&] {
        auto now = c.leader_seen_by(others[0]);
        return now >= 0 && static_cast<size_t>(now) != old;
      },
      10s));
  WARN("new leader after " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::steady_clock::now() - stopped_at)
                                  .count()
                           << " ms");
  // Intake stays up on the other nodes while the old leader is paused.
  auto more = c.submit(1500, 600, others, rx.url());
  ids.insert(ids.end(), more.begin(), more.end());
  std::this_thread::sleep_for(15s - (std::chrono::steady_clock::now() - stopped_at));
  c.nodes.at(old)->signal(SIGCONT);

  // The old leader sees another leader at its next tick, and keeps taking requests.
  REQUIRE(eventually(
      [&] {
        auto now = c.leader_seen_by(old);
        return now >= 0 && static_cast<size_t>(now) != old;
      },
      10s));
  auto late = c.submit(2100, 100, {old}, rx.url());
  ids.insert(ids.end(), late.begin(), late.end());

  test::require_exactly_once(*c.database.connect(), rx, ids);
  // Nothing final was written under the old epoch after the next leader took the lease.
  auto db = c.database.connect();
  CHECK(
      count_of(*db, "SELECT count(*) FROM cluster_lease WHERE epoch > " + std::to_string(old_epoch))
      == 1);
  auto written_late = count_of(
      *db,
      "SELECT count(*) FROM results WHERE epoch = " + std::to_string(old_epoch)
          + " AND completed_at > (SELECT acquired_at FROM cluster_lease WHERE name = 'leader')");
  CHECK(written_late == 0);
  CHECK(count_of(*db, "SELECT count(*) FROM results WHERE epoch IS NULL") == 0);
  CHECK(count_of(*db, "SELECT count(*) FROM results WHERE epoch > " + std::to_string(old_epoch))
        > 0);
}

TEST_CASE("three nodes: a follower and then the leader are killed mid-flight, another node leads "
          "within 10 s, and every request ends exactly once",
          "[cluster]") {
  cluster c{"failover-both"};
  test::receiver rx;
  REQUIRE(eventually([&] { return c.leader_seen_by(0) >= 0; }, 15s));
  auto leader = static_cast<size_t>(c.leader_seen_by(0));
  auto first_epoch = c.epoch_seen_by(0);
  auto follower = (leader + 1) % node_count;
  auto survivor = (leader + 2) % node_count;
  // The leader's bundler serves every node once its connector reached each (a tick).
  REQUIRE(eventually(
      [&] {
        auto view = c.view(leader);
        return view.status == 200 && view.body.at("nodes").as_array().size() == node_count;
      },
      5s));

  auto ids = c.submit(0, 3000, {0, 1, 2}, rx.url());
  REQUIRE(rx.wait_for(300, 60s));
  c.nodes.at(follower)->stop(SIGKILL); // its bundles in flight go back to the queue
  size_t seen_at_first_kill = 0;
  {
    std::lock_guard lock{rx.mtx};
    seen_at_first_kill = rx.total;
  }
  REQUIRE(rx.wait_for(seen_at_first_kill + 300, 60s));
  {
    std::lock_guard lock{rx.mtx};
    REQUIRE(rx.total < 3000); // the leader dies mid-flight too
  }
  c.nodes.at(leader)->stop(SIGKILL);
  auto killed_at = std::chrono::steady_clock::now();

  REQUIRE(eventually([&] { return c.leader_seen_by(survivor) == int(survivor); }, 10s));
  auto failover = std::chrono::steady_clock::now() - killed_at;
  WARN(
      "new leader after " << std::chrono::duration_cast<std::chrono::milliseconds>(failover).count()
                          << " ms");
  CHECK(failover <= 10s);
  CHECK(c.epoch_seen_by(survivor) == first_epoch + 1);

  test::require_exactly_once(*c.database.connect(), rx, ids);
}
