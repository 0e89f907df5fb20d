// The inspector: one status per registered actor.

#include "actors/node.hpp"
#include "fixtures/pipeline.hpp"
#include "runtime/inspect_bodies.hpp"
#include "runtime/system_config.hpp"

#include <boost/json.hpp>
#include <caf/scoped_actor.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

using namespace lps;
using namespace lps::test;

TEST_CASE("the inspector reports every actor") {
  pipeline_fixture fx;
  fx.start_bundler(queue_processing_mode::serial_bundle, 4);
  auto insp = fx.spawn(inspector,
                       inspector_config{{fx.intake_hdl, fx.queue, fx.bundler_hdl, fx.metrics_hdl}});
  auto rh = fx.self->request(insp, caf::infinite, atom::inspect_v);
  fx.settle();
  std::vector<actor_status> xs;
  rh.receive([&](std::vector<actor_status>& x) { xs = std::move(x); },
             [&](caf::error& err) { FAIL(caf::to_string(err)); });
  std::set<std::string> kinds;
  for (const auto& x : xs)
    kinds.insert(x.kind);
  CHECK(kinds
        == std::set<std::string>{"inspector", "intake", "queue_manager", "bundler", "metrics"});
}

TEST_CASE("the inspector reports the messages each actor handled, counted once on arrival") {
  pipeline_fixture fx;
  auto metrics_hdl = fx.spawn(metrics); // on its own: no peer records into it
  for (int i = 0; i < 2; ++i)
    fx.self->send(metrics_hdl, atom::record_v, std::vector<metric_sample>{});
  REQUIRE(fx.request<std::string>(metrics_hdl, atom::render_v));
  for (int i = 0; i < 3; ++i)
    fx.self->send(fx.intake_hdl, atom::stop_v);
  auto insp = fx.spawn(inspector, inspector_config{{metrics_hdl, fx.intake_hdl}});
  auto inspect = [&] {
    auto xs = fx.request<std::vector<actor_status>>(insp, atom::inspect_v);
    REQUIRE(xs);
    std::map<std::string, uint64_t> result;
    for (const auto& x : *xs)
      result[x.kind] = x.messages_handled;
    return result;
  };
  // Each count includes the status question that reported it.
  CHECK(inspect()
        == std::map<std::string, uint64_t>{
            {"inspector", 1}, {"metrics", 2 + 1 + 1}, {"intake", 3 + 1}});
  // Asked again: one more inspect, and one more status each.
  CHECK(inspect()
        == std::map<std::string, uint64_t>{
            {"inspector", 2}, {"metrics", 2 + 1 + 2}, {"intake", 3 + 2}});
}

TEST_CASE("the metrics actor reports the time-to-result histogram as cumulative figures") {
  pipeline_fixture fx;
  auto metrics_hdl = fx.spawn(metrics);
  fx.self->send(metrics_hdl, atom::record_v,
                std::vector<metric_sample>{
                    {"llm_provider_queue_wait_time_seconds", {"serial_bundle", "success"}, 0.2},
                    {"llm_provider_queue_wait_time_seconds", {"serial_bundle", "failure"}, 0.3},
                    {"llm_provider_queue_wait_time_seconds", {"serial_bundle", "success"}, 7}});
  auto status = fx.request<actor_status>(metrics_hdl, atom::status_v);
  REQUIRE(status);
  const auto& f = status->figures;
  CHECK(f.at("time_to_result_le_0.1") == 0);
  CHECK(f.at("time_to_result_le_0.5") == 2);
  CHECK(f.at("time_to_result_le_5") == 2);
  CHECK(f.at("time_to_result_le_10") == 3);
  CHECK(f.at("time_to_result_le_+Inf") == 3);
  size_t buckets = 0;
  for (const auto& [key, value] : f)
    buckets += key.starts_with("time_to_result_le_") ? 1 : 0;
  CHECK(buckets == 15); // 14 bounds and +Inf
}

