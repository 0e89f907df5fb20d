// The running cluster's store pieces against the test run's PostgreSQL server (the ctest
// fixture "postgres"), each case in a database of its own: writes stamped with the leader
// lease epoch (fenced_store) commit only while that epoch holds the lease, and the other
// writes of the same group commit go through; the store poller hands on every stored row,
// including one whose sequence number is below a row already seen (it committed later).

#include "fixtures/cluster_database.hpp"
#include "runtime/cluster_lease.hpp"
#include "runtime/fenced_store.hpp"
#include "runtime/pg_batch_job_store.hpp"
#include "runtime/pg_store.hpp"
#include "runtime/store_poller.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>

using namespace lps;
using namespace std::chrono_literals;

namespace {

stored_request request_row(const std::string& id) {
  return {id, 5, 1, 2, 0, "payload", "texts", "mock"};
}

stored_result result_row(const std::string& id) {
  stored_result r;
  r.queue_id = id;
  r.status = "completed";
  r.event_json = "{}";
  r.completed_at_ms = 1;
  return r;
}

/// Submits `write` and waits for its outcome: "" when committed, else the error.
std::string commit(store& db, store_write write) {
  std::mutex m;
  std::string outcome = "not called";
  db.submit(std::move(write), [&](bool ok, const std::string& error) {
    std::lock_guard lock{m};
    outcome = ok ? "" : error;
  });
  db.flush();
  std::lock_guard lock{m};
  return outcome;
}

int64_t count_of(pg::connection& db, const std::string& sql) {
  return std::stoll(test::exec_ok(db, sql).rows.at(0).at(0).value_or("0"));
}

} // namespace

TEST_CASE("a fenced final commits while its epoch holds the lease and is refused after, while "
          "the other writes commit") {
  test::cluster_database cluster{"fencing"};
  std::string error;
  auto shared = open_postgres_store(cluster.url, {}, error);
  INFO(error);
  REQUIRE(shared != nullptr);
  auto node = cluster.connect();
  cluster::lease leader{*node};
  REQUIRE(leader.try_acquire("node-1", 30s) == 1);
  fenced_store fenced{*shared, 1};
  for (const auto* id : {"a", "b", "c"}) {
    store_write insert;
    insert.inserts.push_back(request_row(id));
    REQUIRE(commit(*shared, std::move(insert)).empty());
  }

  store_write first;
  first.finals.push_back(result_row("a"));
  CHECK(commit(fenced, std::move(first)).empty());
  CHECK(count_of(*node, "SELECT count(*) FROM results WHERE queue_id = 'a' AND epoch = 1") == 1);

  // Another node takes over: epoch 1 writes nothing final any more, the other writes of
  // the same group commit go through.
  REQUIRE(leader.release("node-1", 1));
  REQUIRE(leader.try_acquire("node-2", 30s) == 2);
  std::mutex m;
  std::vector<std::string> outcomes;
  auto note = [&](bool ok, const std::string& why) {
    std::lock_guard lock{m};
    outcomes.push_back(ok ? "ok" : why);
  };
  store_write stale;
  stale.finals.push_back(result_row("b"));
  fenced.submit(std::move(stale), note);
  store_write plain;
  plain.inserts.push_back(request_row("d"));
  shared->submit(std::move(plain), note);
  shared->flush();
  REQUIRE(outcomes.size() == 2);
  CHECK(outcomes[0].find("no longer leader") != std::string::npos);
  CHECK(outcomes[1] == "ok");
  CHECK(count_of(*node, "SELECT count(*) FROM results WHERE queue_id = 'b'") == 0);
  CHECK(count_of(*node, "SELECT count(*) FROM requests WHERE queue_id IN ('b', 'd')") == 2);

  fenced_store current{*shared, 2};
  store_write now;
  now.finals.push_back(result_row("c"));
  CHECK(commit(current, std::move(now)).empty());
  CHECK(count_of(*node, "SELECT count(*) FROM results WHERE queue_id = 'c' AND epoch = 2") == 1);
}

