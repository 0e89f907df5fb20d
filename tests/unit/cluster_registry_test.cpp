// The node registry against a real PostgreSQL 15 server (the ctest fixture "postgres"), in a
// database of its own per case. Staleness is the database's clock: the cases wait there for
// a heartbeat to age (well under a second each).

#include "fixtures/cluster_database.hpp"
#include "runtime/cluster_node.hpp"
#include "runtime/cluster_registry.hpp"

#include <catch2/catch.hpp>

using namespace lps;
using namespace std::chrono_literals;

namespace {

constexpr auto long_window = std::chrono::milliseconds{30s};

cluster::node_registration node(const std::string& name, uint16_t port) {
  return {name, "127.0.0.1", port, "0.1.0", "intake,provider"};
}

/// Lets the database's clock move on by `seconds`.
void let_time_pass(pg::connection& db, double seconds) {
  test::exec_ok(db, "SELECT pg_sleep($1::float8)", {std::to_string(seconds)});
}

} // namespace

TEST_CASE("registered nodes are listed with their address, and a node that stops beating turns "
          "stale") {
  test::cluster_database cluster{"registry-liveness"};
  auto db = cluster.connect();
  cluster::node_registry registry{*db};
  auto one = registry.register_node(node("node-1", 4101), long_window);
  auto two = registry.register_node(node("node-2", 4102), long_window);
  REQUIRE(one);
  REQUIRE(two);
  CHECK(*one != *two);

  auto nodes = registry.list(long_window);
  REQUIRE(nodes.size() == 2);
  CHECK(nodes[0].node.name == "node-1");
  CHECK(nodes[0].node.host == "127.0.0.1");
  CHECK(nodes[0].node.port == 4101);
  CHECK(nodes[0].node.version == "0.1.0");
  CHECK(nodes[0].node.roles == "intake,provider");
  CHECK(nodes[0].incarnation == *one);
  CHECK(nodes[0].started_at.size() == std::string{"2026-01-01T00:00:00.000Z"}.size());
  CHECK(nodes[0].live);
  CHECK(nodes[1].node.name == "node-2");
  CHECK(nodes[1].live);

  auto started = nodes[0].started_at;

  // 0.6 s pass; node-1 beats, node-2 does not: with a 0.5 s window only node-1 is live.
  let_time_pass(*db, 0.6);
  CHECK(registry.heartbeat("node-1", *one));
  nodes = registry.list(500ms);
  REQUIRE(nodes.size() == 2);
  CHECK(nodes[0].live);
  CHECK(nodes[0].heartbeat_age < 500ms);
  CHECK_FALSE(nodes[1].live);
  CHECK(nodes[1].heartbeat_age >= 600ms);
  CHECK(nodes[0].started_at == started); // a heartbeat keeps started_at
  CHECK(nodes[0].heartbeat_at > started);
}

TEST_CASE(
    "a live node's name cannot be registered twice, but a stale one is taken over and its old "
    "process learns it at its next heartbeat") {
  test::cluster_database cluster{"registry-names"};
  auto old_process = cluster.connect();
  auto new_process = cluster.connect();
  cluster::node_registry old_registry{*old_process};
  cluster::node_registry new_registry{*new_process};
  auto first = old_registry.register_node(node("node-1", 4101), long_window);
  REQUIRE(first);

  CHECK_FALSE(new_registry.register_node(node("node-1", 4201), long_window));
  CHECK(new_registry.error().find("held by a live node") != std::string::npos);

  let_time_pass(*new_process, 0.2);
  auto second = new_registry.register_node(node("node-1", 4201), 100ms);
  REQUIRE(second);
  CHECK(*second != *first);
  CHECK_FALSE(old_registry.heartbeat("node-1", *first));
  CHECK(new_registry.heartbeat("node-1", *second));
  auto nodes = new_registry.list(long_window);
  REQUIRE(nodes.size() == 1);
  CHECK(nodes[0].node.port == 4201);
  CHECK(nodes[0].incarnation == *second);
}

TEST_CASE("a removed node is gone from the list and its heartbeat fails") {
  test::cluster_database cluster{"registry-remove"};
  auto db = cluster.connect();
  cluster::node_registry registry{*db};
  auto one = registry.register_node(node("node-1", 4101), long_window);
  REQUIRE(one);
  REQUIRE(registry.register_node(node("node-2", 4102), long_window));

  CHECK(registry.remove("node-1"));
  CHECK_FALSE(registry.remove("node-1"));
  CHECK_FALSE(registry.heartbeat("node-1", *one));
  auto nodes = registry.list(long_window);
  REQUIRE(nodes.size() == 1);
  CHECK(nodes[0].node.name == "node-2");
  CHECK(registry.error().empty());
}

TEST_CASE("a registry on a database without the cluster tables fails and says why") {
  test::cluster_database cluster{"registry-no-schema", false};
  auto db = cluster.connect();
  cluster::node_registry registry{*db};
  CHECK_FALSE(registry.register_node(node("node-1", 4101), long_window));
  CHECK(registry.error().find("cluster_nodes") != std::string::npos);
  CHECK(registry.list(long_window).empty());
  CHECK_FALSE(registry.error().empty());
}

TEST_CASE("a node marks itself leaving: listed as leaving while its heartbeat is live, and a "
          "new process of the name starts up again") {
  test::cluster_database cluster{"registry-leaving"};
  auto db = cluster.connect();
  cluster::node_registry registry{*db};
  auto one = registry.register_node(node("node-1", 4101), long_window);
  REQUIRE(one);
  CHECK_FALSE(registry.list(long_window).at(0).leaving);
  CHECK_FALSE(registry.mark_leaving("node-1", *one + 1)); // another process's incarnation
  REQUIRE(registry.mark_leaving("node-1", *one));
  auto listed = registry.list(long_window).at(0);
  CHECK(listed.leaving);
  CHECK(std::string{cluster::to_string(cluster::state_of(listed.heartbeat_age, 5s, true))}
        == "leaving");
  CHECK(cluster::to_string(cluster::state_of(6s, 5s, true)) == std::string{"down"});
  CHECK(cluster::to_string(cluster::state_of(1s, 5s, false)) == std::string{"up"});

  // It died while leaving; the next process of the name is not leaving.
  let_time_pass(*db, 0.3);
  auto again = registry.register_node(node("node-1", 4101), 200ms);
  REQUIRE(again);
  CHECK_FALSE(registry.list(long_window).at(0).leaving);
}

TEST_CASE("a live node the leader cannot reach is shown unreachable but a down or leaving "
          "one keeps its state") {
  cluster::cluster_view view;
  view.lease = 5s;
  view.unreachable["node-2"] = "cannot reach it through the middleman (refused)";
  auto at = [&](const std::string& name, std::chrono::milliseconds age, bool leaving = false) {
    cluster::node_info n;
    n.node.name = name;
    n.heartbeat_age = age;
    n.leaving = leaving;
    return std::string{cluster::to_string(cluster::state_in(view, n))};
  };
  CHECK(at("node-2", 1s) == "unreachable");
  CHECK(at("node-2", 4s) == "unreachable"); // suspect by its heartbeat
  CHECK(at("node-2", 6s) == "down");
  CHECK(at("node-2", 1s, true) == "leaving");
  CHECK(at("node-1", 1s) == "up");
  CHECK(at("node-1", 4s) == "suspect");
}
