// The HTTP API's route bodies (runtime/api_bodies): exact text, so a changed field name,
// order or JSON type shows here before a client sees it.

#include "runtime/api_bodies.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace lps;

namespace {

boost::json::object parse_object(const std::string& text) {
  return boost::json::parse(text).as_object();
}

stored_result final_result() {
  stored_result x;
  x.queue_id = "q-1";
  x.status = "completed";
  x.event_json = R"({"event_id":"e","correlation_id":"c-1","data":{}})";
  x.completed_at_ms = 86'400'000; // one day after the epoch
  return x;
}

} // namespace

TEST_CASE("a repeated submission names the first submission's request") {
  CHECK(render_repeat("q-1", "queued", "c-\"1\"")
        == R"({"queue_id":"q-1","status":"queued","correlation_id":"c-\"1\"",)"
           R"("message":"Already submitted: this is the first submission's request"})");
}

TEST_CASE("a final status says how the callback went") {
  auto x = final_result();
  CHECK(
      render_final_status(x)
      == R"({"queue_id":"q-1","status":"completed","completed_at":"1970-01-02T00:00:00.000Z",)"
         R"("result_available":true,"callback_delivery":"not_requested","correlation_id":"c-1"})");
  x.callback_url = "http://127.0.0.1:1/cb";
  CHECK(parse_object(render_final_status(x)).at("callback_delivery") == "pending");
  x.delivered = true;
  CHECK(parse_object(render_final_status(x)).at("callback_delivery") == "delivered");
  x.delivered = false;
  x.delivery_failed_at_ms = 5;
  x.delivery_attempts = 8;
  x.last_delivery_error = "HTTP 500";
  auto failed = parse_object(render_final_status(x));
  CHECK(failed.at("callback_delivery") == "failed");
  CHECK(failed.at("callback_attempts") == 8);
  CHECK(failed.at("callback_last_error") == "HTTP 500");
  CHECK(failed.at("correlation_id") == "c-1"); // still last, after the delivery fields
}

TEST_CASE("a pending result names its status") {
  CHECK(render_pending_result("q-1", "in_flight")
        == R"({"queue_id":"q-1","status":"in_flight","message":"the result is not final yet"})");
}

TEST_CASE("the health body lists checks, providers and warnings") {
  health_report report;
  report.status = "degraded";
  report.configured_mode = "batch_api";
  report.effective_mode = "serial_bundle";
  report.store_ok = true;
  report.providers = {{"mock", true, ""}, {"openai", false, "set OPENAI_API_KEY"}};
  report.warnings = {"first", "provider mock is \"paused\""};
  CHECK(render_health(report)
        == R"({"status":"degraded","service":"llm_provider_service","version":"0.1.0",)"
           R"("queue_processing_mode":"batch_api","effective_processing_mode":"serial_bundle",)"
           R"("accepting_requests":true,"checks":{"store":true,"queue_manager":false},)"
           R"("providers":{"mock":{"configured":true,"available":true,"note":""},)"
           R"("openai":{"configured":false,"available":false,"note":"set OPENAI_API_KEY"}},)"
           R"("warnings":["first","provider mock is \"paused\""]})");
  report.warnings.clear();
  report.providers.clear();
  auto empty = parse_object(render_health(report));
  CHECK(empty.at("warnings").as_array().empty());
  CHECK(empty.at("providers").as_object().empty());
}

TEST_CASE("the health body while starting says it takes no requests yet") {
  CHECK(render_health_starting()
        == R"({"status":"starting","service":"llm_provider_service","version":"0.1.0",)"
           R"("accepting_requests":false})");
}

TEST_CASE("the providers body lists each provider's configuration and live view in order") {
  provider_report mock{"mock", true, "mock-1", "closed", "", 0, 0, ""};
  provider_report openai{
      "openai", false, "gpt-\"x\"",         "open", "INVALID_API_KEY: fix the key",
      3,        1500,  "set OPENAI_API_KEY"};
  CHECK(render_providers("openai", {mock, openai})
        == R"({"default_provider":"openai","providers":[)"
           R"({"name":"mock","enabled":true,"configured":true,"available":true,)"
           R"("default_model":"mock-1","circuit_state":"closed","paused":false,)"
           R"("pause_reason":"","in_flight":0,"blocked_ms":0,"note":""},)"
           R"({"name":"openai","enabled":true,"configured":false,"available":false,)"
           R"("default_model":"gpt-\"x\"","circuit_state":"open","paused":true,)"
           R"("pause_reason":"INVALID_API_KEY: fix the key","in_flight":3,"blocked_ms":1500,)"
           R"("note":"set OPENAI_API_KEY"}]})");
  CHECK(render_providers("mock", {}) == R"({"default_provider":"mock","providers":[]})");
}

TEST_CASE("a cluster node's providers and health bodies name the node whose state they show") {
  CHECK(render_providers("mock", {}, {"node-1", true})
        == R"({"default_provider":"mock","providers":[],)"
           R"("provider_state":{"node":"node-1","leader":true}})");
  health_report report;
  report.status = "healthy";
  report.provider_state = {"node-2", false};
  auto body = parse_object(render_health(report));
  CHECK(body.at("provider_state").at("node") == "node-2");
  CHECK(body.at("provider_state").at("leader") == false);
  report.provider_state = {};
  CHECK_FALSE(parse_object(render_health(report)).contains("provider_state"));
}

