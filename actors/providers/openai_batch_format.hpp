#pragma once

// The OpenAI Batch API wire format as pure functions (no actors, no I/O, no clock reads):
// upload a JSONL file (POST {base}/files, purpose batch), create a batch on it (POST
// {base}/batches), poll (GET {base}/batches/{id}), cancel (POST {base}/batches/{id}/cancel),
// download the output and error files (GET {base}/files/{file_id}/content) and read their
// lines. `base` is OPENAI_BASE_URL, which includes /v1 (CONTRACTS.md section 3). Each line's
// body is the chat/completions request of build_openai_request, and each line's answer is read
// by parse_openai_response, so a batch answer passes exactly the checks of a sync one.

#include "actors/providers/batch_wire.hpp"
#include "actors/providers/openai_format.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lps {

/// OpenAI's own limits of one batch: requests per input file, and bytes of that file.
inline constexpr uint64_t openai_batch_max_items = 50'000;
inline constexpr uint64_t openai_batch_max_bytes = 200'000'000;

/// The endpoint every line and the batch itself name.
inline constexpr std::string_view openai_batch_endpoint = "/v1/chat/completions";

/// The multipart boundary `upload` uses for `entries`: a fixed random-looking token, with a
/// numeric suffix added until no entry contains it (compact JSON lines cannot hold the CRLF a
/// delimiter starts with anyway; the check also covers entries that are not compact JSON).
std::string openai_upload_boundary(const std::vector<std::string>& entries);

/// The OpenAI Batch API.
///
/// Steps and their answers:
/// - item_entry: `{"custom_id":ID,"method":"POST","url":"/v1/chat/completions","body":...}`
///   (built by string concatenation; the body is build_openai_request's text as is).
/// - upload: multipart/form-data with the fields `purpose` = batch and `file` (filename
///   `<job_id>.jsonl`, characters outside [A-Za-z0-9._-] replaced by '_', content type
///   application/octet-stream, as the official SDK sends it): the entries, each followed by
///   "\n". max_bytes_per_job() bounds that file: the entries' sizes plus one byte each.
/// - read_upload: the `id` of the File object.
/// - create: `{"input_file_id","endpoint":"/v1/chat/completions","completion_window":"24h",
///   "metadata":{"lps_job_id":job_id}}` (`entries` is not used).
/// - read_job: the Batch object. status validating -> validating; in_progress, finalizing ->
///   in_progress; cancelling -> cancelling; completed, expired, cancelled -> ended (partial
///   results in the files); failed -> failed. request_counts {total, completed, failed} ->
///   total, succeeded, failed; result_locations = output_file_id then error_file_id, when set;
///   job_error = the first errors.data[].message ("line N: " before it when given, and how
///   many more there are after it).
/// - read_results: one item per line with a custom_id: `response` {status_code, body} read by
///   parse_openai_response (succeeded when it succeeds, else errored: an item that failed
///   with an HTTP error lands in the error file like this); `error` {code, message} with code
///   batch_expired -> expired, batch_cancelled -> cancelled (both retryable: never processed),
///   any other code (request_timeout, ...) -> errored, classified by its code. Blank lines
///   are skipped; lines that are not a JSON object with a string custom_id are counted in
///   unreadable_lines. A custom_id found twice is reported twice (the caller decides).
///
/// Errors: a non-2xx answer of any step is read like a sync one (classify with the error's
/// type and code, "OpenAI HTTP <status>: ...", Retry-After); a 2xx answer that is not what it
/// should be (not JSON, no id, a status word this code does not know) is PARSING_ERROR,
/// retryable (asking again is how the caller learns more). When a step succeeds, `error` has
/// success = true and the HTTP status. The API key only ever goes into request headers.
class openai_batch_wire : public batch_wire {
public:
  /// Lower limits than OpenAI's (tests, cautious operators); each is clamped to
  /// 1..the provider's own limit.
  explicit openai_batch_wire(uint64_t max_items = openai_batch_max_items,
                             uint64_t max_bytes = openai_batch_max_bytes,
                             openai_flags_table flags = {});

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
  /// Per-model request parameters from the manifest.
  openai_flags_table flags_;
};

} // namespace lps
