// Provider resilience classes: failure classification, Retry-After parsing, backoff, circuit
// breaker, rate limiter and concurrency cap. Time is always a fixed time point; no sleeps.

#include "actors/providers/circuit_breaker.hpp"
#include "actors/providers/rate_limiter.hpp"
#include "actors/providers/retry_policy.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;
using lps::clock_duration;
using lps::clock_time;

namespace {

/// An arbitrary fixed steady-clock origin for every timed test.
const clock_time t0 = clock_time{} + std::chrono::hours{1000};

/// A UTC wall-clock instant from its parts.
std::chrono::system_clock::time_point utc(int y, unsigned mo, unsigned d, int h, int mi, int s) {
  std::chrono::year_month_day date{std::chrono::year{y}, std::chrono::month{mo},
                                   std::chrono::day{d}};
  return std::chrono::sys_days{date} + std::chrono::hours{h} + std::chrono::minutes{mi}
         + std::chrono::seconds{s};
}

std::optional<clock_duration> dur(clock_duration d) {
  return d;
}

} // namespace

// -- classification --

namespace {

struct classify_row {
  int status;
  std::string_view type;
  std::string_view code;
  lps::transport_kind transport;
  lps::failure_class kind;
  std::string_view error_code;
};

using lps::failure_class;
using lps::transport_kind;
constexpr auto retryable = failure_class::retryable;
constexpr auto permanent = failure_class::permanent;
constexpr auto none = transport_kind::none;

void check_rows(const std::vector<classify_row>& rows) {
  for (const auto& row : rows) {
    INFO("status " << row.status << " type '" << row.type << "' code '" << row.code
                   << "' transport " << lps::to_string(row.transport));
    auto verdict = lps::classify(row.status, row.type, row.code, row.transport);
    CHECK(verdict.kind == row.kind);
    CHECK(std::string_view{lps::to_string(verdict.error_code)} == row.error_code);
    CHECK_FALSE(verdict.reason.empty());
  }
}

} // namespace

TEST_CASE("classify: 429 is a retryable rate limit unless it reports exhausted quota") {
  check_rows({
      // Plain rate limits (Anthropic, OpenAI, Gemini wording).
      {429, "rate_limit_error", "", none, retryable, "RATE_LIMIT"},
      {429, "requests", "rate_limit_exceeded", none, retryable, "RATE_LIMIT"},
      {429, "tokens", "rate_limit_exceeded", none, retryable, "RATE_LIMIT"},
      {429, "RESOURCE_EXHAUSTED", "", none, retryable, "RATE_LIMIT"},
      {429, "", "", none, retryable, "RATE_LIMIT"},
      // Exhausted quota or credit: retrying cannot help.
      {429, "insufficient_quota", "insufficient_quota", none, permanent, "QUOTA_EXCEEDED"},
      {429, "", "insufficient_quota", none, permanent, "QUOTA_EXCEEDED"},
      {429, "", "credit_balance_exhausted", none, permanent, "QUOTA_EXCEEDED"},
      {429, "rate_limit_error", "enforced_spend_limit_reached", none, permanent, "QUOTA_EXCEEDED"},
      {429, "billing_error", "", none, permanent, "QUOTA_EXCEEDED"},
      {429, "", "daily_QUOTA_exceeded", none, permanent, "QUOTA_EXCEEDED"},
  });
}

TEST_CASE("classify: 402 and billing errors are permanent QUOTA_EXCEEDED") {
  check_rows({
      {402, "", "", none, permanent, "QUOTA_EXCEEDED"},
      {402, "billing_error", "", none, permanent, "QUOTA_EXCEEDED"},
      {0, "billing_error", "", none, permanent, "QUOTA_EXCEEDED"},
  });
}

TEST_CASE("classify: overload and 5xx are retryable EXTERNAL_SERVICE_ERROR") {
  check_rows({
      {529, "", "", none, retryable, "EXTERNAL_SERVICE_ERROR"},
      {529, "overloaded_error", "", none, retryable, "EXTERNAL_SERVICE_ERROR"},
      // Anthropic can report overload inside a 200 stream or a batch item.
      {200, "overloaded_error", "", none, retryable, "EXTERNAL_SERVICE_ERROR"},
      {0, "overloaded_error", "", none, retryable, "EXTERNAL_SERVICE_ERROR"},
      {500, "api_error", "", none, retryable, "EXTERNAL_SERVICE_ERROR"},
      {500, "", "", none, retryable, "EXTERNAL_SERVICE_ERROR"},
      {502, "", "", none, retryable, "EXTERNAL_SERVICE_ERROR"},
      {503, "UNAVAILABLE", "", none, retryable, "EXTERNAL_SERVICE_ERROR"},
      {504, "", "", none, retryable, "EXTERNAL_SERVICE_ERROR"},
      {599, "", "", none, retryable, "EXTERNAL_SERVICE_ERROR"},
      {409, "conflict_error", "", none, retryable, "EXTERNAL_SERVICE_ERROR"},
  });
}

