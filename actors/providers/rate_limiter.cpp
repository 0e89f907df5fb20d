#include "actors/providers/rate_limiter.hpp"

#include "actors/providers/header_text.hpp"

#include <algorithm>
#include <array>
#include <limits>

namespace lps {

namespace {

using std::chrono::milliseconds;

/// Fixed-point units per token: one minute in milliseconds, so a bucket of N per minute
/// refills exactly N units per millisecond.
constexpr int64_t units_per_token = 60'000;

/// Lowest level a bucket may reach. With max_rate_per_minute the arithmetic below stays
/// inside int64 (capacity and any single amount are at most 6e17 units).
constexpr int64_t debt_floor = -4'000'000'000'000'000'000;

/// Longest wait reported, in milliseconds (~31 years), so callers can add it to a time point.
constexpr int64_t max_wait_ms = 1'000'000'000'000;

int64_t units(uint64_t tokens) noexcept {
  return static_cast<int64_t>(std::min(tokens, max_rate_per_minute)) * units_per_token;
}

int64_t ceil_div(int64_t a, int64_t b) noexcept {
  return a / b + (a % b != 0 ? 1 : 0);
}

int64_t floor_div(int64_t a, int64_t b) noexcept {
  return a / b - ((a % b != 0 && a < 0) ? 1 : 0);
}

clock_duration clamp_hold(clock_duration d) noexcept {
  return std::clamp<clock_duration>(d, clock_duration::zero(), max_limit_hold);
}

// -- header parsing helpers --

using header_text::is_digit;
using header_text::read_digits;
using header_text::trim;

/// A decimal number "12" or "3.5": whole part (saturated) and fraction in nanos (1e-9 units).
struct decimal {
  int64_t whole = 0;
  int64_t nanos = 0;
};

/// Consumes a decimal number from the front of `s`.
std::optional<decimal> take_decimal(std::string_view& s) noexcept {
  // Saturating keeps the multiplication by an hour in nanoseconds inside int64.
  constexpr int64_t saturation = 1'000'000;
  decimal result;
  size_t i = 0;
  for (; i < s.size() && is_digit(s[i]); ++i)
    result.whole = std::min(saturation, result.whole * 10 + (s[i] - '0'));
  size_t digits = i;
  if (i < s.size() && s[i] == '.') {
    int64_t scale = 100'000'000;
    for (++i; i < s.size() && is_digit(s[i]); ++i, ++digits, scale /= 10)
      result.nanos += (s[i] - '0') * scale;
  }
  if (digits == 0)
    return std::nullopt;
  s.remove_prefix(i);
  return result;
}

/// Consumes a Go duration unit from the front of `s`; returns its length in nanoseconds.
std::optional<int64_t> take_unit(std::string_view& s) noexcept {
  struct unit {
    std::string_view text;
    int64_t nanos;
  };
  // Longer spellings first: "ms" must not be read as minutes.
  static constexpr std::array<unit, 8> table{{{"ms", 1'000'000},
                                              {"us", 1'000},
                                              {"\xC2\xB5s", 1'000},
                                              {"\xCE\xBCs", 1'000},
                                              {"ns", 1},
                                              {"h", 3'600'000'000'000},
                                              {"m", 60'000'000'000},
                                              {"s", 1'000'000'000}}};
  for (const auto& candidate : table)
    if (s.substr(0, candidate.text.size()) == candidate.text) {
      s.remove_prefix(candidate.text.size());
      return candidate.nanos;
    }
  return std::nullopt;
}

/// `value` (whole plus nanos of one unit) times a unit, in nanoseconds, without overflow.
int64_t scale_by_unit(decimal value, int64_t unit_nanos) noexcept {
  constexpr int64_t billion = 1'000'000'000;
  auto fraction = unit_nanos >= billion ? value.nanos * (unit_nanos / billion)
                                        : value.nanos / (billion / unit_nanos);
  return value.whole * unit_nanos + fraction;
}

/// "+02:00", "-05:30", "Z" at the end of an RFC 3339 timestamp; the offset east of UTC.
std::optional<std::chrono::minutes> parse_offset(std::string_view s) noexcept {
  if (s == "Z" || s == "z")
    return std::chrono::minutes{0};
  if (s.size() != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':')
    return std::nullopt;
  auto hours = read_digits(s, 1, 2);
  auto minutes = read_digits(s, 4, 2);
  if (!hours || !minutes || *hours > 23 || *minutes > 59)
    return std::nullopt;
  std::chrono::minutes offset{*hours * 60 + *minutes};
  return s[0] == '-' ? -offset : offset;
}

/// The UTC instant of an RFC 3339 date-time: whole seconds plus nanoseconds.
struct instant {
  std::chrono::sys_seconds seconds;
  std::chrono::nanoseconds nanos;
};

/// "2024-05-01T12:00:30Z", "2024-05-01t12:00:30.25+02:00" (RFC 3339 section 5.6).
std::optional<instant> parse_rfc3339(std::string_view s) noexcept {
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':'
      || (s[10] != 'T' && s[10] != 't' && s[10] != ' '))
    return std::nullopt;
  auto year = read_digits(s, 0, 4);
  auto month = read_digits(s, 5, 2);
  auto day = read_digits(s, 8, 2);
  auto hour = read_digits(s, 11, 2);
  auto minute = read_digits(s, 14, 2);
  auto second = read_digits(s, 17, 2);
  if (!year || !month || !day || !hour || !minute || !second || *hour > 23 || *minute > 59
      || *second > 60)
    return std::nullopt;
  auto rest = s.substr(19);
  std::chrono::nanoseconds nanos{0};
  if (!rest.empty() && rest.front() == '.') {
    auto fraction = take_decimal(rest); // reads ".25" as whole 0, nanos 250000000
    if (!fraction)
      return std::nullopt;
    nanos = std::chrono::nanoseconds{fraction->nanos};
  }
  auto offset = parse_offset(rest);
  std::chrono::year_month_day date{std::chrono::year{*year},
                                   std::chrono::month{static_cast<unsigned>(*month)},
                                   std::chrono::day{static_cast<unsigned>(*day)}};
  if (!offset || !date.ok())
    return std::nullopt;
  auto local = std::chrono::sys_days{date} + std::chrono::hours{*hour}
               + std::chrono::minutes{*minute} + std::chrono::seconds{*second};
  return instant{local - *offset, nanos};
}

} // namespace

// -- token_bucket --

token_bucket::token_bucket(uint64_t per_minute) noexcept
    : per_minute_(std::min(per_minute, max_rate_per_minute)), level_(units(per_minute_)) {
  // nop
}

token_bucket::projection token_bucket::project(clock_time now) const noexcept {
  if (unlimited() || !last_)
    return {level_, now};
  if (now <= *last_)
    return {level_, *last_}; // time must not run backwards
  if (hold_until_)
    // Frozen until the provider's reset; at the reset the provider is full again.
    return {now < *hold_until_ ? level_ : ceiling(), now};
  auto capacity = ceiling();
  if (level_ >= capacity)
    return {level_, now};
  auto rate = static_cast<int64_t>(per_minute_);
  auto elapsed = std::chrono::duration_cast<milliseconds>(now - *last_).count();
  if (elapsed >= ceil_div(capacity - level_, rate))
    return {capacity, now};
  // Only whole milliseconds are credited; the remainder stays in (now - at) for next time.
  return {level_ + elapsed * rate, *last_ + milliseconds{elapsed}};
}

void token_bucket::advance(clock_time now) noexcept {
  auto current = project(now);
  level_ = current.level;
  last_ = current.at;
  if (hold_until_ && now >= *hold_until_)
    hold_until_.reset();
}

// The most the level refills to: the capacity less what is lent.
int64_t token_bucket::ceiling() const noexcept {
  return std::max<int64_t>(units(per_minute_) - lent_, 0);
}

int64_t token_bucket::need(uint64_t amount) const noexcept {
  // An amount above capacity could never fit: ask for a full bucket instead.
  return amount > per_minute_ ? units(per_minute_) : units(amount);
}

bool token_bucket::can_take(clock_time now, uint64_t amount) const noexcept {
  if (unlimited())
    return !(hold_until_ && now < *hold_until_);
  return project(now).level >= need(amount);
}

void token_bucket::take(clock_time now, uint64_t amount) noexcept {
  if (unlimited())
    return;
  advance(now);
  level_ = std::max(debt_floor, level_ - units(amount));
}

clock_duration token_bucket::wait_time(clock_time now, uint64_t amount) const noexcept {
  if (unlimited())
    return hold_until_ && now < *hold_until_ ? *hold_until_ - now : clock_duration::zero();
  auto current = project(now);
  auto wanted = need(amount);
  if (current.level >= wanted)
    return clock_duration::zero();
  if (hold_until_ && now < *hold_until_)
    return *hold_until_ - now; // the bucket is full at the end of the hold
  auto steps =
      std::min(max_wait_ms, ceil_div(wanted - current.level, static_cast<int64_t>(per_minute_)));
  return std::max(clock_duration::zero(), current.at + milliseconds{steps} - now);
}

void token_bucket::adjust(int64_t delta) noexcept {
  if (unlimited())
    return;
  constexpr auto bound = static_cast<int64_t>(max_rate_per_minute);
  auto change = std::clamp(delta, -bound, bound) * units_per_token;
  level_ = std::clamp(level_ - change, debt_floor, std::max(level_, ceiling()));
}

void token_bucket::observe(clock_time now, uint64_t remaining,
                           std::optional<clock_duration> reset) noexcept {
  if (unlimited()) {
    // Without a configured limit we keep no count, but a provider that says it has nothing
    // left until its reset is still believed: calling it sooner only earns 429s.
    if (remaining == 0 && reset && *reset > clock_duration::zero())
      hold_until_ = now + clamp_hold(*reset);
    else if (remaining > 0)
      hold_until_.reset();
    return;
  }
  advance(now);
  auto reported = units(std::min(remaining, per_minute_));
  if (reported > level_) {
    // The provider has more than we believed: stop holding, but do not jump up either.
    hold_until_.reset();
    return;
  }
  level_ = reported;
  if (reset && *reset > clock_duration::zero())
    hold_until_ = now + clamp_hold(*reset);
}

void token_bucket::assume(clock_time now, int64_t level,
                          std::optional<clock_duration> hold) noexcept {
  hold_until_.reset();
  if (hold && *hold > clock_duration::zero())
    hold_until_ = now + clamp_hold(*hold);
  if (unlimited())
    return;
  auto capacity = static_cast<int64_t>(per_minute_);
  level_ = std::clamp(level, debt_floor / units_per_token, capacity) * units_per_token;
  last_ = now;
  lent_ = 0;
}

void token_bucket::lend(clock_time now, uint64_t amount) noexcept {
  if (unlimited())
    return;
  take(now, amount);
  lent_ = std::min(lent_ + units(amount), units(per_minute_));
}

void token_bucket::repay(clock_time now, uint64_t amount, uint64_t unused) noexcept {
  if (unlimited())
    return;
  advance(now);
  lent_ = std::max<int64_t>(lent_ - units(amount), 0);
  level_ = std::min(level_ + units(std::min(unused, amount)), std::max(level_, ceiling()));
}

int64_t token_bucket::available(clock_time now) const noexcept {
  if (unlimited())
    return std::numeric_limits<int64_t>::max();
  return floor_div(project(now).level, units_per_token);
}

std::optional<clock_time> token_bucket::held_until(clock_time now) const noexcept {
  if (hold_until_ && now < *hold_until_)
    return hold_until_;
  return std::nullopt;
}

// -- rate_limiter --

rate_limiter::rate_limiter(rate_limit_settings settings) noexcept
    : settings_(settings), requests_(settings.requests_per_minute),
      tokens_(settings.tokens_per_minute) {
  // nop
}

bool rate_limiter::try_acquire(clock_time now, uint64_t requests,
                               uint64_t estimated_tokens) noexcept {
  if (!requests_.can_take(now, requests) || !tokens_.can_take(now, estimated_tokens))
    return false;
  requests_.take(now, requests);
  tokens_.take(now, estimated_tokens);
  return true;
}

clock_duration rate_limiter::wait_time(clock_time now, uint64_t requests,
                                       uint64_t estimated_tokens) const noexcept {
  return std::max(requests_.wait_time(now, requests), tokens_.wait_time(now, estimated_tokens));
}

void rate_limiter::reconcile_tokens(int64_t actual_minus_estimated) noexcept {
  tokens_.adjust(actual_minus_estimated);
}

void rate_limiter::take(clock_time now, uint64_t requests, uint64_t tokens) noexcept {
  requests_.take(now, requests);
  tokens_.take(now, tokens);
}

void rate_limiter::lend(clock_time now, uint64_t requests, uint64_t tokens) noexcept {
  requests_.lend(now, requests);
  tokens_.lend(now, tokens);
}

void rate_limiter::repay(clock_time now, uint64_t requests, uint64_t tokens,
                         uint64_t unused_requests, uint64_t unused_tokens) noexcept {
  requests_.repay(now, requests, unused_requests);
  tokens_.repay(now, tokens, unused_tokens);
}

void rate_limiter::observe_limits(clock_time now, std::optional<uint64_t> remaining_requests,
                                  std::optional<uint64_t> remaining_tokens,
                                  std::optional<clock_duration> reset_requests,
                                  std::optional<clock_duration> reset_tokens) noexcept {
  if (remaining_requests)
    requests_.observe(now, *remaining_requests, reset_requests);
  if (remaining_tokens)
    tokens_.observe(now, *remaining_tokens, reset_tokens);
}

// -- header parsers --

std::optional<clock_duration> parse_openai_reset(std::string_view value) noexcept {
  value = trim(value);
  if (value.empty())
    return std::nullopt;
  constexpr int64_t cap = std::chrono::nanoseconds{max_limit_hold}.count();
  int64_t total = 0;
  while (!value.empty()) {
    auto number = take_decimal(value);
    auto unit = number ? take_unit(value) : std::nullopt;
    if (!unit)
      return std::nullopt;
    total = std::min(cap, total + scale_by_unit(*number, *unit));
  }
  return std::chrono::duration_cast<clock_duration>(std::chrono::nanoseconds{total});
}

std::optional<int64_t> rfc3339_unix_seconds(std::string_view value) noexcept {
  auto when = parse_rfc3339(trim(value));
  if (!when)
    return std::nullopt;
  return std::chrono::floor<std::chrono::seconds>(when->seconds).time_since_epoch().count();
}

std::optional<clock_duration>
parse_rfc3339_reset(std::string_view value, std::chrono::system_clock::time_point now) noexcept {
  auto when = parse_rfc3339(trim(value));
  if (!when)
    return std::nullopt;
  // Compare in whole seconds first: a date centuries away must not overflow nanoseconds.
  auto coarse = when->seconds - std::chrono::floor<std::chrono::seconds>(now);
  if (coarse > max_limit_hold + std::chrono::seconds{1})
    return clock_duration{max_limit_hold};
  if (coarse < std::chrono::seconds{-1})
    return clock_duration::zero();
  auto exact = (when->seconds - now) + when->nanos;
  return clamp_hold(std::chrono::duration_cast<clock_duration>(exact));
}

} // namespace lps
