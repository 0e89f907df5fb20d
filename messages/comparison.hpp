#pragma once

// Comparison requests as they travel between actors, and what comes back.

#include <caf/meta/type_name.hpp>
#include <caf/timestamp.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace lps {

/// One cache-friendly prompt block from the caller (`prompt_blocks[]`).
struct prompt_block {
  /// "system" or "user_content".
  std::string target;
  std::string content;
  bool cacheable = false;
  /// "" (none), "5m" or "1h".
  std::string ttl;
  friend bool operator==(const prompt_block&, const prompt_block&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, prompt_block& x) {
  return f(caf::meta::type_name("lps.prompt_block"), x.target, x.content, x.cacheable, x.ttl);
}

/// `llm_config_overrides`; an empty string or a false `has_` flag means "not given".
struct llm_overrides {
  std::string provider;
  std::string model;
  bool has_temperature = false;
  double temperature = 0.0;
  bool has_system_prompt = false;
  std::string system_prompt;
  /// 0 means not given.
  uint32_t max_tokens = 0;
  std::string reasoning_effort;
  std::string output_verbosity;
  friend bool operator==(const llm_overrides&, const llm_overrides&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, llm_overrides& x) {
  return f(caf::meta::type_name("lps.llm_overrides"), x.provider, x.model, x.has_temperature,
           x.temperature, x.has_system_prompt, x.system_prompt, x.max_tokens, x.reasoning_effort,
           x.output_verbosity);
}

/// A validated comparison request (`LLMComparisonRequest`) plus what intake assigns.
struct comparison_request {
  /// Assigned by intake (uuid v4 text).
  std::string queue_id;
  /// The caller's or a generated uuid.
  std::string correlation_id;
  std::string user_prompt;
  std::vector<prompt_block> prompt_blocks;
  std::string callback_url;
  std::string callback_topic;
  llm_overrides overrides;
  std::string user_id;
  /// The caller's metadata object as compact JSON text (opaque, echoed).
  std::string metadata_json = "{}";
  /// `metadata.cj_llm_batching_mode` when present as a string (bundling hint).
  bool has_cj_batching_mode = false;
  std::string cj_batching_mode;
  /// 0..10, higher first.
  int32_t priority = 5;
  /// Set by intake when accepted.
  caf::timestamp queued_at;
  std::string trace_id;
  /// sha256 of user_prompt, set by intake (kept when the texts are not in memory).
  std::string prompt_sha256;
  friend bool operator==(const comparison_request&, const comparison_request&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, comparison_request& x) {
  return f(caf::meta::type_name("lps.comparison_request"), x.queue_id, x.correlation_id,
           x.user_prompt, x.prompt_blocks, x.callback_url, x.callback_topic, x.overrides, x.user_id,
           x.metadata_json, x.has_cj_batching_mode, x.cj_batching_mode, x.priority, x.queued_at,
           x.trace_id, x.prompt_sha256);
}

/// The heavy part of a request: what the store keeps apart from the scheduling data.
struct request_texts {
  std::string user_prompt;
  std::vector<prompt_block> prompt_blocks;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, request_texts& x) {
  return f(caf::meta::type_name("lps.request_texts"), x.user_prompt, x.prompt_blocks);
}

/// Token counts reported by a provider.
struct token_usage {
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  uint64_t total_tokens = 0;
  uint64_t cache_read_input_tokens = 0;
  uint64_t cache_creation_input_tokens = 0;
  friend bool operator==(const token_usage&, const token_usage&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, token_usage& x) {
  return f(caf::meta::type_name("lps.token_usage"), x.prompt_tokens, x.completion_tokens,
           x.total_tokens, x.cache_read_input_tokens, x.cache_creation_input_tokens);
}

/// What a provider's response headers said about its rate limits (OpenAI
/// `x-ratelimit-*`, Anthropic `anthropic-ratelimit-*`); -1 where it said nothing.
struct rate_limit_hint {
  int64_t remaining_requests = -1;
  int64_t remaining_tokens = -1;
  /// Time until each window is full again.
  std::chrono::milliseconds requests_reset{-1};
  std::chrono::milliseconds tokens_reset{-1};
  bool empty() const noexcept {
    return remaining_requests < 0 && remaining_tokens < 0;
  }
  friend bool operator==(const rate_limit_hint&, const rate_limit_hint&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rate_limit_hint& x) {
  return f(caf::meta::type_name("lps.rate_limit_hint"), x.remaining_requests, x.remaining_tokens,
           x.requests_reset, x.tokens_reset);
}

/// Metadata the bundler adds once provider and model are resolved.
struct request_enrichment {
  std::string resolved_provider;
  std::string resolved_model;
  /// per_request, serial_bundle or batch_api.
  std::string queue_processing_mode;
  std::string bundle_id;
  uint32_t bundle_size = 0;
  /// The provider batch job that served the request (batch_api mode), else "".
  std::string batch_job_id;
  friend bool operator==(const request_enrichment&, const request_enrichment&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, request_enrichment& x) {
  return f(caf::meta::type_name("lps.request_enrichment"), x.resolved_provider, x.resolved_model,
           x.queue_processing_mode, x.bundle_id, x.bundle_size, x.batch_job_id);
}

/// What a provider answers for one item of a bundle: a judgement or an error, never both.
struct comparison_outcome {
  std::string queue_id;
  bool success = false;
  /// "Essay A" or "Essay B" on success.
  std::string winner;
  /// At most 500 characters (cut, not lost).
  std::string justification;
  /// 1.0 .. 5.0 on success.
  double confidence = 0.0;
  /// CONTRACTS.md error code on failure (RATE_LIMIT, EXTERNAL_SERVICE_ERROR, ...).
  std::string error_code;
  std::string error_message;
  /// Provider HTTP status behind the error, 0 when none.
  int32_t http_status = 0;
  /// Whether a later attempt could succeed (rate limit, 5xx, timeout).
  bool retryable = false;
  /// The provider's Retry-After, 0 when none: a retry never comes sooner.
  std::chrono::milliseconds retry_after{0};
  /// The provider and model that served the call.
  std::string provider;
  std::string model;
  /// How long the provider call took, to the microsecond (the result event shows whole
  /// milliseconds; the response-duration histogram gets it whole).
  std::chrono::microseconds response_time{0};
  token_usage usage;
  double cost_estimate = 0.0;
  std::string prompt_sha256;
  request_enrichment enrichment;
  /// Rate-limit headers of the call that produced this outcome (fed to the bundler's limiter).
  rate_limit_hint limits;
  friend bool operator==(const comparison_outcome&, const comparison_outcome&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, comparison_outcome& x) {
  return f(caf::meta::type_name("lps.comparison_outcome"), x.queue_id, x.success, x.winner,
           x.justification, x.confidence, x.error_code, x.error_message, x.http_status, x.retryable,
           x.retry_after, x.provider, x.model, x.response_time, x.usage, x.cost_estimate,
           x.prompt_sha256, x.enrichment, x.limits);
}

/// The answer to one submitted request: accepted with its queue id, or refused.
struct enqueue_outcome {
  bool accepted = false;
  std::string queue_id;
  std::string correlation_id;
  /// On refusal: CONTRACTS.md code (QUEUE_FULL, SERVICE_UNAVAILABLE, INTERNAL_ERROR).
  std::string error_code;
  std::string error_message;
  /// Seconds a refused caller should wait before retrying (QUEUE_FULL), 0 otherwise.
  uint32_t retry_after_seconds = 0;
  friend bool operator==(const enqueue_outcome&, const enqueue_outcome&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, enqueue_outcome& x) {
  return f(caf::meta::type_name("lps.enqueue_outcome"), x.accepted, x.queue_id, x.correlation_id,
           x.error_code, x.error_message, x.retry_after_seconds);
}

/// The final result event (`LLMComparisonResultV1`) before it is rendered as JSON.
struct result_event {
  /// Stable per request (derived from the queue id), so redeliveries can be dropped.
  std::string event_id;
  caf::timestamp event_timestamp;
  std::string correlation_id;
  std::string request_id;
  /// completed, failed or expired.
  std::string final_status;
  comparison_outcome outcome;
  caf::timestamp requested_at;
  caf::timestamp completed_at;
  std::string trace_id;
  /// The caller's metadata JSON; enrichment keys are merged at render time.
  std::string caller_metadata_json = "{}";
  std::string callback_url;
  /// Provider attempts made for this request.
  uint32_t attempts = 0;
  friend bool operator==(const result_event&, const result_event&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, result_event& x) {
  return f(caf::meta::type_name("lps.result_event"), x.event_id, x.event_timestamp,
           x.correlation_id, x.request_id, x.final_status, x.outcome, x.requested_at,
           x.completed_at, x.trace_id, x.caller_metadata_json, x.callback_url, x.attempts);
}

/// Known provider names, in CONTRACTS.md order.
const std::vector<std::string>& provider_names();

/// True for anthropic, openai, google, openrouter and mock.
bool is_provider_name(const std::string& name);

} // namespace lps
