#pragma once

// Cancels of queued requests: one request by queue id, or every request of a run.

#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <string>

namespace lps {

/// What to cancel: one request (`queue_id`) or a run (`bos_batch_id`, the requests sharing
/// metadata.bos_batch_id). Exactly one of the two is set.
struct cancel_target {
  std::string queue_id;
  std::string bos_batch_id;
  friend bool operator==(const cancel_target&, const cancel_target&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cancel_target& x) {
  return f(caf::meta::type_name("lps.cancel_target"), x.queue_id, x.bos_batch_id);
}

/// What a cancel did, request by request. For one request exactly one count is 1.
struct cancel_summary {
  /// Were queued; now final with error code CANCELLED (committed before this reply).
  uint64_t cancelled = 0;
  /// Already handed to a provider: left to finish with the provider's result.
  uint64_t already_processing = 0;
  /// Already final (or their final result is being stored): untouched.
  uint64_t already_final = 0;
  /// Unknown, or not acknowledged yet (its insert is still being committed).
  uint64_t not_found = 0;
  friend bool operator==(const cancel_summary&, const cancel_summary&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cancel_summary& x) {
  return f(caf::meta::type_name("lps.cancel_summary"), x.cancelled, x.already_processing,
           x.already_final, x.not_found);
}

} // namespace lps
