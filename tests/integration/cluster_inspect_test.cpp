// The inspection views in cluster mode (issues #11 and #12) with real processes: two or three
// lps nodes on one database of the test run's PostgreSQL server (the ctest fixture
// "postgres"), on 127.0.0.1. Each node's /api/v1/inspect/nodes, its inspection stream and
// `lpsctl nodes` list every node of the cluster (address, leader, state, heartbeat, version,
// the leader's epoch); every view names the node by its CLUSTER_NODE_NAME,
// llm_provider_build_info too. `?node=all` gathers every node's actors through the
// middleman, a paused node listed as unresponsive within the bound; every node's queue,
// bundles and providers views show the leader's singletons.

#include "fixtures/process_helpers.hpp"
#include "fixtures/cluster_database.hpp"
#include "fixtures/raw_socket.hpp"
#include "fixtures/temp_dir.hpp"
#include "integration/lps_process.hpp"
#include "integration/service_clients.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>

#include <chrono>
#include <algorithm>
#include <map>
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

/// Nodes on one database, named node-a and node-b (or as given), with the admin token.
struct two_nodes {
  test::cluster_database database;
  scoped_env backend{"LLM_PROVIDER_SERVICE_STORE_BACKEND", "postgres"};
  scoped_env url;
  std::vector<std::unique_ptr<test::temp_dir>> dirs;
  std::vector<std::unique_ptr<test::lps_process>> nodes;
  test::json_client http;

  explicit two_nodes(const std::vector<std::string>& named = names,
                     const std::string& db = "inspect-nodes",
                     const std::vector<std::string>& extra = {})
      : database(db), url("LLM_PROVIDER_SERVICE_POSTGRES_URL", database.url) {
    for (const auto& name : named) {
      dirs.push_back(std::make_unique<test::temp_dir>());
      std::vector<std::string> args{"--cluster-enabled=true", "--cluster-node-name=" + name,
                                    "--cluster-port=0", "--cluster-lease-seconds=5",
                                    "--admin-token=" + token};
      args.insert(args.end(), extra.begin(), extra.end());
      nodes.push_back(std::make_unique<test::lps_process>(dirs.back()->str(), args));
      REQUIRE(nodes.back()->port() != 0);
    }
  }

  test::json_answer get(size_t i, const std::string& path) {
    return http.call("GET", nodes.at(i)->url(path), {}, token);
  }
};