TEST_CASE("classify: transport failures win over any status") {
  check_rows({
      {0, "", "", transport_kind::timeout, retryable, "TIMEOUT"},
      {429, "", "", transport_kind::timeout, retryable, "TIMEOUT"},
      {0, "", "", transport_kind::connect, retryable, "CONNECTION_ERROR"},
      {0, "", "", transport_kind::reset, retryable, "CONNECTION_ERROR"},
      {0, "", "", transport_kind::tls, permanent, "CONNECTION_ERROR"},
      {0, "", "", transport_kind::invalid, permanent, "CONFIGURATION_ERROR"},
      {408, "", "", none, retryable, "TIMEOUT"},
  });
}

TEST_CASE("classify: client errors are permanent") {
  check_rows({
      {400, "invalid_request_error", "", none, permanent, "INVALID_REQUEST"},
      {400, "", "", none, permanent, "INVALID_REQUEST"},
      {401, "authentication_error", "", none, permanent, "AUTHENTICATION_ERROR"},
      {401, "", "invalid_api_key", none, permanent, "AUTHENTICATION_ERROR"},
      {403, "permission_error", "", none, permanent, "AUTHENTICATION_ERROR"},
      {404, "not_found_error", "", none, permanent, "INVALID_REQUEST"},
      {404, "", "model_not_found", none, permanent, "INVALID_REQUEST"},
      {413, "request_too_large", "", none, permanent, "INVALID_REQUEST"},
      {422, "", "", none, permanent, "INVALID_REQUEST"},
      // A redirect from an API endpoint means the base URL is wrong.
      {301, "", "", none, permanent, "CONFIGURATION_ERROR"},
  });
}

TEST_CASE("classify: content-policy refusals are permanent at any status") {
  check_rows({
      {400, "invalid_request_error", "content_policy_violation", none, permanent,
       "INVALID_REQUEST"},
      {200, "", "content_filter", none, permanent, "INVALID_REQUEST"},
      {0, "SAFETY", "", none, permanent, "INVALID_REQUEST"},
      {429, "", "content_filter", none, permanent, "INVALID_REQUEST"},
  });
  auto verdict = lps::classify(400, "", "content_policy_violation");
  CHECK(verdict.reason.find("content policy") != std::string_view::npos);
}

TEST_CASE("classify: without a telling status the error type decides") {
  check_rows({
      {0, "rate_limit_error", "", none, retryable, "RATE_LIMIT"},
      {0, "timeout_error", "", none, retryable, "TIMEOUT"},
      {0, "", "request_timeout", none, retryable, "TIMEOUT"},
      {0, "authentication_error", "", none, permanent, "AUTHENTICATION_ERROR"},
      {0, "permission_error", "", none, permanent, "AUTHENTICATION_ERROR"},
      {0, "invalid_request_error", "", none, permanent, "INVALID_REQUEST"},
      {0, "not_found_error", "", none, permanent, "INVALID_REQUEST"},
      {0, "api_error", "", none, retryable, "EXTERNAL_SERVICE_ERROR"},
      {200, "", "", none, retryable, "EXTERNAL_SERVICE_ERROR"},
      {0, "something_new", "", none, retryable, "EXTERNAL_SERVICE_ERROR"},
  });
}

TEST_CASE("classify: enum names") {
  CHECK(lps::to_string(failure_class::retryable) == "retryable");
  CHECK(lps::to_string(failure_class::permanent) == "permanent");
  CHECK(lps::to_string(transport_kind::none) == "none");
  CHECK(lps::to_string(transport_kind::timeout) == "timeout");
  CHECK(lps::to_string(transport_kind::connect) == "connect");
  CHECK(lps::to_string(transport_kind::reset) == "reset");
  CHECK(lps::to_string(transport_kind::tls) == "tls");
  CHECK(lps::to_string(transport_kind::invalid) == "invalid");
}

// -- Retry-After --

TEST_CASE("parse_retry_after: delta seconds") {
  auto now = utc(2015, 10, 21, 7, 0, 0);
  CHECK(lps::parse_retry_after("120", now) == dur(120s));
  CHECK(lps::parse_retry_after("0", now) == dur(0s));
  CHECK(lps::parse_retry_after("1.5", now) == dur(1500ms));
  CHECK(lps::parse_retry_after("0.001", now) == dur(1ms));
  CHECK(lps::parse_retry_after(" 7\t", now) == dur(7s));
  // Negative asks for no wait.
  CHECK(lps::parse_retry_after("-5", now) == dur(0s));
  // Capped at one hour, also for numbers far beyond int64.
  CHECK(lps::parse_retry_after("3600", now) == dur(1h));
  CHECK(lps::parse_retry_after("3601", now) == dur(1h));
  CHECK(lps::parse_retry_after("99999999999999999999999", now) == dur(1h));
}

