// The actors driven deterministically (CAF's test coordinator): bundling, per-item
// outcomes, metadata enrichment, status transitions, retries, expiry, capacity and
// callbacks. The real SQLite store is used in manual-commit mode: settle() commits on the
// test thread, so every message reaches the test coordinator from that one thread.

#include "actors/bundler.hpp"
#include "actors/callbacks.hpp"
#include "actors/inspector.hpp"
#include "actors/intake.hpp"
#include "actors/metrics.hpp"
#include "actors/provider_mock.hpp"
#include "actors/queue_manager.hpp"
#include "actors/result_mapper.hpp"
#include "fixtures/deterministic.hpp"
#include "runtime/http_client.hpp"
#include "runtime/ids.hpp"
#include "runtime/store.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

using namespace lps;
namespace fs = std::filesystem;

namespace {

// -- a provider stub that records bundles and fails chosen prompts once --

struct stub_provider_state {
  static inline const char* name = "provider:stub";
  std::vector<bundle> seen;
  /// Prompts whose first attempt fails with a retryable error.
  std::set<std::string> fail_once;
  std::set<std::string> failed_already;
  /// While set, every item fails as a provider outage (503).
  bool down = false;
};

provider_actor::behavior_type
stub_provider(provider_actor::stateful_pointer<stub_provider_state> self, std::string provider) {
  return {
      [=](atom::process, const bundle& b) -> std::vector<comparison_outcome> {
        auto& st = self->state;
        st.seen.push_back(b);
        std::vector<comparison_outcome> result;
        for (const auto& item : b.items) {
          comparison_outcome o;
          o.queue_id = item.entry.request.queue_id;
          o.provider = provider;
          o.model = b.model;
          o.enrichment = item.enrichment;
          const auto& prompt = item.entry.request.user_prompt;
          if (st.down || prompt.rfind("broken", 0) == 0) {
            o.error_code = "EXTERNAL_SERVICE_ERROR";
            o.error_message = "stub 503";
            o.http_status = 503;
            o.retryable = true;
          } else if (st.fail_once.count(prompt) && !st.failed_already.count(prompt)) {
            st.failed_already.insert(prompt);
            o.error_code = "RATE_LIMIT";
            o.error_message = "stub 429";
            o.http_status = 429;
            o.retryable = true;
            if (prompt.rfind("retry-after", 0) == 0)
              o.retry_after = std::chrono::seconds{30};
          } else {
            o.success = true;
            o.winner = "Essay A";
            o.justification = "stub judgement of " + prompt;
            o.confidence = 4.0;
            o.usage = {10, 5, 15, 0, 0};
          }
          result.push_back(std::move(o));
        }
        return result;
      },
      [=](atom::status) -> actor_status { return {"stub", "provider", 0, 0, {}, {}}; },
  };
}

// -- a provider that never answers (a hung or saturated provider) --

struct hanging_provider_state {
  static inline const char* name = "provider:hanging";
  std::vector<bundle> seen;
  std::vector<caf::typed_response_promise<std::vector<comparison_outcome>>> parked;
};

/// The test releases a parked bundle by telling the provider its latency has elapsed.
using hanging_provider_actor =
    provider_actor::extend<caf::reacts_to<atom::latency_elapsed, uint64_t>>;

hanging_provider_actor::behavior_type
hanging_provider(hanging_provider_actor::stateful_pointer<hanging_provider_state> self) {
  return {
      [=](atom::process, const bundle& b) -> caf::result<std::vector<comparison_outcome>> {
        self->state.seen.push_back(b);
        auto rp = self->make_response_promise<std::vector<comparison_outcome>>();
        self->state.parked.push_back(rp);
        return rp;
      },
      // latency_elapsed n: answer the n-th parked bundle with successes (from inside the actor,
      // where a promise must be delivered).
      [=](atom::latency_elapsed, uint64_t n) {
        auto& st = self->state;
        std::vector<comparison_outcome> outcomes;
        for (const auto& item : st.seen.at(n).items) {
          comparison_outcome o;
          o.queue_id = item.entry.request.queue_id;
          o.success = true;
          o.winner = "Essay B";
          o.justification = "late";
          o.confidence = 3.0;
          outcomes.push_back(o);
        }
        st.parked.at(n).deliver(std::move(outcomes));
      },
      [=](atom::status) -> actor_status { return {"hanging", "provider", 0, 0, {}, {}}; },
  };
}

// -- an HTTP transport that records callback POSTs and answers with scripted statuses --

struct fake_transport : http_transport {
  std::vector<http_client_request> requests;
  std::vector<unsigned> statuses; // consumed in order; 200 when empty
  /// Requests to URLs starting with this prefix never get an answer (a hung receiver).
  std::string hang_prefix = "http://never-set";
  std::vector<http_client_callback> hung;
  void send(http_client_request request, http_client_callback done) override {
    requests.push_back(request);
    if (request.url.rfind(hang_prefix, 0) == 0) {
      hung.push_back(std::move(done));
      return;
    }
    unsigned status = 200;
    if (!statuses.empty()) {
      status = statuses.front();
      statuses.erase(statuses.begin());
    }
    done(http_client_response{status, "", {}, transport_error::none, ""});
  }
};

comparison_request make_request(std::string prompt, std::string provider = "") {
  comparison_request x;
  x.user_prompt = std::move(prompt);
  x.overrides.provider = std::move(provider);
  x.correlation_id = stable_uuid("test", x.user_prompt);
  x.metadata_json = R"({"essay_a_id":"a1","essay_b_id":"b1"})";
  return x;
}

struct pipeline_fixture : test::deterministic_fixture {
  fs::path dir = fs::temp_directory_path() / ("lps_actors_test_" + new_uuid());
  std::unique_ptr<store> db;
  fake_transport http;
  metrics_actor metrics_hdl;
  callbacks_actor callbacks_hdl;
  queue_manager_impl_actor queue;
  intake_actor intake_hdl;
  std::map<std::string, provider_actor> providers;
  bundler_actor bundler_hdl;

