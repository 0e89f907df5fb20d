#pragma once

// Client-side rate limiting per provider as plain classes (no actors, no I/O, no clock
// reads): token buckets for requests and tokens per minute that also learn from the
// provider's rate-limit headers, the parsers for those headers, and a concurrency cap.
// docs/resilience.md describes the behaviour for operators.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace lps {

/// Monotonic time as the resilience classes see it (same alias as retry_policy.hpp).
using clock_time = std::chrono::steady_clock::time_point;

/// Durations used by the resilience classes (same alias as retry_policy.hpp).
using clock_duration = std::chrono::steady_clock::duration;

/// The longest a provider's reset figure is believed; longer values are cut to this, so a
/// bogus header cannot stall a provider for days.
inline constexpr std::chrono::hours max_limit_hold{24};

/// Largest per-minute rate a bucket accepts; larger settings are cut to it (keeps the
/// fixed-point arithmetic inside 64 bits).
inline constexpr uint64_t max_rate_per_minute = 10'000'000'000'000;

/// One token bucket refilled continuously at `per_minute` per 60 s, holding at most
/// `per_minute`. Starts full. Time advances in whole milliseconds (the leftover fraction
/// carries over), which keeps arithmetic exact and wait_time() precise to the nanosecond.
/// A level may go negative (debt, see adjust()); a bucket in debt admits nothing until the
/// refill has repaid it.
class token_bucket {
public:
  /// A full bucket of `per_minute` (0 = unlimited: every check passes unless the provider
  /// said it has nothing left, see observe()).
  explicit token_bucket(uint64_t per_minute = 0) noexcept;

  /// True when configured with 0.
  bool unlimited() const noexcept {
    return per_minute_ == 0;
  }

  /// Configured capacity and refill per minute (0 = unlimited).
  uint64_t capacity() const noexcept {
    return per_minute_;
  }

  /// Could `amount` be taken at `now`? An amount above capacity is admitted only when the
  /// bucket is full (and then leaves debt), so an oversized call is slowed, not stuck forever.
  bool can_take(clock_time now, uint64_t amount) const noexcept;

  /// Takes `amount` at `now` unconditionally (the level may go negative).
  void take(clock_time now, uint64_t amount) noexcept;

  /// Time from `now` until can_take(amount) would be true; zero when it already is.
  clock_duration wait_time(clock_time now, uint64_t amount) const noexcept;

  /// Corrects the level by `delta` tokens: positive takes more (may leave debt), negative
  /// gives back (never above capacity). Used when a call's real size differs from its estimate.
  void adjust(int64_t delta) noexcept;

  /// Believes the provider's `remaining` when it is at most our level: lowers the level to it
  /// and, when `reset` is positive, stops refilling until now + reset (at most
  /// max_limit_hold), at which time the bucket is full again (the provider's reset means
  /// fully replenished; we refill only to our own capacity). A figure above our level lifts
  /// an earlier hold but never raises the level. An unlimited bucket keeps no level but does
  /// hold when `remaining` is 0 and a reset is given (and admits nothing until then).
  void observe(clock_time now, uint64_t remaining, std::optional<clock_duration> reset) noexcept;

  /// Whole units available at `now` (rounded down; negative in debt). INT64_MAX when
  /// unlimited.
  int64_t available(clock_time now) const noexcept;

  /// The end of the hold set by observe(), if one is in force at `now`.
  std::optional<clock_time> held_until(clock_time now) const noexcept;

  /// Takes over another bucket's state as of `now`: `level` whole units (cut to capacity)
  /// and a hold of `hold` (nullopt: none), nothing lent. A cluster follower mirrors the
  /// leader's buckets so that, should it lead next, it carries on from there instead of full
  /// buckets.
  void assume(clock_time now, int64_t level, std::optional<clock_duration> hold) noexcept;

  /// Lends `amount` at `now` (a lease to a cluster follower): taken from the level, and
  /// until repay() the bucket refills only to its capacity less what is lent. Otherwise it
  /// would refill behind the lease, and the lease, given back unused, would come on top.
  void lend(clock_time now, uint64_t amount) noexcept;

  /// Ends a loan of `amount` at `now`; `unused` of it comes back to the level (never above
  /// the capacity less what is still lent).
  void repay(clock_time now, uint64_t amount, uint64_t unused) noexcept;

private:
  /// The level and the time it refers to, as of `now`.
  struct projection {
    int64_t level;
    clock_time at;
  };

  projection project(clock_time now) const noexcept;
  void advance(clock_time now) noexcept;
  int64_t need(uint64_t amount) const noexcept;
  int64_t ceiling() const noexcept;

