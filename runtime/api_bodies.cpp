#include "runtime/api_bodies.hpp"

#include "runtime/ids.hpp"
#include "runtime/json_codec.hpp"
#include "runtime/json_writer.hpp"

namespace lps {

namespace {

// A callback given up also names its attempts and why the last one failed.
void write_callback_delivery(object_writer& body, const stored_result& x) {
  if (x.callback_url.empty()) {
    body.string("callback_delivery", "not_requested");
  } else if (x.delivered) {
    body.string("callback_delivery", "delivered");
  } else if (x.delivery_failed_at_ms == 0) {
    body.string("callback_delivery", "pending");
  } else {
    body.string("callback_delivery", "failed")
        .integer("callback_attempts", x.delivery_attempts)
        .string("callback_last_error", x.last_delivery_error);
  }
}

// A batch job time: milliseconds since the epoch, or null while it has not happened.
void write_time_ms(object_writer& body, std::string_view key, int64_t ms) {
  if (ms > 0)
    body.integer(key, ms);
  else
    body.null(key);
}

// Who answers /healthz, after its "status" member.
void write_health_head(object_writer& body, std::string_view status) {
  body.string("status", status)
      .string("service", "llm_provider_service")
      .string("version", "0.1.0");
}

void write_provider(object_writer& body, const provider_report& x) {
  body.string("name", x.name)
      .boolean("enabled", true)
      .boolean("configured", x.configured)
      .boolean("available", x.note.empty())
      .string("default_model", x.default_model)
      .string("circuit_state", x.circuit_state)
      .boolean("paused", !x.pause_reason.empty())
      .string("pause_reason", x.pause_reason)
      .integer("in_flight", x.in_flight)
      .integer("blocked_ms", x.blocked_ms)
      .string("note", x.note);
}

} // namespace

std::string render_repeat(const std::string& queue_id, const std::string& status,
                          const std::string& correlation_id) {
  std::string result;
  object_writer body{result};
  body.string("queue_id", queue_id)
      .string("status", status)
      .string("correlation_id", correlation_id)
      .string("message", "Already submitted: this is the first submission's request");
  body.close();
  return result;
}

std::string render_final_status(const stored_result& x) {
  std::string result;
  object_writer body{result};
  body.string("queue_id", x.queue_id)
      .string("status", x.status)
      .string("completed_at", iso8601(from_unix_ms(x.completed_at_ms)))
      .boolean("result_available", true);
  write_callback_delivery(body, x);
  body.string("correlation_id", json_string_field(x.event_json, "correlation_id"));
  body.close();
  return result;
}

std::string render_pending_result(const std::string& queue_id, const std::string& status) {
  std::string result;
  object_writer body{result};
  body.string("queue_id", queue_id)
      .string("status", status)
      .string("message", "the result is not final yet");
  body.close();
  return result;
}

std::string render_health(const health_report& report) {
  std::string result;
  object_writer body{result};
  write_health_head(body, report.status);
  body.string("queue_processing_mode", report.configured_mode)
      .string("effective_processing_mode", report.effective_mode)
      .boolean("accepting_requests", report.accepting_requests);
  object_writer checks{body.member("checks")};
  checks.boolean("store", report.store_ok).boolean("queue_manager", report.queue_manager_ok);
  checks.close();
  object_writer providers{body.member("providers")};
  for (const auto& p : report.providers) {
    object_writer entry{providers.member(p.name)};
    entry.boolean("configured", p.configured)
        .boolean("available", p.note.empty())
        .string("note", p.note);
    entry.close();
  }
  providers.close();
  array_writer warnings{body.member("warnings")};
  for (const auto& warning : report.warnings)
    append_quoted(warnings.element(), warning);
  warnings.close();
  body.close();
  return result;
}

std::string render_health_starting() {
  std::string result;
  object_writer body{result};
  write_health_head(body, "starting");
  body.boolean("accepting_requests", false);
  body.close();
  return result;
}

std::string render_providers(const std::string& default_provider,
                             const std::vector<provider_report>& providers) {
  std::string result;
  object_writer body{result};
  body.string("default_provider", default_provider);
  array_writer xs{body.member("providers")};
  for (const auto& x : providers) {
    object_writer entry{xs.element()};
    write_provider(entry, x);
    entry.close();
  }
  xs.close();
  body.close();
  return result;
}

std::string render_batch_job(const batch_job_record& job) {
  std::string result;
  object_writer body{result};
  body.string("job_id", job.job_id)
      .string("provider", job.provider)
      .string("model", job.model)
      .string("state", job.state)
      .string("provider_job_id", job.provider_job_id)
      .string("provider_status", job.provider_status)
      .integer("item_count", job.item_count)
      .integer("succeeded", job.succeeded)
      .integer("failed", job.failed)
      .boolean("cancel_requested", job.cancel_requested);
  write_time_ms(body, "created_at_ms", job.created_at_ms);
  write_time_ms(body, "submitted_at_ms", job.submitted_at_ms);
  write_time_ms(body, "ended_at_ms", job.ended_at_ms);
  write_time_ms(body, "updated_at_ms", job.updated_at_ms);
  body.string("last_error", job.last_error);
  body.close();
  return result;
}

std::string render_batch_jobs(const std::vector<batch_job_record>& jobs) {
  std::string result;
  object_writer body{result};
  array_writer xs{body.member("jobs")};
  for (const auto& job : jobs)
    xs.element() += render_batch_job(job);
  xs.close();
  body.close();
  return result;
}

std::string render_cancel_requested(const std::string& job_id) {
  std::string result;
  object_writer body{result};
  body.string("job_id", job_id).boolean("cancel_requested", true);
  body.close();
  return result;
}

std::string render_provider_resumed(const std::string& name) {
  std::string result;
  object_writer body{result};
  body.string("provider", name).boolean("paused", false);
  body.close();
  return result;
}

std::string render_request_cancelled(const std::string& queue_id) {
  std::string result;
  object_writer body{result};
  body.string("queue_id", queue_id).string("status", "cancelled");
  body.close();
  return result;
}

std::string render_run_cancelled(const std::string& run, const cancel_summary& summary) {
  std::string result;
  object_writer body{result};
  body.string("bos_batch_id", run)
      .integer("cancelled", summary.cancelled)
      .integer("already_processing", summary.already_processing)
      .integer("already_final", summary.already_final);
  body.close();
  return result;
}

} // namespace lps