  explicit pipeline_fixture(queue_manager_config qm = {}) {
    std::string error;
    db = store::open(
        {.data_dir = dir.string(), .fsync_every_commit = false, .manual_commits = true}, error);
    REQUIRE(db);
    metrics_hdl = spawn(metrics);
    // Every actor reads a wall clock that follows virtual time.
    auto clock = virtual_wall_clock();
    callbacks_config cb;
    cb.now = clock;
    cb.jitter_seed = 7;
    callbacks_hdl =
        spawn(callbacks, cb, static_cast<http_transport*>(&http), db.get(), metrics_hdl);
    qm.now = clock;
    queue = spawn(queue_manager, qm, db.get(), metrics_hdl, callbacks_hdl);
    intake_config ic;
    ic.now = clock;
    intake_hdl = spawn(intake, ic, queue);
  }

  ~pipeline_fixture() {
    for (auto& hdl : spawned)
      caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    sched.run();
    spawned.clear();
    db.reset();
    fs::remove_all(dir);
  }

  void start_bundler(queue_processing_mode mode, uint32_t max_items, bool stub = true,
                     mock_settings mock = {}, std::map<std::string, uint32_t> limits = {},
                     breaker_settings breaker = {},
                     std::map<std::string, rate_limit_settings> rates = {},
                     uint32_t multi_prompt_max = 0) {
    if (!providers.empty()) {
      // providers were set up by the test
    } else if (stub) {
      providers["mock"] = spawn(stub_provider, std::string{"mock"});
      providers["openai"] = spawn(stub_provider, std::string{"openai"});
    } else {
      providers["mock"] = spawn(provider_mock, mock);
    }
    bundler_config cfg;
    cfg.policy.mode = mode;
    cfg.policy.max_items = max_items;
    cfg.policy.default_models = {{"mock", "mock-model-v1"}, {"openai", "gpt-5-mini"}};
    cfg.configured_mode = to_string(mode);
    cfg.gate.max_inflight = std::move(limits);
    cfg.gate.breaker = breaker;
    cfg.gate.rate_limits = std::move(rates);
    cfg.gate.multi_prompt_max = multi_prompt_max;
    bundler_hdl = spawn(bundler, cfg, queue, providers, metrics_hdl);
  }

  /// Runs actors and waits for the store until nothing is left to do.
  void settle() {
    for (int i = 0; i < 100; ++i) {
      sched.run();
      db->flush();
      if (!sched.has_job())
        return;
    }
    FAIL("the actors did not settle");
  }

