// The /api/v1/inspect/* bodies and stream events (runtime/inspect_bodies, and the jobs view
// in runtime/api_bodies): exact text, so a changed field name, order or JSON type shows here
// before the console sees it.

#include "runtime/api_bodies.hpp"
#include "runtime/batch_job_store.hpp"
#include "runtime/inspect_bodies.hpp"

#include <catch2/catch.hpp>

using namespace lps;

namespace {

// 2026-12-07T05:00:00Z.
const caf::timestamp sample_time{std::chrono::seconds{1796619600}};

// A bundler with one recent bundle and a histogram bucket, and a silent provider actor.
inspection_snapshot sample_snapshot() {
  actor_sample bundler;
  bundler.status.name = "bundler";
  bundler.status.kind = "bundler";
  bundler.status.node = "host-1";
  bundler.status.mailbox_size = 3;
  bundler.status.messages_handled = 120;
  bundler.status.figures = {{"inflight_bundles", 2}};
  bundler.status.facts = {{"effective_mode", "serial_bundle"}};
  bundler.status.last_error = "lost the reply";
  bundler.status.tables["recent_bundles"] = {
      {{{"items", 4}, {"duration_ms", 12.5}}, {{"provider", "mock"}, {"outcome", "ok"}}}};
  bundler.status.tables["items_per_call"] = {{{{"items", 4}, {"calls", 7}}, {}}};
  bundler.handled_per_second = 2.5;
  bundler.p50_ms = 0.008;
  bundler.p90_ms = 0.016;
  bundler.p99_ms = 1.024;
  actor_sample silent;
  silent.status.name = "provider:openai";
  silent.status.kind = "provider";
  silent.status.node = "host-1";
  silent.responsive = false;
  return {7, sample_time, "host-1", {bundler, silent}};
}

const char* header = R"({"seq":7,"at":"2026-12-07T05:00:00.000Z","node":"host-1",)";

const char* actors =
    R"("actors":[{"name":"bundler","kind":"bundler","node":"host-1","responsive":true,)"
    R"("mailbox_size":3,"messages_handled":120,"handled_per_second":2.5,)"
    R"("processing_ms":{"p50":0.008,"p90":0.016,"p99":1.024},"last_error":"lost the reply",)"
    R"("figures":{"inflight_bundles":2.0},"facts":{"effective_mode":"serial_bundle"}},)"
    R"({"name":"provider:openai","kind":"provider","node":"host-1","responsive":false,)"
    R"("mailbox_size":0,"messages_handled":0,"handled_per_second":0.0,)"
    R"("processing_ms":{"p50":0.0,"p90":0.0,"p99":0.0},"last_error":null,)"
    R"("figures":{},"facts":{}}])";

} // namespace

TEST_CASE("the actors view lists every actor with its rate, percentiles and last error") {
  CHECK(render_inspect_view(sample_snapshot(), inspect_view::actors)
        == std::string{header} + actors + "}");
}

TEST_CASE("the bundles view joins the actors' rows, figures and facts in name order") {
  CHECK(render_inspect_view(sample_snapshot(), inspect_view::bundles)
        == std::string{header}
               + R"("recent_bundles":[{"duration_ms":12.5,"items":4,"outcome":"ok",)"
                 R"("provider":"mock"}],"items_per_call":[{"calls":7,"items":4}],)"
                 R"("tables_node":"host-1","tables_error":null})");
}

TEST_CASE("the queue and providers views are empty lists when no actor has such a table") {
  CHECK(render_inspect_view(sample_snapshot(), inspect_view::queue)
        == std::string{header} + R"("queue":[],"tables_node":"host-1","tables_error":null})");
  CHECK(render_inspect_view(sample_snapshot(), inspect_view::providers)
        == std::string{header} + R"("providers":[],"tables_node":"host-1","tables_error":null})");
}

