#pragma once

// Queue entries, request status and result deliveries.

#include "messages/comparison.hpp"

#include <caf/meta/type_name.hpp>
#include <caf/timestamp.hpp>

#include <cstdint>
#include <string>

namespace lps {

/// Lifecycle of a request: queued -> processing -> completed | failed | expired.
enum class queue_status : uint8_t {
  queued = 1,
  processing,
  completed,
  failed,
  expired,
};

/// "queued", "processing", "completed", "failed" or "expired".
const char* to_string(queue_status x);

/// A request held by the queue manager.
struct queued_request {
  comparison_request request;
  queue_status status = queue_status::queued;
  /// Provider attempts so far.
  uint32_t attempts = 0;
  /// Bytes counted against QUEUE_MAX_BYTES.
  uint64_t size_bytes = 0;
  friend bool operator==(const queued_request&, const queued_request&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queued_request& x) {
  return f(caf::meta::type_name("lps.queued_request"), x.request, x.status, x.attempts,
           x.size_bytes);
}

/// What GET /api/v1/status reports for a request the queue manager still holds.
struct request_status {
  bool found = false;
  std::string queue_id;
  std::string correlation_id;
  queue_status status = queue_status::queued;
  caf::timestamp queued_at;
  uint32_t attempts = 0;
  int32_t priority = 5;
  /// Resolved provider and model: the override, else DEFAULT_LLM_PROVIDER and that
  /// provider's default model.
  std::string provider;
  std::string model;
  /// The last retryable failure (empty code: none yet).
  std::string last_error_code{};
  std::string last_error_message{};
  /// While it waits in retry backoff: when it may run again (epoch: not waiting).
  caf::timestamp next_attempt_at{};
  friend bool operator==(const request_status&, const request_status&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, request_status& x) {
  return f(caf::meta::type_name("lps.request_status"), x.found, x.queue_id, x.correlation_id,
           x.status, x.queued_at, x.attempts, x.priority, x.provider, x.model, x.last_error_code,
           x.last_error_message, x.next_attempt_at);
}

/// What waits in one provider's ready queue (for batch scheduling).
struct queue_backlog {
  uint64_t count = 0;
  uint64_t bytes = 0;
  /// queued_at of the oldest waiting request (meaningless when count is 0).
  caf::timestamp oldest_queued_at;
  friend bool operator==(const queue_backlog&, const queue_backlog&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_backlog& x) {
  return f(caf::meta::type_name("lps.queue_backlog"), x.count, x.bytes, x.oldest_queued_at);
}

/// A request another node stored (cluster mode): the scheduling columns of its row, which the
/// leader's queue manager takes into its index as a cold entry, as at recovery.
struct adopted_request {
  std::string queue_id;
  std::string provider;
  int32_t priority = 5;
  int64_t queued_at_ms = 0;
  uint64_t size_bytes = 0;
  uint32_t attempts = 0;
  friend bool operator==(const adopted_request&, const adopted_request&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, adopted_request& x) {
  return f(caf::meta::type_name("lps.adopted_request"), x.queue_id, x.provider, x.priority,
           x.queued_at_ms, x.size_bytes, x.attempts);
}

/// A result event waiting to be POSTed to its callback_url.
struct delivery {
  std::string queue_id;
  std::string callback_url;
  /// The rendered LLMComparisonResultV1 envelope.
  std::string event_json;
  /// Delivery attempts so far.
  uint32_t attempts = 0;
  friend bool operator==(const delivery&, const delivery&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, delivery& x) {
  return f(caf::meta::type_name("lps.delivery"), x.queue_id, x.callback_url, x.event_json,
           x.attempts);
}

} // namespace lps
