// The bundler under CAF's test coordinator, with the real queue manager and store: bundle
// forming, per-provider call slots, breakers, pauses and rate limits in virtual time, and
// drain.

#include "actors/node.hpp"
#include "fixtures/pipeline.hpp"

#include <boost/json.hpp>
#include <caf/detail/simple_actor_clock.hpp>
#include <catch2/catch.hpp>

using namespace lps;
using namespace lps::test;

TEST_CASE("serial bundling groups compatible requests and leaves incompatible ones for later") {
  pipeline_fixture fx;
  auto hinted = make_request("m7");
  hinted.has_cj_batching_mode = true;
  hinted.cj_batching_mode = "serial_bundle";
  auto accepted = fx.submit({make_request("m1"), make_request("m2"), make_request("o3", "openai"),
                             make_request("m4"), make_request("m5"), make_request("m6"), hinted,
                             make_request("m8")});
  REQUIRE(accepted.size() == 8);
  for (const auto& x : accepted)
    CHECK(x.accepted);
  fx.start_bundler(queue_processing_mode::serial_bundle, 4);
  fx.settle();
  // Each provider's requests form their own FIFO stream: the openai request does not split
  // the mock run. Within the mock stream the hinted request is incompatible with both
  // neighbours, so it ends the bundle before it and leads its own; nothing is reordered.
  auto mock_bundles = bundle_prompts(fx.stub("mock").seen);
  using strings = std::vector<std::string>;
  CHECK(mock_bundles == std::vector<strings>{{"m1", "m2", "m4", "m5"}, {"m6"}, {"m7"}, {"m8"}});
  CHECK(bundle_prompts(fx.stub("openai").seen) == std::vector<strings>{{"o3"}});
  // Every request ended in exactly one stored result.
  CHECK(fx.db->count_results() == 8);
  CHECK(fx.db->count_active_requests() == 0);
  auto& qm = fx.state_of<queue_manager_state>(fx.queue);
  CHECK(qm.entries.empty());
  CHECK(qm.completed_total == 8);
}

TEST_CASE("bundle size never exceeds the configured limit") {
  pipeline_fixture fx;
  std::vector<comparison_request> xs;
  for (int i = 0; i < 10; ++i)
    xs.push_back(make_request("p" + std::to_string(i)));
  fx.submit(xs);
  fx.start_bundler(queue_processing_mode::serial_bundle, 4);
  fx.settle();
  std::vector<size_t> sizes;
  for (const auto& b : fx.stub("mock").seen)
    sizes.push_back(b.items.size());
  CHECK(sizes == std::vector<size_t>{4, 4, 2});
  auto& metrics_state_ref = fx.state_of<metrics_state>(fx.metrics_hdl);
  CHECK(metrics_state_ref.registry.value("llm_provider_serial_bundle_calls_total",
                                         {"mock", "mock-model-v1"})
        == 3);
  CHECK(metrics_state_ref.registry.count("llm_provider_serial_bundle_items_per_call",
                                         {"mock", "mock-model-v1"})
        == 3);
}

TEST_CASE("per_request mode sends one request per provider call") {
  pipeline_fixture fx;
  fx.submit({make_request("a"), make_request("b"), make_request("c")});
  fx.start_bundler(queue_processing_mode::per_request, 4);
  fx.settle();
  for (const auto& b : fx.stub("mock").seen) {
    CHECK(b.items.size() == 1);
    CHECK(b.queue_processing_mode == "per_request");
  }
  CHECK(fx.stub("mock").seen.size() == 3);
  auto& registry = fx.state_of<metrics_state>(fx.metrics_hdl).registry;
  CHECK(registry.value("llm_provider_serial_bundle_calls_total", {"mock", "mock-model-v1"}) == 0);
}

