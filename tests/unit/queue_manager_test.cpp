// The queue manager under CAF's test coordinator, with the real store: status
// transitions, result events, retries and expiry in virtual time, capacity, priority, cold
// requests, and what may happen before an insert commits.

#include "fixtures/pipeline.hpp"
#include "fixtures/sqlite_probe.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace lps;
using namespace lps::test;

namespace {

// Takes one request of the mock provider out of the queue (it is processing then).
void take_one(pipeline_fixture& fx) {
  auto taken = fx.request<std::vector<queued_request>>(fx.queue, atom::dequeue_v, uint32_t{1},
                                                       std::vector<std::string>{"mock"});
  REQUIRE(taken);
  REQUIRE(taken->size() == 1);
}

} // namespace

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

TEST_CASE("intake refuses submissions at once while the store is unavailable") {
  pipeline_fixture fx;
  store_health health;
  health.available = false;
  intake_config ic;
  ic.store_health_of = [&health] { return health; };
  fx.intake_hdl = fx.spawn(intake, ic, fx.queue);
  auto refused = fx.submit({make_request("down-1"), make_request("down-2")});
  REQUIRE(refused.size() == 2);
  for (const auto& x : refused) {
    CHECK_FALSE(x.accepted);
    CHECK(x.error_code == "STORE_UNAVAILABLE");
    CHECK(x.retry_after_seconds == store_unavailable_retry_after_s);
  }
  CHECK(fx.db->count_active_requests() == 0);
  health.available = true; // back: taken again
  auto accepted = fx.submit({make_request("up")});
  REQUIRE(accepted.size() == 1);
  CHECK(accepted[0].accepted);
  CHECK(fx.db->count_active_requests() == 1);
  auto status = fx.request<actor_status>(fx.intake_hdl, atom::status_v);
  REQUIRE(status);
  CHECK(status->figures.at("refused_total") == 2);
}

TEST_CASE("the queue manager's tick publishes the store's health as metrics") {
  pipeline_fixture fx;
  fx.tick();
  auto& registry = fx.state_of<metrics_state>(fx.metrics_hdl).registry;
  CHECK(registry.value("llm_provider_store_up", {}) == 1); // SQLite is always available
  CHECK(registry.rejected() == 0);
  CHECK(fx.request<std::string>(fx.metrics_hdl, atom::render_v)
            ->find("llm_provider_store_reconnects_total 0")
        != std::string::npos);
}

TEST_CASE("a stopped queue manager refuses new requests and reports draining") {
  pipeline_fixture fx;
  auto accepting = [&] {
    auto result = fx.request<bool>(fx.queue, atom::accepting_v);
    REQUIRE(result);
    return *result;
  };
  CHECK(accepting());
  fx.self->send(fx.queue, atom::stop_v);
  fx.settle();
  CHECK_FALSE(accepting());
  auto outcomes = fx.request<std::vector<enqueue_outcome>>(
      fx.queue, atom::enqueue_v, std::vector<comparison_request>{make_request("late")});
  REQUIRE(outcomes);
  REQUIRE(outcomes->size() == 1);
  CHECK_FALSE(outcomes->front().accepted);
  CHECK(outcomes->front().error_code == "SERVICE_UNAVAILABLE");
}

