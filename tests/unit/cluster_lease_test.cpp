// The leader lease and its fencing guard against a real PostgreSQL 15 server (the ctest
// fixture "postgres"), in a database of its own per case; every connection stands for one
// node. Expiry is the database's clock: the cases that need a lease to run out wait for it
// there (at most ~1.5 s each).

#include "fixtures/cluster_database.hpp"
#include "runtime/cluster_lease.hpp"

#include <catch2/catch.hpp>

#include <barrier>
#include <future>
#include <thread>

using namespace lps;
using namespace std::chrono_literals;

namespace {

constexpr auto long_ttl = std::chrono::milliseconds{30s};

const std::string expires_at = "(SELECT expires_at FROM cluster_lease WHERE name = 'leader')";

/// A final write as the store will make it: guarded by the epoch it was made under.
uint64_t guarded_insert(pg::connection& db, const std::string& queue_id, int64_t epoch) {
  auto sql = "INSERT INTO finals(queue_id) SELECT $1 WHERE " + cluster::fencing_condition(2);
  return test::exec_ok(db, sql, {queue_id, std::to_string(epoch)}).affected;
}

uint64_t guarded_update(pg::connection& db, const std::string& queue_id, int64_t epoch) {
  auto sql =
      "UPDATE finals SET delivered = true WHERE queue_id = $1 AND " + cluster::fencing_condition(2);
  return test::exec_ok(db, sql, {queue_id, std::to_string(epoch)}).affected;
}

void make_finals_table(pg::connection& db) {
  test::exec_ok(db, "CREATE TABLE finals(queue_id text PRIMARY KEY, delivered boolean NOT NULL "
                    "DEFAULT false)");
}

/// Waits until the backend `pid` waits for a lock (what a blocked statement does).
bool waits_for_lock(pg::connection& observer, const std::string& pid) {
  for (int i = 0; i < 500; ++i) {
    auto r = test::exec_ok(
        observer, "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", {pid});
    if (!r.rows.empty() && r.rows[0][0] == "t")
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

} // namespace

TEST_CASE(
    "the first holder gets epoch 1, only it renews, and a release hands epoch 2 to the next") {
  test::cluster_database cluster{"lease-basics"};
  auto a = cluster.connect();
  auto b = cluster.connect();
  cluster::lease lease_a{*a};
  cluster::lease lease_b{*b};
  CHECK_FALSE(lease_a.read());

  REQUIRE(lease_a.try_acquire("node-a", long_ttl) == 1);
  auto state = lease_b.read();
  REQUIRE(state);
  CHECK(state->holder == "node-a");
  CHECK(state->epoch == 1);
  CHECK(state->live);
  CHECK(state->remaining > 0ms);
  CHECK(state->remaining <= long_ttl);

  // A live lease is nobody else's, and not its holder's a second time either.
  CHECK_FALSE(lease_b.try_acquire("node-b", long_ttl));
  CHECK(lease_b.error().empty()); // refused, not failed
  CHECK_FALSE(lease_a.try_acquire("node-a", long_ttl));

  CHECK(lease_a.renew("node-a", 1, long_ttl));
  CHECK_FALSE(lease_b.renew("node-b", 1, long_ttl));
  CHECK_FALSE(lease_a.renew("node-a", 2, long_ttl));

  CHECK_FALSE(lease_b.release("node-b", 1));
  CHECK(lease_a.release("node-a", 1));
  CHECK_FALSE(lease_b.read()->live);

  REQUIRE(lease_b.try_acquire("node-b", long_ttl) == 2);
  CHECK_FALSE(lease_a.renew("node-a", 1, long_ttl));
  CHECK(lease_a.read()->holder == "node-b");
}

TEST_CASE("an expired lease goes to the next node with the next epoch, by the database's clock") {
  test::cluster_database cluster{"lease-expiry"};
  auto a = cluster.connect();
  auto b = cluster.connect();
  cluster::lease lease_a{*a};
  cluster::lease lease_b{*b};

  REQUIRE(lease_a.try_acquire("node-a", 1s) == 1);
  CHECK_FALSE(lease_b.try_acquire("node-b", long_ttl));
  test::wait_until_passed(*b, expires_at);
  CHECK_FALSE(lease_b.read()->live);
  CHECK(lease_b.read()->remaining <= 0ms);

  REQUIRE(lease_b.try_acquire("node-b", 1s) == 2);
  CHECK_FALSE(lease_a.renew("node-a", 1, long_ttl));

  // Expired but taken by nobody: its holder may renew, no one led in between.
  test::wait_until_passed(*a, expires_at);
  CHECK(lease_b.renew("node-b", 2, long_ttl));
  CHECK(lease_a.read()->live);
  CHECK(lease_a.read()->epoch == 2);

  // A restarted node of the same name waits out its old lease and gets a new epoch.
  CHECK_FALSE(lease_b.try_acquire("node-b", long_ttl));
}

TEST_CASE("of eight nodes trying at once, exactly one takes the lease, round after round") {
  constexpr int nodes = 8;
  constexpr int rounds = 10;
  test::cluster_database cluster{"lease-contenders"};
  std::vector<std::unique_ptr<pg::connection>> connections;
  for (int i = 0; i < nodes; ++i)
    connections.push_back(cluster.connect());
  // epochs[round][node]: what each node's try_acquire returned (0: nothing).
  std::vector<std::vector<int64_t>> epochs(rounds, std::vector<int64_t>(nodes, 0));
  std::vector<std::string> errors(nodes);
  std::barrier start_round{nodes};
  std::vector<std::thread> threads;
  for (int n = 0; n < nodes; ++n)
    threads.emplace_back([&, n] {
      cluster::lease lease{*connections[n]};
      auto name = "node-" + std::to_string(n);
      for (int round = 0; round < rounds; ++round) {
        start_round.arrive_and_wait();
        if (auto epoch = lease.try_acquire(name, long_ttl))
          epochs[round][n] = *epoch;
        errors[n] += lease.error();
        // Every node has tried before the winner lets go for the next round.
        start_round.arrive_and_wait();
        if (epochs[round][n] != 0)
          lease.release(name, epochs[round][n]);
      }
    });
  for (auto& t : threads)
    t.join();
  for (int n = 0; n < nodes; ++n)
    CHECK(errors[n].empty());
  for (int round = 0; round < rounds; ++round) {
    INFO("round " << round);
    auto winners =
        std::count_if(epochs[round].begin(), epochs[round].end(), [](int64_t e) { return e != 0; });
    CHECK(winners == 1);
    // One new holder per round: the epoch counts the rounds.
    CHECK(*std::max_element(epochs[round].begin(), epochs[round].end()) == round + 1);
  }
}

TEST_CASE("fencing: the old holder's guarded writes affect no rows once another node took over") {
  test::cluster_database cluster{"lease-fencing"};
  auto a = cluster.connect();
  auto b = cluster.connect();
  make_finals_table(*a);
  cluster::lease lease_a{*a};
  cluster::lease lease_b{*b};

  REQUIRE(lease_a.try_acquire("node-a", 1s) == 1);
  CHECK(guarded_insert(*a, "q1", 1) == 1);
  CHECK(guarded_insert(*a, "q2", 2) == 0); // an epoch nobody holds
  CHECK(guarded_update(*a, "q1", 1) == 1);

  // Node a is paused past its lease: it writes nothing final until it renews...
  test::wait_until_passed(*b, expires_at);
  CHECK(guarded_insert(*a, "q3", 1) == 0);
  // ...and node b takes over.
  REQUIRE(lease_b.try_acquire("node-b", long_ttl) == 2);
  CHECK(guarded_insert(*a, "q4", 1) == 0);
  CHECK(guarded_update(*a, "q1", 1) == 0);
  CHECK_FALSE(lease_a.renew("node-a", 1, long_ttl));
  CHECK(guarded_insert(*b, "q5", 2) == 1);

  auto rows = test::exec_ok(*b, "SELECT string_agg(queue_id, ',' ORDER BY queue_id) FROM finals");
  CHECK(rows.rows.at(0).at(0) == "q1,q5");
}

TEST_CASE("fencing: a takeover waits for the old holder's guarded write in flight, which commits "
          "first") {
  test::cluster_database cluster{"lease-fencing-race"};
  auto a = cluster.connect();
  auto b = cluster.connect();
  auto observer = cluster.connect();
  make_finals_table(*a);
  cluster::lease lease_a{*a};
  cluster::lease lease_b{*b};
  auto pid_b = *test::exec_ok(*b, "SELECT pg_backend_pid()").rows.at(0).at(0);

  REQUIRE(lease_a.try_acquire("node-a", 1500ms) == 1);
  test::exec_ok(*a, "BEGIN");
  REQUIRE(guarded_insert(*a, "q1", 1) == 1);
  // The lease runs out while node a's transaction is still open.
  test::wait_until_passed(*observer, expires_at);
  auto takeover =
      std::async(std::launch::async, [&] { return lease_b.try_acquire("node-b", long_ttl); });
  REQUIRE(waits_for_lock(*observer, pid_b));
  CHECK(takeover.wait_for(0s) == std::future_status::timeout);
  test::exec_ok(*a, "COMMIT");
  CHECK(takeover.get() == 2);

  CHECK(guarded_insert(*a, "q2", 1) == 0);
  auto rows = test::exec_ok(*observer, "SELECT string_agg(queue_id, ',') FROM finals");
  CHECK(rows.rows.at(0).at(0) == "q1");
}

TEST_CASE("a lease on a database without the cluster tables fails and says why") {
  test::cluster_database cluster{"lease-no-schema", false};
  auto db = cluster.connect();
  cluster::lease lease{*db};
  CHECK_FALSE(lease.try_acquire("node-a", long_ttl));
  CHECK(lease.error().find("cluster_lease") != std::string::npos);
  CHECK_FALSE(lease.renew("node-a", 1, long_ttl));
  CHECK_FALSE(lease.read());
  CHECK_FALSE(lease.error().empty());
}

TEST_CASE("after the server dropped its connection, a lease call fails and the next one "
          "reconnects") {
  test::cluster_database cluster{"lease-reconnect"};
  auto a = cluster.connect();
  auto observer = cluster.connect();
  cluster::lease lease_a{*a};
  auto pid_a = *test::exec_ok(*a, "SELECT pg_backend_pid()").rows.at(0).at(0);
  test::exec_ok(*observer, "SELECT pg_terminate_backend($1::int, 5000)", {pid_a});

  CHECK_FALSE(lease_a.try_acquire("node-a", long_ttl));
  CHECK_FALSE(lease_a.error().empty());
  CHECK(lease_a.try_acquire("node-a", long_ttl) == 1);
  CHECK(lease_a.error().empty());
}