  /// One tick period of the queue manager (retries, expiry, gauges).
  void tick() {
    advance(tick_period);
  }

  /// Moves virtual time `d` forward in tick periods (each tick sees its own time).
  void run_for(caf::timespan d) {
    for (; d > caf::timespan::zero(); d -= tick_period)
      advance(std::min(d, tick_period));
  }

  /// Moves virtual time `d` forward at once (one tick, at the end) and runs what is due.
  void advance(caf::timespan d) {
    sched.advance_time(d);
    settle();
  }

  static constexpr caf::timespan tick_period = std::chrono::milliseconds{200};

  std::vector<enqueue_outcome> submit(std::vector<comparison_request> xs) {
    auto rh = self->request(intake_hdl, caf::infinite, atom::submit_v, std::move(xs));
    settle();
    std::vector<enqueue_outcome> result;
    rh.receive([&](std::vector<enqueue_outcome>& x) { result = std::move(x); },
               [&](caf::error& err) { FAIL("submit failed: " << caf::to_string(err)); });
    return result;
  }

  stub_provider_state& stub(const std::string& name) {
    return state_of<stub_provider_state>(providers.at(name));
  }

  /// The stored result event of a request, parsed.
  boost::json::object result_of(const std::string& queue_id) {
    auto row = db->find_result(queue_id);
    REQUIRE(row);
    return boost::json::parse(row->event_json).as_object();
  }
};

std::string prompt_of(const bundle_item& item) {
  return item.entry.request.user_prompt;
}

std::vector<std::vector<std::string>> bundle_prompts(const std::vector<bundle>& bundles) {
  std::vector<std::vector<std::string>> result;
  for (const auto& b : bundles) {
    result.emplace_back();
    for (const auto& item : b.items)
      result.back().push_back(prompt_of(item));
  }
  return result;
}

} // namespace

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

TEST_CASE("status moves queued then processing then completed") {
  pipeline_fixture fx;
  auto accepted = fx.submit({make_request("s1")});
  auto id = accepted.at(0).queue_id;
  auto st = fx.request<request_status>(fx.queue, atom::lookup_v, id);
  REQUIRE(st);
  CHECK(st->found);
  CHECK(st->status == queue_status::queued);
  auto taken = fx.request<std::vector<queued_request>>(fx.queue, atom::dequeue_v, uint32_t{1},
                                                       std::vector<std::string>{"mock"});
  REQUIRE(taken);
  REQUIRE(taken->size() == 1);
  CHECK(taken->front().request.queue_id == id);
  st = fx.request<request_status>(fx.queue, atom::lookup_v, id);
  CHECK(st->status == queue_status::processing);
  CHECK(st->attempts == 1);
  comparison_outcome done;
  done.queue_id = id;
  done.success = true;
  done.winner = "Essay B";
  done.justification = "clearer";
  done.confidence = 3.5;
  fx.self->send(fx.queue, atom::complete_v, std::vector<comparison_outcome>{done});
  fx.settle();
  st = fx.request<request_status>(fx.queue, atom::lookup_v, id);
  CHECK_FALSE(st->found);
  auto row = fx.db->find_result(id);
  REQUIRE(row);
  CHECK(row->status == "completed");
  // A late duplicate outcome changes nothing: one final result per request.
  done.winner = "Essay A";
  fx.self->send(fx.queue, atom::complete_v, std::vector<comparison_outcome>{done});
  fx.settle();
  CHECK(fx.result_of(id)["data"].as_object()["winner"] == "Essay B");
}

