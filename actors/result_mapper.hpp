#pragma once

// The one success path and the one failure path shared by every processing mode:
// an outcome (or an expiry) becomes a final status and a result event of one shape.
// A plain set of functions, tested without actors.

#include "messages/comparison.hpp"
#include "messages/metrics.hpp"
#include "messages/queue.hpp"

#include <caf/timestamp.hpp>

#include <string>
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

} // namespace lps