TEST_CASE("parse_retry_after: garbage gives nullopt") {
  auto now = utc(2015, 10, 21, 7, 0, 0);
  for (std::string_view bad : {"", "   ", "abc", "1.", ".5", "1.2.3", "12s", "+5", "1e3", "5 5",
                               "--5", "-", "inf", "nan"}) {
    INFO("value '" << bad << "'");
    CHECK_FALSE(lps::parse_retry_after(bad, now).has_value());
  }
}

TEST_CASE("parse_retry_after: HTTP dates") {
  // RFC 9110's example date, one minute after `now`.
  auto now = utc(2015, 10, 21, 7, 27, 0);
  CHECK(lps::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == dur(60s));
  CHECK(lps::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now + 500ms) == dur(59500ms));
  // Past dates: no wait.
  CHECK(lps::parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now) == dur(0s));
  CHECK(lps::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now) == dur(0s));
  CHECK(lps::parse_retry_after("Mon, 01 Jan 1600 00:00:00 GMT", now) == dur(0s));
  // Far future: capped.
  CHECK(lps::parse_retry_after("Wed, 21 Oct 2015 09:27:00 GMT", now) == dur(1h));
  CHECK(lps::parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now) == dur(1h));
}

TEST_CASE("parse_retry_after: malformed dates give nullopt") {
  auto now = utc(2015, 10, 21, 7, 27, 0);
  for (std::string_view bad : {
           "Wed, 21 Oct 2015 07:28:00 UTC", // only GMT is allowed
           "Wed, 32 Oct 2015 07:28:00 GMT", // no such day
           "Sun, 29 Feb 2015 07:28:00 GMT", // 2015 is not a leap year
           "Xyz, 21 Oct 2015 07:28:00 GMT", // unknown day name
           "Wed, 21 Okt 2015 07:28:00 GMT", // unknown month
           "Wed, 21 Oct 2015 24:28:00 GMT", // hour out of range
           "Wed, 21 Oct 2015 07:60:00 GMT", // minute out of range
           "Wed, 21 Oct 2015 7:28:00 GMT",  // wrong layout
           "Wednesday, 21-Oct-15 07:28:00 GMT",
           "Wed, 21 Oct 2015 07:28:00 GMT extra",
       }) {
    INFO("value '" << bad << "'");
    CHECK_FALSE(lps::parse_retry_after(bad, now).has_value());
  }
  // A leap day is a real date.
  CHECK(lps::parse_retry_after("Mon, 29 Feb 2016 00:00:00 GMT", now) == dur(1h));
}

// -- backoff --

TEST_CASE("decide: exponential growth and cap without jitter") {
  lps::backoff_settings settings;
  settings.max_retries = 10;
  // random01 = 0.5 makes the jitter factor exactly 1.
  std::vector<std::pair<uint32_t, clock_duration>> expected{
      {1, 1s}, {2, 2s}, {3, 4s}, {4, 8s}, {5, 16s}, {6, 32s}, {7, 60s}, {8, 60s}, {10, 60s}};
  for (auto [attempts, delay] : expected) {
    INFO("attempts " << attempts);
    auto decision = lps::decide(settings, attempts, failure_class::retryable, std::nullopt, 0.5);
    CHECK(decision.retry);
    CHECK(decision.delay == delay);
    CHECK_FALSE(decision.reason.empty());
  }
}

TEST_CASE("decide: jitter stays within the configured fraction") {
  lps::backoff_settings settings; // jitter 0.5: [0.5x, 1.5x]
  auto at = [&](uint32_t attempts, double r) {
    return lps::decide(settings, attempts, failure_class::retryable, std::nullopt, r).delay;
  };
  CHECK(at(1, 0.0) == 500ms);
  CHECK(at(1, 1.0) == 1500ms);
  CHECK(at(2, 0.25) == 1500ms); // 2 s * (1 + 0.5 * -0.5)
  CHECK(at(2, 0.75) == 2500ms);
  // Out-of-range random numbers are clamped.
  CHECK(at(1, -3.0) == 500ms);
  CHECK(at(1, 7.0) == 1500ms);
  for (int i = 0; i <= 100; ++i) {
    auto delay = at(3, i / 100.0);
    CHECK(delay >= 2s);
    CHECK(delay <= 6s);
  }
  // Jitter applies after the cap.
  settings.max_retries = 20;
  CHECK(at(20, 1.0) == 90s);
  // Zero jitter: the random number does not matter.
  settings.jitter = 0.0;
  CHECK(at(2, 0.0) == 2s);
  CHECK(at(2, 1.0) == 2s);
}