  uint64_t per_minute_;
  /// Fixed point: one unit is 1/60000 of a token, so a millisecond refills per_minute_ units.
  int64_t level_;
  /// When level_ was last brought up to date; unset until the first timed call.
  std::optional<clock_time> last_;
  /// End of the hold set by observe(); refill is frozen until then.
  std::optional<clock_time> hold_until_;
  /// Fixed point, like level_: what is lent (lend()) and not repaid yet.
  int64_t lent_ = 0;
};

/// Configured limits of one provider (0 = unlimited).
struct rate_limit_settings {
  /// Requests per minute.
  uint64_t requests_per_minute = 0;
  /// Tokens (prompt plus expected completion) per minute.
  uint64_t tokens_per_minute = 0;
};

/// Requests-per-minute and tokens-per-minute buckets of one provider, acquired together.
class rate_limiter {
public:
  /// Full buckets for `settings`.
  explicit rate_limiter(rate_limit_settings settings = {}) noexcept;

  /// Takes `requests` and `estimated_tokens` at `now` if both buckets allow it, else takes
  /// nothing and returns false (all or nothing).
  bool try_acquire(clock_time now, uint64_t requests, uint64_t estimated_tokens) noexcept;

  /// Time from `now` until try_acquire with the same figures would succeed (zero if now),
  /// assuming nothing else is acquired or observed meanwhile.
  clock_duration wait_time(clock_time now, uint64_t requests,
                           uint64_t estimated_tokens) const noexcept;

  /// Corrects the token bucket once the real usage is known: positive when the call used
  /// more than estimated (may leave debt), negative when less (given back up to capacity).
  void reconcile_tokens(int64_t actual_minus_estimated) noexcept;

  /// Takes `requests` and `tokens` at `now` unconditionally (may leave debt): a bundle whose
  /// requests were taken meanwhile still goes.
  void take(clock_time now, uint64_t requests, uint64_t tokens) noexcept;

  /// Lends `requests` and `tokens` at `now` unconditionally (may leave debt): a lease of
  /// them handed to another node (token_bucket::lend).
  void lend(clock_time now, uint64_t requests, uint64_t tokens) noexcept;

  /// Ends a lease of `requests` and `tokens`; what it did not use comes back
  /// (token_bucket::repay).
  void repay(clock_time now, uint64_t requests, uint64_t tokens, uint64_t unused_requests,
             uint64_t unused_tokens) noexcept;

  /// Learns from a response's rate-limit headers (see token_bucket::observe). Any argument
  /// may be absent; a remaining figure without a reset lowers the level without a hold.
  void observe_limits(clock_time now, std::optional<uint64_t> remaining_requests,
                      std::optional<uint64_t> remaining_tokens,
                      std::optional<clock_duration> reset_requests,
                      std::optional<clock_duration> reset_tokens) noexcept;

  /// The request bucket (for the status endpoint; mutable to mirror a leader's).
  token_bucket& requests() noexcept {
    return requests_;
  }

  /// The token bucket (mutable to mirror a leader's).
  token_bucket& tokens() noexcept {
    return tokens_;
  }

  /// The request bucket (for the status endpoint).
  const token_bucket& requests() const noexcept {
    return requests_;
  }

  /// The token bucket (for the status endpoint).
  const token_bucket& tokens() const noexcept {
    return tokens_;
  }

  /// The configured limits.
  const rate_limit_settings& settings() const noexcept {
    return settings_;
  }

private:
  rate_limit_settings settings_;
  token_bucket requests_;
  token_bucket tokens_;
};

/// Parses OpenAI's `x-ratelimit-reset-*` values, Go duration text such as "6m0s", "1s",
/// "12ms", "1h2m3.5s" (units h, m, s, ms, us/µs, ns; fractions allowed). Values above
/// max_limit_hold are cut to it; anything else gives nullopt.
std::optional<clock_duration> parse_openai_reset(std::string_view value) noexcept;

/// Parses Anthropic's `anthropic-ratelimit-*-reset` values, RFC 3339 timestamps such as
/// "2024-05-01T12:00:30Z" or "2024-05-01T14:00:30.5+02:00", into the time left from `now`:
/// zero when past, at most max_limit_hold; nullopt when malformed.
std::optional<clock_duration>
parse_rfc3339_reset(std::string_view value, std::chrono::system_clock::time_point now) noexcept;

/// Seconds since the Unix epoch of an RFC 3339 timestamp (whole seconds); nullopt when
/// malformed. Used for the creation times in Anthropic's batch lists.
std::optional<int64_t> rfc3339_unix_seconds(std::string_view value) noexcept;

} // namespace lps