TEST_CASE("a status without the leader's detail is the store's answer and says why") {
  request_status status;
  status.found = true;
  status.queue_id = "q-1";
  status.status = queue_status::queued;
  status.attempts = 2;
  auto plain = parse_object(render_status(status));
  auto body = parse_object(render_status_without_leader(status, std::nullopt, "no \"leader\""));
  CHECK(body.at("detail_unavailable") == "no \"leader\"");
  body.erase("detail_unavailable");
  CHECK(body == plain);
}

TEST_CASE("a batch job body has null for times not reached yet") {
  batch_job_record job;
  job.job_id = "bj-1";
  job.provider = "openai";
  job.model = "gpt";
  job.state = "submitted";
  job.item_count = 3;
  job.succeeded = 2;
  job.failed = 1;
  job.created_at_ms = 1000;
  job.updated_at_ms = 2000;
  CHECK(render_batch_job(job)
        == R"({"job_id":"bj-1","provider":"openai","model":"gpt","state":"submitted",)"
           R"("provider_job_id":"","provider_status":"","item_count":3,"succeeded":2,"failed":1,)"
           R"("cancel_requested":false,"created_at_ms":1000,"submitted_at_ms":null,)"
           R"("ended_at_ms":null,"updated_at_ms":2000,"last_error":""})");
  auto second = job;
  second.job_id = "bj-2";
  auto list = parse_object(render_batch_jobs({job, second})).at("jobs").as_array();
  REQUIRE(list.size() == 2);
  CHECK(list[1].at("job_id") == "bj-2");
  CHECK(render_batch_jobs({}) == R"({"jobs":[]})");
}

TEST_CASE("the operator routes answer with what they set") {
  CHECK(render_cancel_requested("bj-\\1") == R"({"job_id":"bj-\\1","cancel_requested":true})");
  CHECK(render_provider_resumed("openai") == R"({"provider":"openai","paused":false})");
}

TEST_CASE("the cancel routes answer what became of the requests") {
  CHECK(render_request_cancelled("q-\"1\"") == R"({"queue_id":"q-\"1\"","status":"cancelled"})");
  cancel_summary summary;
  summary.cancelled = 4;
  summary.already_processing = 2;
  summary.already_final = 1;
  summary.not_found = 9; // not part of the answer
  CHECK(render_run_cancelled("run \\7", summary)
        == R"({"bos_batch_id":"run \\7","cancelled":4,"already_processing":2,"already_final":1})");
}

TEST_CASE("a run body has its counts, rate, ETA, cost, times and errors by code") {
  run_summary run;
  run.bos_batch_id = "r-1";
  run.active = 30;
  run.completed = 5;
  run.failed = 2;
  run.expired = 1;
  run.cancelled = 1;
  run.finals_since = 6; // over 60 s: 0.1 per second, so 30 active take 300 s
  run.first_queued_at_ms = 1000;
  run.cost_estimate = 0.5;
  run.errors_by_code = {{"CANCELLED", 1}, {"TIMEOUT", 2}};
  CHECK(render_run(run, 60)
        == R"({"bos_batch_id":"r-1","active":30,"completed":5,"failed":2,"expired":1,)"
           R"("cancelled":1,"rate_per_second":0.1,"eta_seconds":300.0,"cost_estimate":0.5,)"
           R"("first_queued_at_ms":1000,"last_completed_at_ms":null,)"
           R"("errors_by_code":{"CANCELLED":1,"TIMEOUT":2}})");
  // Without finals lately there is no ETA; the list leaves errors by code out.
  run.finals_since = 0;
  auto list = parse_object(render_runs({run}, 60)).at("runs").as_array();
  REQUIRE(list.size() == 1);
  CHECK(list[0].at("eta_seconds").is_null());
  CHECK(list[0].at("rate_per_second") == 0.0);
  CHECK_FALSE(list[0].as_object().contains("errors_by_code"));
  CHECK(render_runs({}, 60) == R"({"runs":[]})");
}

TEST_CASE("a results page holds the events as they are and the cursor after them") {
  auto x = final_result();
  x.event_json = R"({"event_id":"e-1"})";
  CHECK(render_results_page({x}, std::string{"abc"})
        == R"({"results":[{"event_id":"e-1"}],"next":"abc"})");
  CHECK(render_results_page({}, std::nullopt) == R"({"results":[],"next":null})");
}

TEST_CASE("a result cursor names the position after a result and rejects anything else") {
  auto x = final_result();
  x.completed_at_ms = 1712345678901;
  x.queue_id = "q:with/odd?chars";
  auto cursor = render_result_cursor(x);
  CHECK(cursor.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        == std::string::npos);
  auto parsed = parse_result_cursor(cursor);
  REQUIRE(parsed);
  CHECK(parsed->completed_at_ms == 1712345678901);
  CHECK(parsed->queue_id == "q:with/odd?chars");
  CHECK_FALSE(parse_result_cursor(""));
  CHECK_FALSE(parse_result_cursor("not base64!"));
  CHECK_FALSE(parse_result_cursor("MTIz"));   // "123": no queue id
  CHECK_FALSE(parse_result_cursor("eDpx"));   // "x:q": no time
  CHECK_FALSE(parse_result_cursor("MTIzOg")); // "123:": empty queue id
}