TEST_CASE("decide: Retry-After is honoured when longer than the backoff") {
  lps::backoff_settings settings;
  auto longer = lps::decide(settings, 1, failure_class::retryable, dur(30s), 0.5);
  CHECK(longer.retry);
  CHECK(longer.delay == 30s);
  CHECK(longer.reason.find("Retry-After") != std::string::npos);
  auto shorter = lps::decide(settings, 2, failure_class::retryable, dur(100ms), 0.5);
  CHECK(shorter.delay == 2s);
  CHECK(shorter.reason.find("backoff") != std::string::npos);
}

TEST_CASE("decide: max_retries and permanent failures") {
  lps::backoff_settings settings; // max_retries 3: attempts 1..3 may retry, the 4th may not
  auto decide = [&](uint32_t attempts, failure_class kind) {
    return lps::decide(settings, attempts, kind, dur(5s), 0.5);
  };
  CHECK(decide(3, failure_class::retryable).retry);
  CHECK(decide(3, failure_class::retryable).delay == 5s);
  auto exhausted = decide(4, failure_class::retryable);
  CHECK_FALSE(exhausted.retry);
  CHECK(exhausted.delay == 0s);
  CHECK(exhausted.reason.find("exhausted") != std::string::npos);
  auto refused = decide(1, failure_class::permanent);
  CHECK_FALSE(refused.retry);
  CHECK(refused.delay == 0s);
  CHECK(refused.reason.find("permanent") != std::string::npos);
  // Attempt 0 counts as the first attempt.
  CHECK(lps::decide(settings, 0, failure_class::retryable, std::nullopt, 0.5).delay == 1s);
  settings.max_retries = 0;
  CHECK_FALSE(decide(1, failure_class::retryable).retry);
}

TEST_CASE("decide: huge attempt counts do not overflow") {
  lps::backoff_settings settings;
  settings.max_retries = std::numeric_limits<uint32_t>::max();
  auto decision =
      lps::decide(settings, settings.max_retries, failure_class::retryable, std::nullopt, 0.5);
  CHECK(decision.retry);
  CHECK(decision.delay == 60s);
}

TEST_CASE("backoff_delay: the same curve decide() uses, attempt 0 counting as 1") {
  lps::backoff_settings settings;
  settings.max_retries = 100;
  for (uint32_t attempt = 1; attempt <= 12; ++attempt) {
    for (double r : {0.0, 0.3, 0.5, 1.0}) {
      INFO("attempt " << attempt << " random " << r);
      CHECK(lps::backoff_delay(settings, attempt, r)
            == lps::decide(settings, attempt, failure_class::retryable, std::nullopt, r).delay);
    }
  }
  CHECK(lps::backoff_delay(settings, 0, 0.5) == lps::backoff_delay(settings, 1, 0.5));
  // A NaN random number counts as the middle (factor 1).
  CHECK(lps::backoff_delay(settings, 2, std::nan("")) == 2s);
  // Zero base: retry at once (the unit tests' setting).
  settings.base = clock_duration::zero();
  CHECK(lps::backoff_delay(settings, 5, 1.0) == 0s);
}

TEST_CASE("jitter_source: seeded, reproducible, from 0 up to 1 and spread out") {
  lps::jitter_source a{42};
  lps::jitter_source b{42};
  lps::jitter_source c{43};
  std::vector<double> xs;
  bool differs_from_other_seed = false;
  for (int i = 0; i < 1000; ++i) {
    auto x = a.next();
    CHECK(x == b.next());
    differs_from_other_seed = differs_from_other_seed || x != c.next();
    CHECK(x >= 0.0);
    CHECK(x < 1.0);
    xs.push_back(x);
  }
  CHECK(differs_from_other_seed);
  // 1000 uniform draws: each tenth of [0, 1) gets some (expected 100 each; none empty).
  std::vector<int> tenths(10);
  for (double x : xs)
    ++tenths[static_cast<size_t>(x * 10)];
  for (int n : tenths)
    CHECK(n > 50);
}

// -- circuit breaker --