namespace {

// The sample with a provider actor that has calls in flight (bundles and gateway calls).
inspection_snapshot with_busy_provider() {
  auto x = sample_snapshot();
  actor_sample provider;
  provider.status.name = "provider:anthropic";
  provider.status.kind = "provider";
  provider.status.figures = {{"inflight_bundles", 3}, {"inflight_gateway_calls", 1}};
  x.actors.push_back(provider);
  return x;
}

const char* this_node_alone =
    R"("cluster":null,"nodes":[{"name":"host-1","self":true,"address":null,"leader":null,)"
    R"("state":"up","last_heartbeat":null,"heartbeat_age_seconds":null,"version":"1.2.3",)"
    R"("in_flight_calls":4,"actors":3,"unresponsive_actors":1,"figures_age_seconds":0.0,)"
    R"("responsive":true,"error":null}]})";

// Two nodes of a cluster led by node-b at epoch 7; the snapshot is node-a's.
node_directory two_nodes() {
  inspect_cluster c;
  c.leader = "node-b";
  c.epoch = 7;
  c.lease_seconds = 5;
  c.nodes = {{"node-a", "127.0.0.1:4101", false, "up", "2026-12-07T05:00:00.000Z", 0.25, "1.2.3"},
             {"node-b", "127.0.0.1:4102", true, "suspect", "2026-12-07T04:59:57.000Z", 3, "1.2.4"}};
  return {"1.2.3", c};
}

} // namespace

TEST_CASE("the nodes view lists this node alone outside a cluster, with its calls in flight") {
  auto x = with_busy_provider();
  node_directory single{"1.2.3", std::nullopt};
  CHECK(render_inspect_view(x, inspect_view::nodes, &single)
        == std::string{header} + this_node_alone);
  // Without a directory (a caller that knows no version) the version is null.
  CHECK(render_inspect_view(x, inspect_view::nodes).find(R"("version":null,)")
        != std::string::npos);
}

TEST_CASE("the nodes view lists every node of the cluster, this one with its own figures, the "
          "others with theirs as they last answered") {
  auto x = with_busy_provider();
  x.node = "node-a";
  for (auto& a : x.actors)
    if (!a.status.node.empty())
      a.status.node = "node-a";
  // The leader's singletons it lists are not this node's actors.
  actor_sample singleton;
  singleton.status.name = "leader.queue_manager";
  singleton.status.node = "node-b";
  singleton.responsive = false;
  x.actors.push_back(singleton);
  // node-b answered two seconds ago and not this second.
  x.peers = {
      {"node-b", 41, sample_time - std::chrono::seconds{2}, 6, 9, 1, "no answer within 500 ms"}};
  auto dir = two_nodes();
  CHECK(render_inspect_view(x, inspect_view::nodes, &dir)
        == R"({"seq":7,"at":"2026-12-07T05:00:00.000Z","node":"node-a",)"
           R"("cluster":{"leader":"node-b","epoch":7,"lease_seconds":5.0,"error":null},)"
           R"("nodes":[{"name":"node-a","self":true,"address":"127.0.0.1:4101","leader":false,)"
           R"("state":"up","last_heartbeat":"2026-12-07T05:00:00.000Z",)"
           R"("heartbeat_age_seconds":0.25,"version":"1.2.3","in_flight_calls":4,"actors":3,)"
           R"("unresponsive_actors":1,"figures_age_seconds":0.0,"responsive":true,"error":null},)"
           R"({"name":"node-b","self":false,"address":"127.0.0.1:4102","leader":true,)"
           R"("state":"suspect","last_heartbeat":"2026-12-07T04:59:57.000Z",)"
           R"("heartbeat_age_seconds":3.0,"version":"1.2.4","in_flight_calls":6,"actors":9,)"
           R"("unresponsive_actors":1,"figures_age_seconds":2.0,"responsive":false,)"
           R"("error":"no answer within 500 ms"}]})");
  // Its figures this second; a node never heard of is unknown rather than zero.
  x.peers[0].error.clear();
  CHECK(render_inspect_view(x, inspect_view::nodes, &dir)
            .ends_with(R"("in_flight_calls":6,"actors":9,"unresponsive_actors":1,)"
                       R"("figures_age_seconds":2.0,"responsive":true,"error":null}]})"));
  x.peers = {{"node-b", 0, {}, 0, 0, 0, "not connected"}};
  CHECK(render_inspect_view(x, inspect_view::nodes, &dir)
            .ends_with(
                R"("in_flight_calls":null,"actors":null,"unresponsive_actors":null,)"
                R"("figures_age_seconds":null,"responsive":false,"error":"not connected"}]})"));
  x.peers.clear();
  CHECK(render_inspect_view(x, inspect_view::nodes, &dir)
            .ends_with(R"("in_flight_calls":null,"actors":null,"unresponsive_actors":null,)"
                       R"("figures_age_seconds":null,"responsive":null,"error":null}]})"));
}

