#pragma once

// A per-provider circuit breaker as a plain class (no actors, no I/O, no clock reads): the
// provider actor asks allow(now) before each call and reports the outcome afterwards, so a
// provider that keeps failing is left alone for a while instead of being hammered.
// docs/resilience.md describes the states and settings for operators.

#include <chrono>
#include <cstdint>
#include <string_view>

namespace lps {

/// Monotonic time as the resilience classes see it (same alias as retry_policy.hpp).
using clock_time = std::chrono::steady_clock::time_point;

/// Durations used by the resilience classes (same alias as retry_policy.hpp).
using clock_duration = std::chrono::steady_clock::duration;

/// Where a breaker stands.
enum class breaker_state {
  /// Healthy: every call is allowed; consecutive failures are counted.
  closed,
  /// Tripped: calls are refused until open_duration has passed since it opened.
  open,
  /// Testing recovery: a few probe calls are allowed; their outcomes decide.
  half_open,
};

/// "closed", "open" or "half_open" (the spelling of GET /api/v1/providers).
std::string_view to_string(breaker_state x) noexcept;

/// Thresholds of one breaker. Zero counts are treated as 1.
struct breaker_settings {
  /// Consecutive failures in closed that open the breaker.
  uint32_t failure_threshold = 5;
  /// How long an opened breaker refuses calls before probing.
  clock_duration open_duration = std::chrono::seconds{30};
  /// Calls allowed in flight at once while half-open.
  uint32_t half_open_max_probes = 1;
  /// Successes while half-open that close the breaker again.
  uint32_t success_threshold = 2;
};

/// Running totals since construction, for metrics and the status endpoint.
struct breaker_counters {
  /// Transitions into open (from closed, or back from half_open).
  uint64_t opened_total = 0;
  /// Transitions from open into half_open.
  uint64_t half_opened_total = 0;
  /// Transitions from half_open back into closed (recoveries).
  uint64_t closed_total = 0;
  /// allow() calls answered false.
  uint64_t rejected_total = 0;
  /// Probe calls allowed while half-open.
  uint64_t probes_total = 0;
  /// on_success() calls.
  uint64_t successes_total = 0;
  /// on_failure() calls.
  uint64_t failures_total = 0;
};

/// One provider's breaker. Every call allowed by allow() must be reported exactly once with
/// on_success() or on_failure(); a timed-out call is a failure. Report as failures only what
/// says something about the provider's health (rate limits, 5xx, overload, timeouts,
/// connection errors). Permanent client errors such as 400, 401 or a content refusal are the
/// request's fault, not the provider's: report them with on_success() (the provider answered,
/// which is what the breaker measures), so a probe slot is still freed.
class circuit_breaker {
public:
  /// A closed breaker with `settings` (zero counts become 1).
  explicit circuit_breaker(breaker_settings settings = {}) noexcept;

  /// May a call start now? Closed: yes. Open: no, until open_duration has passed; then the
  /// breaker turns half-open. Half-open: yes while fewer than half_open_max_probes probes are
  /// in flight (the call becomes a probe). A probe that has not reported for open_duration
  /// is presumed lost and its slot is freed, so a lost report cannot wedge the breaker.
  bool allow(clock_time now) noexcept;

  /// Reports a call that succeeded. Closed: resets the consecutive-failure count.
  /// Half-open: frees a probe slot and closes the breaker after success_threshold successes.
  /// Open: counted only (a call that started before the breaker opened).
  void on_success(clock_time now) noexcept;

  /// Reports a call that failed for a provider-health reason. Closed: opens the breaker at
  /// failure_threshold consecutive failures. Half-open: reopens at once and frees the probe
  /// slots. Open: counted only (it does not extend the open period).
  void on_failure(clock_time now) noexcept;

  /// Opens the breaker (if it is not open already) so that it stays open for `remaining`
  /// from `now`: a cluster follower takes over the leader's open breaker.
  void hold_open(clock_time now, clock_duration remaining) noexcept;

  /// A closed breaker takes over `failures` consecutive failures of another one (a cluster
  /// follower mirrors the leader's count, so that should it lead next it counts on instead
  /// of from zero); at most one short of failure_threshold, so it never opens here. Open and
  /// half-open breakers ignore it.
  void assume_failures(uint32_t failures) noexcept;

  /// The current state. The open -> half_open transition happens inside allow(), so an open
  /// breaker whose time is up still reports open until someone asks.
  breaker_state state() const noexcept {
    return state_;
  }

  /// How long until allow(now) could answer true: zero when it would now; the rest of the open
  /// period when open; when half-open with every probe slot taken, the time until the
  /// outstanding probes are presumed lost (a report will usually come sooner).
  clock_duration time_until_allowed(clock_time now) const noexcept;

  /// Failures counted towards failure_threshold in closed.
  uint32_t consecutive_failures() const noexcept {
    return consecutive_failures_;
  }

  /// Probes allowed while half-open and not yet reported.
  uint32_t probes_in_flight() const noexcept {
    return probes_in_flight_;
  }

  /// Successes counted towards success_threshold while half-open.
  uint32_t half_open_successes() const noexcept {
    return half_open_successes_;
  }

  /// When the breaker last opened (meaningful when state() is open).
  clock_time opened_at() const noexcept {
    return opened_at_;
  }

  /// Running totals.
  const breaker_counters& counters() const noexcept {
    return counters_;
  }

  /// The effective settings (after zero counts were raised to 1).
  const breaker_settings& settings() const noexcept {
    return settings_;
  }

private:
  void open(clock_time now) noexcept;
  void half_open() noexcept;
  void close() noexcept;
  void release_probe() noexcept;

  breaker_settings settings_;
  breaker_state state_ = breaker_state::closed;
  uint32_t consecutive_failures_ = 0;
  uint32_t probes_in_flight_ = 0;
  uint32_t half_open_successes_ = 0;
  clock_time opened_at_{};
  /// When the most recent probe was allowed; used to presume lost probes.
  clock_time last_probe_at_{};
  breaker_counters counters_;
};

} // namespace lps
