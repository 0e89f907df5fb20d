// The leader link (issue #11, docs/cluster.md "New work reaches the leader") with real
// processes: two lps nodes on one database of the test run's PostgreSQL server, node-1 leading,
// each node actor on a free loopback port, the mock provider server (tools/mock_provider) as
// every node's openai provider.
// - The requests a follower stores reach the leader by a message through the middleman, each
//   indexed once although the store's notification and poll see it too.
// - A leader the follower cannot reach through the middleman (it advertises an address nobody
//   listens on) still gets every request, from the store; the follower's status, providers and
//   health say that the leader's detail is unavailable.
// - A follower's status shows the leader's last retryable failure and next attempt time, its
//   /api/v1/providers and /healthz the leader's breakers.
// - A cancel on a follower while the leader does not answer (SIGSTOP) is 202 cancel_requested,
//   and the leader applies it once it runs again.

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

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <sstream>
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

/// node-1 (the leader, started first) and node-2 on one database, both calling the mock
/// provider server as openai.
struct leader_and_follower {
  test::cluster_database database;
  mock_provider_server mock;
  scoped_env backend{"LLM_PROVIDER_SERVICE_STORE_BACKEND", "postgres"};
  scoped_env url;
  scoped_env key{"OPENAI_API_KEY", "test-key"};
  std::vector<std::unique_ptr<test::temp_dir>> dirs;
  std::vector<std::unique_ptr<test::lps_process>> nodes;
  test::json_client http;
  test::client raw;

  /// `leader_flags` go to node-1 only, `flags` to both.
  leader_and_follower(const std::string& name, mock_provider_options mock_options,
                      std::vector<std::string> flags, std::vector<std::string> leader_flags = {})
      : database(name), url("LLM_PROVIDER_SERVICE_POSTGRES_URL", database.url) {
    std::string error;
    REQUIRE(mock.start(mock_options, error));
    std::vector<std::string> common{
        "--cluster-enabled=true", "--cluster-port=0", "--default-llm-provider=openai",
        "--openai-base-url=http://127.0.0.1:" + std::to_string(mock.port()) + "/v1"};
    common.insert(common.end(), flags.begin(), flags.end());
    auto first = common;
    first.insert(first.end(), leader_flags.begin(), leader_flags.end());
    start_node(first);
    REQUIRE(eventually([&] { return leader_seen_by(0) == "node-1"; }, 15s));
    start_node(common);
    REQUIRE(eventually([&] { return leader_seen_by(1) == "node-1"; }, 15s));
  }

  void start_node(std::vector<std::string> args) {
    args.push_back("--cluster-node-name=node-" + std::to_string(nodes.size() + 1));
    dirs.push_back(std::make_unique<test::temp_dir>());
    nodes.push_back(std::make_unique<test::lps_process>(dirs.back()->str(), args));
    REQUIRE(nodes.back()->port() != 0);
  }

  test::lps_process& leader() {
    return *nodes.at(0);
  }
  test::lps_process& follower() {
    return *nodes.at(1);
  }

  std::string leader_seen_by(size_t asked) {
    auto view = http.call("GET", nodes.at(asked)->url("/api/v1/cluster"));
    const auto* leader = view.body.if_contains("leader");
    if (view.status != 200 || leader == nullptr || !leader->is_string())
      return "";
    return std::string{leader->as_string()};
  }

  /// The "provider_state" member of a node's `path` answer (null when missing).
  json::value provider_state(test::lps_process& node, const std::string& path) {
    auto answer = http.call("GET", node.url(path));
    const auto* state = answer.body.if_contains("provider_state");
    return state != nullptr ? *state : json::value{};
  }

  /// The follower's node actor reached the leader's: its providers come from node-1.
  bool follower_linked() {
    return provider_state(follower(), "/api/v1/providers")
           == json::value{{"node", "node-1"}, {"leader", true}};
  }

  /// The value of an unlabelled counter in node i's /metrics (0 when not exposed yet).
  double counter(test::lps_process& node, const std::string& name) {
    auto res = raw.call("GET", node.url("/metrics"), {}, "");
    std::istringstream lines{res.body};
    for (std::string line; std::getline(lines, line);)
      if (line.rfind(name + " ", 0) == 0)
        return std::stod(line.substr(name.size() + 1));
    return 0;
  }

  /// Posts `n` requests to the follower in bulk posts of `per_post`; the queue ids.
  std::vector<std::string> submit(int n, int per_post, const std::string& callback_url) {
    std::vector<std::string> ids;
    for (int start = 0; start < n; start += per_post) {
      std::string body = "{\"requests\":[";
      for (int i = start; i < std::min(n, start + per_post); ++i)
        body += std::string{i > start ? "," : ""}
                + "{\"user_prompt\":" + json_quote("Which essay is better? " + std::to_string(i))
                + ",\"callback_url\":" + json_quote(callback_url)
                + ",\"metadata\":{\"essay_a_id\":\"a\",\"essay_b_id\":\"b\"}}";
      body += "]}";
      auto answer = http.call("POST", follower().url("/api/v1/comparisons"), body);
      INFO(json::serialize(answer.body));
      REQUIRE(answer.status == 202);
      for (const auto& item : answer.body.at("results").as_array())
        ids.emplace_back(item.as_object().at("queue_id").as_string());
    }
    return ids;
  }

