#pragma once

// A local stand-in for the LLM providers lps calls. One HTTP server speaks four wire formats,
// chosen by path: OpenAI chat completions, OpenRouter (the same, under /api/v1), Anthropic
// messages and Gemini generateContent. It checks keys and request bodies the way the real
// APIs do, answers with a deterministic judgement (a stable hash of the seed and the prompt),
// and injects faults: scripted through a JSON control API under /_mock/ or at random by an
// error rate. docs/mock-provider.md has the details. Boost.JSON stays in the .cpp.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lps {

/// How the simulated batch APIs (OpenAI Batch, Anthropic Message Batches) behave. A batch
/// takes its settings when it is created; later changes apply to later batches.
struct mock_batch_options {
  /// OpenAI `validating` phase (Anthropic: queued, still `in_progress`).
  std::chrono::milliseconds validating{50};
  /// Processing: items finish evenly spread over this time (OpenAI then spends a tenth of it
  /// in `finalizing`).
  std::chrono::milliseconds processing{200};
  /// From a cancel request to `cancelled` (OpenAI) or `ended` (Anthropic).
  std::chrono::milliseconds cancel{100};
  /// Fraction in [0, 1] of items that fail (OpenAI: a 500 server_error line in the error
  /// file; Anthropic: an errored api_error result). Drawn per item from the seed.
  double item_error_rate = 0.0;
  /// Fraction in [0, 1] of items that expire (error_rate + expire_rate <= 1).
  double item_expire_rate = 0.0;
  /// How many of the next OpenAI batches fail as a whole (token_limit_exceeded).
  uint32_t fail_next_openai_batches = 0;
};

/// Batch API call counters (not part of the sync counters below).
struct mock_batch_stats {
  /// Every batch API call, including rejected ones.
  uint64_t calls = 0;
  /// Keyed by "files_upload", "file_get", "file_content", "batch_create", "batch_get",
  /// "batch_cancel", "batch_list", "results", "unknown".
  std::map<std::string, uint64_t> by_endpoint;
  /// "openai" / "anthropic" x endpoint.
  std::map<std::string, std::map<std::string, uint64_t>> by_dialect_endpoint;
  /// "ok", "unauthorized", "invalid_request", "not_found", "conflict", "too_large".
  std::map<std::string, uint64_t> by_outcome;
  /// Accepted batches and the items in them, keyed by "openai" / "anthropic".
  std::map<std::string, uint64_t> batches_created;
  std::map<std::string, uint64_t> items_submitted;
};

/// Start-up settings (the lps-mock-provider flags map onto these one to one).
struct mock_provider_options {
  std::string host = "127.0.0.1";
  /// 0: any free port (see mock_provider_server::port()).
  uint16_t port = 0;
  unsigned io_threads = 1;
  /// Every provider answer waits latency + U(0, jitter); the I/O thread does not block.
  std::chrono::milliseconds latency{0};
  std::chrono::milliseconds jitter{0};
  /// Probability in [0, 1] that a call that would succeed gets an error instead.
  double error_rate = 0.0;
  /// The statuses random errors draw from (uniformly), each in 400..599.
  std::vector<unsigned> error_codes{429, 500, 503, 529};
  /// Feeds the judgement hash and the random generator (jitter, random errors, ids).
  uint64_t seed = 42;
  /// The one key every dialect accepts.
  std::string api_key = "test-key";
  /// Limits advertised in the OpenAI and Anthropic rate-limit headers, per dialect and fixed
  /// one-minute window (nothing is enforced; lps slows down when they run out). Both 0: no
  /// rate-limit headers (benchmarks use that, so lps's pacing does not cap them).
  uint64_t rate_limit_requests = 10000;
  uint64_t rate_limit_tokens = 2000000;
  /// HTTPS: certificate chain and private key (PEM files), both or neither (plain HTTP).
  std::string tls_cert_file;
  std::string tls_key_file;
  /// The batch APIs (docs/mock-provider.md, "Batch APIs").
  mock_batch_options batch;
  /// The clock batches progress by; empty: std::chrono::steady_clock. Tests pass a manual
  /// one (virtual time), so a batch moves on only when the test advances it. Called from the
  /// I/O threads.
  std::function<std::chrono::steady_clock::time_point()> batch_clock;
};