TEST_CASE("metadata keys are set after provider selection and never overwrite the caller's") {
  pipeline_fixture fx;
  auto req = make_request("x1", "openai");
  req.metadata_json = R"({"essay_a_id":"a1","resolved_provider":"caller-value"})";
  auto accepted = fx.submit({req, make_request("x2", "openai")});
  fx.start_bundler(queue_processing_mode::serial_bundle, 4);
  fx.settle();
  REQUIRE(fx.stub("openai").seen.size() == 1);
  for (const auto& item : fx.stub("openai").seen.front().items) {
    CHECK(item.enrichment.resolved_provider == "openai");
    CHECK(item.enrichment.resolved_model == "gpt-5-mini");
    CHECK(item.enrichment.queue_processing_mode == "serial_bundle");
    CHECK(item.enrichment.bundle_size == 2);
  }
  auto first = fx.result_of(accepted[0].queue_id);
  auto meta = first["data"].as_object()["request_metadata"].as_object();
  CHECK(meta["essay_a_id"] == "a1");
  CHECK(meta["resolved_provider"] == "caller-value"); // the caller's key wins
  CHECK(meta["resolved_model"] == "gpt-5-mini");
  CHECK(meta["queue_processing_mode"] == "serial_bundle");
  auto second = fx.result_of(accepted[1].queue_id);
  CHECK(second["data"].as_object()["request_metadata"].as_object()["resolved_provider"]
        == "openai");
}

TEST_CASE("a saturated provider does not hold up requests for other providers") {
  pipeline_fixture fx;
  auto hung = fx.spawn(hanging_provider);
  fx.providers["openai"] = hung;
  fx.providers["mock"] = fx.spawn(stub_provider, std::string{"mock"});
  fx.start_bundler(queue_processing_mode::serial_bundle, 2, true, {}, {{"openai", 1}});
  auto accepted = fx.submit({make_request("o1", "openai"), make_request("o2", "openai"),
                             make_request("o3", "openai"), make_request("m1"), make_request("m2"),
                             make_request("m3")});
  fx.settle();
  // openai took one bundle (its limit) and hangs; the mock requests all went through.
  auto& hanging = fx.state_of<hanging_provider_state>(hung);
  REQUIRE(hanging.seen.size() == 1);
  CHECK(hanging.seen.front().items.size() == 2);
  CHECK(fx.provider_view("openai").inflight_bundles == 1);
  CHECK(fx.provider_view("mock").inflight_bundles == 0);
  for (size_t i = 3; i < 6; ++i)
    CHECK(fx.db->find_result(accepted[i].queue_id));
  // The third openai request waits in the queue (not failed, not held elsewhere).
  auto st = fx.request<request_status>(fx.queue, atom::lookup_v, accepted[2].queue_id);
  REQUIRE(st);
  CHECK(st->status == queue_status::queued);
  CHECK_FALSE(fx.db->find_result(accepted[2].queue_id));
  // When the provider answers, its waiting work flows again.
  fx.self->send(hung, atom::latency_elapsed_v, uint64_t{0});
  fx.settle();
  CHECK(hanging.seen.size() == 2);
  CHECK(hanging.seen.back().items.front().entry.request.user_prompt == "o3");
  CHECK(fx.provider_view("openai").inflight_bundles == 1); // o3's bundle now
}

TEST_CASE("drain answers drained once the last bundle in flight has finished") {
  pipeline_fixture fx;
  auto hung = fx.spawn(hanging_provider);
  fx.providers["mock"] = hung;
  fx.start_bundler(queue_processing_mode::per_request, 1, true, {}, {{"mock", 1}});
  auto accepted = fx.submit({make_request("in flight"), make_request("waiting")});
  REQUIRE(fx.state_of<hanging_provider_state>(hung).seen.size() == 1);
  auto drained = fx.self->request(fx.bundler_hdl, caf::infinite, atom::drain_v);
  fx.settle();
  CHECK(fx.self->mailbox().empty()); // the bundle in flight holds the answer back
  fx.self->send(hung, atom::latency_elapsed_v, uint64_t{0});
  fx.settle();
  bool answered = false;
  drained.receive([&](atom::drained) { answered = true; },
                  [](caf::error& err) { FAIL(caf::to_string(err)); });
  CHECK(answered);
  CHECK(fx.db->find_result(accepted[0].queue_id));
  // Drained means no more pulling: the second request stays queued for the next start.
  CHECK(fx.state_of<hanging_provider_state>(hung).seen.size() == 1);
  auto st = fx.request<request_status>(fx.queue, atom::lookup_v, accepted[1].queue_id);
  CHECK(st->status == queue_status::queued);
}

TEST_CASE("drain with nothing in flight answers at once") {
  pipeline_fixture fx;
  fx.start_bundler(queue_processing_mode::serial_bundle, 4);
  CHECK(fx.request<atom::drained>(fx.bundler_hdl, atom::drain_v));
}