TEST_CASE("circuit_breaker: closed to open to half_open to closed") {
  lps::circuit_breaker breaker; // 5 failures, 30 s open, 1 probe, 2 successes
  CHECK(breaker.state() == lps::breaker_state::closed);
  CHECK(breaker.allow(t0));
  CHECK(breaker.time_until_allowed(t0) == 0s);
  for (int i = 0; i < 4; ++i)
    breaker.on_failure(t0);
  CHECK(breaker.state() == lps::breaker_state::closed);
  CHECK(breaker.consecutive_failures() == 4);
  breaker.on_failure(t0 + 1s);
  CHECK(breaker.state() == lps::breaker_state::open);
  CHECK(breaker.opened_at() == t0 + 1s);
  CHECK(breaker.counters().opened_total == 1);
  // Refused for the whole open period.
  CHECK_FALSE(breaker.allow(t0 + 1s));
  CHECK(breaker.time_until_allowed(t0 + 11s) == 20s);
  CHECK_FALSE(breaker.allow(t0 + 31s - 1ns));
  CHECK(breaker.counters().rejected_total == 2);
  // Then one probe at a time.
  CHECK(breaker.time_until_allowed(t0 + 31s) == 0s);
  CHECK(breaker.allow(t0 + 31s));
  CHECK(breaker.state() == lps::breaker_state::half_open);
  CHECK(breaker.probes_in_flight() == 1);
  CHECK_FALSE(breaker.allow(t0 + 31s));
  breaker.on_success(t0 + 32s);
  CHECK(breaker.state() == lps::breaker_state::half_open);
  CHECK(breaker.probes_in_flight() == 0);
  CHECK(breaker.half_open_successes() == 1);
  CHECK(breaker.allow(t0 + 32s));
  breaker.on_success(t0 + 33s);
  CHECK(breaker.state() == lps::breaker_state::closed);
  CHECK(breaker.probes_in_flight() == 0);
  const auto& counters = breaker.counters();
  CHECK(counters.half_opened_total == 1);
  CHECK(counters.closed_total == 1);
  CHECK(counters.probes_total == 2);
  CHECK(counters.successes_total == 2);
  CHECK(counters.failures_total == 5);
  CHECK(counters.rejected_total == 3);
}

TEST_CASE("circuit_breaker: a failure while half_open reopens at once") {
  lps::breaker_settings settings;
  settings.failure_threshold = 1;
  lps::circuit_breaker breaker{settings};
  breaker.on_failure(t0);
  REQUIRE(breaker.state() == lps::breaker_state::open);
  REQUIRE(breaker.allow(t0 + 30s));
  breaker.on_success(t0 + 30s);
  REQUIRE(breaker.allow(t0 + 31s));
  breaker.on_failure(t0 + 32s); // one success earned before is forgotten
  CHECK(breaker.state() == lps::breaker_state::open);
  CHECK(breaker.opened_at() == t0 + 32s);
  CHECK(breaker.probes_in_flight() == 0);
  CHECK(breaker.half_open_successes() == 0);
  CHECK(breaker.counters().opened_total == 2);
  CHECK(breaker.time_until_allowed(t0 + 32s) == 30s);
  CHECK_FALSE(breaker.allow(t0 + 61s));
  CHECK(breaker.allow(t0 + 62s));
}

TEST_CASE("circuit_breaker: a success in closed resets the consecutive count") {
  lps::circuit_breaker breaker;
  for (int i = 0; i < 4; ++i)
    breaker.on_failure(t0);
  breaker.on_success(t0);
  CHECK(breaker.consecutive_failures() == 0);
  for (int i = 0; i < 4; ++i)
    breaker.on_failure(t0);
  CHECK(breaker.state() == lps::breaker_state::closed);
  breaker.on_failure(t0);
  CHECK(breaker.state() == lps::breaker_state::open);
}

TEST_CASE("circuit_breaker: probe limit and release") {
  lps::breaker_settings settings;
  settings.failure_threshold = 1;
  settings.half_open_max_probes = 3;
  settings.success_threshold = 3;
  lps::circuit_breaker breaker{settings};
  breaker.on_failure(t0);
  auto later = t0 + 30s;
  CHECK(breaker.allow(later));
  CHECK(breaker.allow(later));
  CHECK(breaker.allow(later));
  CHECK(breaker.probes_in_flight() == 3);
  CHECK_FALSE(breaker.allow(later));
  // Every slot taken: the scheduler may look again when the probes would be presumed lost.
  CHECK(breaker.time_until_allowed(later + 10s) == 20s);
  breaker.on_success(later + 1s);
  CHECK(breaker.probes_in_flight() == 2);
  CHECK(breaker.time_until_allowed(later + 1s) == 0s);
  CHECK(breaker.allow(later + 1s));
  CHECK_FALSE(breaker.allow(later + 1s));
  breaker.on_success(later + 2s);
  breaker.on_success(later + 2s);
  CHECK(breaker.state() == lps::breaker_state::closed);
  CHECK(breaker.probes_in_flight() == 0);
}

TEST_CASE("circuit_breaker: lost probes are freed after open_duration") {
  lps::breaker_settings settings;
  settings.failure_threshold = 1;
  lps::circuit_breaker breaker{settings};
  breaker.on_failure(t0);
  REQUIRE(breaker.allow(t0 + 30s));
  CHECK_FALSE(breaker.allow(t0 + 60s - 1ns));
  CHECK(breaker.time_until_allowed(t0 + 45s) == 15s);
  CHECK(breaker.allow(t0 + 60s));
  CHECK(breaker.probes_in_flight() == 1);
  CHECK(breaker.state() == lps::breaker_state::half_open);
}

