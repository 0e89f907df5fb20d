#pragma once

// Whether a provider may take another call now, as a plain class (no actors, no clock
// reads: time is passed in): per provider a call-slot limit, a circuit breaker and a rate
// limiter. One per node, shared by the bundler (which asks it before forming a bundle and
// reports every bundle it starts and finishes) and the gateway routes on the HTTP I/O
// threads (app/gateway_gate: admit_gateway / finish_gateway), so queued and gateway calls
// count against the same limits and breaker (docs/gateway.md, "Limits"). Every public
// method takes the gate's mutex: a few map look-ups under it, no I/O.

#include "actors/providers/circuit_breaker.hpp"
#include "actors/providers/rate_limiter.hpp"
#include "messages/bundle.hpp"
#include "messages/cluster.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace lps {

struct provider_gate_settings {
  /// Bundles in flight at once per provider (absent: 64).
  std::map<std::string, uint32_t> max_inflight;
  /// Circuit breaker thresholds (one breaker per provider).
  breaker_settings breaker;
  /// Requests and tokens per minute per provider (absent or 0: unlimited).
  std::map<std::string, rate_limit_settings> rate_limits;
  /// SERIAL_BUNDLE_MULTI_PROMPT: comparisons per provider call (0: one call per item), so a
  /// bundle is charged the calls it makes against the requests-per-minute limit.
  uint32_t multi_prompt_max = 0;
};

/// Whether `outcome` says the provider rejected our key (401/403): retrying cannot help
/// until an operator fixes the key, so the provider is paused and the request waits.
bool rejects_key(const comparison_outcome& outcome);

/// Why a provider is paused: the call that revealed the bad key.
struct provider_pause {
  std::string model;
  std::string error_code;
};

/// Why a gateway call may not go now, and for how long.
struct gate_refusal {
  enum class reason {
    /// The node's calls in flight to the provider (gateway calls and bundles) are at its limit.
    concurrency,
    /// The breaker is open (or half-open with its probe slot taken).
    breaker,
    /// The requests or tokens per minute (on a cluster follower: its lease from the leader).
    rate,
  };
  reason why = reason::rate;
  clock_duration wait{};
  /// The node's calls in flight to the provider (for the message of a concurrency refusal).
  uint32_t inflight = 0;
};

class provider_gate {
public:
  explicit provider_gate(provider_gate_settings settings = {});
  provider_gate(const provider_gate&) = delete;
  provider_gate& operator=(const provider_gate&) = delete;

  /// How long `provider` is blocked by its breaker or rate limit (zero: it may be called).
  clock_duration blocked_for(const std::string& provider, clock_time now);

  /// Not paused, a free call slot, a breaker that lets calls through and room in the rate
  /// limit.
  bool has_capacity(const std::string& provider, clock_time now);

  /// The shortest time until one of `providers` that is blocked now opens up again
  /// (nullopt: none is blocked).
  std::optional<clock_duration> soonest_unblock(const std::vector<std::string>& providers,
                                                clock_time now);

  /// Requests the rate limit lets `provider` send now (nullopt: unlimited; may be negative).
  std::optional<int64_t> request_budget(const std::string& provider, clock_time now);

  /// Bundle `b` goes out (to this node's provider actor when `on_this_node`): takes a call
  /// slot and the half-open probe slot, and charges its calls and estimated tokens to the
  /// rate limit. True when the breaker changed state.
  bool start_call(const bundle& b, clock_time now, bool on_this_node = true);

  /// The call to `provider` ended with `outcomes`: frees its slot, tells the breaker how
  /// the provider did and the limiter what the provider said is left; pauses the provider
  /// when an outcome rejects the key. True when the breaker changed state.
  bool finish_call(const std::string& provider, const std::vector<comparison_outcome>& outcomes,
                   clock_time now, bool on_this_node = true);

  /// A gateway call of about `tokens` to `provider`: admitted (nullopt) when the node has a
  /// free call slot for it (its gateway calls and the bundles on this node count), the
  /// breaker lets it through (taking the half-open probe slot) and the rate limit has room,
  /// which it then charges; else why not (nothing taken). The call must be reported with
  /// finish_gateway().
  std::optional<gate_refusal> admit_gateway(const std::string& provider, uint64_t tokens,
                                            clock_time now);

  /// An admitted gateway call ended: frees its slot, tells the breaker whether the
  /// provider failed and learns what its answer's rate-limit headers said is left (`limits`).
  void finish_gateway(const std::string& provider, bool provider_failure, clock_time now,
                      const rate_limit_hint& limits = {});

  /// A gateway call's answer said in its rate-limit headers what is left of `provider`'s
  /// limits: the buckets believe it, as they do for queued calls; a cluster follower also
  /// cuts its lease to it and reports it to the leader with its next gate_report.
  void learn_gateway(const std::string& provider, const rate_limit_hint& limits, clock_time now);

  /// Gateway calls in flight to `provider` on this node.
  uint32_t gateway_inflight(const std::string& provider) const;

  /// Why `provider` is paused (nullptr: it is not).
  const provider_pause* pause_of(const std::string& provider) const;

  /// Ends the pause of `provider` (the operator fixed the key). False when it was not paused.
  bool resume(const std::string& provider);