namespace {

// A target that answers every status question with `answer` (its own count of questions as
// messages handled, so rates can be checked).
status_client_actor::behavior_type fixed_target(status_client_actor::pointer, actor_status answer) {
  auto asked = std::make_shared<uint64_t>(0);
  return {[=](atom::status) {
    auto result = answer;
    result.messages_handled = ++*asked;
    return result;
  }};
}

// A target that takes the status question and never answers it.
status_client_actor::behavior_type silent_target(status_client_actor::pointer self) {
  return {[=](atom::status) -> caf::result<actor_status> {
    return self->make_response_promise<actor_status>();
  }};
}

// The inspector's snapshots so far (at most 600), oldest first.
std::vector<inspection_snapshot> history(deterministic_fixture& fx,
                                         const inspector_impl_actor& insp) {
  auto xs = fx.request<std::vector<inspection_snapshot>>(insp, atom::history_v, uint32_t{600});
  REQUIRE(xs);
  return *xs;
}

} // namespace

TEST_CASE("a flooded actor answers the inspector before its backlog: the question is urgent") {
  deterministic_fixture fx;
  auto metrics_hdl = fx.spawn(metrics);
  inspector_config cfg{{metrics_hdl}};
  cfg.interval = caf::timespan::zero();
  auto insp = fx.spawn(inspector, cfg);
  // 100,000 messages wait in the metrics actor's mailbox (the issue's flood).
  for (int i = 0; i < 100'000; ++i)
    fx.self->send(metrics_hdl, atom::record_v, std::vector<metric_sample>{});
  auto rh = fx.self->request(insp, caf::infinite, atom::inspect_v);
  // The inspector asks first, so its question lands behind the flood; then everything runs.
  REQUIRE(fx.sched.prioritize(insp));
  fx.sched.run_once();
  fx.sched.run();
  std::vector<actor_status> xs;
  rh.receive([&](std::vector<actor_status>& x) { xs = std::move(x); },
             [&](caf::error& err) { FAIL(caf::to_string(err)); });
  REQUIRE(xs.size() == 2);
  CHECK(xs[1].kind == "metrics");
  // It answered with (almost) the whole flood still waiting; asked with normal priority it
  // would have answered after the flood, with an empty mailbox.
  CHECK(xs[1].mailbox_size > 99'900);
}

namespace {

using slow_actor = caf::typed_actor<caf::reacts_to<atom::wake>>::extend_with<status_client_actor>;

struct slow_state {
  static inline const char* name = "slow";
  actor_stats stats;
};

// Each `wake` takes a millisecond until `fast` is set: a flood of 100,000 is 100 s of work.
slow_actor::behavior_type slow(slow_actor::stateful_pointer<slow_state> self,
                               std::shared_ptr<std::atomic<bool>> fast) {
  return counted(
      self,
      [=](atom::wake) {
        if (!*fast)
          std::this_thread::sleep_for(std::chrono::milliseconds{1});
      },
      [=](atom::status) { return status_header(self, "slow", "test", self->state.stats); });
}

} // namespace

TEST_CASE("an actor flooded with 100,000 messages answers the inspector within 500 ms, on real "
          "threads and a real clock") {
  system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto fast = std::make_shared<std::atomic<bool>>(false);
  auto target = sys.spawn(slow, fast);
  for (int i = 0; i < 100'000; ++i)
    self->send(target, atom::wake_v);
  inspector_config icfg{{caf::actor_cast<status_client_actor>(target)}};
  icfg.interval = caf::timespan::zero();
  auto insp = sys.spawn(inspector, icfg);
  auto start = std::chrono::steady_clock::now();
  std::vector<actor_status> xs;
  self->request(insp, std::chrono::seconds{5}, atom::inspect_v)
      .receive([&](std::vector<actor_status>& x) { xs = std::move(x); },
               [&](caf::error& err) { FAIL(caf::to_string(err)); });
  auto took = std::chrono::steady_clock::now() - start;
  *fast = true; // the backlog drains in moments, so the system can stop
  REQUIRE(xs.size() == 2);
  CHECK(xs[1].name == "slow"); // it answered itself: not listed as unresponsive
  CHECK(xs[1].facts.count("unresponsive") == 0);
  CHECK(xs[1].mailbox_size > 99'000);
  CHECK(took < std::chrono::milliseconds{500});
  self->send_exit(target, caf::exit_reason::user_shutdown);
  self->send_exit(insp, caf::exit_reason::user_shutdown);
}

TEST_CASE("an actor that does not answer within 500 ms is shown as unresponsive") {
  deterministic_fixture fx;
  auto silent = fx.spawn(silent_target);
  inspector_config cfg{{silent}};
  cfg.interval = caf::timespan::zero();
  auto insp = fx.spawn(inspector, cfg);
  auto rh = fx.self->request(insp, caf::infinite, atom::inspect_v);
  fx.sched.run(); // the inspector asks now; the target keeps the question
  fx.advance(std::chrono::milliseconds{499});
  CHECK(fx.self->mailbox().empty()); // still waiting at 499 ms
  fx.advance(std::chrono::milliseconds{1});
  REQUIRE(!fx.self->mailbox().empty());
  std::vector<actor_status> xs;
  rh.receive([&](std::vector<actor_status>& x) { xs = std::move(x); },
             [&](caf::error& err) { FAIL(caf::to_string(err)); });
  REQUIRE(xs.size() == 2);
  CHECK(xs[1].facts.count("unresponsive") == 1);
}

TEST_CASE("the inspector samples every second: rates, node, and an unresponsive actor by name") {
  deterministic_fixture fx;
  actor_status answer{"worker", "provider", 0, 0, {}, {}};
  answer.processing_time_counts = std::vector<uint64_t>(processing_time_buckets, 0);
  answer.processing_time_counts[3] = 99; // 4 to 8 us
  answer.processing_time_counts[10] = 1; // 512 to 1024 us
  auto target = fx.spawn(fixed_target, answer);
  auto silent = fx.spawn(silent_target);
  inspector_config cfg{{target, silent}};
  cfg.node = "node-a";
  auto insp = fx.spawn(inspector, cfg);
  CHECK(history(fx, insp).empty());
  fx.advance(std::chrono::seconds{1}); // first sample asked; the silent one holds it back
  CHECK(history(fx, insp).empty());
  fx.advance(std::chrono::milliseconds{500});
  auto xs = history(fx, insp);
  REQUIRE(xs.size() == 1);
  CHECK(xs[0].seq == 1);
  CHECK(xs[0].node == "node-a");
  REQUIRE(xs[0].actors.size() == 3);
  CHECK(xs[0].actors[0].status.kind == "inspector");
  const auto& worker = xs[0].actors[1];
  CHECK(worker.responsive);
  CHECK(worker.status.node == "node-a");
  CHECK(worker.p50_ms == 0.008); // bucket 3: under 8 us
  CHECK(worker.p99_ms == 0.008);
  CHECK(worker.p90_ms == 0.008);
  CHECK(!xs[0].actors[2].responsive);
  CHECK(xs[0].actors[2].status.name == "unknown"); // it never answered
  fx.advance(std::chrono::milliseconds{500});      // second sample, 1 s after the first
  fx.advance(std::chrono::milliseconds{500});
  xs = history(fx, insp);
  REQUIRE(xs.size() == 2);
  CHECK(xs[1].seq == 2);
  // The worker was asked once per sample: one message in the second between them.
  CHECK(xs[1].actors[1].handled_per_second == Approx(1.0));
}

TEST_CASE("the inspector's history is bounded and only the newest snapshot keeps the tables") {
  deterministic_fixture fx;
  actor_status answer{"bundler", "bundler", 0, 0, {}, {}};
  answer.tables["recent_bundles"] = {status_row{{{"items", 4}}, {{"provider", "mock"}}}};
  auto target = fx.spawn(fixed_target, answer);
  inspector_config cfg{{target}};
  cfg.history_size = 3;
  std::vector<uint64_t> streamed;
  cfg.on_sample = [&](const inspection_snapshot& x) { streamed.push_back(x.seq); };
  auto insp = fx.spawn(inspector, cfg);
  for (int i = 0; i < 5; ++i)
    fx.advance(std::chrono::seconds{1});
  auto xs = history(fx, insp);
  REQUIRE(xs.size() == 3);
  CHECK(xs[0].seq == 3);
  CHECK(xs[2].seq == 5);
  CHECK(xs[0].actors[1].status.tables.empty());
  CHECK(xs[1].actors[1].status.tables.empty());
  CHECK(xs[2].actors[1].status.tables == answer.tables);
  CHECK(streamed == std::vector<uint64_t>{1, 2, 3, 4, 5});
  auto last = fx.request<std::vector<inspection_snapshot>>(insp, atom::history_v, uint32_t{1});
  REQUIRE(last);
  REQUIRE(last->size() == 1);
  CHECK(last->front().seq == 5);
}

TEST_CASE("processing-time percentiles are the upper bounds of their buckets") {
  std::vector<uint64_t> counts(processing_time_buckets, 0);
  CHECK(processing_time_percentile_ms(counts, 0.5) == 0);
  counts[0] = 50;  // under 1 us
  counts[11] = 49; // under 2048 us
  counts[23] = 1;  // 4.2 s or more: shown as its lower bound
  CHECK(processing_time_percentile_ms(counts, 0.50) == 0.001);
  CHECK(processing_time_percentile_ms(counts, 0.99) == 2.048);
  CHECK(processing_time_percentile_ms(counts, 1.0) == 4194.304);
  CHECK(processing_time_bucket(0) == 0);
  CHECK(processing_time_bucket(1) == 1);
  CHECK(processing_time_bucket(7) == 3);
  CHECK(processing_time_bucket(8) == 4);
  CHECK(processing_time_bucket(uint64_t{1} << 40) == processing_time_buckets - 1);
}

TEST_CASE("every message is counted, and one in 16 is timed into the histogram") {
  actor_stats stats;
  int calls = 0;
  auto handler = detail::count_each_call(
      &stats, [&](int x) { calls += x; }, caf::detail::type_list<int>{});
  for (int i = 0; i < 2 * int(processing_time_sample_every) + 1; ++i)
    handler(1);
  CHECK(calls == 33); // 2 * 16 + 1
  CHECK(stats.handled == 33);
  uint64_t timed = 0;
  for (auto n : stats.processing_time_counts)
    timed += n;
  CHECK(timed == 2); // the 16th and the 32nd
}

namespace {

// node-b leads: its node actor answers (inspect, leader) with the inspector of its term,
// which watches one singleton that has a queue table.
struct leader_on_node_b {
  deterministic_fixture& fx;
  std::shared_ptr<leader_inspection> slot = std::make_shared<leader_inspection>();
  node_actor node_b;

  explicit leader_on_node_b(deterministic_fixture& f) : fx(f) {
    actor_status answer{"queue-manager", "queue_manager", 0, 0, {{"queued", 2}}, {}};
    answer.tables["queue"] = {{{{"waiting", 2}}, {{"provider", "mock"}}}};
    inspector_config singletons{{fx.spawn(fixed_target, answer)}};
    singletons.node = "node-b";
    singletons.interval = caf::timespan::zero();
    auto term = fx.spawn(inspector, singletons);
    node_b = fx.spawn(node, std::string{"node-b"}, std::map<std::string, provider_actor>{},
                      caf::actor_cast<inspector_actor>(term), metrics_actor{},
                      std::shared_ptr<const leader_inspection>{slot}, nullptr);
    slot->lead(caf::actor_cast<inspector_actor>(term));
    slot->set_source([this] { return std::optional<node_endpoint>{{"node-b", node_b}}; });
  }
};

// A node's own queue manager: in a cluster it only stores requests for the leader.
status_client_actor own_queue_manager(deterministic_fixture& fx) {
  actor_status answer{"queue-manager", "queue_manager", 0, 0, {{"queued", 0}}, {}};
  answer.tables["queue"] = {{{{"waiting", 9}}, {{"provider", "stale"}}}};
  return fx.spawn(fixed_target, answer);
}

} // namespace

TEST_CASE("a follower's snapshots list the leader's singletons, named and marked by the leader, "
          "and their tables alone") {
  deterministic_fixture fx;
  leader_on_node_b leader{fx};
  inspector_config cfg{{own_queue_manager(fx)}};
  cfg.node = "node-a";
  cfg.leader = leader.slot;
  auto insp = fx.spawn(inspector, cfg);
  fx.advance(std::chrono::seconds{1});
  auto xs = history(fx, insp);
  REQUIRE(xs.size() == 1);
  REQUIRE(xs[0].actors.size() == 3);
  const auto& own = xs[0].actors[1].status;
  CHECK(own.name == "queue-manager");
  CHECK(own.node == "node-a");
  CHECK(own.tables.empty()); // the intake-only queue manager's table is not the queue
  const auto& singleton = xs[0].actors[2].status;
  CHECK(singleton.name == "leader.queue-manager");
  CHECK(singleton.node == "node-b");
  CHECK(singleton.facts.at("role") == "leader");
  CHECK(singleton.figures.at("queued") == 2);
  auto body = render_inspect_view(xs[0], inspect_view::queue);
  CHECK(body.find(R"("queue":[{"provider":"mock","waiting":2}],"tables_node":"node-b")")
        != std::string::npos);

  // Asked `inspect` (what ?node=all asks every node), a follower lists its own actors only:
  // a paused leader must not hold its answer back.
  auto statuses = fx.request<std::vector<actor_status>>(insp, atom::inspect_v);
  REQUIRE(statuses);
  CHECK(statuses->size() == 2);
}

TEST_CASE("the leader's own inspector lists its singletons in its answer to inspect") {
  deterministic_fixture fx;
  leader_on_node_b leader{fx};
  inspector_config cfg{{own_queue_manager(fx)}};
  cfg.node = "node-b";
  cfg.leader = leader.slot;
  cfg.interval = caf::timespan::zero();
  auto insp = fx.spawn(inspector, cfg);
  auto statuses = fx.request<std::vector<actor_status>>(insp, atom::inspect_v);
  REQUIRE(statuses);
  REQUIRE(statuses->size() == 3);
  CHECK((*statuses)[2].name == "leader.queue-manager");
  CHECK((*statuses)[2].node == "node-b");
}

TEST_CASE("without a leader, or when it does not answer, the singletons are one unresponsive "
          "entry saying why") {
  deterministic_fixture fx;
  auto slot = std::make_shared<leader_inspection>();
  inspector_config cfg{{own_queue_manager(fx)}};
  cfg.node = "node-a";
  cfg.leader = slot;
  auto insp = fx.spawn(inspector, cfg);
  fx.advance(std::chrono::seconds{1}); // no source yet: nobody leads
  auto xs = history(fx, insp);
  REQUIRE(xs.size() == 1);
  const auto& none = xs[0].actors.back();
  CHECK(!none.responsive);
  CHECK(none.status.name == "leader");
  CHECK(none.status.facts.at("unresponsive") == "no node holds the leader lease");
  CHECK(render_inspect_view(xs[0], inspect_view::providers)
            .ends_with(R"("tables_node":null,"tables_error":"the leader's singletons did not )"
                       R"(answer: no node holds the leader lease"})"));

  // node-c leads but does not lead any more when asked: its node actor refuses.
  auto gone = fx.spawn(node, std::string{"node-c"}, std::map<std::string, provider_actor>{},
                       inspector_actor{}, metrics_actor{},
                       std::shared_ptr<const leader_inspection>{}, nullptr);
  slot->set_source([gone] { return std::optional<node_endpoint>{{"node-c", gone}}; });
  fx.advance(std::chrono::seconds{1});
  xs = history(fx, insp);
  REQUIRE(xs.size() == 2);
  const auto& refused = xs[1].actors.back();
  CHECK(!refused.responsive);
  CHECK(refused.status.node == "node-c");
  CHECK(refused.status.facts.at("unresponsive").find("node node-c does not lead")
        != std::string::npos);
}

namespace {

// A node that takes the figures question and never answers it (a paused process).
caf::behavior silent_node(caf::event_based_actor* self) {
  return {[=](atom::inspect, atom::figures) -> caf::result<node_figures> {
    return self->make_response_promise<node_figures>();
  }};
}

// The figures of `node` in a rendered nodes view.
boost::json::object node_entry(const std::string& body, const std::string& node) {
  auto parsed = boost::json::parse(body);
  for (const auto& n : parsed.at("nodes").as_array())
    if (n.at("name") == node.c_str())
      return n.as_object();
  FAIL("no node " << node << " in " << body);
  return {};
}

} // namespace

TEST_CASE("in a cluster every snapshot has the other nodes' own figures, and a node that stops "
          "answering keeps its last ones, unresponsive after 500 ms, with their age") {
  deterministic_fixture fx;
  auto clock = fx.virtual_wall_clock();
  // node-b: a provider actor with 3 calls in flight, sampled by node-b's own inspector.
  actor_status provider{"provider:mock", "provider", 0, 0, {{"inflight_calls", 3}}, {}};
  inspector_config b_cfg{{fx.spawn(fixed_target, provider)}};
  b_cfg.node = "node-b";
  b_cfg.now = clock;
  auto b_inspector = fx.spawn(inspector, b_cfg);
  node_actor node_b = fx.spawn(node, std::string{"node-b"}, std::map<std::string, provider_actor>{},
                               caf::actor_cast<inspector_actor>(b_inspector), metrics_actor{},
                               std::shared_ptr<const leader_inspection>{}, nullptr);
  // node-a sees node-b connected and node-c registered but not connected.
  auto slot = std::make_shared<leader_inspection>();
  node_actor reached = node_b;
  slot->set_peers([&] {
    return std::vector<node_endpoint>{{"node-b", reached}, {"node-c", node_actor{}}};
  });
  inspector_config cfg{{own_queue_manager(fx)}};
  cfg.node = "node-a";
  cfg.leader = slot;
  cfg.now = clock;
  auto insp = fx.spawn(inspector, cfg);
  fx.advance(std::chrono::seconds{1});
  fx.advance(std::chrono::seconds{1}); // node-b has a snapshot of its own by now
  auto xs = history(fx, insp);
  REQUIRE(xs.size() == 2);
  REQUIRE(xs[1].peers.size() == 2);
  auto answered = xs[1].peers[0];
  CHECK(answered.node == "node-b");
  CHECK(answered.error.empty());
  CHECK(answered.seq >= 1);
  CHECK(answered.in_flight_calls == 3);
  CHECK(answered.actors == 2); // its inspector and its provider actor
  CHECK(answered.unresponsive_actors == 0);
  CHECK(xs[1].peers[1].node == "node-c");
  CHECK(xs[1].peers[1].error == "not connected");
  CHECK(xs[1].peers[1].seq == 0);

  // node-b stops answering: its figures stay, marked, and age with every second.
  reached = caf::actor_cast<node_actor>(fx.spawn(silent_node));
  fx.advance(std::chrono::seconds{1});
  fx.advance(std::chrono::seconds{1}); // the question of the second before timed out
  xs = history(fx, insp);
  REQUIRE(xs.size() >= 3);
  const auto& silent = xs.back().peers.at(0);
  CHECK(silent.error == "no answer within 500 ms");
  CHECK(silent.seq == answered.seq);
  CHECK(silent.in_flight_calls == 3);

  inspect_cluster cluster;
  cluster.leader = "node-a";
  for (const auto* name : {"node-a", "node-b", "node-c"})
    cluster.nodes.push_back({name, "127.0.0.1:1", false, "up", "", 0, "1"});
  node_directory dir{"1", cluster};
  auto body = render_inspect_view(xs.back(), inspect_view::nodes, &dir);
  INFO(body);
  auto b = node_entry(body, "node-b");
  CHECK(b.at("in_flight_calls").to_number<int64_t>() == 3);
  CHECK(b.at("actors").to_number<int64_t>() == 2);
  CHECK(b.at("responsive") == false);
  CHECK(b.at("error") == "no answer within 500 ms");
  CHECK(b.at("figures_age_seconds").to_number<double>() >= 1.0);
  auto c = node_entry(body, "node-c");
  CHECK(c.at("actors").is_null());
  CHECK(c.at("error") == "not connected");
  auto a = node_entry(body, "node-a");
  CHECK(a.at("responsive") == true);
  CHECK(a.at("actors").to_number<int64_t>() >= 2);

  // Asked directly, an inspector answers its own newest figures (what node-a asked node-b).
  auto own = fx.request<node_figures>(b_inspector, atom::inspect_v, atom::figures_v);
  REQUIRE(own);
  CHECK(own->node == "node-b");
  CHECK(own->in_flight_calls == 3);
  slot->set_peers({}); // `reached` goes out of scope before the inspector
}
