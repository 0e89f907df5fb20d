#include "runtime/api_bodies.hpp"

#include "runtime/ids.hpp"
#include "runtime/json_codec.hpp"
#include "runtime/json_writer.hpp"
#include <charconv>

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

namespace {

void write_provider_state(object_writer& body, const provider_state_source& source) {
  if (source.node.empty())
    return;
  object_writer state{body.member("provider_state")};
  state.string("node", source.node).boolean("leader", source.leader);
  state.close();
}

} // namespace

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
  write_provider_state(body, report.provider_state);
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
                             const std::vector<provider_report>& providers,
                             const provider_state_source& source) {
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
  write_provider_state(body, source);
  body.close();
  return result;
}

// render_status's object with one member more, before its closing brace.
std::string render_status_without_leader(const request_status& status,
                                         const std::optional<submission_window>& window,
                                         const std::string& why) {
  auto result = render_status(status, window);
  result.pop_back();
  result += ",\"detail_unavailable\":";
  append_quoted(result, why);
  result += '}';
  return result;
}

namespace {

void write_batch_job(object_writer& body, const batch_job_record& job) {
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
}

} // namespace

std::string render_batch_job(const batch_job_record& job) {
  std::string result;
  object_writer body{result};
  write_batch_job(body, job);
  body.close();
  return result;
}

std::string render_inspect_jobs(const std::vector<batch_job_record>& jobs) {
  std::string result;
  object_writer body{result};
  array_writer xs{body.member("jobs")};
  for (const auto& job : jobs) {
    object_writer item{xs.element()};
    write_batch_job(item, job);
    auto done = job.succeeded + job.failed;
    item.integer("done", done)
        .number("progress", job.item_count == 0 ? 0.0 : double(done) / double(job.item_count));
    item.close();
  }
  xs.close();
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

std::string render_cancel_pending(const cancel_target& target) {
  std::string result;
  object_writer body{result};
  if (target.queue_id.empty())
    body.string("bos_batch_id", target.bos_batch_id);
  else
    body.string("queue_id", target.queue_id);
  body.string("status", "cancel_requested");
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

namespace {

constexpr std::string_view base64url_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Unpadded base64url, so a cursor needs no escaping in a query string.
std::string base64url(std::string_view bytes) {
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (unsigned char c : bytes) {
    bits = (bits << 8) | c;
    count += 8;
    while (count >= 6) {
      count -= 6;
      out += base64url_alphabet[(bits >> count) & 0x3f];
    }
  }
  if (count > 0)
    out += base64url_alphabet[(bits << (6 - count)) & 0x3f];
  return out;
}

std::optional<std::string> from_base64url(std::string_view text) {
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    auto value = base64url_alphabet.find(c);
    if (value == std::string_view::npos)
      return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xff);
    }
  }
  return out;
}

} // namespace

namespace {

void write_run(object_writer& body, const run_summary& run, double rate_window_seconds) {
  double rate = static_cast<double>(run.finals_since) / rate_window_seconds;
  body.string("bos_batch_id", run.bos_batch_id)
      .integer("active", run.active)
      .integer("completed", run.completed)
      .integer("failed", run.failed)
      .integer("expired", run.expired)
      .integer("cancelled", run.cancelled)
      .number("rate_per_second", rate);
  if (rate > 0)
    body.number("eta_seconds", static_cast<double>(run.active) / rate);
  else
    body.null("eta_seconds");
  body.number("cost_estimate", run.cost_estimate);
  write_time_ms(body, "first_queued_at_ms", run.first_queued_at_ms);
  write_time_ms(body, "last_completed_at_ms", run.last_completed_at_ms);
}

} // namespace

std::string render_run(const run_summary& run, double rate_window_seconds) {
  std::string result;
  object_writer body{result};
  write_run(body, run, rate_window_seconds);
  object_writer errors{body.member("errors_by_code")};
  for (const auto& [code, count] : run.errors_by_code)
    errors.integer(code, count);
  errors.close();
  body.close();
  return result;
}

std::string render_runs(const std::vector<run_summary>& runs, double rate_window_seconds) {
  std::string result;
  object_writer body{result};
  array_writer xs{body.member("runs")};
  for (const auto& run : runs) {
    object_writer item{xs.element()};
    write_run(item, run, rate_window_seconds);
    item.close();
  }
  xs.close();
  body.close();
  return result;
}

std::string render_results_page(const std::vector<stored_result>& results,
                                const std::optional<std::string>& next) {
  std::string result;
  object_writer body{result};
  array_writer events{body.member("results")};
  for (const auto& x : results)
    events.element() += x.event_json;
  events.close();
  if (next)
    body.string("next", *next);
  else
    body.null("next");
  body.close();
  return result;
}

std::string render_result_cursor(const stored_result& last) {
  return base64url(std::to_string(last.completed_at_ms) + ":" + last.queue_id);
}

std::optional<result_cursor> parse_result_cursor(std::string_view cursor) {
  auto text = from_base64url(cursor);
  auto colon = text ? text->find(':') : std::string::npos;
  if (colon == std::string::npos || colon + 1 == text->size())
    return std::nullopt;
  result_cursor out;
  auto [end, ec] = std::from_chars(text->data(), text->data() + colon, out.completed_at_ms);
  if (ec != std::errc{} || end != text->data() + colon)
    return std::nullopt;
  out.queue_id = text->substr(colon + 1);
  return out;
}

} // namespace lps
