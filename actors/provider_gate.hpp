#pragma once

// Whether a provider may take another bundle now, as a plain class (no actors, no clock
// reads: time is passed in): per provider a call-slot limit (bundles in flight), a circuit
// breaker and a rate limiter. The bundler asks it before forming a bundle and reports every
// call it starts and finishes.

#include "actors/providers/circuit_breaker.hpp"
#include "actors/providers/rate_limiter.hpp"
#include "messages/bundle.hpp"

#include <cstdint>
#include <map>
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

class provider_gate {
public:
  explicit provider_gate(provider_gate_settings settings = {});

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

  /// Bundle `b` goes out: takes a call slot and the half-open probe slot, and charges its
  /// calls and estimated tokens to the rate limit. True when the breaker changed state.
  bool start_call(const bundle& b, clock_time now);

  /// The call to `provider` ended with `outcomes`: frees its slot, tells the breaker how
  /// the provider did and the limiter what the provider said is left; pauses the provider
  /// when an outcome rejects the key. True when the breaker changed state.
  bool finish_call(const std::string& provider, const std::vector<comparison_outcome>& outcomes,
                   clock_time now);

  /// Why `provider` is paused (nullptr: it is not).
  const provider_pause* pause_of(const std::string& provider) const;

  /// Ends the pause of `provider` (the operator fixed the key). False when it was not paused.
  bool resume(const std::string& provider);

  /// Bundles in flight to `provider`.
  uint32_t inflight(const std::string& provider) const;

  /// Bundles in flight to every provider.
  uint32_t inflight_total() const;

  /// Bundles in flight per provider that has had a call.
  const std::map<std::string, uint32_t>& inflight_by_provider() const {
    return inflight_;
  }

  /// The breaker of `provider` (a closed one when it has had no call).
  circuit_breaker& breaker(const std::string& provider);

  /// Bundles `provider` may have in flight at once.
  uint32_t limit_of(const std::string& provider) const;

private:
  rate_limiter& limiter(const std::string& provider);
  void learn_limits(const std::string& provider, const std::vector<comparison_outcome>& outcomes,
                    clock_time now);

  provider_gate_settings settings_;
  std::map<std::string, uint32_t> inflight_;
  std::map<std::string, circuit_breaker> breakers_;
  std::map<std::string, rate_limiter> limiters_;
  /// Providers paused because they rejected the key; no bundle goes to them until resumed.
  std::map<std::string, provider_pause> paused_;
};

} // namespace lps
