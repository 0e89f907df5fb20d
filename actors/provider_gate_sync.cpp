// The provider gate in a cluster (docs/cluster.md, "Limits"): the leader's buckets and
// breakers hold for every node. The leader syncs each follower every sync period: it hands
// it a lease (a few requests and tokens taken from its buckets at once, so the cluster-wide
// limit holds while they are spent) and the state of its buckets and breakers, which the
// follower mirrors; the follower answers with what its previous lease was used for (the
// rest goes back to the buckets) and how its gateway calls ended (the leader's breakers
// judge them). A follower that becomes leader starts from the mirrored state.

#include "actors/provider_gate.hpp"

#include <algorithm>
#include <chrono>

namespace lps {

namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

int64_t ms_until(std::optional<clock_time> t, clock_time now) {
  return t ? duration_cast<milliseconds>(*t - now).count() : 0;
}

std::optional<clock_duration> hold_of(int64_t ms) {
  return ms > 0 ? std::optional<clock_duration>{milliseconds{ms}} : std::nullopt;
}

/// A lease of `want` from a bucket with `available` shared by `followers` and the leader
/// (-1: the bucket is unlimited, so is the lease); a follower that `wants` gets at least
/// one while the bucket has one (the bundler leaves it there: reserve_of).
int64_t lease_size(const token_bucket& bucket, int64_t available, uint64_t want, size_t followers,
                   bool wants) {
  if (bucket.unlimited())
    return -1;
  available = std::max<int64_t>(available, 0);
  auto share = available / int64_t(followers + 1);
  if (wants)
    share = std::max<int64_t>(share, std::min<int64_t>(available, 1));
  return std::min<int64_t>(int64_t(want), share);
}

/// `limits` as of `elapsed` after they were read: a reset that has passed says nothing more.
rate_limit_hint aged(rate_limit_hint limits, clock_duration elapsed) {
  auto age = [&](int64_t& left, milliseconds& reset) {
    if (reset.count() < 0)
      return;
    reset -= duration_cast<milliseconds>(elapsed);
    if (reset.count() <= 0) {
      left = -1;
      reset = milliseconds{-1};
    }
  };
  age(limits.remaining_requests, limits.requests_reset);
  age(limits.remaining_tokens, limits.tokens_reset);
  return limits;
}

/// Takes over the leader's breaker `x`: held open as long as the leader's, else closed with
/// its failure count, plus the failures this node just reported (the leader adds them as it
/// settles the report: after a success, to zero).
void mirror_breaker(circuit_breaker& b, const gate_provider_state& x, const gate_provider_use& use,
                    clock_time now) {
  if (x.breaker_open_ms > 0)
    return b.hold_open(now, milliseconds{x.breaker_open_ms});
  auto base = use.successes > 0 ? 0 : uint64_t{x.breaker_failures};
  b.assume_failures(uint32_t(std::min<uint64_t>(base + use.failures, UINT32_MAX)));
}

} // namespace

provider_gate::lease* provider_gate::lease_of(const std::string& provider, clock_time now) {
  auto i = leases_.find(provider);
  return i != leases_.end() && now < i->second.expires ? &i->second : nullptr;
}

// A lease covers about twice what the follower used of its last one (at least 4 requests and
// two seconds of the token rate), never more than an even share of what the buckets hold.
gate_sync provider_gate::lease_to(const std::string& node,
                                  const std::map<std::string, uint32_t>& bundles_on_node,
                                  size_t followers, clock_duration lease_for, clock_time now) {
  std::lock_guard lock{mutex_};
  gate_sync result;
  result.lease_ms = duration_cast<milliseconds>(lease_for).count();
  auto& used = lease_use_[node];
  for (const auto& [provider, settings] : settings_.rate_limits) {
    auto& l = limiter(provider);
    auto& last = used[provider];
    gate_provider_state x;
    x.provider = provider;
    x.lease_requests = lease_size(l.requests(), l.requests().available(now),
                                  std::max<uint64_t>(4, 2 * last.requests), followers, last.wants);
    x.lease_tokens =
        lease_size(l.tokens(), l.tokens().available(now),
                   std::max<uint64_t>(settings.tokens_per_minute / 30, 2 * last.tokens), followers,
                   last.wants);
    // A lease whose report never came counts as spent.
    l.repay(now, last.reported_next.requests, last.reported_next.tokens, 0, 0);
    last.reported_next = last.current;
    last.current = {uint64_t(std::max<int64_t>(x.lease_requests, 0)),
                    uint64_t(std::max<int64_t>(x.lease_tokens, 0))};
    l.lend(now, last.current.requests, last.current.tokens);
    x.requests_level = l.requests().unlimited() ? -1 : l.requests().available(now);
    x.tokens_level = l.tokens().unlimited() ? -1 : l.tokens().available(now);
    x.requests_hold_ms = ms_until(l.requests().held_until(now), now);
    x.tokens_hold_ms = ms_until(l.tokens().held_until(now), now);
    auto& b = breaker_of(provider);
    if (b.state() == breaker_state::open)
      x.breaker_open_ms = duration_cast<milliseconds>(b.time_until_allowed(now)).count();
    else if (b.state() == breaker_state::closed)
      x.breaker_failures = b.consecutive_failures();
    if (auto i = bundles_on_node.find(provider); i != bundles_on_node.end())
      x.bundles_on_node = i->second;
    result.providers.push_back(std::move(x));
  }
  return result;
}

