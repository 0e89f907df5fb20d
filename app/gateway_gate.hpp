#pragma once

// Admission of gateway calls (docs/gateway.md, "Limits"), shared by the HTTP I/O threads:
// per provider the node's provider gate (actors/provider_gate: circuit breaker, rate limits
// and calls in flight), the one the queue path's bundler uses, so both paths count against
// the same limits; per client key a
// requests- and tokens-per-minute limit, and the key's usage for /api/v1/inspect/gateway
// (never in metric labels). A call that may not go now is refused at once with the wait, not
// queued: the caller holds the connection.

#include "actors/provider_gate.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace lps {

/// Limits of one client key (0: unlimited).
struct gateway_key_limits {
  uint64_t requests_per_minute = 0;
  uint64_t tokens_per_minute = 0;
};

/// Why a call may not go now: 503 (breaker open) or 429 (a rate or concurrency limit), with
/// how long to wait.
struct gateway_refusal {
  unsigned status = 429;
  std::string message;
  /// OpenAI error.code: "circuit_open", "rate_limit_exceeded", "concurrency_limit_exceeded",
  /// "key_rate_limit_exceeded".
  std::string code;
  clock_duration retry_after{};
};

/// What one key has used since the start.
struct gateway_key_usage {
  uint64_t requests = 0;
  uint64_t errors = 0;
  uint64_t refused = 0;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  double cost_usd = 0.0;
};

class gateway_gate {
public:
  /// Admits provider calls through `providers`, the node's gate (shared with its bundler).
  gateway_gate(std::shared_ptr<provider_gate> providers, gateway_key_limits key_limits);

  /// A gate of its own with `settings` (tests).
  gateway_gate(provider_gate_settings settings, gateway_key_limits key_limits);

  /// Admits a call of `key` ("" without API_KEYS_FILE) to `provider` estimated at `tokens`,
  /// taking its slot and budgets; nullopt when admitted, else why not (nothing taken).
  std::optional<gateway_refusal> admit(const std::string& provider, const std::string& key,
                                       uint64_t tokens, clock_time now);

  /// An admitted call ended: frees its slot, tells the breaker whether the provider failed
  /// (`provider_failure`), learns the rate-limit figures of its last answer (`limits`) and
  /// counts the key's usage.
  void finish(const std::string& provider, const std::string& key, bool success,
              bool provider_failure, uint64_t prompt_tokens, uint64_t completion_tokens,
              double cost_usd, const rate_limit_hint& limits, clock_time now);

  /// /api/v1/inspect/gateway: `{"keys":[...],"providers":[...]}`.
  std::string usage_json(clock_time now);

  /// The node's provider gate.
  const std::shared_ptr<provider_gate>& providers() const {
    return providers_;
  }

private:
  struct key_entry {
    rate_limiter limiter;
    gateway_key_usage usage;
  };
  key_entry& key(const std::string& name);

  std::shared_ptr<provider_gate> providers_;
  /// Guards the keys and the calls per provider (the provider gate has its own mutex).
  std::mutex mutex_;
  gateway_key_limits key_limits_;
  std::map<std::string, key_entry> keys_;
  /// Gateway calls admitted per provider since the start.
  std::map<std::string, uint64_t> calls_;
};

} // namespace lps