TEST_CASE("bundler and intake stop when the queue manager goes down") {
  pipeline_fixture fx;
  fx.start_bundler(queue_processing_mode::serial_bundle, 4);
  fx.self->monitor(fx.bundler_hdl);
  fx.self->monitor(fx.intake_hdl);
  caf::anon_send_exit(fx.queue, caf::exit_reason::kill);
  fx.settle();
  std::set<caf::actor_addr> down;
  for (int i = 0; i < 2; ++i)
    fx.self->receive([&](caf::down_msg& msg) { down.insert(msg.source); },
                     caf::after(std::chrono::seconds{0}) >> [] {});
  CHECK(down.count(fx.bundler_hdl.address()) == 1);
  CHECK(down.count(fx.intake_hdl.address()) == 1);
}

TEST_CASE("an open circuit breaker keeps a provider's requests queued while others flow") {
  queue_manager_config qm;
  qm.max_retries = 10;
  pipeline_fixture fx{qm};
  breaker_settings breaker;
  breaker.failure_threshold = 2;
  breaker.open_duration = std::chrono::hours{1};
  // One call at a time, so each failure is seen before the next call is made.
  fx.start_bundler(queue_processing_mode::per_request, 1, true, {}, {{"openai", 1}}, breaker);
  auto accepted =
      fx.submit({make_request("broken 1", "openai"), make_request("broken 2", "openai"),
                 make_request("broken 3", "openai"), make_request("m1"), make_request("m2")});
  fx.settle();
  fx.tick();
  // Two failing calls opened openai's breaker: no further openai call was made, the
  // failed requests wait for a retry instead of failing, and the mock requests completed.
  CHECK(fx.stub("openai").seen.size() == 2);
  auto& bundler_st = fx.state_of<bundler_state>(fx.bundler_hdl);
  CHECK(bundler_st.gate->breaker("openai").state() == breaker_state::open);
  // GET /api/v1/providers shows the breaker from the bundler's provider status.
  auto openai = fx.provider_view("openai");
  CHECK(openai.circuit_state == "open");
  CHECK(openai.breaker_opened_total == 1);
  CHECK(openai.blocked_for > std::chrono::milliseconds{0}); // until the breaker half-opens
  CHECK(fx.provider_view("mock").circuit_state == "closed");
  for (size_t i = 0; i < 3; ++i) {
    CHECK_FALSE(fx.db->find_result(accepted[i].queue_id));
    auto st = fx.request<request_status>(fx.queue, atom::lookup_v, accepted[i].queue_id);
    CHECK(st->status == queue_status::queued);
  }
  CHECK(fx.db->find_result(accepted[3].queue_id));
  CHECK(fx.db->find_result(accepted[4].queue_id));
  auto& registry = fx.state_of<metrics_state>(fx.metrics_hdl).registry;
  CHECK(registry.value("llm_provider_circuit_breaker_state", {"openai"}) == 1);
}

TEST_CASE("an open breaker turns half-open after open_duration and closes on a good probe") {
  queue_manager_config qm;
  qm.max_retries = 10;
  pipeline_fixture fx{qm};
  breaker_settings breaker;
  breaker.failure_threshold = 2;
  breaker.open_duration = std::chrono::seconds{10};
  breaker.success_threshold = 1;
  fx.start_bundler(queue_processing_mode::per_request, 1, true, {}, {{"openai", 1}}, breaker);
  auto& openai = fx.stub("openai");
  openai.down = true;
  auto accepted = fx.submit({make_request("a", "openai"), make_request("b", "openai")});
  auto& gate = fx.state_of<bundler_state>(fx.bundler_hdl).gate;
  CHECK(openai.seen.size() == 2);
  CHECK(gate->breaker("openai").state() == breaker_state::open);
  openai.down = false;
  // The retries are due after at most 1.5 s, but the open breaker holds them back.
  fx.run_for(std::chrono::seconds{10} - std::chrono::milliseconds{1});
  CHECK(openai.seen.size() == 2);
  CHECK(gate->breaker("openai").state() == breaker_state::open);
  // At open_duration the bundler's wake lets one probe through; its success closes the
  // breaker and the other request follows.
  fx.advance(std::chrono::milliseconds{1});
  CHECK(openai.seen.size() == 4);
  CHECK(gate->breaker("openai").counters().half_opened_total == 1);
  CHECK(gate->breaker("openai").state() == breaker_state::closed);
  CHECK(fx.db->find_result(accepted[0].queue_id));
  CHECK(fx.db->find_result(accepted[1].queue_id));
}