TEST_CASE("circuit_breaker: late reports while open change nothing") {
  lps::breaker_settings settings;
  settings.failure_threshold = 2;
  lps::circuit_breaker breaker{settings};
  breaker.on_failure(t0);
  breaker.on_failure(t0);
  REQUIRE(breaker.state() == lps::breaker_state::open);
  breaker.on_failure(t0 + 20s); // does not extend the open period
  breaker.on_success(t0 + 20s); // does not close it either
  CHECK(breaker.state() == lps::breaker_state::open);
  CHECK(breaker.opened_at() == t0);
  CHECK(breaker.counters().opened_total == 1);
  CHECK(breaker.time_until_allowed(t0 + 20s) == 10s);
}

TEST_CASE("circuit_breaker: zero settings act as 1 and names") {
  lps::circuit_breaker breaker{lps::breaker_settings{0, 0s, 0, 0}};
  CHECK(breaker.settings().failure_threshold == 1);
  CHECK(breaker.settings().half_open_max_probes == 1);
  CHECK(breaker.settings().success_threshold == 1);
  breaker.on_failure(t0);
  CHECK(breaker.state() == lps::breaker_state::open);
  CHECK(breaker.allow(t0));
  breaker.on_success(t0);
  CHECK(breaker.state() == lps::breaker_state::closed);
  CHECK(lps::to_string(lps::breaker_state::closed) == "closed");
  CHECK(lps::to_string(lps::breaker_state::open) == "open");
  CHECK(lps::to_string(lps::breaker_state::half_open) == "half_open");
}

// -- rate limiter --

TEST_CASE("rate_limiter: unlimited by default") {
  lps::rate_limiter limiter;
  for (int i = 0; i < 1000; ++i)
    REQUIRE(limiter.try_acquire(t0, 1, 1'000'000));
  CHECK(limiter.wait_time(t0, 1, 1'000'000) == 0s);
  limiter.reconcile_tokens(1'000'000);
  limiter.observe_limits(t0, 5, 5, dur(1min), dur(1min)); // something left: no count kept
  CHECK(limiter.try_acquire(t0, 1, 1));
  CHECK(limiter.requests().available(t0) == std::numeric_limits<int64_t>::max());
}

TEST_CASE("rate_limiter: unlimited still believes a provider with nothing left") {
  lps::rate_limiter limiter;
  limiter.observe_limits(t0, 0, std::nullopt, dur(20s), std::nullopt);
  CHECK_FALSE(limiter.try_acquire(t0 + 5s, 1, 1));
  CHECK(limiter.wait_time(t0 + 5s, 1, 1) == 15s);
  CHECK(limiter.try_acquire(t0 + 20s, 1, 1));
  // A later answer with requests left lifts a hold early.
  limiter.observe_limits(t0 + 30s, 0, std::nullopt, dur(1min), std::nullopt);
  CHECK_FALSE(limiter.try_acquire(t0 + 31s, 1, 1));
  limiter.observe_limits(t0 + 32s, 3, std::nullopt, std::nullopt, std::nullopt);
  CHECK(limiter.try_acquire(t0 + 32s, 1, 1));
  // Zero without a reset says nothing about when: no hold.
  limiter.observe_limits(t0 + 40s, 0, 0, std::nullopt, std::nullopt);
  CHECK(limiter.try_acquire(t0 + 40s, 1, 1));
}

TEST_CASE("rate_limiter: requests per minute refill over time") {
  lps::rate_limiter limiter{{60, 0}}; // one request per second
  for (int i = 0; i < 60; ++i)
    REQUIRE(limiter.try_acquire(t0, 1, 0));
  CHECK_FALSE(limiter.try_acquire(t0, 1, 0));
  CHECK(limiter.wait_time(t0, 1, 0) == 1s);
  CHECK(limiter.wait_time(t0, 2, 0) == 2s);
  CHECK(limiter.wait_time(t0 + 250ms, 1, 0) == 750ms);
  CHECK_FALSE(limiter.try_acquire(t0 + 1s - 1ns, 1, 0));
  CHECK(limiter.try_acquire(t0 + 1s, 1, 0));
  CHECK(limiter.requests().available(t0 + 1s) == 0);
  CHECK(limiter.requests().available(t0 + 31s) == 30);
  // Never above capacity, however long it rests.
  CHECK(limiter.requests().available(t0 + 1h) == 60);
}

TEST_CASE("rate_limiter: wait_time is exact below a millisecond") {
  lps::rate_limiter limiter{{0, 6000}}; // 100 tokens per second: one per 10 ms
  REQUIRE(limiter.try_acquire(t0, 1, 6000));
  CHECK(limiter.wait_time(t0, 1, 50) == 500ms);
  auto now = t0 + 2500us;
  auto wait = limiter.wait_time(now, 1, 1);
  CHECK(wait == 7500us);
  CHECK_FALSE(limiter.try_acquire(now + wait - 1ns, 1, 1));
  CHECK(limiter.try_acquire(now + wait, 1, 1));
  // Taking at an odd sub-millisecond moment keeps the leftover fraction: 1.5 tokens refilled
  // by 25.3 ms, one taken, the other half is complete at 30 ms (not 30.3 ms).
  REQUIRE(limiter.try_acquire(t0 + 25ms + 300us, 1, 1));
  CHECK(limiter.wait_time(t0 + 25ms + 300us, 1, 1) == 4700us);
}

