// Cancels asked on any cluster node (issue #11) against the test run's PostgreSQL server (the
// ctest fixture "postgres"), a database per case: the asking node's relay records a cancel and
// waits for the answer; the leader's store poller hands on the rows it targets, then the
// cancel, and records the answer it gets back; a cancel nobody answers in time is reported
// pending and stays open for the next leader.

#include "fixtures/cluster_database.hpp"
#include "runtime/cancel_relay.hpp"
#include "runtime/store_poller.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace lps;
using namespace std::chrono_literals;

namespace {

void insert_request(pg::connection& db, const std::string& id, const std::string& run) {
  test::exec_ok(db,
                "INSERT INTO requests(queue_id, priority, provider, queued_at, size_bytes, "
                "payload, bos_batch_id) VALUES($1, 5, 'mock', now(), 10, '\\x00', "
                "nullif($2, ''))",
                {id, run});
}

/// Asks `ask` through `relay` and waits for the outcome.
cluster::relay_outcome ask_and_wait(cluster::cancel_relay& relay, cluster::cancel_ask ask) {
  std::promise<cluster::relay_outcome> outcome;
  auto answer = outcome.get_future();
  relay.ask(std::move(ask), [&](cluster::relay_outcome o) { outcome.set_value(std::move(o)); });
  REQUIRE(answer.wait_for(20s) == std::future_status::ready);
  return answer.get();
}

/// What the leader's side saw, in order: "rows:<ids>" for rows handed on, "cancel:<target>".
struct leader_log {
  std::mutex m;
  std::vector<std::string> events;
  int refusals_left = 0;

  void add(std::string e) {
    std::lock_guard lock{m};
    events.push_back(std::move(e));
  }
  std::vector<std::string> copy() {
    std::lock_guard lock{m};
    return events;
  }
};

std::unique_ptr<cluster::store_poller> start_poller(const std::string& url, leader_log& log) {
  cluster::poller_settings settings;
  settings.postgres_url = url;
  settings.interval = 20ms;
  std::string error;
  auto poller = cluster::store_poller::start(
      settings,
      [&log](std::vector<stored_request>&& rows) {
        std::string ids;
        for (const auto& r : rows)
          ids += r.queue_id + " ";
        log.add("rows:" + ids);
      },
      [&log](const cluster::cancel_ask& ask, cluster::cancel_reply reply) {
        log.add("cancel:" + ask.queue_id + ask.bos_batch_id);
        bool refuse = false;
        {
          std::lock_guard lock{log.m};
          refuse = log.refusals_left > 0 && log.refusals_left-- > 0;
        }
        if (refuse)
          return reply(std::nullopt); // as when the queue did not answer in time
        reply(cluster::cancel_counts{ask.queue_id.empty() ? 2u : 1u, 0, 0, 0});
      },
      error);
  INFO(error);
  REQUIRE(poller != nullptr);
  return poller;
}

} // namespace

TEST_CASE("a cancel recorded on one node is handed to the leader after the rows it targets, "
          "and its answer reaches the asking node") {
  test::cluster_database cluster{"cancels"};
  auto db = cluster.connect();
  insert_request(*db, "old", "");
  leader_log log;
  auto poller = start_poller(cluster.url, log);
  std::string error;
  auto relay = cluster::cancel_relay::start({cluster.url, "node-2", 5s, 20ms}, error);
  INFO(error);
  REQUIRE(relay != nullptr);

  // Accepted just before its cancel: the cancel's own read hands the row on first, whether
  // or not a regular poll did already.
  insert_request(*db, "r1", "");
  auto one = ask_and_wait(*relay, {0, "r1", ""});
  CHECK(one.what == cluster::relay_outcome::kind::answered);
  CHECK(one.counts == cluster::cancel_counts{1, 0, 0, 0});
  auto events = log.copy();
  auto cancel = std::find(events.begin(), events.end(), "cancel:r1");
  REQUIRE(cancel != events.end());
  REQUIRE(cancel != events.begin());
  CHECK(*(cancel - 1) == "rows:r1 ");

  insert_request(*db, "a", "run-7");
  insert_request(*db, "b", "run-7");
  auto run = ask_and_wait(*relay, {0, "", "run-7"});
  CHECK(run.what == cluster::relay_outcome::kind::answered);
  CHECK(run.counts.cancelled == 2);
  events = log.copy();
  cancel = std::find(events.begin(), events.end(), "cancel:run-7");
  REQUIRE(cancel != events.end());
  CHECK(*(cancel - 1) == "rows:a b ");

  CHECK(test::exec_ok(*db, "SELECT count(*) FROM cluster_cancels WHERE answered_at IS NULL")
            .rows.at(0)
            .at(0)
        == "0");
  CHECK(test::exec_ok(*db, "SELECT requested_by, cancelled FROM cluster_cancels WHERE "
                           "bos_batch_id = 'run-7'")
            .rows.at(0)
        == pg::row{"node-2", "2"});
}

TEST_CASE("a cancel the queue could not apply is handed on again") {
  test::cluster_database cluster{"cancel-retry"};
  auto db = cluster.connect();
  insert_request(*db, "r1", "");
  leader_log log;
  log.refusals_left = 2;
  auto poller = start_poller(cluster.url, log);
  std::string error;
  auto relay = cluster::cancel_relay::start({cluster.url, "node-1", 5s, 20ms}, error);
  REQUIRE(relay != nullptr);
  auto one = ask_and_wait(*relay, {0, "r1", ""});
  CHECK(one.what == cluster::relay_outcome::kind::answered);
  CHECK(one.counts.cancelled == 1);
  auto events = log.copy();
  CHECK(std::count(events.begin(), events.end(), "cancel:r1") == 3);
}

TEST_CASE("a cancel no leader answers within the wait is pending and stays open for the next "
          "leader") {
  test::cluster_database cluster{"cancel-pending"};
  auto db = cluster.connect();
  insert_request(*db, "r1", "");
  std::string error;
  auto relay = cluster::cancel_relay::start({cluster.url, "node-1", 300ms, 20ms}, error);
  REQUIRE(relay != nullptr);
  auto started = std::chrono::steady_clock::now();
  auto one = ask_and_wait(*relay, {0, "r1", ""});
  CHECK(one.what == cluster::relay_outcome::kind::pending);
  CHECK(std::chrono::steady_clock::now() - started >= 300ms);
  auto open = cluster::read_open_cancels(*db, error);
  REQUIRE(open.size() == 1);
  CHECK(open[0].queue_id == "r1");

  // The next leader's poller applies it.
  leader_log log;
  auto poller = start_poller(cluster.url, log);
  auto answered = [&] {
    auto rows = test::exec_ok(*db, "SELECT count(*) FROM cluster_cancels WHERE answered_at IS "
                                   "NOT NULL AND cancelled = 1");
    return rows.rows.at(0).at(0) == "1";
  };
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!answered() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  CHECK(answered());
}

TEST_CASE("a cancel that cannot be recorded fails at once with the reason") {
  test::cluster_database cluster{"cancel-unrecorded", false}; // no lps tables
  std::string error;
  auto relay = cluster::cancel_relay::start({cluster.url, "node-1", 1s, 20ms}, error);
  REQUIRE(relay != nullptr);
  auto one = ask_and_wait(*relay, {0, "r1", ""});
  CHECK(one.what == cluster::relay_outcome::kind::failed);
  CHECK(one.error.find("cluster_cancels") != std::string::npos);
}