TEST_CASE("a provider's rate limit paces calls and the rest waits in the queue") {
  pipeline_fixture fx;
  fx.start_bundler(queue_processing_mode::per_request, 1, true, {}, {}, {},
                   {{"mock", rate_limit_settings{2, 0}}});
  auto accepted =
      fx.submit({make_request("r1"), make_request("r2"), make_request("r3"), make_request("r4")});
  fx.settle();
  // 2 requests per minute: two calls now, the others stay queued (not failed).
  CHECK(fx.stub("mock").seen.size() == 2);
  auto st = fx.request<request_status>(fx.queue, atom::lookup_v, accepted[3].queue_id);
  CHECK(st->status == queue_status::queued);
  CHECK_FALSE(fx.db->find_result(accepted[3].queue_id));
  CHECK(fx.state_of<bundler_state>(fx.bundler_hdl).wake_armed);
}

TEST_CASE("with multi-prompt a bundle is charged its provider calls, not its items") {
  pipeline_fixture fx;
  fx.start_bundler(queue_processing_mode::serial_bundle, 4, true, {}, {}, {},
                   {{"mock", rate_limit_settings{2, 0}}}, 4);
  std::vector<comparison_request> xs;
  for (int i = 0; i < 8; ++i)
    xs.push_back(make_request("m" + std::to_string(i)));
  fx.submit(std::move(xs));
  fx.settle();
  // Two bundles of four are one packed call each: both fit 2 requests per minute.
  size_t items = 0;
  for (const auto& b : fx.stub("mock").seen)
    items += b.items.size();
  CHECK(fx.stub("mock").seen.size() == 2);
  CHECK(items == 8);
}

TEST_CASE("without multi-prompt a bundle is charged one call per item") {
  pipeline_fixture fx;
  fx.start_bundler(queue_processing_mode::serial_bundle, 4, true, {}, {}, {},
                   {{"mock", rate_limit_settings{2, 0}}});
  std::vector<comparison_request> xs;
  for (int i = 0; i < 8; ++i)
    xs.push_back(make_request("m" + std::to_string(i)));
  fx.submit(std::move(xs));
  fx.settle();
  // The first bundle carries the 2 calls left; the rest waits.
  REQUIRE(fx.stub("mock").seen.size() == 1);
  CHECK(fx.stub("mock").seen.front().items.size() == 2);
}

TEST_CASE("requests held from an earlier dequeue never make a bundle beyond the rate budget") {
  pipeline_fixture fx;
  fx.start_bundler(queue_processing_mode::serial_bundle, 4, true, {}, {}, {},
                   {{"mock", rate_limit_settings{5, 0}}});
  std::vector<comparison_request> xs;
  for (int i = 0; i < 12; ++i)
    xs.push_back(make_request("m" + std::to_string(i)));
  fx.submit(std::move(xs));
  fx.settle();
  // 5 requests per minute: a bundle of 4, then one of the 1 left; the 3 requests dequeued
  // with it stay held and wait, they do not ride along uncharged.
  size_t items = 0;
  for (const auto& b : fx.stub("mock").seen)
    items += b.items.size();
  CHECK(items == 5);
  // It refills one every 12 s: 5 more within 61 s, never more.
  fx.run_for(std::chrono::seconds{61});
  items = 0;
  for (const auto& b : fx.stub("mock").seen)
    items += b.items.size();
  CHECK(items == 10);
}

