#pragma once

// Bodies of the HTTP API's routes that are not part of the comparison contract proper
// (json_codec.hpp has those): status of a final request, a pending result, a repeated
// submission, /healthz, the providers, provider batch jobs, and the answers of the operator
// and cancel routes.
// app/http_api.cpp gathers the facts; these functions only write them as JSON.

#include "messages/cancel.hpp"
#include "runtime/batch_job_store.hpp"
#include "runtime/json_codec.hpp"
#include "runtime/store.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lps {

/// 200 body for a repeated submission: the first submission's request.
std::string render_repeat(const std::string& queue_id, const std::string& status,
                          const std::string& correlation_id);

/// GET /api/v1/status body for a request whose result is stored: its status, when it
/// completed, whether its callback was delivered, and its correlation id.
std::string render_final_status(const stored_result& result);

/// 202 body of GET /api/v1/results for a request that is not final yet.
std::string render_pending_result(const std::string& queue_id, const std::string& status);

/// One provider as /healthz lists it.
struct health_provider {
  std::string name;
  /// It has its key (the mock needs none).
  bool configured = false;
  /// Why requests for it are refused, or "" when they are served.
  std::string note;
};

/// Cluster mode: whose bundler a report of the providers' live state shows ("provider_state":
/// {"node", "leader"}): the leader's, or this node's own idle one when the leader did not
/// answer. Empty `node`: a single node (the member is left out).
struct provider_state_source {
  std::string node;
  bool leader = false;
};

/// What /healthz reports.
struct health_report {
  /// "healthy", "degraded", "unhealthy" or "draining".
  std::string status;
  /// QUEUE_PROCESSING_MODE as configured, and the mode requests are processed in.
  std::string configured_mode, effective_mode;
  bool accepting_requests = true;
  /// The checks: the store answered a read, the queue manager answered.
  bool store_ok = false, queue_manager_ok = false;
  std::vector<health_provider> providers;
  std::vector<std::string> warnings;
  /// Whose provider state the pause warnings come from (cluster mode).
  provider_state_source provider_state;
};

/// GET /healthz body.
std::string render_health(const health_report& report);

/// 503 body of /healthz while recovery runs: not accepting requests yet.
std::string render_health_starting();

/// One provider as GET /api/v1/providers lists it: its configuration (never the key) and the
/// bundler's live view of it.
struct provider_report {
  std::string name;
  /// It has its key (the mock needs none).
  bool configured = false;
  std::string default_model;
  /// Its circuit breaker: "closed", "open" or "half_open".
  std::string circuit_state;
  /// What the operator reads about it being paused by a rejected key, or "" when it is not.
  std::string pause_reason;
  /// Bundles handed to it and not answered yet.
  uint64_t in_flight = 0;
  /// How long its breaker or rate limit still blocks it.
  int64_t blocked_ms = 0;
  /// Why requests for it are refused, or "" when they are served.
  std::string note;
};

/// GET /api/v1/providers body: the default provider and every provider, in `providers`' order.
std::string render_providers(const std::string& default_provider,
                             const std::vector<provider_report>& providers,
                             const provider_state_source& source = {});

/// GET /api/v1/status body on a cluster node whose leader did not answer: the store's
/// answer (render_status) plus "detail_unavailable": `why` (the leader alone knows the last
/// retryable failure and the next attempt time).
std::string render_status_without_leader(const request_status& status,
                                         const std::optional<submission_window>& window,
                                         const std::string& why);

/// One provider batch job (GET /api/v1/batch-jobs/{id}); times of 0 are null.
std::string render_batch_job(const batch_job_record& job);

/// GET /api/v1/batch-jobs body: {"jobs": [...]}.
std::string render_batch_jobs(const std::vector<batch_job_record>& jobs);

/// GET /api/v1/inspect/jobs body: {"jobs": [...]}, each job as in render_batch_job plus
/// `done` (items succeeded or failed) and `progress` (done / item_count, 0 without items).
std::string render_inspect_jobs(const std::vector<batch_job_record>& jobs);

/// 202 body of POST /api/v1/batch-jobs/{id}/cancel.
std::string render_cancel_requested(const std::string& job_id);

/// 202 body of POST /api/v1/providers/{name}/resume.
std::string render_provider_resumed(const std::string& name);

/// 200 body of POST /api/v1/requests/{id}/cancel for a request that was queued and is now
/// cancelled.
std::string render_request_cancelled(const std::string& queue_id);

/// 200 body of POST /api/v1/runs/{run}/cancel (`run` is metadata.bos_batch_id): what became of
/// its requests.
std::string render_run_cancelled(const std::string& run, const cancel_summary& summary);

/// 202 body of a cancel asked on a cluster node that the leader has not applied within the
/// node's wait (it applies it later): `{"queue_id" or "bos_batch_id", "status":
/// "cancel_requested"}`.
std::string render_cancel_pending(const cancel_target& target);

/// One run as GET /api/v1/runs/{id} reports it, errors by code included. Its rate is the
/// finals of the last `rate_window_seconds` (run_summary::finals_since) per second; the ETA
/// is active / rate, null while the rate is 0.
std::string render_run(const run_summary& run, double rate_window_seconds);

/// GET /api/v1/runs body: {"runs": [...]}, each run as render_run without errors by code.
std::string render_runs(const std::vector<run_summary>& runs, double rate_window_seconds);

/// A page of a run's results: {"results": [events...], "next": cursor or null}.
std::string render_results_page(const std::vector<stored_result>& results,
                                const std::optional<std::string>& next);

/// The opaque cursor after `last` (base64url of "completed_at_ms:queue_id").
std::string render_result_cursor(const stored_result& last);

/// The position a cursor names, or nullopt when it is not one render_result_cursor wrote.
std::optional<result_cursor> parse_result_cursor(std::string_view cursor);

} // namespace lps
