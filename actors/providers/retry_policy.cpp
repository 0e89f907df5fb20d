#include "actors/providers/retry_policy.hpp"

#include "actors/providers/header_text.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

namespace lps {

namespace {

constexpr failure_classification retryable(ec code, std::string_view reason) {
  return {failure_class::retryable, code, reason};
}

constexpr failure_classification permanent(ec code, std::string_view reason) {
  return {failure_class::permanent, code, reason};
}

char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

/// Case-insensitive substring test; `needle` must be lower case.
bool contains(std::string_view haystack, std::string_view needle) noexcept {
  if (needle.size() > haystack.size())
    return false;
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    size_t j = 0;
    while (j < needle.size() && lower(haystack[i + j]) == needle[j])
      ++j;
    if (j == needle.size())
      return true;
  }
  return false;
}

/// True when the type or the code mentions any of `needles`.
template <size_t N>
bool mentions(std::string_view type, std::string_view code,
              const std::array<std::string_view, N>& needles) noexcept {
  return std::any_of(needles.begin(), needles.end(), [&](std::string_view needle) {
    return contains(type, needle) || contains(code, needle);
  });
}

// Provider wording, matched as substrings so "content_policy_violation", "SAFETY" and
// "insufficient_quota" are all caught without listing every variant.
constexpr std::array<std::string_view, 3> content_markers{"content_policy", "content_filter",
                                                          "safety"};
constexpr std::array<std::string_view, 4> quota_markers{"quota", "credit", "billing",
                                                        "spend_limit"};
constexpr std::array<std::string_view, 1> overload_markers{"overloaded"};

failure_classification classify_transport(transport_kind transport) noexcept {
  switch (transport) {
  case transport_kind::none:
    break;
  case transport_kind::timeout:
    return retryable(ec::timeout, "no response before the deadline");
  case transport_kind::connect:
    return retryable(ec::connection_error, "could not connect");
  case transport_kind::reset:
    return retryable(ec::connection_error, "connection reset");
  case transport_kind::tls:
    return permanent(ec::connection_error, "TLS or certificate failure");
  case transport_kind::invalid:
    return permanent(ec::configuration_error, "invalid provider URL");
  }
  return retryable(ec::connection_error, "unknown transport failure");
}

/// The verdict from the HTTP status alone; nullopt when the status says nothing (0, 2xx).
std::optional<failure_classification> classify_status(int status) noexcept {
  switch (status) {
  case 400:
    return permanent(ec::invalid_request, "provider rejected the request");
  case 401:
  case 403:
    return permanent(ec::authentication_error, "provider rejected the credentials");
  case 402:
    return permanent(ec::quota_exceeded, "payment required");
  case 404:
    return permanent(ec::invalid_request, "model or endpoint not found");
  case 408:
    return retryable(ec::timeout, "provider request timeout");
  case 409:
    return retryable(ec::external_service_error, "provider conflict");
  case 429:
    return retryable(ec::rate_limit, "rate limited");
  case 529:
    return retryable(ec::external_service_error, "provider overloaded");
  default:
    break;
  }
  if (status >= 500 && status <= 599)
    return retryable(ec::external_service_error, "provider server error");
  if (status >= 400 && status <= 499)
    return permanent(ec::invalid_request, "provider rejected the request");
  // A redirect or informational answer from an API endpoint means the base URL is wrong.
  if ((status >= 100 && status <= 199) || (status >= 300 && status <= 399))
    return permanent(ec::configuration_error, "unexpected HTTP status (check the base URL)");
  return std::nullopt;
}

/// The verdict from the error type alone, for errors reported without a telling status
/// (a batch item, an error event in a 200 stream).
failure_classification classify_type(std::string_view type, std::string_view code) noexcept {
  using markers = std::array<std::string_view, 3>;
  if (mentions(type, code, markers{"rate_limit", "resource_exhausted", "too_many"}))
    return retryable(ec::rate_limit, "rate limited");
  if (mentions(type, code, markers{"timeout", "deadline_exceeded", "timed_out"}))
    return retryable(ec::timeout, "provider reported a timeout");
  if (mentions(type, code, markers{"authentication", "permission", "api_key"})
      || mentions(type, code, markers{"unauthenticated", "unauthorized", "forbidden"}))
    return permanent(ec::authentication_error, "provider rejected the credentials");
  if (mentions(type, code, markers{"invalid_request", "invalid_argument", "not_found"}))
    return permanent(ec::invalid_request, "provider rejected the request");
  // Unknown wording: a retry is cheap and bounded by max_retries, a wrong "permanent" is not.
  return retryable(ec::external_service_error, "provider error");
}

// -- Retry-After parsing --

using header_text::is_digit;
using header_text::read_digits;
using header_text::trim;

clock_duration clamp_wait(clock_duration d) noexcept {
  return std::clamp<clock_duration>(d, clock_duration::zero(), max_retry_after);
}

/// "120", "1.5", "-3" (negative gives zero). Whole string or nothing.
std::optional<clock_duration> parse_delta_seconds(std::string_view s) noexcept {
  bool negative = !s.empty() && s.front() == '-';
  if (negative)
    s.remove_prefix(1);
  // Saturate early: anything beyond the cap is the cap, so huge numbers cannot overflow.
  constexpr int64_t saturation = 10'000'000;
  int64_t seconds = 0;
  size_t i = 0;
  for (; i < s.size() && is_digit(s[i]); ++i)
    seconds = std::min(saturation, seconds * 10 + (s[i] - '0'));
  if (i == 0)
    return std::nullopt;
  int64_t nanos = 0;
  if (i < s.size() && s[i] == '.') {
    size_t start = ++i;
    int64_t scale = 100'000'000;
    for (; i < s.size() && is_digit(s[i]); ++i, scale /= 10)
      nanos += (s[i] - '0') * scale;
    if (i == start)
      return std::nullopt;
  }
  if (i != s.size())
    return std::nullopt;
  if (negative)
    return clock_duration::zero();
  return clamp_wait(std::chrono::duration_cast<clock_duration>(std::chrono::seconds{seconds}
                                                               + std::chrono::nanoseconds{nanos}));
}

/// Index of `s` in `names` (exact, case-sensitive as the RFC demands), or -1.
template <size_t N>
int index_of(std::string_view s, const std::array<std::string_view, N>& names) noexcept {
  for (size_t i = 0; i < N; ++i)
    if (names[i] == s)
      return static_cast<int>(i);
  return -1;
}

/// IMF-fixdate, RFC 9110 5.6.7: "Sun, 06 Nov 1994 08:49:37 GMT" (29 characters, fixed layout).
std::optional<std::chrono::sys_seconds> parse_imf_fixdate(std::string_view s) noexcept {
  static constexpr std::array<std::string_view, 7> days{"Mon", "Tue", "Wed", "Thu",
                                                        "Fri", "Sat", "Sun"};
  static constexpr std::array<std::string_view, 12> months{
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (s.size() != 29 || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' '
      || s[19] != ':' || s[22] != ':' || s.substr(25) != " GMT")
    return std::nullopt;
  int month = index_of(s.substr(8, 3), months);
  auto day = read_digits(s, 5, 2);
  auto year = read_digits(s, 12, 4);
  auto hour = read_digits(s, 17, 2);
  auto minute = read_digits(s, 20, 2);
  auto second = read_digits(s, 23, 2);
  if (index_of(s.substr(0, 3), days) < 0 || month < 0 || !day || !year || !hour || !minute
      || !second || *hour > 23 || *minute > 59 || *second > 60)
    return std::nullopt;
  std::chrono::year_month_day date{std::chrono::year{*year},
                                   std::chrono::month{static_cast<unsigned>(month + 1)},
                                   std::chrono::day{static_cast<unsigned>(*day)}};
  if (!date.ok())
    return std::nullopt;
  return std::chrono::sys_days{date} + std::chrono::hours{*hour} + std::chrono::minutes{*minute}
         + std::chrono::seconds{*second};
}

/// Delay text for reasons: "1500 ms".
std::string describe(clock_duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

} // namespace

std::string_view to_string(failure_class x) noexcept {
  switch (x) {
  case failure_class::retryable:
    return "retryable";
  case failure_class::permanent:
    return "permanent";
  }
  return "unknown";
}

std::string_view to_string(transport_kind x) noexcept {
  switch (x) {
  case transport_kind::none:
    return "none";
  case transport_kind::timeout:
    return "timeout";
  case transport_kind::connect:
    return "connect";
  case transport_kind::reset:
    return "reset";
  case transport_kind::tls:
    return "tls";
  case transport_kind::invalid:
    return "invalid";
  }
  return "unknown";
}

failure_classification classify(int http_status, std::string_view provider_error_type,
                                std::string_view provider_error_code,
                                transport_kind transport) noexcept {
  // Without a response the status and body fields mean nothing.
  if (transport != transport_kind::none)
    return classify_transport(transport);
  const auto type = provider_error_type;
  const auto code = provider_error_code;
  // The provider's own words beat the status: a 429 may be an empty wallet, a 400 a refusal.
  if (mentions(type, code, content_markers))
    return permanent(ec::invalid_request, "refused by the provider's content policy");
  if (mentions(type, code, quota_markers))
    return permanent(ec::quota_exceeded, "quota or credit exhausted");
  if (http_status == 529 || mentions(type, code, overload_markers))
    return retryable(ec::external_service_error, "provider overloaded");
  if (auto verdict = classify_status(http_status))
    return *verdict;
  return classify_type(type, code);
}

std::optional<clock_duration>
parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now) noexcept {
  value = trim(value);
  if (value.empty())
    return std::nullopt;
  if (is_digit(value.front()) || value.front() == '-' || value.front() == '.')
    return parse_delta_seconds(value);
  auto when = parse_imf_fixdate(value);
  if (!when)
    return std::nullopt;
  // Compare in whole seconds first: a date centuries away must not overflow nanoseconds.
  auto coarse = *when - std::chrono::floor<std::chrono::seconds>(now);
  if (coarse > max_retry_after + std::chrono::seconds{1})
    return clock_duration{max_retry_after};
  if (coarse < std::chrono::seconds{-1})
    return clock_duration::zero();
  return clamp_wait(std::chrono::duration_cast<clock_duration>(*when - now));
}

clock_duration backoff_delay(const backoff_settings& settings, uint32_t attempt, double random01) {
  double base = std::max<double>(0, static_cast<double>(settings.base.count()));
  double cap = std::max<double>(0, static_cast<double>(settings.max.count()));
  int exponent = static_cast<int>(std::min<uint32_t>(std::max<uint32_t>(attempt, 1) - 1, 200));
  double capped = std::min(cap, std::ldexp(base, exponent));
  double jitter = std::isnan(settings.jitter) ? 0.0 : std::clamp(settings.jitter, 0.0, 1.0);
  double r = std::isnan(random01) ? 0.5 : std::clamp(random01, 0.0, 1.0);
  double delay = capped * (1.0 + jitter * (2.0 * r - 1.0));
  // Stay clear of the representable maximum so callers can add it to a time point.
  double limit = static_cast<double>(std::numeric_limits<clock_duration::rep>::max()) / 4;
  return clock_duration{static_cast<clock_duration::rep>(std::llround(std::min(delay, limit)))};
}

double jitter_source::next() {
  // The top 53 bits as a fraction: exactly representable, uniform, never 1.
  return static_cast<double>(engine_() >> 11) * 0x1.0p-53;
}

retry_decision decide(const backoff_settings& settings, uint32_t attempts_so_far,
                      failure_class kind, std::optional<clock_duration> retry_after,
                      double random01) {
  if (kind == failure_class::permanent)
    return {false, clock_duration::zero(), "permanent failure: not retried"};
  auto attempts = std::max<uint32_t>(attempts_so_far, 1);
  if (attempts > settings.max_retries)
    return {false, clock_duration::zero(),
            "retries exhausted after " + std::to_string(attempts) + " attempts (max_retries "
                + std::to_string(settings.max_retries) + ")"};
  auto delay = backoff_delay(settings, attempts, random01);
  auto source = std::string{"backoff"};
  if (retry_after && *retry_after > delay) {
    delay = *retry_after;
    source = "provider Retry-After";
  }
  return {true, delay,
          "retry " + std::to_string(attempts) + " of " + std::to_string(settings.max_retries)
              + " after " + describe(delay) + " (" + source + ")"};
}

} // namespace lps