// Successes first, then failures: a follower whose calls all failed opens the breaker as if
// the leader had made them.
bool provider_gate::settle(const std::string& node, const gate_report& report, clock_time now) {
  std::lock_guard lock{mutex_};
  bool changed = false;
  for (const auto& u : report.providers) {
    auto& use = lease_use_[node][u.provider];
    limiter(u.provider)
        .repay(now, use.reported_next.requests, use.reported_next.tokens, u.unused_requests,
               u.unused_tokens);
    observe(u.provider, u.limits, now);
    use = {u.used_requests, u.used_tokens, u.used_requests + u.refused > 0, {}, use.current};
    auto& b = breaker_of(u.provider);
    auto before = b.state();
    if (u.successes > 0)
      b.on_success(now);
    for (uint64_t i = 0; i < std::min<uint64_t>(u.failures, b.settings().failure_threshold); ++i)
      b.on_failure(now);
    changed |= b.state() != before;
  }
  return changed;
}

gate_report provider_gate::follow(const gate_sync& sync, clock_time now) {
  std::lock_guard lock{mutex_};
  gate_report result;
  for (const auto& x : sync.providers) {
    auto& old = leases_[x.provider];
    gate_provider_use use;
    use.provider = x.provider;
    use.used_requests = std::exchange(old.used_requests, 0);
    use.used_tokens = std::exchange(old.used_tokens, 0);
    use.unused_requests = uint64_t(std::max<int64_t>(old.requests, 0));
    use.unused_tokens = uint64_t(std::max<int64_t>(old.tokens, 0));
    use.refused = std::exchange(old.refused, 0);
    auto ends = std::exchange(call_ends_[x.provider], {});
    use.failures = ends.failures;
    use.successes = ends.successes;
    use.gateway_inflight = gateway_inflight_[x.provider];
    use.limits = aged(ends.limits, now - ends.limits_at);
    result.providers.push_back(use);
    old = lease{x.lease_requests, x.lease_tokens, 0, 0, 0, now + milliseconds{sync.lease_ms}};
    auto& l = limiter(x.provider);
    l.requests().assume(now, x.requests_level, hold_of(x.requests_hold_ms));
    l.tokens().assume(now, x.tokens_level, hold_of(x.tokens_hold_ms));
    // The leader sent this before it heard what the provider told this node's gateway: that
    // holds here until the next sync, which carries it back from the leader.
    old.cap_to(use.limits);
    observe(x.provider, use.limits, now);
    mirror_breaker(breaker_of(x.provider), x, use, now);
    local_bundles_[x.provider] = x.bundles_on_node;
  }
  return result;
}

uint32_t provider_gate::reserve_of(const std::string& provider) const {
  uint32_t result = 0;
  for (const auto& [node, uses] : lease_use_)
    if (auto i = uses.find(provider); i != uses.end() && i->second.wants)
      ++result;
  return result;
}

// The leases of a follower that is gone, or of a term that ended, count as spent: the
// buckets no longer hold room for them.
void provider_gate::end_loans(const std::map<std::string, lease_use>& uses, clock_time now) {
  for (const auto& [provider, use] : uses)
    for (const auto& l : {use.reported_next, use.current})
      limiter(provider).repay(now, l.requests, l.tokens, 0, 0);
}

void provider_gate::forget_node(const std::string& node, clock_time now) {
  std::lock_guard lock{mutex_};
  if (auto i = lease_use_.find(node); i != lease_use_.end())
    end_loans(i->second, now);
  lease_use_.erase(node);
}

void provider_gate::begin_term(clock_time now) {
  std::lock_guard lock{mutex_};
  inflight_.clear();
  local_bundles_.clear();
  leases_.clear();
  for (const auto& [node, uses] : lease_use_)
    end_loans(uses, now);
  lease_use_.clear();
}

} // namespace lps
