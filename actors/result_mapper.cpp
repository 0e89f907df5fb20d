#include "actors/result_mapper.hpp"
#include "runtime/error_code.hpp"

#include "runtime/ids.hpp"

#include <chrono>

namespace lps {

namespace {

// Fixed namespace for name-based event ids (any constant works; it must never change).
constexpr std::string_view event_id_namespace = "lps.result_event.v1";

double seconds_between(caf::timestamp from, caf::timestamp to) {
  return std::chrono::duration<double>(to - from).count();
}

std::string label_or(const std::string& x, const char* fallback) {
  return x.empty() ? std::string{fallback} : x;
}

} // namespace

queue_status final_status_of(const comparison_outcome& outcome) {
  if (outcome.success)
    return queue_status::completed;
  if (outcome.error_code == to_string(ec::expired))
    return queue_status::expired;
  return queue_status::failed;
}

comparison_outcome make_failure(const queued_request& entry, std::string error_code,
                                std::string message, bool retryable) {
  comparison_outcome result;
  result.queue_id = entry.request.queue_id;
  result.success = false;
  result.error_code = std::move(error_code);
  result.error_message = std::move(message);
  result.retryable = retryable;
  result.prompt_sha256 = entry.request.prompt_sha256.empty() ? sha256_hex(entry.request.user_prompt)
                                                             : entry.request.prompt_sha256;
  return result;
}

bool is_provider_failure(const comparison_outcome& outcome) {
  return !outcome.success && !outcome.provider.empty()
         && outcome.error_code != to_string(ec::expired)
         && outcome.error_code != to_string(ec::cancelled);
}

failure_log_throttle::failure_log_throttle(caf::timespan period) : period_(period) {
  // nop
}

uint64_t failure_log_throttle::admit(const std::string& provider, const std::string& error_code,
                                     caf::timestamp now) {
  auto [i, first] = windows_.try_emplace({provider, error_code});
  auto& w = i->second;
  ++w.unlogged;
  if (!first && now - w.last_line < period_)
    return 0;
  w.last_line = now;
  return std::exchange(w.unlogged, 0);
}

std::string result_event_id(const std::string& queue_id) {
  return stable_uuid(event_id_namespace, queue_id);
}

result_event make_result_event(const queued_request& entry, const comparison_outcome& outcome,
                               caf::timestamp now) {
  const auto& req = entry.request;
  result_event result;
  result.event_id = result_event_id(req.queue_id);
  result.event_timestamp = now;
  result.correlation_id = req.correlation_id;
  result.request_id = req.queue_id;
  result.final_status = to_string(final_status_of(outcome));
  result.outcome = outcome;
  if (result.outcome.provider.empty())
    result.outcome.provider = outcome.enrichment.resolved_provider;
  if (result.outcome.model.empty())
    result.outcome.model = outcome.enrichment.resolved_model;
  if (result.outcome.prompt_sha256.empty())
    result.outcome.prompt_sha256 =
        req.prompt_sha256.empty() ? sha256_hex(req.user_prompt) : req.prompt_sha256;
  result.requested_at = req.queued_at;
  result.completed_at = now;
  result.trace_id = req.trace_id;
  result.caller_metadata_json = req.metadata_json;
  result.callback_url = req.callback_url;
  result.attempts = entry.attempts;
  return result;
}

std::vector<metric_sample> final_result_metrics(const result_event& event, caf::timestamp now) {
  const auto& o = event.outcome;
  auto provider = label_or(o.provider, "unknown");
  auto model = label_or(o.model, "unknown");
  auto mode = label_or(o.enrichment.queue_processing_mode, "none");
  auto result = o.success ? std::string{"success"}
                          : (event.final_status == "expired" ? "expired" : "failure");
  std::vector<metric_sample> xs;
  xs.push_back({"llm_provider_requests_total", {provider, model, event.final_status}, 1});
  xs.push_back({"llm_provider_queue_wait_time_seconds",
                {mode, result},
                seconds_between(event.requested_at, now)});
  xs.push_back({"llm_provider_comparison_callbacks_total", {mode, result}, 1});
  if (o.success) {
    xs.push_back({"llm_provider_response_duration_seconds",
                  {provider, model},
                  std::chrono::duration<double>(o.response_time).count()});
    xs.push_back({"llm_provider_tokens_used_total",
                  {provider, model, "prompt"},
                  static_cast<double>(o.usage.prompt_tokens)});
    xs.push_back({"llm_provider_tokens_used_total",
                  {provider, model, "completion"},
                  static_cast<double>(o.usage.completion_tokens)});
    xs.push_back({"llm_provider_cost_dollars_total", {provider, model}, o.cost_estimate});
  }
  if (event.final_status == "expired")
    xs.push_back({"llm_provider_queue_expiry_total", {mode}, 1});
  return xs;
}

} // namespace lps