namespace {

// A provider whose key is rejected (401) until the test fixes it.
struct keyed_provider_state {
  static inline const char* name = "provider:keyed";
  // Not a bool first: CAF would build the state from its self pointer (C++20 aggregate
  // init), and a leading bool would start out true.
  size_t calls = 0;
  bool key_valid = false;
};

provider_actor::behavior_type
keyed_provider(provider_actor::stateful_pointer<keyed_provider_state> self) {
  return {
      [=](atom::process, const bundle& b) -> std::vector<comparison_outcome> {
        ++self->state.calls;
        std::vector<comparison_outcome> result;
        for (const auto& item : b.items) {
          comparison_outcome o;
          o.queue_id = item.entry.request.queue_id;
          o.provider = b.provider;
          o.model = b.model;
          o.enrichment = item.enrichment;
          if (self->state.key_valid) {
            o.success = true;
            o.winner = "Essay A";
            o.justification = "judged with a good key";
            o.confidence = 4.0;
          } else {
            o.error_code = "AUTHENTICATION_ERROR";
            o.error_message = "stub 401";
            o.http_status = 401;
          }
          result.push_back(std::move(o));
        }
        return result;
      },
      [=](atom::status) -> actor_status { return {"keyed", "provider", 0, 0, {}, {}}; },
      [=](atom::gateway, const gateway_call&) -> gateway_reply {
        return {501, "{}"};
      },
  };
}

} // namespace

TEST_CASE("a rejected key pauses its provider, keeps its requests queued, and resume runs them") {
  queue_manager_config qm;
  qm.max_retries = 0; // a counted failure would be final at once
  pipeline_fixture fx{qm};
  auto keyed = fx.spawn(keyed_provider);
  fx.providers["openai"] = keyed;
  fx.providers["mock"] = fx.spawn(stub_provider, std::string{"mock"});
  fx.start_bundler(queue_processing_mode::serial_bundle, 4);
  auto accepted = fx.submit({make_request("o1", "openai"), make_request("o2", "openai"),
                             make_request("o3", "openai"), make_request("m1"), make_request("m2")});
  fx.run_for(std::chrono::seconds{5});
  // One call revealed the bad key; no further openai call was made, nothing of openai is
  // final, and the mock requests completed.
  CHECK(fx.state_of<keyed_provider_state>(keyed).calls == 1);
  for (size_t i = 0; i < 3; ++i) {
    CHECK_FALSE(fx.db->find_result(accepted[i].queue_id));
    auto st = fx.request<request_status>(fx.queue, atom::lookup_v, accepted[i].queue_id);
    CHECK(st->status == queue_status::queued);
  }
  CHECK(fx.db->find_result(accepted[3].queue_id));
  CHECK(fx.db->find_result(accepted[4].queue_id));
  CHECK(fx.provider_view("openai").paused_by == "AUTHENTICATION_ERROR");
  auto& registry = fx.state_of<metrics_state>(fx.metrics_hdl).registry;
  CHECK(registry.value("llm_provider_paused", {"openai"}) == 1);
  CHECK_FALSE(fx.request<bool>(fx.bundler_hdl, atom::resume_v, std::string{"mock"}).value());
  // The operator fixes the key and resumes: the queued requests go out at once.
  fx.state_of<keyed_provider_state>(keyed).key_valid = true;
  CHECK(fx.request<bool>(fx.bundler_hdl, atom::resume_v, std::string{"openai"}).value());
  fx.settle();
  CHECK(fx.state_of<keyed_provider_state>(keyed).calls == 2);
  for (size_t i = 0; i < 3; ++i) {
    auto event = fx.result_of(accepted[i].queue_id);
    CHECK(event["data"].as_object()["winner"] == "Essay A");
  }
  CHECK(registry.value("llm_provider_paused", {"openai"}) == 0);
  CHECK(fx.provider_view("openai").paused_by.empty());
  CHECK_FALSE(fx.request<bool>(fx.bundler_hdl, atom::resume_v, std::string{"openai"}).value());
}

namespace {

// Request timeouts still pending in the test clock for the actor `hdl`.
template <class Handle>
size_t pending_request_timeouts(caf::actor_system& sys, const Handle& hdl) {
  using clock_type = caf::detail::simple_actor_clock;
  auto& clock = dynamic_cast<clock_type&>(sys.clock());
  auto id = caf::actor_cast<caf::strong_actor_ptr>(hdl)->id();
  size_t n = 0;
  for (const auto& [due, event] : clock.schedule())
    if (event->subtype == clock_type::request_timeout_type
        && static_cast<const clock_type::request_timeout&>(*event).self->id() == id)
      ++n;
  return n;
}

} // namespace