  /// Bundles in flight to `provider`.
  uint32_t inflight(const std::string& provider) const;

  /// Bundles in flight to every provider.
  uint32_t inflight_total() const;

  /// A copy of the breaker of `provider` (a closed one when it has had no call).
  circuit_breaker breaker(const std::string& provider);

  /// Calls `provider` may have in flight at once on each node.
  uint32_t limit_of(const std::string& provider) const;

  // -- cluster mode (actors/provider_gate_sync.cpp, docs/cluster.md "Limits") --

  /// Leader: the sync for follower `node`, one of `followers`: per provider the buckets and
  /// breaker to mirror, the bundles in flight on the node (`bundles_on_node`) and a lease of
  /// requests and tokens taken from the buckets now, valid for `lease_for`.
  gate_sync lease_to(const std::string& node,
                     const std::map<std::string, uint32_t>& bundles_on_node, size_t followers,
                     clock_duration lease_for, clock_time now);

  /// Leader: follower `node` answered: takes back what its previous lease left and tells
  /// the breakers how its gateway calls ended. True when a breaker changed state.
  bool settle(const std::string& node, const gate_report& report, clock_time now);

  /// Follower: the leader's sync: reports the previous lease's use, takes the new lease,
  /// and mirrors the leader's buckets and open breakers (what a next leader starts from).
  gate_report follow(const gate_sync& sync, clock_time now);

  /// Leader: follower `node` is gone; its gateway's wants no longer hold requests back, and
  /// its leases count as spent.
  void forget_node(const std::string& node, clock_time now);

  /// The node's bundler starts a term (as leader, or alone): bundle counts of a previous
  /// term, leases from a previous leader and the use of followers no longer apply (leases
  /// this node lent count as spent).
  void begin_term(clock_time now);

  /// The settings the gate was made with.
  const provider_gate_settings& settings() const {
    return settings_;
  }

private:
  circuit_breaker& breaker_of(const std::string& provider);
  rate_limiter& limiter(const std::string& provider);
  clock_duration blocked(const std::string& provider, clock_time now);
  uint32_t inflight_of(const std::string& provider) const;
  uint32_t node_calls(const std::string& provider) const;
  void learn_limits(const std::string& provider, const std::vector<comparison_outcome>& outcomes,
                    clock_time now);
  void observe(const std::string& provider, const rate_limit_hint& limits, clock_time now);
  void learn_gateway_limits(const std::string& provider, const rate_limit_hint& limits,
                            clock_time now);

  /// A follower's lease from the leader for one provider (counts of -1: unlimited).
  struct lease {
    int64_t requests = -1;
    int64_t tokens = -1;
    uint64_t used_requests = 0;
    uint64_t used_tokens = 0;
    /// Gateway calls refused because the lease was spent.
    uint64_t refused = 0;
    clock_time expires{};
    /// The provider said only `limits` are left: no more of the lease may go.
    void cap_to(const rate_limit_hint& limits) {
      auto cap = [](int64_t& have, int64_t left) {
        if (left >= 0)
          have = have < 0 ? left : std::min(have, left);
      };
      cap(requests, limits.remaining_requests);
      cap(tokens, limits.remaining_tokens);
    }
  };
  /// Gateway calls that ended since the last report to the leader.
  struct call_ends {
    uint64_t failures = 0;
    uint64_t successes = 0;
    /// The tightest rate-limit figures their answers gave, and when.
    rate_limit_hint limits;
    clock_time limits_at{};
  };
  /// Requests and tokens a lease took from the leader's buckets.
  struct loan {
    uint64_t requests = 0;
    uint64_t tokens = 0;
  };
  /// What a follower used of its last lease (sizes its next one), and the leases it holds:
  /// the one its next report accounts for, and the one it got with the last sync.
  struct lease_use {
    uint64_t requests = 0;
    uint64_t tokens = 0;
    /// The follower's gateway used its lease or was refused for want of one.
    bool wants = false;
    loan reported_next;
    loan current;
  };
  void end_loans(const std::map<std::string, lease_use>& uses, clock_time now);
  lease* lease_of(const std::string& provider, clock_time now);
  uint32_t reserve_of(const std::string& provider) const;

  mutable std::mutex mutex_;
  provider_gate_settings settings_;
  /// Bundles in flight per provider (every node's).
  std::map<std::string, uint32_t> inflight_;
  /// Of those, the bundles on this node's provider actors.
  std::map<std::string, uint32_t> local_bundles_;
  /// Gateway calls in flight per provider on this node.
  std::map<std::string, uint32_t> gateway_inflight_;
  std::map<std::string, circuit_breaker> breakers_;
  std::map<std::string, rate_limiter> limiters_;
  /// Providers paused because they rejected the key; no bundle goes to them until resumed.
  std::map<std::string, provider_pause> paused_;
  /// Follower: leases per provider from the leader.
  std::map<std::string, lease> leases_;
  /// Follower: how gateway calls ended per provider since the last sync.
  std::map<std::string, call_ends> call_ends_;
  /// Leader: per follower and provider, what its last lease was used for.
  std::map<std::string, std::map<std::string, lease_use>> lease_use_;
};

} // namespace lps
