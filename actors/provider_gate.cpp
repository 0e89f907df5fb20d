#include "actors/provider_gate.hpp"
#include "runtime/error_code.hpp"

#include <algorithm>

namespace lps {

namespace {

// Provider health as the breaker sees it: a call in which nothing succeeded and some item
// failed for a provider-side reason (5xx, overload, timeout, connection) is a failure;
// client errors such as 400 or a missing key say nothing about the provider's health.
bool provider_failed(const std::vector<comparison_outcome>& outcomes) {
  bool any_success = false;
  bool provider_failure = false;
  for (const auto& o : outcomes) {
    any_success |= o.success;
    provider_failure |= !o.success
                        && (o.error_code == to_string(ec::external_service_error)
                            || o.error_code == to_string(ec::timeout)
                            || o.error_code == to_string(ec::connection_error));
  }
  return provider_failure && !any_success;
}

// Of a call's items, the rate-limit figures that leave the least (nullptr: none reported).
const rate_limit_hint* tightest_limits(const std::vector<comparison_outcome>& outcomes) {
  const rate_limit_hint* result = nullptr;
  auto lower = [](int64_t a, int64_t b) { return a >= 0 && (b < 0 || a < b); };
  for (const auto& o : outcomes)
    if (!o.limits.empty()
        && (result == nullptr || lower(o.limits.remaining_requests, result->remaining_requests)
            || lower(o.limits.remaining_tokens, result->remaining_tokens)))
      result = &o.limits;
  return result;
}

} // namespace

bool rejects_key(const comparison_outcome& outcome) {
  return !outcome.success && outcome.error_code == to_string(ec::authentication_error);
}

provider_gate::provider_gate(provider_gate_settings settings) : settings_(std::move(settings)) {
  // nop
}

uint32_t provider_gate::limit_of(const std::string& provider) const {
  auto i = settings_.max_inflight.find(provider);
  return i == settings_.max_inflight.end() ? 64 : i->second;
}

circuit_breaker& provider_gate::breaker(const std::string& provider) {
  return breakers_.try_emplace(provider, settings_.breaker).first->second;
}

rate_limiter& provider_gate::limiter(const std::string& provider) {
  auto i = settings_.rate_limits.find(provider);
  auto settings = i == settings_.rate_limits.end() ? rate_limit_settings{} : i->second;
  return limiters_.try_emplace(provider, settings).first->second;
}

clock_duration provider_gate::blocked_for(const std::string& provider, clock_time now) {
  return std::max(breaker(provider).time_until_allowed(now),
                  limiter(provider).wait_time(now, 1, 0));
}

bool provider_gate::has_capacity(const std::string& provider, clock_time now) {
  return pause_of(provider) == nullptr && inflight(provider) < limit_of(provider)
         && blocked_for(provider, now) == clock_duration::zero();
}

std::optional<clock_duration>
provider_gate::soonest_unblock(const std::vector<std::string>& providers, clock_time now) {
  std::optional<clock_duration> result;
  for (const auto& provider : providers)
    if (auto wait = blocked_for(provider, now); wait > clock_duration::zero())
      result = std::min(result.value_or(wait), wait);
  return result;
}

std::optional<int64_t> provider_gate::request_budget(const std::string& provider, clock_time now) {
  const auto& requests = limiter(provider).requests();
  if (requests.unlimited())
    return std::nullopt;
  return requests.available(now);
}

// The estimate (4 bytes per token) is good enough to pace; a bundle that does not fit the
// token budget whole still goes (it was admitted by the request budget) and leaves debt.
bool provider_gate::start_call(const bundle& b, clock_time now) {
  ++inflight_[b.provider];
  auto& breaker_of_call = breaker(b.provider);
  auto before = breaker_of_call.state();
  breaker_of_call.allow(now); // takes the half-open probe slot
  uint64_t tokens = 0;
  for (const auto& item : b.items)
    tokens += item.entry.request.user_prompt.size() / 4 + 1;
  auto per_call = settings_.multi_prompt_max;
  uint64_t calls = per_call > 1 ? (b.items.size() + per_call - 1) / per_call : b.items.size();
  auto& limiter_of_call = limiter(b.provider);
  if (!limiter_of_call.try_acquire(now, calls, tokens)) {
    limiter_of_call.try_acquire(now, calls, 0);
    limiter_of_call.reconcile_tokens(static_cast<int64_t>(tokens));
  }
  return breaker_of_call.state() != before;
}

bool provider_gate::finish_call(const std::string& provider,
                                const std::vector<comparison_outcome>& outcomes, clock_time now) {
  --inflight_[provider];
  auto& breaker_of_call = breaker(provider);
  auto before = breaker_of_call.state();
  if (provider_failed(outcomes))
    breaker_of_call.on_failure(now);
  else
    breaker_of_call.on_success(now);
  learn_limits(provider, outcomes, now);
  auto rejected = std::find_if(outcomes.begin(), outcomes.end(), rejects_key);
  if (rejected != outcomes.end())
    paused_.try_emplace(provider, provider_pause{rejected->model, rejected->error_code});
  return breaker_of_call.state() != before;
}

const provider_pause* provider_gate::pause_of(const std::string& provider) const {
  auto i = paused_.find(provider);
  return i == paused_.end() ? nullptr : &i->second;
}

bool provider_gate::resume(const std::string& provider) {
  return paused_.erase(provider) > 0;
}

// Providers say in response headers how much of their rate limit is left (OpenAI
// x-ratelimit-*, Anthropic anthropic-ratelimit-*); the limiter trusts that over its own
// count. Of a call's items, the most restrictive figures win.
void provider_gate::learn_limits(const std::string& provider,
                                 const std::vector<comparison_outcome>& outcomes, clock_time now) {
  const auto* tightest = tightest_limits(outcomes);
  if (tightest == nullptr)
    return;
  auto count = [](int64_t v) {
    return v >= 0 ? std::optional<uint64_t>{static_cast<uint64_t>(v)} : std::nullopt;
  };
  auto reset = [](std::chrono::milliseconds d) {
    return d.count() >= 0 ? std::optional<clock_duration>{d} : std::nullopt;
  };
  limiter(provider).observe_limits(now, count(tightest->remaining_requests),
                                   count(tightest->remaining_tokens),
                                   reset(tightest->requests_reset), reset(tightest->tokens_reset));
}

uint32_t provider_gate::inflight(const std::string& provider) const {
  auto i = inflight_.find(provider);
  return i == inflight_.end() ? 0 : i->second;
}

uint32_t provider_gate::inflight_total() const {
  uint32_t result = 0;
  for (const auto& [provider, n] : inflight_)
    result += n;
  return result;
}

} // namespace lps
