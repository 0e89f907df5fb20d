// The inspection views in cluster mode (issue #12) with real processes: two lps nodes on one
// database of the test run's PostgreSQL server (the ctest fixture "postgres"), on 127.0.0.1.
// Each node's /api/v1/inspect/nodes, its inspection stream and `lpsctl nodes` list both nodes
// of the cluster (address, leader, state, heartbeat, version, the leader's epoch); every view
// names the node by its CLUSTER_NODE_NAME, llm_provider_build_info too.

#include "fixtures/process_helpers.hpp"
#include "fixtures/cluster_database.hpp"
#include "fixtures/raw_socket.hpp"
#include "fixtures/temp_dir.hpp"
#include "integration/lps_process.hpp"
#include "integration/service_clients.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <cstdlib>

#include <chrono>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace lps;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

using test::eventually;
using test::scoped_env;

const std::string token = "cluster-inspect-token-4e1b";
const std::vector<std::string> names{"node-a", "node-b"};

/// Two nodes on one database, named node-a and node-b, with the admin token.
struct two_nodes {
  test::cluster_database database;
  scoped_env backend{"LLM_PROVIDER_SERVICE_STORE_BACKEND", "postgres"};
  scoped_env url;
  std::vector<std::unique_ptr<test::temp_dir>> dirs;
  std::vector<std::unique_ptr<test::lps_process>> nodes;
  test::json_client http;

  two_nodes() : database("inspect-nodes"), url("LLM_PROVIDER_SERVICE_POSTGRES_URL", database.url) {
    for (const auto& name : names) {
      dirs.push_back(std::make_unique<test::temp_dir>());
      nodes.push_back(std::make_unique<test::lps_process>(
          dirs.back()->str(),
          std::vector<std::string>{"--cluster-enabled=true", "--cluster-node-name=" + name,
                                   "--cluster-port=0", "--cluster-lease-seconds=5",
                                   "--admin-token=" + token}));
      REQUIRE(nodes.back()->port() != 0);
    }
  }

  test::json_answer get(size_t i, const std::string& path) {
    return http.call("GET", nodes.at(i)->url(path), {}, token);
  }
};

// The nodes view of node i once it lists both nodes up and a leader.
json::object settled_nodes_view(two_nodes& c, size_t i) {
  json::object body;
  bool settled = eventually(
      [&] {
        auto answer = c.get(i, "/api/v1/inspect/nodes");
        if (answer.status != 200)
          return false;
        body = answer.body;
        const auto& cluster = body.at("cluster");
        if (!cluster.is_object() || !cluster.as_object().at("leader").is_string())
          return false;
        const auto& nodes = body.at("nodes").as_array();
        if (nodes.size() != names.size())
          return false;
        for (const auto& n : nodes)
          if (n.as_object().at("state") != "up")
            return false;
        return true;
      },
      20s);
  INFO(json::serialize(body));
  REQUIRE(settled);
  return body;
}

// One event of node i's inspection stream, parsed.
json::object stream_event(const two_nodes& c, size_t i) {
  test::raw_socket client{c.nodes.at(i)->port()};
  client.write("GET /api/v1/inspect/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token
               + "\r\n\r\n");
  std::string text;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (text.find("\ndata: ") == std::string::npos && std::chrono::steady_clock::now() < deadline)
    text += client.read_until_ends_with("\n\n\r\n", 3000ms);
  auto start = text.find("\ndata: ");
  REQUIRE(start != std::string::npos);
  start += 7;
  return json::parse(text.substr(start, text.find('\n', start) - start)).as_object();
}