TEST_CASE("rate_limiter: acquisition is all or nothing") {
  lps::rate_limiter limiter{{10, 1000}};
  REQUIRE(limiter.try_acquire(t0, 1, 900));
  CHECK_FALSE(limiter.try_acquire(t0, 1, 200)); // tokens short: no request is taken
  CHECK(limiter.requests().available(t0) == 9);
  CHECK(limiter.tokens().available(t0) == 100);
  CHECK(limiter.try_acquire(t0, 9, 100));
  CHECK_FALSE(limiter.try_acquire(t0, 1, 0)); // requests short: no token is taken
  CHECK(limiter.tokens().available(t0) == 0);
  // The wait is the longer of the two: 1 request in 6 s, 500 tokens in 30 s.
  CHECK(limiter.wait_time(t0, 1, 500) == 30s);
  CHECK(limiter.wait_time(t0, 1, 10) == 6s);
}

TEST_CASE("rate_limiter: reconcile_tokens can leave debt and refunds stop at capacity") {
  lps::rate_limiter limiter{{0, 1000}};
  REQUIRE(limiter.try_acquire(t0, 1, 500));
  limiter.reconcile_tokens(800); // the call used 1300 tokens, not 500
  CHECK(limiter.tokens().available(t0) == -300);
  // A bucket in debt admits nothing until the debt is repaid: 300 tokens at 1000/min.
  CHECK_FALSE(limiter.try_acquire(t0, 1, 0));
  CHECK(limiter.wait_time(t0, 1, 0) == 18s);
  CHECK(limiter.try_acquire(t0 + 18s, 1, 0));
  limiter.reconcile_tokens(-5000);
  CHECK(limiter.tokens().available(t0 + 18s) == 1000);
}

TEST_CASE("rate_limiter: an oversized request waits for a full bucket") {
  lps::rate_limiter limiter{{0, 1000}};
  REQUIRE(limiter.try_acquire(t0, 1, 1));
  CHECK_FALSE(limiter.try_acquire(t0, 1, 5000));
  CHECK(limiter.wait_time(t0, 1, 5000) == 60ms); // 1 token at 1000/min
  REQUIRE(limiter.try_acquire(t0 + 60ms, 1, 5000));
  CHECK(limiter.tokens().available(t0 + 60ms) == -4000);
  // 4001 tokens to repay at 1000/min.
  CHECK(limiter.wait_time(t0 + 60ms, 1, 1) == 240060ms);
}

TEST_CASE("rate_limiter: observe_limits lowers until the reset then recovers") {
  lps::rate_limiter limiter{{60, 0}};
  REQUIRE(limiter.try_acquire(t0, 1, 0));
  limiter.observe_limits(t0, 10, std::nullopt, dur(20s), std::nullopt);
  CHECK(limiter.requests().available(t0) == 10);
  CHECK(limiter.requests().held_until(t0) == t0 + 20s);
  // No refill during the hold.
  CHECK(limiter.requests().available(t0 + 10s) == 10);
  CHECK(limiter.wait_time(t0 + 10s, 11, 0) == 10s);
  CHECK(limiter.wait_time(t0 + 10s, 10, 0) == 0s);
  REQUIRE(limiter.try_acquire(t0 + 10s, 10, 0));
  CHECK_FALSE(limiter.try_acquire(t0 + 20s - 1ns, 1, 0));
  // At the reset the provider is full again, up to our own capacity.
  CHECK_FALSE(limiter.requests().held_until(t0 + 20s).has_value());
  CHECK(limiter.requests().available(t0 + 20s) == 60);
  CHECK(limiter.try_acquire(t0 + 20s, 60, 0));
  CHECK(limiter.wait_time(t0 + 20s, 1, 0) == 1s); // back to normal refill
}