// The nodes view of node i once it lists both nodes up, a leader, and every node's own
// figures as that node's inspector answered this second.
json::object settled_nodes_view(two_nodes& c, size_t i, size_t count = names.size()) {
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
        if (nodes.size() != count)
          return false;
        for (const auto& n : nodes)
          if (n.as_object().at("state") != "up" || n.as_object().at("responsive") != true
              || n.as_object().at("actors").is_null())
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

// Both nodes listed once, each with its own figures (the other's as its inspector answered
// this node's within the second), exactly one leader: the cluster's.
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
    // The intake, queue manager, bundler, callbacks, metrics, inspector, provider actors...
    CHECK(n.at("actors").to_number<int64_t>() >= 5);
    CHECK(n.at("unresponsive_actors").to_number<int64_t>() == 0);
    CHECK(n.at("in_flight_calls").to_number<int64_t>() == 0);
    CHECK(n.at("responsive") == true);
    CHECK(n.at("error").is_null());
    // Its own figures are this snapshot's; another node's from its newest snapshot.
    auto age = n.at("figures_age_seconds").to_number<double>();
    CHECK(age < 3.0);
    if (name == self)
      CHECK(age == 0.0);
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

    // Every actor is named by the node's CLUSTER_NODE_NAME, not the host name; the leader's
    // singletons (role leader) by the leader's.
    auto actors = c.get(i, "/api/v1/inspect/actors");
    REQUIRE(actors.status == 200);
    CHECK(actors.body.at("node").as_string() == names[i]);
    for (const auto& a : actors.body.at("actors").as_array()) {
      const auto* role = a.as_object().at("facts").as_object().if_contains("role");
      if (role != nullptr && *role == "leader")
        CHECK(a.as_object().at("node").as_string() != "");
      else
        CHECK(a.as_object().at("node").as_string() == names[i]);
    }

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

namespace {

const std::vector<std::string> three_names{"node-a", "node-b", "node-c"};

// The answer of node i to `path` once every entry of its "nodes" answered (the links to the
// other nodes are made on the cluster's ticks) and the leader's singletons are listed.
json::object all_responsive(two_nodes& c, size_t i, const std::string& path, size_t count) {
  json::object body;
  bool settled = eventually(
      [&] {
        auto answer = c.get(i, path);
        if (answer.status != 200)
          return false;
        body = answer.body;
        const auto& nodes = body.at("nodes").as_array();
        if (nodes.size() != count)
          return false;
        for (const auto& n : nodes)
          if (!n.as_object().at("responsive").as_bool())
            return false;
        // The leader lists its singletons once it has seen itself lead.
        for (const auto& a : body.at("actors").as_array())
          if (std::string{a.as_object().at("name").as_string()}.starts_with("leader."))
            return true;
        return false;
      },
      20s, 200ms);
  INFO(json::serialize(body));
  REQUIRE(settled);
  return body;
}

// Actor kinds by node in a body's "actors".
std::map<std::string, std::multiset<std::string>> kinds_by_node(const json::object& body) {
  std::map<std::string, std::multiset<std::string>> result;
  for (const auto& a : body.at("actors").as_array())
    result[std::string{a.as_object().at("node").as_string()}].insert(
        std::string{a.as_object().at("kind").as_string()});
  return result;
}

// Every node lists its own actors (the kinds every node runs), labelled with its name; the
// leader's answer has its singletons besides (role leader), the others' do not.
void check_every_node(const json::object& body, const std::vector<std::string>& named,
                      const std::string& leader) {
  INFO(json::serialize(body));
  auto kinds = kinds_by_node(body);
  CHECK(kinds.size() == named.size());
  for (const auto& name : named) {
    const auto& k = kinds[name];
    for (const auto* kind : {"intake", "queue_manager", "bundler", "metrics", "inspector"})
      CHECK(k.count(kind) >= 1);
    // Its own queue manager and bundler; the leader's second ones are its singletons.
    CHECK(k.count("queue_manager") == (name == leader ? 2u : 1u));
    CHECK(k.count("bundler") == (name == leader ? 2u : 1u));
  }
  std::set<std::string> listed;
  for (const auto& n : body.at("nodes").as_array())
    listed.emplace(n.as_object().at("name").as_string());
  CHECK(listed == std::set<std::string>(named.begin(), named.end()));
}

std::string leader_of(two_nodes& c, size_t count) {
  auto view = settled_nodes_view(c, 0, count);
  return std::string{view.at("cluster").as_object().at("leader").as_string()};
}

size_t index_of(const std::vector<std::string>& named, const std::string& name) {
  return static_cast<size_t>(std::find(named.begin(), named.end(), name) - named.begin());
}

std::string request_body(int i) {
  return R"({"user_prompt":"Which essay is better? )" + std::to_string(i)
         + R"(","metadata":{"essay_a_id":"a","essay_b_id":"b"}})";
}

// The figures of the actor named `name` in an actors view, or null.
const json::object* figures_of(const json::object& body, const std::string& name) {
  for (const auto& a : body.at("actors").as_array())
    if (a.as_object().at("name").as_string() == name && a.as_object().at("responsive").as_bool())
      return &a.as_object().at("figures").as_object();
  return nullptr;
}

double figure(const json::object* figures, const std::string& key) {
  if (figures == nullptr)
    return -1;
  const auto* x = figures->if_contains(key);
  return x == nullptr ? 0 : x->to_number<double>();
}

/// Resumes a paused node when the test ends, so it can be stopped.
struct resume_on_exit {
  const test::lps_process& node;
  ~resume_on_exit() {
    node.signal(SIGCONT);
  }
};

} // namespace