/// Streamed answers since the start or the last reset (docs/mock-provider.md, section 11).
struct mock_stream_counts {
  /// Streams whose head was sent.
  uint64_t started = 0;
  /// Of those, not ended yet (kept across a reset: they end after it).
  uint64_t open = 0;
  /// Ended by the client going away before the server ended them (an lps gateway client
  /// that disconnects cancels lps's upstream call, which shows here).
  uint64_t cancelled = 0;
};

/// Call counters. Control API calls (/_mock/...) are not counted.
struct mock_provider_stats {
  /// Every provider call, including rejected ones and unknown paths.
  uint64_t calls = 0;
  /// Keyed by "openai", "openrouter", "anthropic", "gemini", "unknown".
  std::map<std::string, uint64_t> by_dialect;
  /// Keyed by outcome: "ok", "unauthorized", "invalid_request", "not_found", "rate_limited",
  /// "quota_exhausted", "server_error", "unavailable", "overloaded", "error_<status>",
  /// "malformed", "truncated", "no_tool_use", "bad_winner", "dropped", "delayed" (a delay
  /// fault: answered normally, later).
  std::map<std::string, uint64_t> by_outcome;
  /// by_dialect x by_outcome.
  std::map<std::string, std::map<std::string, uint64_t>> by_dialect_outcome;
  /// Calls that consumed a scripted fault (faults apply only to calls that pass the key and
  /// request checks).
  uint64_t scripted_faults = 0;
  /// Calls that got a random error from error_rate.
  uint64_t random_errors = 0;
  /// Calls still covered by the fault script.
  uint64_t pending_faults = 0;
  /// Provider calls received whose answer has not been sent yet (held "drop" calls stay in
  /// it), and the most there ever were at once since the start or the last reset.
  uint64_t in_flight = 0;
  uint64_t peak_in_flight = 0;
  /// Provider calls whose client closed its connection before their answer ended, seen at
  /// once (the HTTP server's close watch): while the answer waits (latency, a delay or drop
  /// fault) or mid-stream. An lps whose gateway client left shows here when it cancels.
  uint64_t abandoned = 0;
  /// The batch APIs' calls (counted here only, never in the fields above).
  mock_batch_stats batch;
  /// Streamed answers: started, still open, ended by the client (section 11).
  mock_stream_counts streams;
};

/// One comparison as this server saw it, across calls: how many calls carried it and when
/// the first good answer (200, "ok") carrying it was sent. Tests use it to find a comparison
/// asked again after it had been answered (a call made twice).
struct mock_item_calls {
  uint64_t calls = 0;
  std::optional<std::chrono::steady_clock::time_point> first_answered;
};

class mock_provider_server {
public:
  mock_provider_server();
  ~mock_provider_server();
  mock_provider_server(const mock_provider_server&) = delete;
  mock_provider_server& operator=(const mock_provider_server&) = delete;

  /// Checks the options, binds and starts serving. Returns false with `error` on failure.
  bool start(const mock_provider_options& options, std::string& error);

  /// The bound port (useful with port 0); 0 before start().
  uint16_t port() const;

  /// Stops serving: connections close, answers still waiting for their latency and
  /// connections held by "drop" are abandoned. Idempotent; the server cannot start again.
  void stop();

  /// A snapshot of the counters.
  mock_provider_stats stats() const;

  /// Every comparison since the start or the last reset, keyed by a hash of its text (a
  /// multi-prompt's `<comparison>` block, else the call's user turns); general chat calls
  /// are not counted.
  std::map<uint64_t, mock_item_calls> item_calls() const;

  /// Blocks until `until` holds for the call counters (woken by every recorded call, so no
  /// polling; `batch` and `pending_faults` are left empty) or `limit` passes; false then.
  bool wait_for_calls(const std::function<bool(const mock_provider_stats&)>& until,
                      std::chrono::milliseconds limit) const;

  /// Appends scripted faults; `json` is the body POST /_mock/faults takes.
  bool add_faults(std::string_view json, std::string& error);

  /// Clears counters, the fault script, the simulated caches and the rate-limit windows (what
  /// POST /_mock/reset does). Connections held by "drop" faults stay held until stop().
  /// Batches and files are forgotten and the batch settings return to the start options.
  void reset();

  /// The current batch settings; replacing them checks them first (false with `error`).
  mock_batch_options batch_options() const;
  bool set_batch_options(const mock_batch_options& options, std::string& error);

  /// Changes some batch settings; `json` is the body POST /_mock/batches takes.
  bool configure_batches(std::string_view json, std::string& error);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace lps
