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

// Whether the figures `a` leave less than `b` (empty ones leave nothing known).
bool leaves_less(const rate_limit_hint& a, const rate_limit_hint& b) {
  auto lower = [](int64_t x, int64_t y) { return x >= 0 && (y < 0 || x < y); };
  return !a.empty()
         && (b.empty() || lower(a.remaining_requests, b.remaining_requests)
             || lower(a.remaining_tokens, b.remaining_tokens));
}

// Of a call's items, the rate-limit figures that leave the least (empty: none reported).
rate_limit_hint tightest_limits(const std::vector<comparison_outcome>& outcomes) {
  rate_limit_hint result;
  for (const auto& o : outcomes)
    if (leaves_less(o.limits, result))
      result = o.limits;
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
  auto i = settings_.max_inflight.find(provider); // settings_ never changes: no lock
  return i == settings_.max_inflight.end() ? 64 : i->second;
}

circuit_breaker& provider_gate::breaker_of(const std::string& provider) {
  return breakers_.try_emplace(provider, settings_.breaker).first->second;
}

circuit_breaker provider_gate::breaker(const std::string& provider) {
  std::lock_guard lock{mutex_};
  return breaker_of(provider);
}

rate_limiter& provider_gate::limiter(const std::string& provider) {
  auto i = settings_.rate_limits.find(provider);
  auto settings = i == settings_.rate_limits.end() ? rate_limit_settings{} : i->second;
  return limiters_.try_emplace(provider, settings).first->second;
}

// The bundler leaves a request in the bucket for each follower whose gateway wants one
// (reserve_of), so the next sync can lease it: queued work can wait, a gateway caller cannot.
clock_duration provider_gate::blocked(const std::string& provider, clock_time now) {
  return std::max(breaker_of(provider).time_until_allowed(now),
                  limiter(provider).wait_time(now, 1 + reserve_of(provider), 0));
}

clock_duration provider_gate::blocked_for(const std::string& provider, clock_time now) {
  std::lock_guard lock{mutex_};
  return blocked(provider, now);
}

bool provider_gate::has_capacity(const std::string& provider, clock_time now) {
  std::lock_guard lock{mutex_};
  return paused_.count(provider) == 0 && inflight_of(provider) < limit_of(provider)
         && blocked(provider, now) == clock_duration::zero();
}

std::optional<clock_duration>
provider_gate::soonest_unblock(const std::vector<std::string>& providers, clock_time now) {
  std::lock_guard lock{mutex_};
  std::optional<clock_duration> result;
  for (const auto& provider : providers)
    if (auto wait = blocked(provider, now); wait > clock_duration::zero())
      result = std::min(result.value_or(wait), wait);
  return result;
}

std::optional<int64_t> provider_gate::request_budget(const std::string& provider, clock_time now) {
  std::lock_guard lock{mutex_};
  const auto& requests = limiter(provider).requests();
  if (requests.unlimited())
    return std::nullopt;
  return requests.available(now) - int64_t(reserve_of(provider));
}

// The estimate (4 bytes per token) is good enough to pace; a bundle that does not fit the
// budget whole still goes (it was admitted by the request budget) and leaves debt.
bool provider_gate::start_call(const bundle& b, clock_time now, bool on_this_node) {
  std::lock_guard lock{mutex_};
  ++inflight_[b.provider];
  local_bundles_[b.provider] += on_this_node ? 1 : 0;
  auto& breaker_of_call = breaker_of(b.provider);
  auto before = breaker_of_call.state();
  breaker_of_call.allow(now); // takes the half-open probe slot
  uint64_t tokens = 0;
  for (const auto& item : b.items)
    tokens += item.entry.request.user_prompt.size() / 4 + 1;
  auto per_call = settings_.multi_prompt_max;
  uint64_t calls = per_call > 1 ? (b.items.size() + per_call - 1) / per_call : b.items.size();
  // Charged even when the bucket no longer holds it (a gateway call or a lease took it while
  // the bundle formed): the debt delays the next calls, so the limit holds over time.
  auto& limiter_of_call = limiter(b.provider);
  if (!limiter_of_call.try_acquire(now, calls, tokens))
    limiter_of_call.take(now, calls, tokens);
  return breaker_of_call.state() != before;
}

bool provider_gate::finish_call(const std::string& provider,
                                const std::vector<comparison_outcome>& outcomes, clock_time now,
                                bool on_this_node) {
  std::lock_guard lock{mutex_};
  --inflight_[provider];
  if (on_this_node && local_bundles_[provider] > 0)
    --local_bundles_[provider];
  auto& breaker_of_call = breaker_of(provider);
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
  std::lock_guard lock{mutex_};
  auto i = paused_.find(provider);
  return i == paused_.end() ? nullptr : &i->second;
}

bool provider_gate::resume(const std::string& provider) {
  std::lock_guard lock{mutex_};
  return paused_.erase(provider) > 0;
}

// Providers say in response headers how much of their rate limit is left (OpenAI
// x-ratelimit-*, Anthropic anthropic-ratelimit-*); the limiter trusts that over its own
// count. Of a call's items, the most restrictive figures win.
void provider_gate::learn_limits(const std::string& provider,
                                 const std::vector<comparison_outcome>& outcomes, clock_time now) {
  observe(provider, tightest_limits(outcomes), now);
}