TEST_CASE("?node=all on /api/v1/inspect and its actors view lists every node's actors, each "
          "labelled by node, ?node=NAME one node, unknown names 404, bad values 400",
          "[cluster]") {
  two_nodes c{three_names, "inspect-all"};
  auto leader = leader_of(c, three_names.size());
  for (size_t i = 0; i < three_names.size(); ++i) {
    auto statuses = all_responsive(c, i, "/api/v1/inspect?node=all", three_names.size());
    CHECK(statuses.at("node").as_string() == three_names[i]);
    check_every_node(statuses, three_names, leader);
    auto samples = all_responsive(c, i, "/api/v1/inspect/actors?node=all", three_names.size());
    check_every_node(samples, three_names, leader);
    for (const auto& n : samples.at("nodes").as_array()) {
      CHECK(n.as_object().at("seq").to_number<int64_t>() >= 1);
      CHECK(n.as_object().at("error").is_null());
    }
  }

  // One node by name: its actors alone, asked from another node.
  const auto& other = three_names[2];
  auto one = c.get(0, "/api/v1/inspect/actors?node=" + other);
  REQUIRE(one.status == 200);
  INFO(json::serialize(one.body));
  REQUIRE(one.body.at("nodes").as_array().size() == 1);
  CHECK(one.body.at("nodes").as_array()[0].as_object().at("name").as_string() == other);
  auto kinds = kinds_by_node(one.body);
  CHECK(kinds.size() == 1);
  CHECK(kinds.count(other) == 1);

  // lpsctl top --node all: every node's actors with a NODE column.
  auto top = lpsctl(*c.nodes[0], {"top", "--once", "--node", "all"});
  INFO(top.out << top.err);
  REQUIRE(top.exit_code == 0);
  CHECK(top.out.find("  NODE\n") != std::string::npos);
  for (const auto& name : three_names)
    CHECK(top.out.find("  " + name + "\n") != std::string::npos);
  CHECK(top.out.find("did not answer") == std::string::npos);

  auto unknown = c.get(0, "/api/v1/inspect?node=node-z");
  CHECK(unknown.status == 404);
  CHECK(unknown.body.at("error").as_object().at("code") == "RESOURCE_NOT_FOUND");
  for (const auto* bad :
       {"/api/v1/inspect?node=", "/api/v1/inspect/actors?node=a%20b", "/api/v1/inspect?node=a/b"}) {
    auto answer = c.get(1, bad);
    INFO(bad << " " << json::serialize(answer.body));
    CHECK(answer.status == 400);
    CHECK(answer.body.at("error").as_object().at("code") == "VALIDATION_ERROR");
  }
}

TEST_CASE("a SIGSTOPped node is listed unresponsive within the bound and ?node=all still "
          "answers",
          "[cluster]") {
  two_nodes c{three_names, "inspect-paused"};
  auto leader = leader_of(c, three_names.size());
  // A follower is paused; the leader answers for the cluster.
  size_t paused = leader == three_names[1] ? 2 : 1;
  size_t asked = index_of(three_names, leader);
  all_responsive(c, asked, "/api/v1/inspect?node=all", three_names.size());
  all_responsive(c, asked, "/api/v1/inspect/actors?node=all", three_names.size());
  c.nodes[paused]->signal(SIGSTOP);
  resume_on_exit resume{*c.nodes[paused]};
  for (const auto* path : {"/api/v1/inspect?node=all", "/api/v1/inspect/actors?node=all"}) {
    auto start = std::chrono::steady_clock::now();
    auto answer = c.get(asked, path);
    auto took = std::chrono::steady_clock::now() - start;
    INFO(path << " " << json::serialize(answer.body));
    REQUIRE(answer.status == 200);
    // 500 ms for the paused node, the rest for a loaded test machine.
    CHECK(took < 2500ms);
    CHECK(took >= 450ms);
    for (const auto& item : answer.body.at("nodes").as_array()) {
      const auto& n = item.as_object();
      bool is_paused = n.at("name").as_string() == three_names[paused];
      CHECK(n.at("responsive").as_bool() == !is_paused);
      if (is_paused) {
        CHECK(std::string{n.at("error").as_string()}.find("no answer within 500 ms")
              != std::string::npos);
        CHECK(n.at("actors").to_number<int64_t>() == 0);
      }
    }
    auto kinds = kinds_by_node(answer.body);
    CHECK(kinds.count(three_names[paused]) == 0);
    CHECK(kinds.size() == 2);
  }
}