TEST_CASE("result events have the same shape in per_request and serial_bundle") {
  auto run = [](queue_processing_mode mode) {
    pipeline_fixture fx;
    auto accepted = fx.submit({make_request("same-1"), make_request("same-2")});
    fx.start_bundler(mode, 4, false);
    fx.settle();
    std::vector<boost::json::object> events;
    for (const auto& x : accepted)
      events.push_back(fx.result_of(x.queue_id));
    return events;
  };
  auto per_request = run(queue_processing_mode::per_request);
  auto serial = run(queue_processing_mode::serial_bundle);
  REQUIRE(per_request.size() == serial.size());
  auto keys = [](const boost::json::object& o) {
    std::set<std::string> result;
    for (const auto& kv : o)
      result.insert(std::string{kv.key()});
    return result;
  };
  for (size_t i = 0; i < serial.size(); ++i) {
    auto& a = per_request[i];
    auto& b = serial[i];
    CHECK(keys(a) == keys(b));
    auto& da = a["data"].as_object();
    auto& db = b["data"].as_object();
    CHECK(keys(da) == keys(db));
    // The mock is deterministic per correlation id: the judgement is identical too.
    CHECK(da["winner"] == db["winner"]);
    CHECK(da["justification"] == db["justification"]);
    CHECK(da["confidence"] == db["confidence"]);
    CHECK(da["token_usage"] == db["token_usage"]);
    CHECK(da["error_detail"].is_null());
    CHECK(a["event_type"] == "LLMComparisonResultV1");
  }
}

TEST_CASE("a retryable failure is retried and then succeeds") {
  pipeline_fixture fx;
  fx.start_bundler(queue_processing_mode::serial_bundle, 4);
  fx.stub("mock").fail_once = {"flaky"};
  auto accepted = fx.submit({make_request("flaky"), make_request("steady")});
  fx.run_for(std::chrono::milliseconds{1600}); // the 1 s backoff with up to 50 % jitter
  auto flaky = fx.result_of(accepted[0].queue_id);
  CHECK(flaky["data"].as_object()["winner"] == "Essay A");
  CHECK(fx.result_of(accepted[1].queue_id)["data"].as_object()["error_detail"].is_null());
  CHECK(fx.state_of<queue_manager_state>(fx.queue).retried_total == 1);
  // Both attempts of the flaky request reached the provider; the steady one only once.
  size_t flaky_calls = 0;
  for (const auto& b : fx.stub("mock").seen)
    for (const auto& item : b.items)
      flaky_calls += prompt_of(item) == "flaky" ? 1 : 0;
  CHECK(flaky_calls == 2);
}

TEST_CASE("retries stop at QUEUE_MAX_RETRIES and the failure carries the error") {
  queue_manager_config qm;
  qm.max_retries = 0;
  pipeline_fixture fx{qm};
  fx.start_bundler(queue_processing_mode::serial_bundle, 4);
  fx.stub("mock").fail_once = {"once"};
  auto accepted = fx.submit({make_request("once")});
  auto event = fx.result_of(accepted[0].queue_id);
  auto& data = event["data"].as_object();
  CHECK(data["winner"].is_null());
  CHECK(data["error_detail"].as_object()["error_code"] == "RATE_LIMIT");
  CHECK(data["error_detail"].as_object()["message"] == "stub 429");
  CHECK(data["error_detail"].as_object()["details"].as_object()["attempts"] == 1);
}

TEST_CASE("requests not processed within the TTL end with an EXPIRED result and a callback") {
  queue_manager_config qm;
  qm.ttl = std::chrono::hours{1};
  qm.tick_interval = std::chrono::milliseconds{1};
  pipeline_fixture fx{qm};
  auto req = make_request("late");
  req.callback_url = "http://127.0.0.1:9/hook";
  auto accepted = fx.submit({req});
  // A sweep one millisecond before the TTL leaves it queued; the one at the TTL expires it.
  fx.advance(qm.ttl - std::chrono::milliseconds{1});
  CHECK_FALSE(fx.db->find_result(accepted[0].queue_id));
  CHECK(fx.request<request_status>(fx.queue, atom::lookup_v, accepted[0].queue_id)->status
        == queue_status::queued);
  fx.advance(std::chrono::milliseconds{1});
  auto event = fx.result_of(accepted[0].queue_id);
  CHECK(event["data"].as_object()["error_detail"].as_object()["error_code"] == "EXPIRED");
  REQUIRE(fx.http.requests.size() == 1);
  CHECK(fx.http.requests[0].url == "http://127.0.0.1:9/hook");
  CHECK(fx.http.requests[0].body.find("EXPIRED") != std::string::npos);
  CHECK(fx.state_of<queue_manager_state>(fx.queue).expired_total == 1);
}