TEST_CASE("answered requests leave no timeout behind in the actor clock") {
  // CAF 0.17.6 keeps a request's timeout (and a strong reference to the requester) until it
  // fires, even after the answer came: at 2,000 requests/s with the 5-minute provider timeout
  // that held hundreds of MiB. The bundler forgets each timeout when the answer arrives.
  pipeline_fixture fx;
  std::vector<comparison_request> xs;
  for (int i = 0; i < 12; ++i)
    xs.push_back(make_request("t" + std::to_string(i)));
  fx.submit(xs);
  fx.start_bundler(queue_processing_mode::serial_bundle, 4);
  fx.settle();
  REQUIRE(fx.db->count_results() == 12);
  CHECK(fx.stub("mock").seen.size() == 3);
  CHECK(pending_request_timeouts(fx.sys, fx.bundler_hdl) == 0);
}

TEST_CASE("the bundler's status keeps recent bundles, items per call and provider rows") {
  pipeline_fixture fx;
  std::vector<comparison_request> xs;
  for (int i = 0; i < 5; ++i)
    xs.push_back(make_request("r" + std::to_string(i)));
  REQUIRE(fx.submit(xs).size() == 5);
  fx.start_bundler(queue_processing_mode::serial_bundle, 4);
  fx.settle();
  auto status = fx.request<actor_status>(fx.bundler_hdl, atom::status_v);
  REQUIRE(status);
  // Five mock requests, four per call: one call of 4, one of 1; newest bundle first.
  const auto& recent = status->tables["recent_bundles"];
  REQUIRE(recent.size() == 2);
  CHECK(recent[0].figures.at("items") == 1);
  CHECK(recent[1].figures.at("items") == 4);
  CHECK(recent[1].figures.at("succeeded") == 4);
  CHECK(recent[1].facts.at("outcome") == "ok");
  CHECK(recent[1].facts.at("provider") == "mock");
  const auto& per_call = status->tables["items_per_call"];
  REQUIRE(per_call.size() == 2);
  CHECK(per_call[0].figures == std::map<std::string, double>{{"items", 1}, {"calls", 1}});
  CHECK(per_call[1].figures == std::map<std::string, double>{{"items", 4}, {"calls", 1}});
  bool mock_listed = false;
  for (const auto& row : status->tables["providers"])
    if (row.facts.at("provider") == "mock") {
      mock_listed = true;
      CHECK(row.facts.at("circuit_state") == "closed");
      CHECK(row.figures.at("inflight_bundles") == 0);
      CHECK(row.figures.count("latency_ms_mean") == 1);
      CHECK(row.figures.count("max_inflight_bundles") == 1);
    }
  CHECK(mock_listed);
}

// Cluster mode (docs/cluster.md): another node's provider actors join the bundler; the
// per-node call cap holds for each node, and a node that leaves has its bundles put back.
TEST_CASE("a joined node takes bundles beyond this node's cap, and its bundles are put back at "
          "once when it leaves") {
  pipeline_fixture fx;
  auto own = fx.spawn(hanging_provider);
  auto remote = fx.spawn(hanging_provider);
  fx.providers["mock"] = own;
  fx.start_bundler(queue_processing_mode::per_request, 1, true, {}, {{"mock", 1}});
  auto accepted = fx.submit({make_request("r1"), make_request("r2"), make_request("r3")});
  auto& own_state = fx.state_of<hanging_provider_state>(own);
  auto& remote_state = fx.state_of<hanging_provider_state>(remote);
  // Alone, the node's cap of one bundle holds.
  REQUIRE(own_state.seen.size() == 1);
  // Another node joins (twice: the second is ignored) with its mock provider; the bundler
  // introduces itself to its node actor.
  auto node2 = fx.spawn(
      lps::node, std::string{"node-2"},
      std::map<std::string, provider_actor>{{"mock", caf::actor_cast<provider_actor>(remote)}},
      inspector_actor{}, metrics_actor{}, nullptr, nullptr);
  node_providers other{"node-2",
                       caf::actor_cast<caf::actor>(node2),
                       {"mock"},
                       {caf::actor_cast<caf::actor>(remote)}};
  fx.self->send(fx.bundler_hdl, atom::join_v, other);
  fx.self->send(fx.bundler_hdl, atom::join_v, other);
  fx.settle();
  REQUIRE(remote_state.seen.size() == 1);
  CHECK(own_state.seen.size() == 1);
  CHECK(fx.provider_view("mock").inflight_bundles == 2);
  auto at_remote = remote_state.seen.front().items.front().entry.request.queue_id;
  // node-2 leaves (stale heartbeat): its bundle is back in the queue at once, not failed, and
  // the provider is not judged by it.
  fx.self->send(fx.bundler_hdl, atom::leave_v, std::string{"node-2"});
  fx.settle();
  CHECK(fx.provider_view("mock").inflight_bundles == 1);
  CHECK(fx.provider_view("mock").circuit_state == "closed");
  auto st = fx.request<request_status>(fx.queue, atom::lookup_v, at_remote);
  REQUIRE(st);
  CHECK(st->status == queue_status::queued);
  CHECK_FALSE(fx.db->find_result(at_remote));
  // A late answer of the node that left is dropped: the request still ends exactly once.
  fx.self->send(remote, atom::latency_elapsed_v, uint64_t{0});
  fx.settle();
  CHECK_FALSE(fx.db->find_result(at_remote));
  // This node's provider answers its bundles one by one; after the retry's backoff every
  // request ends with exactly one result.
  for (uint64_t n = 0; n < 3; ++n) {
    fx.run_for(std::chrono::seconds{3});
    REQUIRE(own_state.seen.size() > n);
    fx.self->send(own, atom::latency_elapsed_v, n);
    fx.settle();
  }
  CHECK(remote_state.seen.size() == 1);
  CHECK(fx.db->count_results() == 3);
  CHECK(fx.db->count_active_requests() == 0);
  for (const auto& x : accepted)
    CHECK(fx.db->find_result(x.queue_id));
}