TEST_CASE("on a follower the queue, bundles and providers views and the queue figures are "
          "the leader's singletons', saying which node answered",
          "[cluster]") {
  two_nodes c{names, "inspect-leader"};
  auto leader = leader_of(c, names.size());
  size_t lead = index_of(names, leader);
  size_t follower = 1 - lead;
  constexpr int submitted = 20;
  std::string body = "{\"requests\":[";
  for (int i = 0; i < submitted; ++i)
    body += (i > 0 ? "," : "") + request_body(i);
  body += "]}";
  auto accepted = c.http.call("POST", c.nodes[follower]->url("/api/v1/comparisons"), body, token);
  INFO(json::serialize(accepted.body));
  REQUIRE(accepted.status == 202);

  // The leader finishes them; both nodes' views show its queue manager's figures.
  json::object seen_by_follower, seen_by_leader;
  bool settled = eventually(
      [&] {
        auto f = c.get(follower, "/api/v1/inspect/actors");
        auto l = c.get(lead, "/api/v1/inspect/actors");
        if (f.status != 200 || l.status != 200)
          return false;
        seen_by_follower = f.body;
        seen_by_leader = l.body;
        return figure(figures_of(f.body, "leader.queue-manager"), "completed_total") == submitted
               && figure(figures_of(l.body, "leader.queue-manager"), "completed_total")
                      == submitted;
      },
      30s, 200ms);
  INFO(json::serialize(seen_by_follower) << "\n" << json::serialize(seen_by_leader));
  REQUIRE(settled);
  const auto* theirs = figures_of(seen_by_follower, "leader.queue-manager");
  const auto* its = figures_of(seen_by_leader, "leader.queue-manager");
  for (const auto* key : {"queued", "processing", "retry_waiting", "completed_total",
                          "failed_total", "expired_total"})
    CHECK(figure(theirs, key) == figure(its, key));
  // The follower's own queue manager only stored them for the leader.
  CHECK(figure(figures_of(seen_by_follower, "queue-manager"), "completed_total") == 0);
  for (const auto& a : seen_by_follower.at("actors").as_array())
    if (std::string{a.as_object().at("name").as_string()}.starts_with("leader."))
      CHECK(a.as_object().at("node").as_string() == leader);

  // The tables come from the leader, and say so.
  for (const auto* view : {"queue", "bundles", "providers"}) {
    auto answer = c.get(follower, std::string{"/api/v1/inspect/"} + view);
    INFO(view << " " << json::serialize(answer.body));
    REQUIRE(answer.status == 200);
    CHECK(answer.body.at("node").as_string() == names[follower]);
    CHECK(answer.body.at("tables_node").as_string() == leader);
    CHECK(answer.body.at("tables_error").is_null());
  }
  auto bundles = c.get(follower, "/api/v1/inspect/bundles");
  CHECK(!bundles.body.at("recent_bundles").as_array().empty());
  auto providers = c.get(follower, "/api/v1/inspect/providers");
  std::set<std::string> listed;
  for (const auto& p : providers.body.at("providers").as_array())
    listed.emplace(p.as_object().at("provider").as_string());
  CHECK(listed.count("mock") == 1);
  CHECK(listed.size() == providers.body.at("providers").as_array().size()); // once each

  // The stream's events carry the same.
  auto event = stream_event(c, follower);
  CHECK(event.at("tables_node").as_string() == leader);
}