  /// Posts `n` requests to the follower one at a time, each after the previous one reached
  /// the mock provider; the times from each 202 to its provider call, sorted (the figure of
  /// docs/benchmarks.md, "Cluster": how fast the leader takes in another node's request).
  std::vector<double> pickup_ms(int n) {
    std::vector<double> result;
    for (int i = 0; i < n; ++i) {
      auto before = mock.stats().calls;
      auto answer = http.call("POST", follower().url("/api/v1/comparison"),
                              R"({"user_prompt":"A or B?","metadata":)"
                              R"({"essay_a_id":"a","essay_b_id":"b"}})");
      REQUIRE(answer.status == 202);
      auto accepted = std::chrono::steady_clock::now();
      auto waited = [&] { return std::chrono::steady_clock::now() - accepted; };
      while (mock.stats().calls == before && waited() < 10s)
        std::this_thread::sleep_for(200us);
      REQUIRE(waited() < 10s);
      result.push_back(std::chrono::duration<double, std::milli>(waited()).count());
    }
    std::sort(result.begin(), result.end());
    return result;
  }

  json::object status_at_follower(const std::string& id) {
    return http.call("GET", follower().url("/api/v1/status/" + id)).body;
  }
};

} // namespace

TEST_CASE("requests a follower stores reach the leader by message and are indexed once",
          "[cluster]") {
  mock_provider_options mock_options;
  mock_options.latency = 20ms;
  leader_and_follower c{"link-messages", mock_options, {"--cluster-lease-seconds=5"}};
  REQUIRE(eventually([&] { return c.follower_linked(); }, 15s));
  test::receiver rx;
  // Small posts: many commits, each its own message (or several in one, gathered).
  auto ids = c.submit(300, 5, rx.url());
  auto db = c.database.connect();
  test::require_exactly_once(*db, rx, ids);
  // Every request came by message (the middleman loses nothing between two live nodes), and
  // the store's notification and poll, which saw each one too, indexed none a second time.
  CHECK(c.counter(c.leader(), "llm_provider_cluster_new_work_by_message_total") == 300);
  CHECK(c.counter(c.leader(), "llm_provider_cluster_adopted_total") == 300);
  // The follower forwards; it indexes nothing itself.
  CHECK(c.counter(c.follower(), "llm_provider_cluster_adopted_total") == 0);

  auto pickup = c.pickup_ms(50);
  std::printf("pick-up by message: 202 on the follower to the provider call p50 %.1f ms, "
              "p90 %.1f ms, max %.1f ms\n",
              pickup[25], pickup[45], pickup.back());
  CHECK(c.counter(c.leader(), "llm_provider_cluster_new_work_by_message_total") == 350);
}

TEST_CASE("a leader the follower cannot reach by the middleman still gets every request from "
          "the store, and the follower says the leader's detail is unavailable",
          "[cluster]") {
  mock_provider_options mock_options;
  mock_options.latency = 20ms;
  // node-1 listens on 127.0.0.1 but registers 127.0.0.9: node-2 cannot dial it (node-1 still
  // dials node-2, whose providers take bundles).
  leader_and_follower c{"link-unreachable",
                        mock_options,
                        {"--cluster-lease-seconds=5", "--mock-latency-ms=5000"},
                        {"--cluster-advertise-host=127.0.0.9"}};
  std::this_thread::sleep_for(3s); // a few ticks: the follower tried to reach the leader
  CHECK(c.provider_state(c.follower(), "/api/v1/providers")
        == json::value{{"node", "node-2"}, {"leader", false}});
  auto health = c.http.call("GET", c.follower().url("/healthz"));
  CHECK(health.status == 200);
  CHECK(health.body.at("status") == "degraded");
  CHECK(health.body.at("provider_state") == json::value{{"node", "node-2"}, {"leader", false}});
  CHECK(json::serialize(health.body.at("warnings")).find("the leader did not answer")
        != std::string::npos);

  test::receiver rx;
  auto ids = c.submit(100, 5, rx.url());
  auto db = c.database.connect();
  test::require_exactly_once(*db, rx, ids);
  CHECK(c.counter(c.leader(), "llm_provider_cluster_new_work_by_message_total") == 0);
  CHECK(c.counter(c.leader(), "llm_provider_cluster_adopted_total") == 100);

  auto pickup = c.pickup_ms(50);
  std::printf("pick-up from the store: 202 on the follower to the provider call p50 %.1f ms, "
              "p90 %.1f ms, max %.1f ms\n",
              pickup[25], pickup[45], pickup.back());

  // A request still held (lps's own mock takes 5 s a call): the store's answer, and why the
  // rest is missing.
  auto held = c.http.call("POST", c.follower().url("/api/v1/comparison"),
                          R"({"user_prompt":"A or B?","llm_config_overrides":)"
                          R"({"provider_override":"mock"},)"
                          R"("metadata":{"essay_a_id":"a","essay_b_id":"b"}})");
  REQUIRE(held.status == 202);
  auto status = c.status_at_follower(std::string{held.body.at("queue_id").as_string()});
  INFO(json::serialize(status));
  CHECK(status.at("status") != "completed");
  CHECK(status.at("detail_unavailable").as_string().find("the leader did not answer")
        != std::string::npos);
  CHECK(status.at("last_error").is_null());
}