// A follower's graceful SIGTERM (docs/cluster.md): the node asks, through its node actor, the
// leader's bundler that joined it to retire it; no new bundle goes there, the bundle in flight
// finishes there (its answer counts, nothing runs twice), and only then is `drained` answered.
TEST_CASE("a retiring node gets no new bundle, and its retire is answered once its bundle in "
          "flight was answered there") {
  pipeline_fixture fx;
  auto own = fx.spawn(hanging_provider);
  auto remote = fx.spawn(hanging_provider);
  fx.providers["mock"] = own;
  fx.start_bundler(queue_processing_mode::per_request, 1, true, {}, {{"mock", 1}});
  auto node2 = fx.spawn(
      lps::node, std::string{"node-2"},
      std::map<std::string, provider_actor>{{"mock", caf::actor_cast<provider_actor>(remote)}},
      inspector_actor{}, metrics_actor{}, nullptr, nullptr);
  auto accepted = fx.submit({make_request("r1"), make_request("r2"), make_request("r3")});
  fx.self->send(fx.bundler_hdl, atom::join_v,
                node_providers{"node-2",
                               caf::actor_cast<caf::actor>(node2),
                               {"mock"},
                               {caf::actor_cast<caf::actor>(remote)}});
  fx.settle();
  auto& own_state = fx.state_of<hanging_provider_state>(own);
  auto& remote_state = fx.state_of<hanging_provider_state>(remote);
  REQUIRE(own_state.seen.size() == 1);
  REQUIRE(remote_state.seen.size() == 1);
  auto at_remote = remote_state.seen.front().items.front().entry.request.queue_id;

  auto retired = fx.self->request(node2, caf::infinite, atom::retire_v);
  fx.settle();
  CHECK(fx.self->mailbox().empty()); // node-2's bundle in flight holds the answer back
  // node-2's answer is taken (its request's one result), then it may go.
  fx.self->send(remote, atom::latency_elapsed_v, uint64_t{0});
  fx.settle();
  bool answered = false;
  retired.receive([&](atom::drained) { answered = true; },
                  [](caf::error& err) { FAIL(caf::to_string(err)); });
  CHECK(answered);
  CHECK(fx.db->find_result(at_remote));
  // node-2 has a free slot and this node none, yet the third request waits for this node.
  CHECK(remote_state.seen.size() == 1);
  CHECK(own_state.seen.size() == 1);
  for (uint64_t n = 0; n < 2; ++n) {
    fx.self->send(own, atom::latency_elapsed_v, n);
    fx.settle();
    REQUIRE(own_state.seen.size() >= n + 1);
  }
  CHECK(own_state.seen.size() == 2);
  CHECK(remote_state.seen.size() == 1);
  CHECK(fx.db->count_results() == 3);
  CHECK(fx.db->count_active_requests() == 0);
  for (const auto& x : accepted)
    CHECK(fx.db->find_result(x.queue_id));
}