namespace {

// Node `of`'s entry in node `i`'s nodes view, or an empty object.
json::object node_in_view(two_nodes& c, size_t i, const std::string& of) {
  auto answer = c.get(i, "/api/v1/inspect/nodes");
  if (answer.status != 200)
    return {};
  for (const auto& n : answer.body.at("nodes").as_array())
    if (n.as_object().at("name") == of.c_str())
      return n.as_object();
  return {};
}

int64_t in_flight(const json::object& n) {
  const auto* x = n.if_contains("in_flight_calls");
  return x == nullptr || x->is_null() ? -1 : x->to_number<int64_t>();
}

} // namespace

TEST_CASE("every node's nodes view shows another node's calls in flight, from that node's own "
          "inspection, in the view, the stream and the history, and a paused node keeps its last "
          "figures, marked unresponsive",
          "[cluster]") {
  // Every provider call takes 4 s: requests stay in flight on whichever node the leader's
  // bundler sends them to.
  two_nodes c{names, "inspect-figures", {"--mock-latency-ms=4000"}};
  for (size_t i = 0; i < names.size(); ++i)
    settled_nodes_view(c, i);
  std::string body = "{\"requests\":[";
  for (int i = 0; i < 40; ++i)
    body += (i > 0 ? "," : "") + request_body(i);
  body += "]}";
  auto accepted = c.http.call("POST", c.nodes[0]->url("/api/v1/comparisons"), body, token);
  REQUIRE(accepted.status == 202);

  // Some node j has calls in flight as node i (not j) sees them.
  size_t viewer = 0, busy = 0;
  json::object seen;
  bool found = eventually(
      [&] {
        for (size_t i = 0; i < names.size(); ++i)
          for (size_t j = 0; j < names.size(); ++j)
            if (i != j) {
              auto n = node_in_view(c, i, names[j]);
              if (in_flight(n) > 0 && n.at("responsive") == true) {
                viewer = i, busy = j, seen = n;
                return true;
              }
            }
        return false;
      },
      20s, 200ms);
  INFO(json::serialize(seen));
  REQUIRE(found);
  CHECK(seen.at("self") == false);
  CHECK(seen.at("figures_age_seconds").to_number<double>() < 3.0);
  // The busy node's own view agrees while the calls last (4 s each).
  auto own = node_in_view(c, busy, names[busy]);
  INFO(json::serialize(own));
  CHECK(own.at("self") == true);
  CHECK(in_flight(own) > 0);

  // The stream's events and the history carry the other node's figures too.
  auto event = stream_event(c, viewer);
  bool in_event = false;
  for (const auto& n : event.at("nodes").as_array())
    if (n.as_object().at("name") == names[busy].c_str())
      in_event = n.as_object().at("responsive") == true && in_flight(n.as_object()) >= 0;
  CHECK(in_event);
  auto history = c.get(viewer, "/api/v1/inspect/history?seconds=30");
  REQUIRE(history.status == 200);
  int64_t most = -1;
  for (const auto& snapshot : history.body.at("snapshots").as_array())
    for (const auto& n : snapshot.as_object().at("nodes").as_array())
      if (n.as_object().at("name") == names[busy].c_str())
        most = std::max(most, in_flight(n.as_object()));
  CHECK(most > 0);

  // The busy node pauses: within a few seconds the other lists it unresponsive with its last
  // figures, growing older, and the view never waits for it.
  c.nodes[busy]->signal(SIGSTOP);
  resume_on_exit resume{*c.nodes[busy]};
  json::object silent;
  bool marked = eventually(
      [&] {
        auto start = std::chrono::steady_clock::now();
        silent = node_in_view(c, viewer, names[busy]);
        CHECK(std::chrono::steady_clock::now() - start < 2s);
        return !silent.empty() && silent.at("responsive") == false
               && silent.at("figures_age_seconds").to_number<double>() >= 1.5;
      },
      15s, 200ms);
  INFO(json::serialize(silent));
  REQUIRE(marked);
  CHECK(std::string{silent.at("error").as_string()}.find("no answer within 500 ms")
        != std::string::npos);
  CHECK(silent.at("actors").to_number<int64_t>() >= 5);
  CHECK(in_flight(silent) >= 0);
}