TEST_CASE("rate_limiter: observe_limits never raises and lifts a stale hold") {
  lps::rate_limiter limiter{{60, 6000}};
  REQUIRE(limiter.try_acquire(t0, 30, 3000));
  limiter.observe_limits(t0, 1000, 100'000, dur(1s), dur(1s));
  CHECK(limiter.requests().available(t0) == 30);
  CHECK(limiter.tokens().available(t0) == 3000);
  CHECK_FALSE(limiter.requests().held_until(t0).has_value());
  // Lowered and held, then the provider reports more than we hold: refill resumes from there.
  limiter.observe_limits(t0, 5, 100, dur(1min), dur(1min));
  CHECK(limiter.requests().available(t0) == 5);
  CHECK(limiter.tokens().available(t0) == 100);
  limiter.observe_limits(t0 + 1s, 50, std::nullopt, dur(1min), std::nullopt);
  CHECK_FALSE(limiter.requests().held_until(t0 + 1s).has_value());
  CHECK(limiter.requests().available(t0 + 1s) == 5);
  CHECK(limiter.requests().available(t0 + 11s) == 15);
  CHECK(limiter.tokens().held_until(t0 + 1s) == t0 + 1min);
}

TEST_CASE("rate_limiter: observe_limits without a reset lowers but keeps refilling") {
  lps::rate_limiter limiter{{60, 0}};
  limiter.observe_limits(t0, 0, std::nullopt, std::nullopt, std::nullopt);
  CHECK(limiter.requests().available(t0) == 0);
  CHECK_FALSE(limiter.requests().held_until(t0).has_value());
  CHECK(limiter.wait_time(t0, 1, 0) == 1s);
  // A zero reset is no hold either; a huge one is cut to a day.
  limiter.observe_limits(t0, 0, std::nullopt, dur(0s), std::nullopt);
  CHECK_FALSE(limiter.requests().held_until(t0).has_value());
  limiter.observe_limits(t0, 0, std::nullopt, dur(48h), std::nullopt);
  CHECK(limiter.requests().held_until(t0) == t0 + lps::max_limit_hold);
}

TEST_CASE("parse_openai_reset: Go duration text") {
  CHECK(lps::parse_openai_reset("6m0s") == dur(6min));
  CHECK(lps::parse_openai_reset("1s") == dur(1s));
  CHECK(lps::parse_openai_reset("12ms") == dur(12ms));
  CHECK(lps::parse_openai_reset("1h2m3.5s") == dur(1h + 2min + 3500ms));
  CHECK(lps::parse_openai_reset("0s") == dur(0s));
  CHECK(lps::parse_openai_reset("0.5m") == dur(30s));
  CHECK(lps::parse_openai_reset("1.5h") == dur(90min));
  CHECK(lps::parse_openai_reset("2us") == dur(2us));
  CHECK(lps::parse_openai_reset("1.5\xC2\xB5s") == dur(1500ns));
  CHECK(lps::parse_openai_reset("100ns") == dur(100ns));
  CHECK(lps::parse_openai_reset(" 20ms ") == dur(20ms));
  CHECK(lps::parse_openai_reset("48h") == dur(lps::max_limit_hold));
  for (std::string_view bad :
       {"", "abc", "5", "5x", "m", "1h2", "-1s", "1s 2s", "s1", "1.s.", "."}) {
    INFO("value '" << bad << "'");
    CHECK_FALSE(lps::parse_openai_reset(bad).has_value());
  }
}

TEST_CASE("parse_rfc3339_reset: time left until an RFC 3339 instant") {
  auto now = utc(2024, 5, 1, 12, 0, 0);
  CHECK(lps::parse_rfc3339_reset("2024-05-01T12:00:30Z", now) == dur(30s));
  CHECK(lps::parse_rfc3339_reset("2024-05-01T12:00:30.25Z", now) == dur(30250ms));
  CHECK(lps::parse_rfc3339_reset("2024-05-01T14:00:30+02:00", now) == dur(30s));
  CHECK(lps::parse_rfc3339_reset("2024-05-01T07:00:30-05:00", now) == dur(30s));
  CHECK(lps::parse_rfc3339_reset("2024-05-01t12:00:30z", now) == dur(30s));
  CHECK(lps::parse_rfc3339_reset("2024-05-01T12:00:30Z", now + 200ms) == dur(29800ms));
  CHECK(lps::parse_rfc3339_reset("2024-05-01T11:59:00Z", now) == dur(0s));
  CHECK(lps::parse_rfc3339_reset("1900-01-01T00:00:00Z", now) == dur(0s));
  CHECK(lps::parse_rfc3339_reset("2024-05-03T12:00:00Z", now) == dur(lps::max_limit_hold));
  CHECK(lps::parse_rfc3339_reset("9999-12-31T23:59:59Z", now) == dur(lps::max_limit_hold));
  for (std::string_view bad :
       {"", "soon", "2024-05-01T12:00:30", "2024-05-01 12:00:30", "2024-13-01T12:00:30Z",
        "2024-02-30T12:00:30Z", "2024-05-01T24:00:30Z", "2024-05-01T12:00:30+0200",
        "2024-05-01T12:00:30.Z", "2024-05-01T12:00:30ZZ", "24-05-01T12:00:30Z"}) {
    INFO("value '" << bad << "'");
    CHECK_FALSE(lps::parse_rfc3339_reset(bad, now).has_value());
  }
}