TEST_CASE("a cluster whose registry could not be read still lists this node, with the reason") {
  auto x = with_busy_provider();
  inspect_cluster unread;
  unread.error = "connection refused";
  node_directory dir{"1.2.3", unread};
  auto body = render_inspect_view(x, inspect_view::nodes, &dir);
  CHECK(body
        == std::string{header}
               + R"("cluster":{"leader":null,"epoch":0,"lease_seconds":0.0,)"
                 R"("error":"connection refused"},)"
               + std::string{this_node_alone}.substr(std::string{R"("cluster":null,)"}.size()));
}

TEST_CASE("a stream event holds every view of the snapshot") {
  auto dir = two_nodes();
  auto all = render_inspect_view(sample_snapshot(), inspect_view::all, &dir);
  CHECK(all.starts_with(std::string{header} + actors + R"(,"queue":[],"recent_bundles":[)"));
  CHECK(all.find(R"("providers":[],"cluster":{"leader":"node-b","epoch":7,)") != std::string::npos);
  // host-1 is not in the registry (yet): it is listed after the cluster's nodes.
  CHECK(all.ends_with(R"("in_flight_calls":null,"actors":null,"unresponsive_actors":null,)"
                      R"("figures_age_seconds":null,"responsive":null,"error":null},)"
                      R"({"name":"host-1","self":true,"address":null,"leader":null,"state":"up",)"
                      R"("last_heartbeat":null,"heartbeat_age_seconds":null,"version":"1.2.3",)"
                      R"("in_flight_calls":0,"actors":2,"unresponsive_actors":1,)"
                      R"("figures_age_seconds":0.0,"responsive":true,"error":null}],)"
                      R"("tables_node":"host-1","tables_error":null})"));
}

TEST_CASE("the history lists snapshots oldest first, each with its actors and every node's "
          "figures") {
  auto first = sample_snapshot();
  first.actors.pop_back();
  first.actors[0].status.tables.clear();
  auto second = first;
  second.seq = 8;
  second.at = sample_time + std::chrono::seconds{1};
  auto body = render_inspect_history({first, second}, 60);
  CHECK(body.starts_with(R"({"seconds":60,"snapshots":[{"seq":7,"at":"2026-12-07T05:00:00.000Z",)"
                         R"("node":"host-1","actors":[{"name":"bundler",)"));
  CHECK(body.find(R"(]},{"seq":8,"at":"2026-12-07T05:00:01.000Z","node":"host-1","actors":[)")
        != std::string::npos);
  CHECK(body.ends_with(R"("facts":{"effective_mode":"serial_bundle"}}],"nodes":[)"
                       R"({"name":"host-1","in_flight_calls":0,"actors":1,"unresponsive_actors":0,)"
                       R"("figures_age_seconds":0.0,"responsive":true,"error":null}]}]})"));
  // In a cluster each snapshot has every node's figures as they answered that second.
  second.peers = {{"host-2", 3, second.at - std::chrono::milliseconds{500}, 2, 8, 0, ""}};
  CHECK(render_inspect_history({second}, 1)
            .ends_with(R"("figures_age_seconds":0.0,"responsive":true,"error":null},)"
                       R"({"name":"host-2","in_flight_calls":2,"actors":8,"unresponsive_actors":0,)"
                       R"("figures_age_seconds":0.5,"responsive":true,"error":null}]}]})"));
  CHECK(render_inspect_history({}, 5) == R"({"seconds":5,"snapshots":[]})");
}