TEST_CASE("a follower shows the leader's last retryable failure, next attempt time and "
          "breakers",
          "[cluster]") {
  mock_provider_options mock_options;
  mock_options.error_rate = 1.0;
  mock_options.error_codes = {503};
  // One failure opens the breaker for a minute; the retry waits 30 s: the request stays in
  // backoff at the leader while the test looks.
  leader_and_follower c{"link-status",
                        mock_options,
                        {"--cluster-lease-seconds=5", "--circuit-breaker-failure-threshold=1",
                         "--circuit-breaker-open-seconds=60", "--retry-base-delay-ms=30000",
                         "--retry-max-delay-ms=30000"}};
  REQUIRE(eventually([&] { return c.follower_linked(); }, 15s));
  test::receiver rx;
  auto id = c.submit(1, 1, rx.url()).front();
  json::object status;
  REQUIRE(eventually(
      [&] {
        status = c.status_at_follower(id);
        const auto* error = status.if_contains("last_error");
        return error != nullptr && !error->is_null();
      },
      20s));
  INFO(json::serialize(status));
  CHECK(status.at("status") == "queued");
  CHECK(status.at("attempts") == 1);
  CHECK(status.at("last_error").at("code").is_string());
  CHECK(status.at("next_attempt_at").is_string());
  CHECK_FALSE(status.contains("detail_unavailable"));

  // The follower's providers are the leader's: its breaker is open, as the leader reports.
  auto at_leader = c.http.call("GET", c.leader().url("/api/v1/providers")).body;
  auto at_follower = c.http.call("GET", c.follower().url("/api/v1/providers")).body;
  auto circuit_of = [](const json::object& body) {
    for (const auto& p : body.at("providers").as_array())
      if (p.at("name") == "openai")
        return std::string{p.at("circuit_state").as_string()};
    return std::string{};
  };
  INFO(json::serialize(at_follower));
  CHECK(circuit_of(at_leader) == "open");
  CHECK(circuit_of(at_follower) == "open");
  CHECK(at_follower.at("provider_state") == json::value{{"node", "node-1"}, {"leader", true}});
  CHECK(at_leader.at("provider_state") == json::value{{"node", "node-1"}, {"leader", true}});
  auto health = c.http.call("GET", c.follower().url("/healthz"));
  CHECK(health.body.at("provider_state") == json::value{{"node", "node-1"}, {"leader", true}});
}

TEST_CASE("a cancel on a follower that the leader does not answer within 5 s is 202 "
          "cancel_requested, and the leader applies it when it runs again",
          "[cluster]") {
  mock_provider_options mock_options;
  mock_options.latency = 1500ms;
  // A 30 s lease: the paused leader keeps it, so nobody answers the cancel meanwhile.
  leader_and_follower c{"link-cancel",
                        mock_options,
                        {"--cluster-lease-seconds=30", "--openai-max-concurrent-calls=1",
                         "--serial-bundle-max-requests-per-call=1"}};
  test::receiver rx;
  // One call at a time per node: two processing, and the last waits behind two more calls
  // (3 s), long after the leader resumes and applies the cancel.
  auto ids = c.submit(5, 5, rx.url());
  REQUIRE(
      eventually([&] { return c.status_at_follower(ids[0]).at("status") == "processing"; }, 15s));
  c.leader().signal(SIGSTOP);
  auto asked_at = std::chrono::steady_clock::now();
  auto answer = c.http.call("POST", c.follower().url("/api/v1/requests/" + ids[4] + "/cancel"));
  auto waited = std::chrono::steady_clock::now() - asked_at;
  c.leader().signal(SIGCONT);
  INFO(json::serialize(answer.body));
  CHECK(answer.status == 202);
  CHECK(answer.body.at("status") == "cancel_requested");
  CHECK(answer.body.at("queue_id").as_string() == ids[4]);
  CHECK(waited >= 4500ms);
  // The leader applies the open cancel once it runs again: one CANCELLED result.
  auto db = c.database.connect();
  test::require_exactly_once(*db, rx, ids);
  CHECK(count_of(*db, "SELECT count(*) FROM results WHERE event_json LIKE '%CANCELLED%' AND "
                      "queue_id = '"
                          + ids[4] + "'")
        == 1);
}
