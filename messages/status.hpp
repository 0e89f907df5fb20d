#pragma once

// What every actor reports about itself (the inspection protocol).

#include <caf/meta/type_name.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace lps {

/// One actor's self-report for /api/v1/inspect.
struct actor_status {
  std::string name;
  /// intake, queue_manager, bundler, provider, callbacks, metrics, inspector.
  std::string kind;
  uint64_t mailbox_size = 0;
  uint64_t messages_handled = 0;
  /// Numeric figures of the actor (queue depth by status, bundles formed, ...).
  std::map<std::string, double> figures;
  /// Textual facts (mode, state).
  std::map<std::string, std::string> facts;
  friend bool operator==(const actor_status&, const actor_status&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_status& x) {
  return f(caf::meta::type_name("lps.actor_status"), x.name, x.kind, x.mailbox_size,
           x.messages_handled, x.figures, x.facts);
}

/// One provider as the bundler sees it (GET /api/v1/providers, /healthz, the inspector).
struct provider_status {
  std::string name;
  /// Its circuit breaker: "closed", "open" or "half_open".
  std::string circuit_state = "closed";
  /// How often its breaker opened since start.
  uint64_t breaker_opened_total = 0;
  /// Bundles handed to it and not answered yet.
  uint64_t inflight_bundles = 0;
  /// How long its breaker or rate limit still keeps it from taking a bundle (0: not blocked).
  std::chrono::milliseconds blocked_for{0};
  /// The error code of the rejected key that paused it ("": not paused).
  std::string paused_by;
  friend bool operator==(const provider_status&, const provider_status&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, provider_status& x) {
  return f(caf::meta::type_name("lps.provider_status"), x.name, x.circuit_state,
           x.breaker_opened_total, x.inflight_bundles, x.blocked_for, x.paused_by);
}

} // namespace lps
