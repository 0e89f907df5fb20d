#pragma once

// The Anthropic Message Batches wire format as pure functions (no actors, no I/O, no clock
// reads): create a batch with every request inline (POST {base}/v1/messages/batches), poll
// (GET {base}/v1/messages/batches/{id}), cancel (POST .../{id}/cancel), download the results
// (GET results_url) and read their lines. `base` is ANTHROPIC_BASE_URL, without /v1
// (CONTRACTS.md section 3). Each request's params are build_anthropic_body's Messages request,
// and each succeeded message is read by anthropic_wire::read_single, so a batch answer passes
// exactly the checks of a sync one.

#include "actors/providers/anthropic_format.hpp"
#include "actors/providers/batch_wire.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lps {

/// Anthropic's own limits of one batch: requests, and bytes of the create request's body.
inline constexpr uint64_t anthropic_batch_max_items = 100'000;
inline constexpr uint64_t anthropic_batch_max_bytes = 256'000'000;

/// True when Anthropic accepts `id` as a custom_id: ^[a-zA-Z0-9_-]{1,64}$ (a UUID fits).
/// item_entry emits any id as given; a job holding one the API refuses is rejected as a
/// whole (HTTP 400 on create), so callers with other ids should check first.
bool anthropic_custom_id_ok(std::string_view id);

/// Anthropic Message Batches.
///
/// Steps and their answers:
/// - item_entry: `{"custom_id":ID,"params":<build_anthropic_body>}` (string concatenation).
/// - needs_upload: false. upload returns an empty request (no URL) and read_upload "" with a
///   permanent CONFIGURATION_ERROR: neither is to be called.
/// - create: `{"requests":[` + the entries joined by "," + `]}`, built by concatenation (the
///   entries are not parsed again). max_bytes_per_job() bounds this body: the entries' sizes
///   plus one byte each plus 14. `file_id` and `job_id` are not used (a batch has no
///   metadata).
/// - read_job: the MessageBatch. processing_status in_progress -> in_progress, canceling ->
///   cancelling, ended -> ended (never validating nor failed). request_counts: total = the sum
///   of processing, succeeded, errored, canceled and expired; succeeded; failed = errored.
///   result_locations = results_url when set. job_error says when the results were archived
///   (archived_at set: no longer available).
/// - downloads: GET results_url with the same headers as every step, when it is on the same
///   origin (scheme, host, port) as the base URL, or a path on it; otherwise GET
///   {base}/v1/messages/batches/{id}/results instead, so the key is never sent to another
///   host (a gateway that passes on upstream URLs still works).
/// - read_results: one item per line with a custom_id: `succeeded` -> the message read by
///   read_single (succeeded when it succeeds, else errored, e.g. INVALID_RESPONSE);
///   `errored` -> errored, classified like a sync error of that type (the status the type
///   stands for, e.g. invalid_request_error 400 permanent, rate_limit_error 429,
///   overloaded_error 529, api_error 500 retryable; that status is the response's
///   http_status, 0 for a type this code does not know); `canceled` -> cancelled and
///   `expired` -> expired (retryable: never processed); any other type -> errored
///   PARSING_ERROR. Blank lines are skipped; lines that are not a JSON object with a string
///   custom_id are counted in unreadable_lines. A custom_id found twice is reported twice.
///
/// Errors: a non-2xx answer of any step is read like a sync one (read_single: classify with
/// the error's type and details.error_code, "Anthropic HTTP <status>: ...", Retry-After); a
/// 2xx answer that is not what it should be (not JSON, no id, an unknown processing_status)
/// is PARSING_ERROR, retryable. When a step succeeds, `error` has success = true and the HTTP
/// status. The API key only ever goes into request headers.
class anthropic_batch_wire : public batch_wire {
public:
  /// `version` is sent as the `anthropic-version` header. Lower limits than Anthropic's are
  /// possible; each is clamped to 1..the provider's own limit.
  explicit anthropic_batch_wire(std::string version = std::string{anthropic_default_version},
                                uint64_t max_items = anthropic_batch_max_items,
                                uint64_t max_bytes = anthropic_batch_max_bytes);

  std::string_view display_name() const override;

  std::string item_entry(const comparison_request& request, const std::string& custom_id,
                         const std::string& model) const override;

  bool needs_upload() const override;

  http_client_request upload(const wire_target& target, const std::vector<std::string>& entries,
                             const std::string& job_id) const override;

  std::string read_upload(unsigned status, std::string_view body, const wire_headers& headers,
                          std::chrono::system_clock::time_point now,
                          wire_response& error) const override;

  http_client_request create(const wire_target& target, const std::string& file_id,
                             const std::vector<std::string>& entries,
                             const std::string& job_id) const override;

  batch_job_status read_job(unsigned status, std::string_view body, const wire_headers& headers,
                            std::chrono::system_clock::time_point now) const override;

  http_client_request poll(const wire_target& target,
                           const std::string& provider_job_id) const override;

  http_client_request cancel(const wire_target& target,
                             const std::string& provider_job_id) const override;
  http_client_request list(const wire_target& target) const override;
  std::vector<batch_listing> read_list(unsigned status, std::string_view body,
                                       const wire_headers& headers,
                                       std::chrono::system_clock::time_point now,
                                       wire_response& error) const override;

  std::vector<http_client_request> downloads(const wire_target& target,
                                             const batch_job_status& job) const override;

  batch_results read_results(unsigned status, std::string_view body, const wire_headers& headers,
                             std::chrono::system_clock::time_point now,
                             wire_response& error) const override;

private:
  /// A request with the API key, version and (when there is a body) content-type headers.
  http_client_request request(const wire_target& target, std::string method, std::string url,
                              std::string body) const;

  /// Reads answers exactly as sync calls (the succeeded messages, the HTTP errors).
  anthropic_wire sync_;
  std::string version_;
};

} // namespace lps
