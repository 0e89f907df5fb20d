#pragma once

// What a provider batch API must do, so that one batch_jobs actor can drive any of them
// (OpenAI Batch API, Anthropic Message Batches): build the requests of each step (upload,
// create, poll, cancel, download results) and read their answers strictly. Pure functions:
// no actors, no I/O, no clock reads. Implementations: openai_batch_format,
// anthropic_batch_format.

#include "actors/providers/provider_wire.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lps {

/// Largest result file a download accepts: results of a full job (100,000 items of a few KB
/// each) are far above the HTTP client's default limit.
inline constexpr size_t batch_max_result_bytes = size_t{2} << 30;

/// A provider job's state, normalised across providers.
enum class batch_job_state : uint8_t {
  /// Accepted, inputs being checked (OpenAI `validating`).
  validating,
  /// Running (OpenAI `in_progress`, `finalizing`; Anthropic `in_progress`).
  in_progress,
  /// Cancel asked, not finished (OpenAI `cancelling`, Anthropic `canceling`).
  cancelling,
  /// Finished; results can be downloaded. For OpenAI: `completed`, `expired` and
  /// `cancelled` (partial results in the output and error files); Anthropic: `ended`.
  ended,
  /// The job as a whole failed (OpenAI `failed`, e.g. invalid input file): no results;
  /// every item goes back to the queue or to its final failure.
  failed,
};

/// "validating", "in_progress", "cancelling", "ended", "failed".
const char* to_string(batch_job_state x);

/// What a create or poll answer says about a job.
struct batch_job_status {
  /// False when the HTTP call failed or its 2xx answer is not a job object this code can
  /// read (then PARSING_ERROR, retryable); `error` then says why (classified like sync calls,
  /// so a 429 or 5xx is retryable and the step is simply tried again later). When true,
  /// `error.success` is true and `error.http_status` is the answer's status.
  bool ok = false;
  wire_response error;
  std::string provider_job_id;
  batch_job_state state = batch_job_state::validating;
  /// The provider's own status word, for operators ("finalizing", "expired", ...).
  std::string provider_status;
  /// Counts as the provider reports them (0 when absent).
  uint64_t total = 0;
  uint64_t succeeded = 0;
  uint64_t failed = 0;
  /// Where the results are: OpenAI output and error file ids, Anthropic results_url.
  std::vector<std::string> result_locations;
  /// A job-level error message (OpenAI `errors.data[].message`), empty when none.
  std::string job_error;
};

/// One item's outcome as the results report it.
struct batch_item_result {
  /// The queue id lps gave as custom_id.
  std::string custom_id;
  /// succeeded (response.success), errored (response has the error), expired or cancelled
  /// (not processed by the provider: the item goes back to the queue).
  enum class kind : uint8_t { succeeded, errored, expired, cancelled } outcome = kind::errored;
  /// The judgement or the error, read exactly as a sync answer (same strict checks).
  wire_response response;
};

/// A downloaded result file read.
struct batch_results {
  std::vector<batch_item_result> items;
  /// Lines that could not be read at all (no custom_id): counted, never guessed.
  uint64_t unreadable_lines = 0;
};

/// One job as the provider's job list reports it (used to find a job lps may have created
/// just before a crash, so it is never created twice).
struct batch_listing {
  std::string provider_job_id;
  /// Our job id where the provider keeps metadata (OpenAI `metadata.lps_job_id`), else "".
  std::string lps_job_id;
  /// Creation time, seconds since the Unix epoch (0 when unreadable).
  int64_t created_at_s = 0;
  /// Items in the job.
  uint64_t total = 0;
};

/// A provider batch API.
class batch_wire {
public:
  virtual ~batch_wire() = default;

  /// "OpenAI" or "Anthropic", for messages.
  virtual std::string_view display_name() const = 0;

  /// Most items and bytes one job may hold: what the format was built with, never more
  /// than the provider's own limits.
  uint64_t max_items_per_job() const {
    return max_items_;
  }
  uint64_t max_bytes_per_job() const {
    return max_bytes_;
  }

  /// One item's entry: an OpenAI JSONL line (without the newline) or an Anthropic
  /// `{"custom_id","params"}` object. `custom_id` is the queue id.
  virtual std::string item_entry(const comparison_request& request, const std::string& custom_id,
                                 const std::string& model) const = 0;

  /// True when the entries must first be uploaded as a file (OpenAI).
  virtual bool needs_upload() const = 0;

  /// The upload request (OpenAI: multipart POST /files, purpose batch). `job_id` names the
  /// file. Only called when needs_upload().
  virtual http_client_request upload(const wire_target& target,
                                     const std::vector<std::string>& entries,
                                     const std::string& job_id) const = 0;

  /// Reads the upload answer: the file id, or "" with `error` set.
  virtual std::string read_upload(unsigned status, std::string_view body,
                                  const wire_headers& headers,
                                  std::chrono::system_clock::time_point now,
                                  wire_response& error) const = 0;

  /// The create request: OpenAI POST /batches with the uploaded file id; Anthropic POST
  /// /v1/messages/batches with the entries inline. `job_id` goes into metadata where the
  /// provider has it.
  virtual http_client_request create(const wire_target& target, const std::string& file_id,
                                     const std::vector<std::string>& entries,
                                     const std::string& job_id) const = 0;

  /// Reads a create, poll or cancel answer (all return the job object).
  virtual batch_job_status read_job(unsigned status, std::string_view body,
                                    const wire_headers& headers,
                                    std::chrono::system_clock::time_point now) const = 0;

  virtual http_client_request poll(const wire_target& target,
                                   const std::string& provider_job_id) const = 0;

  virtual http_client_request cancel(const wire_target& target,
                                     const std::string& provider_job_id) const = 0;

  /// The newest jobs (one page, newest first).
  virtual http_client_request list(const wire_target& target) const = 0;

  /// Reads a list answer; on failure returns nothing and sets `error`.
  virtual std::vector<batch_listing> read_list(unsigned status, std::string_view body,
                                               const wire_headers& headers,
                                               std::chrono::system_clock::time_point now,
                                               wire_response& error) const = 0;

  /// The downloads that fetch an ended job's results, one per location.
  virtual std::vector<http_client_request> downloads(const wire_target& target,
                                                     const batch_job_status& job) const = 0;

  /// Reads one downloaded result file (JSONL). A non-2xx download is reported through
  /// `error` and gives no items.
  virtual batch_results read_results(unsigned status, std::string_view body,
                                     const wire_headers& headers,
                                     std::chrono::system_clock::time_point now,
                                     wire_response& error) const = 0;

protected:
  /// Lower limits than the provider's (tests, cautious operators) are kept; each is clamped
  /// to 1..the provider's own limit.
  batch_wire(uint64_t max_items, uint64_t max_bytes, uint64_t provider_max_items,
             uint64_t provider_max_bytes)
      : max_items_(std::clamp<uint64_t>(max_items, 1, provider_max_items)),
        max_bytes_(std::clamp<uint64_t>(max_bytes, 1, provider_max_bytes)) {}

private:
  uint64_t max_items_;
  uint64_t max_bytes_;
};

} // namespace lps