// Both nodes listed once, this one (`self`) with its own figures, the other's unknown, exactly
// one leader: the cluster's.
void check_nodes(const json::object& body, const std::string& self) {
  INFO(json::serialize(body));
  CHECK(body.at("node").as_string() == self);
  const auto& cluster = body.at("cluster").as_object();
  CHECK(cluster.at("epoch").to_number<int64_t>() >= 1);
  CHECK(cluster.at("lease_seconds").to_number<double>() == 5.0);
  CHECK(cluster.at("error").is_null());
  std::string leader{cluster.at("leader").as_string()};
  std::set<std::string> listed, leaders;
  std::string version;
  for (const auto& item : body.at("nodes").as_array()) {
    const auto& n = item.as_object();
    std::string name{n.at("name").as_string()};
    listed.insert(name);
    if (n.at("leader").as_bool())
      leaders.insert(name);
    CHECK(n.at("self").as_bool() == (name == self));
    CHECK(std::string{n.at("address").as_string()}.starts_with("127.0.0.1:"));
    CHECK(n.at("state") == "up");
    CHECK(!n.at("last_heartbeat").as_string().empty());
    CHECK(n.at("heartbeat_age_seconds").to_number<double>() < 5.0);
    CHECK(!n.at("version").as_string().empty());
    if (version.empty())
      version = n.at("version").as_string();
    CHECK(n.at("version").as_string() == version); // one binary
    if (name == self) {
      CHECK(n.at("actors").to_number<int64_t>() >= 5);
      CHECK(n.at("unresponsive_actors").to_number<int64_t>() == 0);
      CHECK(n.at("in_flight_calls").to_number<int64_t>() == 0);
    } else {
      CHECK(n.at("actors").is_null());
      CHECK(n.at("unresponsive_actors").is_null());
      CHECK(n.at("in_flight_calls").is_null());
    }
  }
  CHECK(listed == std::set<std::string>(names.begin(), names.end()));
  CHECK(leaders == std::set<std::string>{leader});
}

test::run_result lpsctl(const test::lps_process& lps, std::vector<std::string> args) {
  args.insert(args.begin(), {LPSCTL_BINARY, "--url=" + lps.url(""), "--token=" + token});
  return test::run_command(args);
}

} // namespace

TEST_CASE("in cluster mode every node's inspection views list both nodes, named by "
          "CLUSTER_NODE_NAME, with the leader and its epoch",
          "[cluster]") {
  two_nodes c;
  for (size_t i = 0; i < names.size(); ++i) {
    auto body = settled_nodes_view(c, i);
    check_nodes(body, names[i]);
    // /api/v1/cluster and the nodes view agree on the leader and the epoch.
    auto cluster = c.get(i, "/api/v1/cluster");
    REQUIRE(cluster.status == 200);
    if (cluster.body.at("epoch") == body.at("cluster").as_object().at("epoch"))
      CHECK(cluster.body.at("leader") == body.at("cluster").as_object().at("leader"));

    // The stream's events carry the same nodes (the console's nodes view reads them).
    auto event = stream_event(c, i);
    check_nodes(event, names[i]);

    // Every actor is named by the node's CLUSTER_NODE_NAME, not the host name.
    auto actors = c.get(i, "/api/v1/inspect/actors");
    REQUIRE(actors.status == 200);
    CHECK(actors.body.at("node").as_string() == names[i]);
    for (const auto& a : actors.body.at("actors").as_array())
      CHECK(a.as_object().at("node").as_string() == names[i]);

    auto metrics = c.http.http.call("GET", c.nodes[i]->url("/metrics"), {}, "").body;
    CHECK(metrics.find("llm_provider_build_info{") != std::string::npos);
    CHECK(metrics.find(",node=\"" + names[i] + "\"} 1\n") != std::string::npos);
  }
}

TEST_CASE("lpsctl nodes lists every node of the cluster with its address, leader flag and "
          "state",
          "[cluster]") {
  two_nodes c;
  auto view = settled_nodes_view(c, 0);
  std::string leader{view.at("cluster").as_object().at("leader").as_string()};

  auto table = lpsctl(*c.nodes[0], {"nodes"});
  INFO(table.out << table.err);
  REQUIRE(table.exit_code == 0);
  std::istringstream lines{table.out};
  std::string header, epoch_line;
  std::getline(lines, epoch_line);
  CHECK(epoch_line.starts_with("cluster: leader " + leader + ", epoch "));
  std::getline(lines, header);
  CHECK(header.starts_with("NODE"));
  std::set<std::string> listed;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream row{line};
    std::string name, address, state, is_leader, self;
    row >> name >> address >> state >> is_leader >> self;
    listed.insert(name);
    CHECK(address.starts_with("127.0.0.1:"));
    CHECK(state == "up");
    CHECK(is_leader == (name == leader ? "yes" : "no"));
    CHECK(self == (name == "node-a" ? "yes" : "no"));
  }
  CHECK(listed == std::set<std::string>(names.begin(), names.end()));

  auto raw = lpsctl(*c.nodes[1], {"nodes", "--json"});
  REQUIRE(raw.exit_code == 0);
  auto body = json::parse(raw.out).as_object();
  CHECK(body.at("node") == "node-b");
  CHECK(body.at("nodes").as_array().size() == 2);
}