TEST_CASE("a full queue refuses new requests and stores none of them") {
  queue_manager_config qm;
  qm.max_size = 2;
  pipeline_fixture fx{qm};
  auto outcomes = fx.submit({make_request("q1"), make_request("q2"), make_request("q3")});
  REQUIRE(outcomes.size() == 3);
  CHECK(outcomes[0].accepted);
  CHECK(outcomes[1].accepted);
  CHECK_FALSE(outcomes[2].accepted);
  CHECK(outcomes[2].error_code == "QUEUE_FULL");
  CHECK(outcomes[2].retry_after_seconds > 0);
  CHECK(fx.db->count_active_requests() == 2);
}

TEST_CASE("process_comparison_batch answers one outcome per item and isolates failures") {
  test::deterministic_fixture fx;
  mock_settings settings;
  settings.error_rate = 0.5;
  auto provider = fx.spawn(provider_mock, settings);
  bundle b{"b1", "mock", "mock-model-v1", "serial_bundle", {}};
  for (int i = 0; i < 30; ++i) {
    queued_request q;
    q.request = make_request("essay pair " + std::to_string(i));
    q.request.queue_id = "q" + std::to_string(i);
    b.items.push_back({q, {"mock", "mock-model-v1", "serial_bundle", "b1", 30, {}}});
  }
  auto outcomes = fx.request<std::vector<comparison_outcome>>(provider, atom::process_v, b);
  REQUIRE(outcomes);
  REQUIRE(outcomes->size() == 30);
  size_t failures = 0;
  for (size_t i = 0; i < 30; ++i) {
    const auto& o = (*outcomes)[i];
    CHECK(o.queue_id == "q" + std::to_string(i));
    // Each item's outcome is what that item alone would get: neighbours do not matter.
    CHECK(o == mock_process_comparison(settings, b.items[i]));
    failures += o.success ? 0 : 1;
    if (!o.success)
      CHECK(o.retryable);
  }
  CHECK(failures > 0);
  CHECK(failures < 30);
}