TEST_CASE("the jobs view adds each batch job's progress") {
  batch_job_record job;
  job.job_id = "bj-1";
  job.provider = "openai";
  job.model = "gpt-4o";
  job.state = "submitted";
  job.item_count = 8;
  job.succeeded = 5;
  job.failed = 1;
  CHECK(render_inspect_jobs({job})
        == R"({"jobs":[{"job_id":"bj-1","provider":"openai","model":"gpt-4o",)"
           R"("state":"submitted","provider_job_id":"","provider_status":"","item_count":8,)"
           R"("succeeded":5,"failed":1,"cancel_requested":false,"created_at_ms":null,)"
           R"("submitted_at_ms":null,"ended_at_ms":null,"updated_at_ms":null,"last_error":"",)"
           R"("done":6,"progress":0.75}]})");
  job.item_count = 0;
  job.succeeded = job.failed = 0;
  CHECK(render_inspect_jobs({job}).ends_with(R"("done":0,"progress":0.0}]})"));
}

namespace {

// A follower's snapshot: its own bundler (no tables in a cluster) and the leader's
// singletons as the leader's node actor answered for them.
inspection_snapshot follower_snapshot(bool leader_answered) {
  auto x = sample_snapshot();
  x.node = "node-a";
  actor_sample leader;
  if (leader_answered) {
    leader.status.name = "leader.queue_manager";
    leader.status.kind = "queue_manager";
    leader.status.node = "node-b";
    leader.status.facts = {{"role", "leader"}};
    leader.status.tables["queue"] = {{{{"waiting", 3}}, {{"provider", "mock"}}}};
  } else {
    leader.responsive = false;
    leader.status.name = leader.status.kind = "leader";
    leader.status.node = "node-b";
    leader.status.facts = {{"role", "leader"}, {"unresponsive", "request_timeout"}};
  }
  x.actors.push_back(leader);
  return x;
}

actor_status status_named(std::string name, std::string node) {
  actor_status x;
  x.name = std::move(name);
  x.kind = "intake";
  x.node = std::move(node);
  x.messages_handled = 4;
  return x;
}

} // namespace

TEST_CASE("in a cluster the tables views name the leader's node, or why it did not answer") {
  CHECK(
      render_inspect_view(follower_snapshot(true), inspect_view::queue)
      == R"({"seq":7,"at":"2026-12-07T05:00:00.000Z","node":"node-a",)"
         R"("queue":[{"provider":"mock","waiting":3}],"tables_node":"node-b","tables_error":null})");
  CHECK(render_inspect_view(follower_snapshot(false), inspect_view::providers)
        == R"({"seq":7,"at":"2026-12-07T05:00:00.000Z","node":"node-a","providers":[],)"
           R"("tables_node":null,)"
           R"("tables_error":"the leader's singletons did not answer: request_timeout"})");
  // The actors and nodes views name no tables.
  CHECK(render_inspect_view(follower_snapshot(true), inspect_view::actors).find("tables_node")
        == std::string::npos);
}

TEST_CASE("?node=all on /api/v1/inspect lists every node, the silent ones with the reason") {
  std::vector<node_answer> nodes{{"node-a", "", {status_named("intake", "node-a")}, {}},
                                 {"node-b", "no answer within 500 ms", {}, {}}};
  CHECK(render_nodes_inspection("node-a", nodes)
        == R"({"node":"node-a","nodes":[)"
           R"({"name":"node-a","responsive":true,"error":null,"actors":1},)"
           R"({"name":"node-b","responsive":false,"error":"no answer within 500 ms","actors":0}],)"
           R"("actors":[{"name":"intake","kind":"intake","node":"node-a","mailbox_size":0,)"
           R"("messages_handled":4,"last_error":null,"figures":{},"facts":{}}]})");
}

TEST_CASE("?node=all on the actors view gathers every node's newest snapshot") {
  auto a = sample_snapshot();
  a.actors.pop_back();
  std::vector<node_answer> nodes{{"host-1", "", {}, a}, {"host-2", "not connected yet", {}, {}}};
  auto body = render_nodes_actors("host-2", nodes);
  CHECK(body.starts_with(
      R"({"node":"host-2","nodes":[{"name":"host-1","responsive":true,"error":null,"actors":1,)"
      R"("seq":7,"at":"2026-12-07T05:00:00.000Z"},)"
      R"({"name":"host-2","responsive":false,"error":"not connected yet","actors":0}],)"
      R"("actors":[{"name":"bundler","kind":"bundler","node":"host-1","responsive":true,)"));
  CHECK(body.ends_with(R"("facts":{"effective_mode":"serial_bundle"}}]})"));
}
