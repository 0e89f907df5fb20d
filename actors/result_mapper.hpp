#pragma once

// The one success path and the one failure path shared by every processing mode:
// an outcome (or an expiry) becomes a final status and a result event of one shape.
// A plain set of functions, tested without actors.

#include "messages/comparison.hpp"
#include "messages/metrics.hpp"
#include "messages/queue.hpp"

#include <caf/timestamp.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace lps {

/// The final status an outcome leads to: completed on success, failed otherwise
/// (expired for EXPIRED outcomes).
queue_status final_status_of(const comparison_outcome& outcome);

/// A failure outcome for `entry` with the given error (used for expiry, configuration
/// errors and lost provider replies).
comparison_outcome make_failure(const queued_request& entry, std::string error_code,
                                std::string message, bool retryable);

/// The result event for a request and its final outcome. The event id is derived from the
/// queue id, so it is the same whenever this request's result is rendered.
result_event make_result_event(const queued_request& entry, const comparison_outcome& outcome,
                               caf::timestamp now);

/// The event_id of a request's result event.
std::string result_event_id(const std::string& queue_id);

/// Metric samples for one final result (requests, wait time, callbacks, tokens, cost,
/// response duration).
std::vector<metric_sample> final_result_metrics(const result_event& event, caf::timestamp now);

/// Whether a final failure is the provider's doing (an error it answered, or a call that
/// failed), as opposed to expiry or an operator's cancel.
bool is_provider_failure(const comparison_outcome& outcome);

/// Keeps the WARN lines about final provider failures few: at most one line per provider
/// and error code per `period`; the failures in between are counted into the next line.
class failure_log_throttle {
public:
  explicit failure_log_throttle(caf::timespan period = std::chrono::seconds{10});

  /// A final failure of `provider` with `error_code` at `now`: how many failures the line
  /// due now stands for (this one and those not logged since the last line), or 0 when no
  /// line is due yet.
  uint64_t admit(const std::string& provider, const std::string& error_code, caf::timestamp now);

private:
  struct window {
    caf::timestamp last_line;
    uint64_t unlogged = 0;
  };
  caf::timespan period_;
  std::map<std::pair<std::string, std::string>, window> windows_;
};

} // namespace lps
