#pragma once

// Provider failure classification and retry backoff as plain functions (no actors, no I/O,
// no clock reads): the provider actors feed in what a call returned and the current time,
// and get back an lps error code, whether a retry can help, and how long to wait.
// docs/resilience.md describes the rules for operators.

#include "runtime/error_code.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace lps {

/// Monotonic time as the resilience classes see it; always passed in, never read inside.
using clock_time = std::chrono::steady_clock::time_point;

/// Durations used by the resilience classes (nanoseconds with libstdc++).
using clock_duration = std::chrono::steady_clock::duration;

// -- classification --

/// Whether a later attempt of the same call could succeed.
enum class failure_class {
  /// Rate limits, overload, 5xx, timeouts, dropped connections: try again later.
  retryable,
  /// Bad request, bad key, exhausted quota, refused content: retrying cannot help.
  permanent,
};

/// "retryable" or "permanent".
std::string_view to_string(failure_class x) noexcept;

/// How a call failed below HTTP, when it did (the HTTP client reports this).
enum class transport_kind {
  /// The call got an HTTP response (or never ran); look at the status instead.
  none,
  /// No complete response within the deadline.
  timeout,
  /// Could not connect (DNS failure, refused, unreachable).
  connect,
  /// The connection broke mid-call (reset, EOF before a full response).
  reset,
  /// TLS handshake or certificate failure; permanent, because it does not fix itself.
  tls,
  /// The target itself is unusable (malformed base URL, unsupported scheme).
  invalid,
};

/// "none", "timeout", "connect", "reset", "tls" or "invalid".
std::string_view to_string(transport_kind x) noexcept;

/// The verdict on one failed provider call.
struct failure_classification {
  /// Retry or not.
  failure_class kind = failure_class::permanent;
  /// The final error code (RATE_LIMIT, QUOTA_EXCEEDED, ...).
  ec error_code = ec::none;
  /// Short human-readable cause, e.g. "quota or credit exhausted"; static storage.
  std::string_view reason;
  friend bool operator==(const failure_classification&, const failure_classification&) = default;
};

/// Classifies a failed call from what is known about it. `http_status` is 0 when there was no
/// response, or the status of the response that carried the error (a 200 whose body or
/// stream reports an error, a batch item). `provider_error_type` and `provider_error_code` are
/// the provider's own fields (OpenAI `error.type`/`error.code`, Anthropic `error.type`/
/// `error.details.error_code`, Gemini `error.status`), matched case-insensitively; pass ""
/// when absent. Precedence: transport failure, content-policy refusal, quota exhaustion,
/// overload, HTTP status, then the error type alone. Never throws.
failure_classification classify(int http_status, std::string_view provider_error_type,
                                std::string_view provider_error_code,
                                transport_kind transport = transport_kind::none) noexcept;

// -- Retry-After --

/// The longest wait a Retry-After value may ask for; larger values are cut to this.
inline constexpr std::chrono::hours max_retry_after{1};

/// Parses an HTTP Retry-After value: delta-seconds ("120", also fractional "1.5") or an
/// IMF-fixdate ("Wed, 21 Oct 2015 07:28:00 GMT", taken relative to `now`). Negative deltas
/// and past dates give zero; anything over max_retry_after is capped; garbage gives nullopt.
std::optional<clock_duration> parse_retry_after(std::string_view value,
                                                std::chrono::system_clock::time_point now) noexcept;

// -- backoff --

/// How retries are spaced and how many are allowed.
struct backoff_settings {
  /// Delay before the first retry (before jitter).
  clock_duration base = std::chrono::seconds{1};
  /// Cap of the exponential delay (before jitter).
  clock_duration max = std::chrono::seconds{60};
  /// Jitter as a fraction of the delay: 0.5 spreads it over [0.5x, 1.5x]. Clamped to 0..1.
  double jitter = 0.5;
  /// Retries after the first attempt; a call is tried at most 1 + max_retries times.
  uint32_t max_retries = 3;
};

/// The one exponential backoff (provider retries through decide(), callback deliveries):
/// min(max, base * 2^(attempt-1)) * (1 + jitter * (2 * random01 - 1)). `attempt` counts from 1
/// (0 is treated as 1); `random01` in [0, 1] comes from the caller (clamped; NaN counts as
/// 0.5), so tests are deterministic. Jitter applies after the cap, so a delay may reach
/// max * (1 + jitter). Computed in double, so huge attempt counts cannot overflow.
clock_duration backoff_delay(const backoff_settings& settings, uint32_t attempt, double random01);

/// A seedable source of backoff_delay's random01: the same seed gives the same sequence on
/// every platform (mt19937_64 is fully specified, and so is the conversion below).
class jitter_source {
public:
  explicit jitter_source(uint64_t seed) : engine_(seed) {}
  /// The next value, uniform in [0, 1).
  double next();

private:
  std::mt19937_64 engine_;
};

/// Whether to retry a failed call, and when.
struct retry_decision {
  /// True when another attempt should be made.
  bool retry = false;
  /// How long to wait before it (zero when retry is false).
  clock_duration delay{0};
  /// Why, for logs and error messages.
  std::string reason;
};

/// Decides about a retry after `attempts_so_far` attempts (1 after the first failure; 0 is
/// treated as 1). No retry for permanent failures or once attempts_so_far > max_retries.
/// Otherwise delay = max(retry_after, backoff_delay(settings, attempts_so_far, random01)).
retry_decision decide(const backoff_settings& settings, uint32_t attempts_so_far,
                      failure_class kind, std::optional<clock_duration> retry_after,
                      double random01);

} // namespace lps