TEST_CASE("the inspector reports every actor") {
  pipeline_fixture fx;
  fx.start_bundler(queue_processing_mode::serial_bundle, 4);
  auto insp = fx.spawn(inspector, std::vector<status_client_actor>{fx.intake_hdl, fx.queue,
                                                                   fx.bundler_hdl, fx.metrics_hdl});
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

TEST_CASE("a stopped queue manager refuses new requests and reports draining") {
  pipeline_fixture fx;
  fx.self->send(fx.queue, atom::stop_v);
  fx.settle();
  auto outcomes = fx.request<std::vector<enqueue_outcome>>(
      fx.queue, atom::enqueue_v, std::vector<comparison_request>{make_request("late")});
  REQUIRE(outcomes);
  REQUIRE(outcomes->size() == 1);
  CHECK_FALSE(outcomes->front().accepted);
  CHECK(outcomes->front().error_code == "SERVICE_UNAVAILABLE");
  CHECK(fx.request<actor_status>(fx.queue, atom::status_v)->facts["draining"] == "true");
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

TEST_CASE("higher priority is served first and FIFO within a priority") {
  pipeline_fixture fx;
  auto with_priority = [](std::string prompt, int32_t priority) {
    auto x = make_request(std::move(prompt));
    x.priority = priority;
    return x;
  };
  fx.submit({with_priority("a5", 5), with_priority("b5", 5), with_priority("c9", 9),
             with_priority("d1", 1), with_priority("e9", 9), with_priority("f0", 0)});
  fx.start_bundler(queue_processing_mode::per_request, 1);
  fx.settle();
  std::vector<std::string> order;
  for (const auto& b : fx.stub("mock").seen)
    order.push_back(prompt_of(b.items.front()));
  CHECK(order == std::vector<std::string>{"c9", "e9", "a5", "b5", "d1", "f0"});
}

TEST_CASE("a retry waits at least the provider's Retry-After") {
  pipeline_fixture fx;
  fx.start_bundler(queue_processing_mode::serial_bundle, 4);
  fx.stub("mock").fail_once = {"retry-after-30"};
  auto accepted = fx.submit({make_request("retry-after-30")});
  // Retry-After (30 s) outweighs the backoff (at most 1.5 s): a millisecond before it the
  // provider has seen the request only once.
  fx.advance(std::chrono::seconds{30} - std::chrono::milliseconds{1});
  auto& qm = fx.state_of<queue_manager_state>(fx.queue);
  CHECK(qm.entries.at(accepted[0].queue_id).status == queue_status::queued);
  CHECK(fx.stub("mock").seen.size() == 1);
  fx.tick();
  CHECK(fx.stub("mock").seen.size() == 2);
  CHECK(fx.result_of(accepted[0].queue_id)["data"].as_object()["winner"] == "Essay A");
}

// When the retry of `prompt` (failed once at virtual time zero) is due, with this jitter seed.
caf::timespan retry_delay_with_seed(uint64_t seed, const std::string& prompt) {
  queue_manager_config qm;
  qm.retry_base_delay = std::chrono::seconds{10};
  qm.jitter_seed = seed;
  pipeline_fixture fx{qm};
  fx.start_bundler(queue_processing_mode::serial_bundle, 4);
  fx.stub("mock").fail_once = {prompt};
  auto accepted = fx.submit({make_request(prompt)});
  auto& entry = fx.state_of<queue_manager_state>(fx.queue).entries.at(accepted[0].queue_id);
  return entry.not_before - fx.state_of<queue_manager_state>(fx.queue).cfg.now();
}

TEST_CASE("a retry runs when its backoff has passed and not earlier") {
  queue_manager_config qm;
  qm.retry_base_delay = std::chrono::seconds{10};
  qm.tick_interval = std::chrono::milliseconds{1};
  pipeline_fixture fx{qm};
  fx.start_bundler(queue_processing_mode::serial_bundle, 4);
  fx.stub("mock").fail_once = {"flaky"};
  auto accepted = fx.submit({make_request("flaky")});
  auto& st = fx.state_of<queue_manager_state>(fx.queue);
  auto delay = st.entries.at(accepted[0].queue_id).not_before - st.cfg.now();
  // 10 s with up to 50 % jitter either way.
  CHECK(delay >= std::chrono::seconds{5});
  CHECK(delay <= std::chrono::seconds{15});
  fx.advance(delay - std::chrono::milliseconds{1});
  CHECK(fx.stub("mock").seen.size() == 1);
  fx.advance(std::chrono::milliseconds{1});
  CHECK(fx.stub("mock").seen.size() == 2);
  CHECK(fx.result_of(accepted[0].queue_id)["data"].as_object()["winner"] == "Essay A");
}

TEST_CASE("the retry jitter repeats with the same seed") {
  CHECK(retry_delay_with_seed(11, "jittered") == retry_delay_with_seed(11, "jittered"));
  // Different seeds spread retries (equal draws from two seeds would be a freak).
  CHECK(retry_delay_with_seed(11, "jittered") != retry_delay_with_seed(12, "jittered"));
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
  CHECK(bundler_st.gate.breaker("openai").state() == breaker_state::open);
  // GET /api/v1/providers shows the breaker state from the bundler's status.
  CHECK(fx.request<actor_status>(fx.bundler_hdl, atom::status_v)->facts["breaker_openai"]
        == "open");
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
  CHECK(gate.breaker("openai").state() == breaker_state::open);
  openai.down = false;
  // The retries are due after at most 1.5 s, but the open breaker holds them back.
  fx.run_for(std::chrono::seconds{10} - std::chrono::milliseconds{1});
  CHECK(openai.seen.size() == 2);
  CHECK(gate.breaker("openai").state() == breaker_state::open);
  // At open_duration the bundler's wake lets one probe through; its success closes the
  // breaker and the other request follows.
  fx.advance(std::chrono::milliseconds{1});
  CHECK(openai.seen.size() == 4);
  CHECK(gate.breaker("openai").counters().half_opened_total == 1);
  CHECK(gate.breaker("openai").state() == breaker_state::closed);
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
  // The first bundle (4 calls) exceeds the 2 left and leaves debt; the second waits.
  CHECK(fx.stub("mock").seen.size() == 1);
}

TEST_CASE("beyond the memory budget requests stay in the store and are read back at dequeue") {
  queue_manager_config qm;
  qm.memory_text_budget = 20; // room for the first short prompt only
  pipeline_fixture fx{qm};
  auto long_prompt = std::string(5000, 'e') + " long essay pair";
  auto accepted = fx.submit(
      {make_request("short one"), make_request(long_prompt), make_request(long_prompt + " 2")});
  auto& st = fx.state_of<queue_manager_state>(fx.queue);
  CHECK(st.text_bytes_in_memory == std::string{"short one"}.size());
  // The first request is hot (texts in memory); the others are cold: only their scheduling
  // data is in memory.
  CHECK(st.entries.at(accepted[0].queue_id).texts_held > 0);
  CHECK(st.entries.at(accepted[1].queue_id).hot == nullptr);
  CHECK(st.entries.at(accepted[2].queue_id).hot == nullptr);
  fx.start_bundler(queue_processing_mode::serial_bundle, 4);
  fx.settle();
  // The provider saw the full texts, read back from the store.
  std::vector<std::string> prompts;
  for (const auto& b : fx.stub("mock").seen)
    for (const auto& item : b.items)
      prompts.push_back(prompt_of(item));
  CHECK(prompts == std::vector<std::string>{"short one", long_prompt, long_prompt + " 2"});
  CHECK(st.texts_loaded_total == 2);
  CHECK(st.text_bytes_in_memory == 0);
  // The result's prompt hash is the hash of the full prompt, not of an empty string.
  auto meta = fx.result_of(accepted[1].queue_id)["data"].as_object()["request_metadata"];
  CHECK(meta.as_object()["prompt_sha256"].as_string() == sha256_hex(long_prompt));
}

TEST_CASE("a cold request can be looked up and expires with a complete result event") {
  queue_manager_config qm;
  qm.memory_text_budget = 0; // every request cold
  qm.ttl = std::chrono::hours{1};
  pipeline_fixture fx{qm};
  auto req = make_request("cold and late");
  req.callback_url = "http://127.0.0.1:9/hook";
  auto accepted = fx.submit({req});
  auto& st = fx.state_of<queue_manager_state>(fx.queue);
  REQUIRE(st.entries.at(accepted[0].queue_id).hot == nullptr);
  auto status = fx.request<request_status>(fx.queue, atom::lookup_v, accepted[0].queue_id);
  REQUIRE(status);
  CHECK(status->correlation_id == req.correlation_id);       // read back from the store
  CHECK(st.entries.at(accepted[0].queue_id).hot == nullptr); // and not kept
  fx.advance(qm.ttl);
  auto event = fx.result_of(accepted[0].queue_id);
  auto& data = event["data"].as_object();
  CHECK(data["error_detail"].as_object()["error_code"] == "EXPIRED");
  CHECK(data["correlation_id"].as_string() == req.correlation_id);
  CHECK(data["request_metadata"].as_object()["essay_a_id"] == "a1");
  REQUIRE(fx.http.requests.size() == 1); // the callback URL came back from the store too
}

TEST_CASE("QUEUE_MAX_BYTES refuses requests beyond the byte budget") {
  queue_manager_config qm;
  qm.max_bytes = 5000;
  pipeline_fixture fx{qm};
  auto big = std::string(3000, 'b');
  auto outcomes = fx.submit({make_request(big + "1"), make_request(big + "2")});
  REQUIRE(outcomes.size() == 2);
  CHECK(outcomes[0].accepted);
  CHECK_FALSE(outcomes[1].accepted);
  CHECK(outcomes[1].error_code == "QUEUE_FULL");
  CHECK(fx.db->count_active_requests() == 1);
}

TEST_CASE("a retried request joins the back of its priority and does not jump the line") {
  pipeline_fixture fx;
  fx.start_bundler(queue_processing_mode::per_request, 1, true, {}, {{"mock", 1}});
  fx.stub("mock").fail_once = {"first"};
  fx.submit({make_request("first"), make_request("second"), make_request("third")});
  // No tick needed: a freed call slot makes the bundler take the next request at once.
  CHECK(fx.stub("mock").seen.size() == 3);
  fx.run_for(std::chrono::milliseconds{1600}); // releases the retry of "first"
  std::vector<std::string> order;
  for (const auto& b : fx.stub("mock").seen)
    order.push_back(prompt_of(b.items.front()));
  // "first" failed once; its retry went behind the requests queued after it.
  CHECK(order == std::vector<std::string>{"first", "second", "third", "first"});
}

// The provider call overlaps the insert's commit; nothing final may happen before it.

TEST_CASE("a request may reach its provider before its insert commits, but is answered and "
          "finalized only after the commit") {
  pipeline_fixture fx;
  fx.start_bundler(queue_processing_mode::per_request, 1);
  fx.settle();
  auto req = make_request("early");
  req.callback_url = "http://cb/early";
  auto rh = fx.self->request(fx.intake_hdl, caf::infinite, atom::submit_v,
                             std::vector<comparison_request>{req});
  fx.sched.run(); // the actors run; the store has not committed anything yet
  REQUIRE(fx.stub("mock").seen.size() == 1);
  auto id = fx.stub("mock").seen[0].items.at(0).entry.request.queue_id;
  CHECK_FALSE(fx.db->find_result(id)); // the outcome waits for the insert
  CHECK(fx.http.requests.empty());
  CHECK(fx.db->count_active_requests() == 0);
  fx.settle(); // the insert commits: the 202, then the final result and its callback
  std::vector<enqueue_outcome> answer;
  rh.receive([&](std::vector<enqueue_outcome>& x) { answer = std::move(x); },
             [&](caf::error& err) { FAIL("submit failed: " << caf::to_string(err)); });
  REQUIRE(answer.size() == 1);
  CHECK(answer[0].accepted);
  CHECK(answer[0].queue_id == id);
  auto row = fx.db->find_result(id);
  REQUIRE(row);
  CHECK(row->status == "completed");
  REQUIRE(fx.http.requests.size() == 1);
  CHECK(fx.http.requests[0].url == "http://cb/early");
  CHECK(fx.db->count_active_requests() == 0);
}

TEST_CASE("a request whose insert fails is refused and gets no result, even if its provider "
          "already answered") {
  pipeline_fixture fx;
  fx.start_bundler(queue_processing_mode::per_request, 1);
  fx.settle();
  // A row with the same queue id, written behind the queue manager's back, makes the
  // insert fail (UNIQUE).
  auto req = make_request("clash");
  req.queue_id = new_uuid();
  req.callback_url = "http://cb/clash";
  stored_request row;
  row.queue_id = req.queue_id;
  row.provider = "mock";
  store_write write;
  write.inserts.push_back(row);
  fx.db->submit(std::move(write), [](bool ok, const std::string&) { REQUIRE(ok); });
  fx.db->flush();
  auto rh = fx.self->request(fx.queue, caf::infinite, atom::enqueue_v,
                             std::vector<comparison_request>{req});
  fx.sched.run();
  REQUIRE(fx.stub("mock").seen.size() == 1); // the provider was called before the commit
  fx.settle();
  std::vector<enqueue_outcome> answer;
  rh.receive([&](std::vector<enqueue_outcome>& x) { answer = std::move(x); },
             [&](caf::error& err) { FAIL("enqueue failed: " << caf::to_string(err)); });
  REQUIRE(answer.size() == 1);
  CHECK_FALSE(answer[0].accepted);
  CHECK(answer[0].error_code == "INTERNAL_ERROR");
  CHECK_FALSE(fx.db->find_result(req.queue_id));
  CHECK(fx.http.requests.empty());
  auto st = fx.request<request_status>(fx.queue, atom::lookup_v, req.queue_id);
  REQUIRE(st);
  CHECK_FALSE(st->found);
  auto status = fx.request<actor_status>(fx.queue, atom::status_v);
  REQUIRE(status);
  CHECK(status->figures.at("processing") == 0);
  CHECK(status->figures.at("active_bytes") == 0);
  CHECK(status->figures.at("text_bytes_in_memory") == 0);
}

TEST_CASE("the response-duration histogram gets the provider call's time to the microsecond") {
  queued_request entry;
  entry.request = make_request("timed");
  entry.request.queue_id = new_uuid();
  comparison_outcome o;
  o.queue_id = entry.request.queue_id;
  o.success = true;
  o.winner = "Essay A";
  o.justification = "timed";
  o.confidence = 3.0;
  o.provider = "openai";
  o.model = "gpt-5-mini";
  o.response_time = std::chrono::microseconds{420}; // a sub-millisecond call
  auto now = caf::make_timestamp();
  auto event = make_result_event(entry, o, now);
  std::optional<double> seconds;
  for (const auto& sample : final_result_metrics(event, now))
    if (sample.name == "llm_provider_response_duration_seconds")
      seconds = sample.value;
  REQUIRE(seconds);
  CHECK(*seconds == Approx(0.000420));
}