TEST_CASE("the store poller hands on every stored row, also one that commits behind a row "
          "already seen") {
  test::cluster_database cluster{"poller"};
  auto writer = cluster.connect();
  auto late = cluster.connect();
  auto insert = [](pg::connection& db, const std::string& id) {
    test::exec_ok(db,
                  "INSERT INTO requests(queue_id, priority, provider, queued_at, size_bytes, "
                  "payload) VALUES($1, 5, 'mock', now(), 10, '\\x00')",
                  {id});
  };
  insert(*writer, "r1");
  // r2 takes its sequence number now but commits after r3 was seen.
  test::exec_ok(*late, "BEGIN");
  insert(*late, "r2");
  insert(*writer, "r3");

  std::mutex m;
  std::multiset<std::string> seen;
  cluster::poller_settings settings;
  settings.postgres_url = cluster.url;
  settings.interval = 20ms;
  settings.lookback = 200ms;
  settings.lookback_every = 4;
  settings.listen = false; // the timer and its look back alone, as after a lost notification
  std::string error;
  auto poller = cluster::store_poller::start(
      settings,
      [&](std::vector<stored_request>&& rows) {
        std::lock_guard lock{m};
        for (const auto& row : rows) {
          CHECK(row.provider == "mock");
          CHECK(row.size_bytes == 10);
          seen.insert(row.queue_id);
        }
      },
      nullptr, error);
  INFO(error);
  REQUIRE(poller != nullptr);
  auto has = [&](const std::string& id) {
    std::lock_guard lock{m};
    return seen.count(id) > 0;
  };
  auto wait_for = [&](const std::string& id) {
    for (int i = 0; i < 200 && !has(id); ++i)
      std::this_thread::sleep_for(10ms);
    return has(id);
  };
  REQUIRE(wait_for("r3"));
  CHECK(has("r1"));
  CHECK_FALSE(has("r2"));
  test::exec_ok(*late, "COMMIT");
  CHECK(wait_for("r2")); // by a look back
  insert(*writer, "r4");
  CHECK(wait_for("r4"));
}

TEST_CASE("a leader's batch job writes commit while its epoch holds the lease and are refused "
          "after a takeover") {
  test::cluster_database cluster{"batch-fencing"};
  std::string error;
  auto shared = open_postgres_batch_job_store(cluster.url, error);
  INFO(error);
  REQUIRE(shared != nullptr);
  auto node = cluster.connect();
  cluster::lease leader{*node};
  REQUIRE(leader.try_acquire("node-1", 30s) == 1);
  auto first = shared->fenced(1);
  REQUIRE(first != nullptr);
  batch_job_record job;
  job.job_id = "job-1";
  job.provider = "openai";
  job.model = "m";
  job.state = "created";
  REQUIRE(first->create(job, {"q1", "q2"}, error));
  job.state = "submitted";
  REQUIRE(first->update(job, error));
  CHECK(first->find("job-1")->state == "submitted");

  REQUIRE(leader.release("node-1", 1));
  REQUIRE(leader.try_acquire("node-2", 30s) == 2);
  job.state = "collected";
  CHECK_FALSE(first->update(job, error));
  CHECK(error.find("no longer leader") != std::string::npos);
  CHECK_FALSE(first->finish(job, error));
  batch_job_record other = job;
  other.job_id = "job-2";
  other.state = "created";
  CHECK_FALSE(first->create(other, {"q3"}, error));
  CHECK(shared->find("job-1")->state == "submitted");
  CHECK_FALSE(shared->find("job-2").has_value());
  CHECK(shared->load_items("job-1").size() == 2);

  auto second = shared->fenced(2);
  CHECK(second->finish(job, error));
  CHECK(shared->find("job-1")->state == "collected");
  CHECK(shared->load_items("job-1").empty());
}

TEST_CASE("the store poller reads at once when a commit notifies new work, long before its "
          "timer") {
  test::cluster_database cluster{"poller-notify"};
  auto writer = cluster.connect();
  auto trigger_enabled = [&] {
    return test::exec_ok(*writer, "SELECT tgenabled <> 'D' FROM pg_trigger WHERE tgname = "
                                  "'requests_notify_work'")
               .rows.at(0)
               .at(0)
           == "t";
  };
  CHECK_FALSE(trigger_enabled()); // a single node's inserts do not fire it
  std::mutex m;
  std::set<std::string> seen;
  cluster::poller_settings settings;
  settings.postgres_url = cluster.url;
  settings.interval = 30s; // only the first poll runs by the timer within this case
  std::string error;
  auto poller = cluster::store_poller::start(
      settings,
      [&](std::vector<stored_request>&& rows) {
        std::lock_guard lock{m};
        for (const auto& row : rows)
          seen.insert(row.queue_id);
      },
      nullptr, error);
  INFO(error);
  REQUIRE(poller != nullptr);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!trigger_enabled() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  REQUIRE(trigger_enabled());
  std::this_thread::sleep_for(200ms); // the first poll is done; the poller waits
  auto inserted = std::chrono::steady_clock::now();
  test::exec_ok(*writer,
                "INSERT INTO requests(queue_id, priority, provider, queued_at, size_bytes, "
                "payload) VALUES('n1', 5, 'mock', now(), 10, '\\x00')");
  auto has = [&] {
    std::lock_guard lock{m};
    return seen.count("n1") == 1;
  };
  while (!has() && std::chrono::steady_clock::now() < inserted + 10s)
    std::this_thread::sleep_for(5ms);
  CHECK(has());
  CHECK(std::chrono::steady_clock::now() - inserted < 5s);
  CHECK(poller->notified_polls() >= 1);
}