void provider_gate::observe(const std::string& provider, const rate_limit_hint& limits,
                            clock_time now) {
  if (limits.empty())
    return;
  auto count = [](int64_t v) {
    return v >= 0 ? std::optional<uint64_t>{static_cast<uint64_t>(v)} : std::nullopt;
  };
  auto reset = [](std::chrono::milliseconds d) {
    return d.count() >= 0 ? std::optional<clock_duration>{d} : std::nullopt;
  };
  limiter(provider).observe_limits(now, count(limits.remaining_requests),
                                   count(limits.remaining_tokens), reset(limits.requests_reset),
                                   reset(limits.tokens_reset));
}

// A gateway answer's figures count as a queued call's do. On a follower the buckets are the
// leader's mirror and the lease is what admits: the lease is cut at once, and the figures go
// to the leader with the next report (the tightest since the last one).
void provider_gate::learn_gateway_limits(const std::string& provider, const rate_limit_hint& limits,
                                         clock_time now) {
  if (limits.empty())
    return;
  observe(provider, limits, now);
  if (auto* leased = lease_of(provider, now))
    leased->cap_to(limits);
  auto& ends = call_ends_[provider];
  if (leaves_less(limits, ends.limits)) {
    ends.limits = limits;
    ends.limits_at = now;
  }
}

void provider_gate::learn_gateway(const std::string& provider, const rate_limit_hint& limits,
                                  clock_time now) {
  std::lock_guard lock{mutex_};
  learn_gateway_limits(provider, limits, now);
}

// The node's calls to `provider`: its gateway calls and the bundles on its provider actor.
uint32_t provider_gate::node_calls(const std::string& provider) const {
  auto count = [&](const std::map<std::string, uint32_t>& m) {
    auto i = m.find(provider);
    return i == m.end() ? 0u : i->second;
  };
  return count(gateway_inflight_) + count(local_bundles_);
}

// On a cluster follower the call is charged to its lease from the leader while one holds;
// without (standalone, the leader, or a leader gone past the lease) to the node's buckets.
std::optional<gate_refusal> provider_gate::admit_gateway(const std::string& provider,
                                                         uint64_t tokens, clock_time now) {
  std::lock_guard lock{mutex_};
  auto calls = node_calls(provider);
  if (calls >= limit_of(provider))
    return gate_refusal{gate_refusal::reason::concurrency, std::chrono::seconds{1}, calls};
  auto& b = breaker_of(provider);
  if (auto wait = b.time_until_allowed(now); wait > clock_duration::zero())
    return gate_refusal{gate_refusal::reason::breaker, wait, calls};
  auto* leased = lease_of(provider, now);
  auto& l = limiter(provider);
  if (leased != nullptr) {
    if (leased->requests == 0 || (leased->tokens >= 0 && leased->tokens < int64_t(tokens))) {
      ++leased->refused;
      // The next sync may bring a new lease, unless the provider said it has nothing left.
      auto held = l.requests().held_until(now).value_or(now) - now;
      return gate_refusal{gate_refusal::reason::rate,
                          std::max<clock_duration>(std::chrono::seconds{1}, held), calls};
    }
  } else if (auto wait = l.wait_time(now, 1, tokens); wait > clock_duration::zero()) {
    return gate_refusal{gate_refusal::reason::rate, wait, calls};
  }
  // allow() takes the half-open probe slot; a second caller meanwhile waits for the probe.
  if (!b.allow(now))
    return gate_refusal{gate_refusal::reason::breaker, std::chrono::seconds{1}, calls};
  if (leased != nullptr) {
    leased->requests -= leased->requests > 0 ? 1 : 0;
    leased->tokens -= leased->tokens >= 0 ? int64_t(tokens) : 0;
    ++leased->used_requests;
    leased->used_tokens += tokens;
  } else {
    l.try_acquire(now, 1, tokens);
  }
  ++gateway_inflight_[provider];
  return std::nullopt;
}

void provider_gate::finish_gateway(const std::string& provider, bool provider_failure,
                                   clock_time now, const rate_limit_hint& limits) {
  std::lock_guard lock{mutex_};
  auto& n = gateway_inflight_[provider];
  n -= n > 0 ? 1 : 0;
  learn_gateway_limits(provider, limits, now);
  auto& ends = call_ends_[provider];
  if (provider_failure) {
    breaker_of(provider).on_failure(now);
    ++ends.failures;
  } else {
    breaker_of(provider).on_success(now);
    ++ends.successes;
  }
}

uint32_t provider_gate::gateway_inflight(const std::string& provider) const {
  std::lock_guard lock{mutex_};
  auto i = gateway_inflight_.find(provider);
  return i == gateway_inflight_.end() ? 0 : i->second;
}

uint32_t provider_gate::inflight_of(const std::string& provider) const {
  auto i = inflight_.find(provider);
  return i == inflight_.end() ? 0 : i->second;
}

uint32_t provider_gate::inflight(const std::string& provider) const {
  std::lock_guard lock{mutex_};
  return inflight_of(provider);
}

uint32_t provider_gate::inflight_total() const {
  std::lock_guard lock{mutex_};
  uint32_t result = 0;
  for (const auto& [provider, n] : inflight_)
    result += n;
  return result;
}

} // namespace lps