TEST_CASE("a drained queue manager says it no longer accepts requests") {
  pipeline_fixture fx;
  REQUIRE(fx.request<bool>(fx.queue, atom::drain_v));
  auto accepting = fx.request<bool>(fx.queue, atom::accepting_v);
  REQUIRE(accepting);
  CHECK_FALSE(*accepting);
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
  // The store alone, no actor run: the insert commits, and its callback submits the final
  // write that waited behind it, which commits next (no hop through the queue manager).
  fx.db->flush();
  CHECK(fx.db->count_active_requests() == 0);
  REQUIRE(fx.db->find_result(id));
  CHECK(fx.http.requests.empty()); // the callback follows in the callbacks actor
  fx.settle();                     // the 202, then the callback
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
  CHECK(answer[0].error_code == "STORE_UNAVAILABLE");
  CHECK(answer[0].retry_after_seconds == store_unavailable_retry_after_s);
  CHECK_FALSE(fx.db->find_result(req.queue_id));
  CHECK(fx.http.requests.empty());
  auto st = fx.request<request_status>(fx.queue, atom::lookup_v, req.queue_id);
  REQUIRE(st);
  CHECK_FALSE(st->found);
  auto status = fx.request<actor_status>(fx.queue, atom::status_v);
  REQUIRE(status);
  CHECK(status->figures.at("processing") == 0);
  CHECK(status->figures.at("active_bytes") == 0);
  CHECK(status->figures.at("store_writes_in_flight") == 0); // its final write was dropped
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

TEST_CASE("a request whose key was rejected goes back to the queue without using an attempt") {
  queue_manager_config qm;
  qm.max_retries = 0; // any counted failure would be final at once
  pipeline_fixture fx{qm};
  auto accepted = fx.submit({make_request("bad key")});
  auto id = accepted.at(0).queue_id;
  comparison_outcome rejected;
  rejected.queue_id = id;
  rejected.error_code = "AUTHENTICATION_ERROR";
  rejected.http_status = 401;
  for (int round = 0; round < 3; ++round) {
    auto taken = fx.request<std::vector<queued_request>>(fx.queue, atom::dequeue_v, uint32_t{1},
                                                         std::vector<std::string>{"mock"});
    REQUIRE(taken);
    REQUIRE(taken->size() == 1);
    CHECK(taken->front().request.queue_id == id);
    CHECK(taken->front().request.user_prompt == "bad key"); // texts read back from the store
    CHECK(taken->front().attempts == 1);
    fx.self->send(fx.queue, atom::complete_v, std::vector<comparison_outcome>{rejected});
    fx.settle();
    auto st = fx.request<request_status>(fx.queue, atom::lookup_v, id);
    REQUIRE(st);
    CHECK(st->status == queue_status::queued);
    CHECK(st->attempts == 0);
    CHECK_FALSE(fx.db->find_result(id));
  }
  CHECK(fx.state_of<queue_manager_state>(fx.queue).retried_total == 0);
  // A batch job's rejected item is final as before (batch jobs do not pause their provider).
  auto taken = fx.request<std::vector<queued_request>>(fx.queue, atom::dequeue_v, uint32_t{1},
                                                       std::vector<std::string>{"mock"});
  REQUIRE(taken);
  rejected.enrichment.batch_job_id = "job-1";
  fx.self->send(fx.queue, atom::complete_v, std::vector<comparison_outcome>{rejected});
  fx.settle();
  auto event = fx.result_of(id);
  auto& detail = event["data"].as_object()["error_detail"].as_object();
  CHECK(detail["error_code"] == "AUTHENTICATION_ERROR");
}

TEST_CASE("final provider failures are logged at most once per provider and code per period") {
  failure_log_throttle throttle{std::chrono::seconds{10}};
  caf::timestamp t0{std::chrono::hours{1}};
  CHECK(throttle.admit("openai", "RATE_LIMIT", t0) == 1); // the first one is logged at once
  CHECK(throttle.admit("openai", "RATE_LIMIT", t0 + std::chrono::seconds{1}) == 0);
  CHECK(throttle.admit("openai", "RATE_LIMIT", t0 + std::chrono::seconds{9}) == 0);
  // Another code or provider has its own window.
  CHECK(throttle.admit("openai", "EXTERNAL_SERVICE_ERROR", t0 + std::chrono::seconds{9}) == 1);
  CHECK(throttle.admit("anthropic", "RATE_LIMIT", t0 + std::chrono::seconds{9}) == 1);
  // After the period, one line stands for this failure and the two not logged.
  CHECK(throttle.admit("openai", "RATE_LIMIT", t0 + std::chrono::seconds{10}) == 3);
  CHECK(throttle.admit("openai", "RATE_LIMIT", t0 + std::chrono::seconds{11}) == 0);
}

TEST_CASE("provider failures are told apart from expiry and cancels") {
  comparison_outcome outcome;
  outcome.provider = "openai";
  outcome.error_code = "RATE_LIMIT";
  CHECK(is_provider_failure(outcome));
  outcome.error_code = "EXPIRED";
  CHECK_FALSE(is_provider_failure(outcome));
  outcome.error_code = "CANCELLED";
  CHECK_FALSE(is_provider_failure(outcome));
  outcome.error_code = "RATE_LIMIT";
  outcome.success = true;
  CHECK_FALSE(is_provider_failure(outcome));
}

TEST_CASE("status of a held request: resolved provider and model, last error, next attempt") {
  queue_manager_config qm;
  qm.retry_base_delay = std::chrono::seconds{10};
  qm.default_models = {{"mock", "mock-default"}, {"openai", "gpt-default"}};
  pipeline_fixture fx{qm};
  auto plain = make_request("plain");
  auto chosen = make_request("chosen", "mock");
  chosen.overrides.model = "mock-chosen";
  auto accepted = fx.submit({plain, chosen});
  auto id = accepted.at(0).queue_id;
  auto st = fx.request<request_status>(fx.queue, atom::lookup_v, id);
  REQUIRE(st);
  CHECK(st->provider == "mock");
  CHECK(st->model == "mock-default");
  CHECK(st->last_error_code.empty());
  CHECK(st->next_attempt_at == caf::timestamp{});
  auto other = fx.request<request_status>(fx.queue, atom::lookup_v, accepted.at(1).queue_id);
  CHECK(other->model == "mock-chosen");

  take_one(fx);
  comparison_outcome failed;
  failed.queue_id = id;
  failed.error_code = "EXTERNAL_SERVICE_ERROR";
  failed.error_message = std::string(150, 'a') + std::string(150, 'b');
  failed.retryable = true;
  fx.self->send(fx.queue, atom::complete_v, std::vector<comparison_outcome>{failed});
  fx.settle();
  auto& entry = fx.state_of<queue_manager_state>(fx.queue).entries.at(id);
  st = fx.request<request_status>(fx.queue, atom::lookup_v, id);
  CHECK(st->status == queue_status::queued);
  CHECK(st->attempts == 1);
  CHECK(st->last_error_code == "EXTERNAL_SERVICE_ERROR");
  CHECK(st->last_error_message == std::string(150, 'a') + std::string(50, 'b'));
  CHECK(st->next_attempt_at == entry.not_before);
  CHECK(st->next_attempt_at > fx.state_of<queue_manager_state>(fx.queue).cfg.now());

  // Once the backoff passed it no longer waits, and the last error stays until it is final.
  fx.advance(std::chrono::seconds{16});
  st = fx.request<request_status>(fx.queue, atom::lookup_v, id);
  CHECK(st->next_attempt_at == caf::timestamp{});
  CHECK(st->last_error_code == "EXTERNAL_SERVICE_ERROR");
}

// -- cancel --

namespace {

// Sends a cancel and settles (store commits included) before taking the answer.
cancel_summary cancel_of(pipeline_fixture& fx, cancel_target target) {
  auto rh = fx.self->request(fx.queue, caf::infinite, atom::cancel_v, std::move(target));
  fx.settle();
  cancel_summary result;
  rh.receive([&](cancel_summary& x) { result = x; },
             [&](caf::error& err) { FAIL("cancel failed: " << caf::to_string(err)); });
  return result;
}

comparison_request request_in_run(std::string prompt, const std::string& run) {
  auto result = make_request(std::move(prompt));
  result.metadata_json = R"({"essay_a_id":"a1","bos_batch_id":")" + run + R"("})";
  return result;
}

std::string error_code_of(pipeline_fixture& fx, const std::string& id) {
  auto event = fx.result_of(id);
  auto& detail = event["data"].as_object()["error_detail"];
  return detail.is_null() ? "" : std::string{detail.as_object()["error_code"].as_string()};
}

} // namespace

TEST_CASE("cancel ends a queued request with one CANCELLED result, answered after the commit") {
  pipeline_fixture fx;
  auto req = make_request("to cancel");
  req.callback_url = "http://127.0.0.1:9/hook";
  auto id = fx.submit({req}).at(0).queue_id;
  auto rh = fx.self->request(fx.queue, caf::infinite, atom::cancel_v, cancel_target{id, ""});
  fx.sched.run(); // the actors run, the store has not committed yet: no answer, no result
  CHECK(fx.self->mailbox().empty());
  CHECK_FALSE(fx.db->find_result(id));
  fx.settle();
  cancel_summary summary;
  rh.receive([&](cancel_summary& x) { summary = x; },
             [&](caf::error& err) { FAIL(caf::to_string(err)); });
  CHECK(summary == cancel_summary{1, 0, 0, 0});
  CHECK(error_code_of(fx, id) == "CANCELLED");
  REQUIRE(fx.http.requests.size() == 1); // its one callback
  CHECK(fx.http.requests[0].body.find("CANCELLED") != std::string::npos);
  auto& st = fx.state_of<queue_manager_state>(fx.queue);
  CHECK(st.failed_total == 1);
  CHECK(st.entries.empty());
  // It is gone from the queue: nothing to hand out, and a second cancel finds it final.
  auto taken = fx.request<std::vector<queued_request>>(fx.queue, atom::dequeue_v, uint32_t{1},
                                                       std::vector<std::string>{"mock"});
  CHECK(taken->empty());
  CHECK(cancel_of(fx, {id, ""}) == cancel_summary{0, 0, 1, 0});
  CHECK(cancel_of(fx, {"no-such-id", ""}) == cancel_summary{0, 0, 0, 1});
  CHECK(fx.http.requests.size() == 1);
}

TEST_CASE("cancel leaves a processing request to finish, and takes one waiting for a retry") {
  pipeline_fixture fx;
  auto id = fx.submit({make_request("busy")}).at(0).queue_id;
  auto taken = fx.request<std::vector<queued_request>>(fx.queue, atom::dequeue_v, uint32_t{1},
                                                       std::vector<std::string>{"mock"});
  REQUIRE(taken->size() == 1);
  CHECK(cancel_of(fx, {id, ""}) == cancel_summary{0, 1, 0, 0});
  CHECK_FALSE(fx.db->find_result(id));
  // A retryable failure puts it back in backoff (queued again): now it can be cancelled.
  comparison_outcome failed;
  failed.queue_id = id;
  failed.error_code = "RATE_LIMIT";
  failed.retryable = true;
  fx.self->send(fx.queue, atom::complete_v, std::vector<comparison_outcome>{failed});
  fx.settle();
  CHECK(cancel_of(fx, {id, ""}) == cancel_summary{1, 0, 0, 0});
  CHECK(error_code_of(fx, id) == "CANCELLED");
  // The backoff ends later without bringing it back.
  fx.run_for(std::chrono::seconds{3});
  taken = fx.request<std::vector<queued_request>>(fx.queue, atom::dequeue_v, uint32_t{1},
                                                  std::vector<std::string>{"mock"});
  CHECK(taken->empty());
  CHECK(fx.state_of<queue_manager_state>(fx.queue).entries.empty());
}

TEST_CASE("a run cancel takes the run's queued requests, cold ones too, and nothing else") {
  queue_manager_config qm;
  qm.memory_text_budget = 5; // room for the first prompt only: the others are cold
  pipeline_fixture fx{qm};
  auto accepted = fx.submit({request_in_run("r1a", "run-1"), request_in_run("r1b", "run-1"),
                             request_in_run("r1c", "run-1"), request_in_run("r2a", "run-2")});
  auto& st = fx.state_of<queue_manager_state>(fx.queue);
  REQUIRE(st.entries.at(accepted[0].queue_id).hot);
  REQUIRE_FALSE(st.entries.at(accepted[1].queue_id).hot);
  auto taken = fx.request<std::vector<queued_request>>(fx.queue, atom::dequeue_v, uint32_t{1},
                                                       std::vector<std::string>{"mock"});
  REQUIRE(taken->size() == 1);
  CHECK(taken->front().request.queue_id == accepted[0].queue_id);

  CHECK(cancel_of(fx, {"", "run-1"}) == cancel_summary{2, 1, 0, 0});
  CHECK(error_code_of(fx, accepted[1].queue_id) == "CANCELLED");
  CHECK(error_code_of(fx, accepted[2].queue_id) == "CANCELLED");
  // The cold request's event is complete: its metadata was read back from the store.
  auto event = fx.result_of(accepted[1].queue_id);
  CHECK(event["data"].as_object()["request_metadata"].as_object()["bos_batch_id"] == "run-1");
  // The processing one finishes with its provider's result; the other run is untouched.
  comparison_outcome done;
  done.queue_id = accepted[0].queue_id;
  done.success = true;
  done.winner = "Essay A";
  done.justification = "fine";
  done.confidence = 4.0;
  fx.self->send(fx.queue, atom::complete_v, std::vector<comparison_outcome>{done});
  fx.settle();
  CHECK(error_code_of(fx, accepted[0].queue_id).empty());
  CHECK(fx.request<request_status>(fx.queue, atom::lookup_v, accepted[3].queue_id)->status
        == queue_status::queued);
  // Cancelling again: the three are final; a run nobody submitted has nothing.
  CHECK(cancel_of(fx, {"", "run-1"}) == cancel_summary{0, 0, 3, 0});
  CHECK(cancel_of(fx, {"", "no-such-run"}) == cancel_summary{});
}

// -- the store's queryable columns (what operators' SQL reads) --

namespace {

// Columns of request `id`'s row, joined by '|' (NULL shown as "-").
std::string request_columns(pipeline_fixture& fx, const std::string& id) {
  fx.settle(); // its writes committed
  return query_text(fx.db->path(),
                    "SELECT provider || '|' || model || '|' || correlation_id || '|' || "
                    "coalesce(bos_batch_id, '-') || '|' || coalesce(cj_batch_id, '-') || '|' || "
                    "status || '|' || attempts FROM requests WHERE queue_id = '"
                        + id + "'");
}

std::string result_columns(pipeline_fixture& fx, const std::string& id) {
  return query_text(fx.db->path(),
                    "SELECT status || '|' || provider || '|' || model || '|' || "
                    "coalesce(error_code, '-') || '|' || correlation_id || '|' || "
                    "coalesce(bos_batch_id, '-') || '|' || coalesce(cj_batch_id, '-') "
                    "FROM results WHERE queue_id = '"
                        + id + "'");
}

std::vector<queued_request> dequeue_mock(pipeline_fixture& fx) {
  auto taken = fx.request<std::vector<queued_request>>(fx.queue, atom::dequeue_v, uint32_t{1},
                                                       std::vector<std::string>{"mock"});
  REQUIRE(taken);
  return *taken;
}

} // namespace

TEST_CASE("a request's row shows its ids and model, processing while dispatched, queued when put "
          "back") {
  queue_manager_config qm;
  qm.default_models = {{"mock", "mock-model-v1"}};
  pipeline_fixture fx{qm};
  auto req = make_request("columns");
  req.correlation_id = "corr-1";
  req.metadata_json = R"({"bos_batch_id":"run-1","cj_batch_id":17})"; // CJ numbers its batches
  auto id = fx.submit({req}).at(0).queue_id;
  CHECK(request_columns(fx, id) == "mock|mock-model-v1|corr-1|run-1|17|queued|0");
  REQUIRE(dequeue_mock(fx).size() == 1);
  CHECK(request_columns(fx, id) == "mock|mock-model-v1|corr-1|run-1|17|processing|0");
  // A rejected key puts it back without using an attempt.
  comparison_outcome outcome;
  outcome.queue_id = id;
  outcome.error_code = "AUTHENTICATION_ERROR";
  outcome.http_status = 401;
  fx.self->send(fx.queue, atom::complete_v, std::vector<comparison_outcome>{outcome});
  CHECK(request_columns(fx, id) == "mock|mock-model-v1|corr-1|run-1|17|queued|0");
  REQUIRE(dequeue_mock(fx).size() == 1);
  CHECK(request_columns(fx, id) == "mock|mock-model-v1|corr-1|run-1|17|processing|0");
  // A retryable failure waits for its retry, queued, its attempt counted.
  outcome.error_code = "RATE_LIMIT";
  outcome.http_status = 429;
  outcome.retryable = true;
  fx.self->send(fx.queue, atom::complete_v, std::vector<comparison_outcome>{outcome});
  CHECK(request_columns(fx, id) == "mock|mock-model-v1|corr-1|run-1|17|queued|1");
}

TEST_CASE("a result's row names who served it, its error code and its request's ids") {
  queue_manager_config qm;
  qm.default_models = {{"mock", "mock-model-v1"}};
  pipeline_fixture fx{qm};
  auto served = make_request("served");
  served.metadata_json = R"({"bos_batch_id":"run-1","cj_batch_id":"cj-a"})";
  auto cancelled = make_request("cancelled");
  auto ids = fx.submit({served, cancelled});
  REQUIRE(dequeue_mock(fx).size() == 1);
  comparison_outcome done;
  done.queue_id = ids.at(0).queue_id;
  done.success = true;
  done.winner = "Essay A";
  done.justification = "clearer";
  done.confidence = 4;
  done.provider = "mock";
  done.model = "mock-model-v2"; // what served it, not the queue's default
  fx.self->send(fx.queue, atom::complete_v, std::vector<comparison_outcome>{done});
  fx.settle();
  CHECK(result_columns(fx, ids.at(0).queue_id)
        == "completed|mock|mock-model-v2|-|" + served.correlation_id + "|run-1|cj-a");
  // Never served: the provider and model it was queued for.
  CHECK(cancel_of(fx, {ids.at(1).queue_id, ""}) == cancel_summary{1, 0, 0, 0});
  CHECK(result_columns(fx, ids.at(1).queue_id)
        == "failed|mock|mock-model-v1|CANCELLED|" + cancelled.correlation_id + "|-|-");
}

TEST_CASE("the queue manager's status lists waiting requests by provider and model") {
  queue_manager_config qm;
  qm.default_models = {{"mock", "mock-model-v1"}};
  pipeline_fixture fx{qm};
  auto other_model = make_request("q3");
  other_model.overrides.model = "mock-model-v2";
  REQUIRE(fx.submit({make_request("q1"), make_request("q2")}).size() == 2);
  fx.settle();
  fx.run_for(std::chrono::seconds{2}); // no bundler: everything waits
  REQUIRE(fx.submit({other_model, make_request("q4", "openai")}).size() == 2);
  fx.settle();
  auto status = fx.request<actor_status>(fx.queue, atom::status_v);
  REQUIRE(status);
  auto rows = status->tables["queue"];
  REQUIRE(rows.size() == 3); // in provider and model order
  CHECK(rows[0].facts
        == std::map<std::string, std::string>{{"provider", "mock"}, {"model", "mock-model-v1"}});
  CHECK(rows[0].figures.at("waiting") == 2);
  CHECK(rows[0].figures.at("oldest_age_seconds") == Approx(2.0)); // q1 waited the 2 s
  CHECK(rows[1].facts.at("model") == "mock-model-v2");
  CHECK(rows[1].figures.at("waiting") == 1);
  CHECK(rows[1].figures.at("oldest_age_seconds") == Approx(0.0)); // q3 just came
  CHECK(rows[2].facts.at("provider") == "openai");
  CHECK(rows[2].facts.at("model") == ""); // no default model configured for openai here
  CHECK(rows[2].figures.at("waiting") == 1);
}

// Status questions that pile up (the inspector's, while the start-up recovery of a large
// backlog holds the actor) share one walk of the queue; any other message makes the next
// question walk again, so the table is never older than the queue.
TEST_CASE("status questions in a row share one walk of the queue") {
  pipeline_fixture fx;
  REQUIRE(fx.submit({make_request("w1"), make_request("w2")}).size() == 2);
  fx.settle();
  auto walks_and_waiting = [&fx] {
    auto status = fx.request<actor_status>(fx.queue, atom::status_v);
    REQUIRE(status);
    auto rows = status->tables["queue"];
    REQUIRE(rows.size() == 1);
    return std::make_pair(status->figures.at("queue_table_walks_total"),
                          rows[0].figures.at("waiting"));
  };
  auto [walks, waiting] = walks_and_waiting();
  CHECK(waiting == 2);
  for (int i = 0; i < 3; ++i)
    CHECK(walks_and_waiting() == std::make_pair(walks, 2.0));
  REQUIRE(fx.submit({make_request("w3")}).size() == 1);
  fx.settle();
  CHECK(walks_and_waiting() == std::make_pair(walks + 1, 3.0));
}

// -- store reads on the reader pool --

namespace {

// Whether the test actor has a reply waiting (the queue manager answered).
bool answered(pipeline_fixture& fx) {
  return !fx.self->mailbox().empty();
}

comparison_outcome success_of(const std::string& id) {
  comparison_outcome done;
  done.queue_id = id;
  done.success = true;
  done.winner = "Essay A";
  done.justification = "fine";
  done.confidence = 4.0;
  return done;
}

} // namespace

TEST_CASE("a cold request's texts are read on the reader pool: the dequeue answers after the "
          "read, never on the actor's thread") {
  queue_manager_config qm;
  qm.memory_text_budget = 0; // every request is cold
  pipeline_fixture fx{qm};
  auto id = fx.submit({make_request("cold text")}).at(0).queue_id;
  auto rh = fx.self->request(fx.queue, caf::infinite, atom::dequeue_v, uint32_t{1},
                             std::vector<std::string>{"mock"});
  fx.sched.run(); // the queue manager handled the dequeue: its read waits on the pool
  CHECK(fx.reads->queued() == 1);
  CHECK_FALSE(answered(fx));
  auto& st = fx.state_of<queue_manager_state>(fx.queue);
  CHECK(st.entries.at(id).status == queue_status::processing); // no one else takes it meanwhile
  CHECK(st.pending_reads.size() == 1);
  fx.run_with_reads();
  std::vector<queued_request> taken;
  rh.receive([&](std::vector<queued_request>& xs) { taken = std::move(xs); },
             [&](caf::error& err) { FAIL(caf::to_string(err)); });
  REQUIRE(taken.size() == 1);
  CHECK(taken[0].request.user_prompt == "cold text");
  CHECK(st.pending_reads.empty());
  CHECK(st.texts_loaded_total == 1);
}

TEST_CASE("a lookup and a cancel of cold requests read on the reader pool") {
  queue_manager_config qm;
  qm.memory_text_budget = 0;
  qm.default_models = {{"mock", "mock-default"}};
  pipeline_fixture fx{qm};
  auto req = make_request("cold");
  req.callback_url = "http://127.0.0.1:9/hook";
  auto id = fx.submit({req}).at(0).queue_id;

  auto lookup = fx.self->request(fx.queue, caf::infinite, atom::lookup_v, id);
  fx.sched.run();
  CHECK(fx.reads->queued() == 1); // the correlation id and model are in the stored request
  CHECK_FALSE(answered(fx));
  fx.run_with_reads();
  lookup.receive(
      [&](request_status& x) {
        CHECK(x.found);
        CHECK(x.correlation_id == req.correlation_id);
        CHECK(x.model == "mock-default");
      },
      [&](caf::error& err) { FAIL(caf::to_string(err)); });

  // A cancel of the cold request: its final result needs the stored request (callback URL,
  // metadata), read on the pool, then written; the answer comes after the commit.
  auto cancel = fx.self->request(fx.queue, caf::infinite, atom::cancel_v, cancel_target{id, ""});
  fx.sched.run();
  CHECK(fx.reads->queued() == 1);
  CHECK_FALSE(answered(fx));
  fx.settle();
  cancel.receive(
      [&](cancel_summary& x) {
        CHECK(x == cancel_summary{1, 0, 0, 0});
      },
      [&](caf::error& err) { FAIL(caf::to_string(err)); });
  CHECK(error_code_of(fx, id) == "CANCELLED");
  REQUIRE(fx.http.requests.size() == 1); // its one callback, to the URL read back
  CHECK(fx.http.requests[0].url == "http://127.0.0.1:9/hook");
  // A request no longer held: whether it is final is read on the pool too.
  auto again = fx.self->request(fx.queue, caf::infinite, atom::cancel_v, cancel_target{id, ""});
  fx.sched.run();
  CHECK(fx.reads->queued() == 1);
  fx.run_with_reads();
  again.receive(
      [&](cancel_summary& x) {
        CHECK(x == cancel_summary{0, 0, 1, 0});
      },
      [&](caf::error& err) { FAIL(caf::to_string(err)); });
}

TEST_CASE("a run cancel racing a dispatch: the request dispatched while the run was read "
          "ends with its provider's result alone") {
  queue_manager_config qm;
  qm.memory_text_budget = 0;
  pipeline_fixture fx{qm};
  auto accepted = fx.submit({request_in_run("a", "run-1"), request_in_run("b", "run-1")});
  auto cancel =
      fx.self->request(fx.queue, caf::infinite, atom::cancel_v, cancel_target{"", "run-1"});
  fx.sched.run(); // the run's rows are being read; meanwhile the first request is dispatched
  REQUIRE(fx.reads->queued() == 1);
  auto dequeue = fx.self->request(fx.queue, caf::infinite, atom::dequeue_v, uint32_t{1},
                                  std::vector<std::string>{"mock"});
  fx.sched.run();
  fx.settle(); // both reads run: the run's rows (both active), then the dispatched texts
  std::vector<queued_request> taken;
  dequeue.receive([&](std::vector<queued_request>& xs) { taken = std::move(xs); },
                  [&](caf::error& err) { FAIL(caf::to_string(err)); });
  REQUIRE(taken.size() == 1);
  CHECK(taken[0].request.queue_id == accepted[0].queue_id);
  cancel.receive(
      [&](cancel_summary& x) {
        CHECK(x == cancel_summary{1, 1, 0, 0});
      },
      [&](caf::error& err) { FAIL(caf::to_string(err)); });
  CHECK(error_code_of(fx, accepted[1].queue_id) == "CANCELLED");
  CHECK_FALSE(fx.db->find_result(accepted[0].queue_id));
  fx.self->send(fx.queue, atom::complete_v,
                std::vector<comparison_outcome>{success_of(accepted[0].queue_id)});
  fx.settle();
  CHECK(error_code_of(fx, accepted[0].queue_id).empty()); // completed, not cancelled
  CHECK(fx.db->count_results() == 2);
  CHECK(fx.state_of<queue_manager_state>(fx.queue).entries.empty());
}

TEST_CASE("when the reader pool refuses: a cold dequeue puts its requests back, a lookup still "
          "finds the request, a final result waits for the next tick") {
  queue_manager_config qm;
  qm.memory_text_budget = 0;
  qm.ttl = std::chrono::seconds{1};
  pipeline_fixture fx{qm};
  auto id = fx.submit({make_request("unread")}).at(0).queue_id;
  fx.reads->stop(); // every read is refused from now on, at once

  auto taken = fx.request<std::vector<queued_request>>(fx.queue, atom::dequeue_v, uint32_t{1},
                                                       std::vector<std::string>{"mock"});
  REQUIRE(taken);
  CHECK(taken->empty());
  auto& st = fx.state_of<queue_manager_state>(fx.queue);
  CHECK(st.entries.at(id).status == queue_status::queued);
  CHECK(st.entries.at(id).attempts == 0);
  CHECK(st.processing_count == 0);
  auto status = fx.request<request_status>(fx.queue, atom::lookup_v, id);
  REQUIRE(status);
  CHECK(status->found);
  CHECK(status->status == queue_status::queued);

  // It expires; its result cannot be made without its stored request: it waits, final in
  // memory (nothing else takes it), and is tried again on each tick.
  fx.run_for(std::chrono::seconds{2});
  CHECK(st.entries.at(id).status == queue_status::expired);
  CHECK_FALSE(st.unread_finals.empty());
  CHECK_FALSE(fx.db->find_result(id));
  CHECK(st.stats.last_error.find("could not read requests") != std::string::npos);
}

// -- a final's callback leaves from the store writer (issue #15) --

namespace {

// Submits one request with a callback URL; its queue id once accepted.
std::string submit_with_callback(pipeline_fixture& fx, const std::string& prompt,
                                 const std::string& url) {
  auto req = make_request(prompt);
  req.callback_url = url;
  return fx.submit({req}).at(0).queue_id;
}

// Takes one accepted request out of the queue and sends its successful outcome; runs the
// actors but commits nothing, so the final write waits in the store queue.
void complete_uncommitted(pipeline_fixture& fx, const std::string& id) {
  take_one(fx);
  comparison_outcome done;
  done.queue_id = id;
  done.success = true;
  done.winner = "Essay A";
  fx.self->send(fx.queue, atom::complete_v, std::vector<comparison_outcome>{done});
  fx.run_with_reads();
}

// A restart on the same store: the queue manager and the callbacks actor end and new ones
// start (the queue manager recovers, and hands undelivered results to the new callbacks).
void restart_queue_and_callbacks(pipeline_fixture& fx) {
  caf::anon_send_exit(fx.queue, caf::exit_reason::kill);
  caf::anon_send_exit(fx.callbacks_hdl, caf::exit_reason::kill);
  fx.sched.run();
  auto clock = fx.virtual_wall_clock();
  callbacks_config cb;
  cb.now = clock;
  cb.jitter_seed = 7;
  fx.callbacks_hdl =
      fx.spawn(callbacks, cb, static_cast<http_transport*>(&fx.http), fx.db.get(), fx.metrics_hdl);
  queue_manager_config qm;
  qm.now = clock;
  qm.reads = fx.reads.get();
  fx.queue = fx.spawn(queue_manager, qm, fx.db.get(), fx.metrics_hdl, fx.callbacks_hdl);
  fx.settle();
}

} // namespace

TEST_CASE("a committed final's callback goes out from the store writer, without a hop through "
          "the queue manager, and only once across a restart") {
  pipeline_fixture fx;
  auto id = submit_with_callback(fx, "direct", "http://cb/direct");
  complete_uncommitted(fx, id);
  CHECK(fx.http.requests.empty()); // nothing before the commit
  // The queue manager is gone before the commit: its own message would never be handled.
  caf::anon_send_exit(fx.queue, caf::exit_reason::kill);
  fx.sched.run();
  fx.settle(); // the final commits; the writer's callback hands the delivery on
  REQUIRE(fx.http.requests.size() == 1);
  CHECK(fx.http.requests[0].url == "http://cb/direct");
  CHECK(fx.http.requests[0].body == fx.db->find_result(id)->event_json);
  CHECK(fx.db->find_result(id)->delivered);
  restart_queue_and_callbacks(fx); // delivered: not sent again
  CHECK(fx.http.requests.size() == 1);
  CHECK(fx.state_of<queue_manager_state>(fx.queue).entries.empty());
}

TEST_CASE("a final committed but not acknowledged is called back again after a restart, with "
          "the same event, and then never again") {
  pipeline_fixture fx;
  fx.http.hang_prefix = "http://cb/hung";
  auto id = submit_with_callback(fx, "unacknowledged", "http://cb/hung");
  complete_uncommitted(fx, id);
  fx.settle();
  REQUIRE(fx.http.requests.size() == 1); // sent, never answered
  CHECK_FALSE(fx.db->find_result(id)->delivered);
  fx.http.hang_prefix = "http://never-set"; // the receiver answers after the restart
  restart_queue_and_callbacks(fx);
  REQUIRE(fx.http.requests.size() == 2);
  CHECK(fx.http.requests[1].body == fx.http.requests[0].body); // the same event_id
  CHECK(fx.db->find_result(id)->delivered);
  restart_queue_and_callbacks(fx);
  CHECK(fx.http.requests.size() == 2);
}

TEST_CASE("a final write that failed keeps its deliveries for the retry: one callback once it "
          "commits") {
  pipeline_fixture fx;
  auto id = submit_with_callback(fx, "retried-final", "http://cb/retried");
  // The store refuses the result row: the final write fails, and is retried on a tick.
  REQUIRE(exec_raw(fx.db->path(), "CREATE TRIGGER refuse_results BEFORE INSERT ON results "
                                  "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"));
  complete_uncommitted(fx, id);
  fx.settle();
  CHECK(fx.http.requests.empty()); // not committed: no callback
  CHECK_FALSE(fx.db->find_result(id));
  CHECK(fx.state_of<queue_manager_state>(fx.queue).failed_finals.size() == 1);
  REQUIRE(exec_raw(fx.db->path(), "DROP TRIGGER refuse_results"));
  fx.tick(); // the retry commits, and its callback goes out
  REQUIRE(fx.db->find_result(id));
  REQUIRE(fx.http.requests.size() == 1);
  CHECK(fx.http.requests[0].body == fx.db->find_result(id)->event_json);
  fx.tick(); // a tick that follows sends nothing more
  CHECK(fx.http.requests.size() == 1);
}
