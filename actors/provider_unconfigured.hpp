#pragma once

// A provider actor for a provider this build cannot call yet, or one without an API key:
// every item fails at once with CONFIGURATION_ERROR, so its requests still end in exactly
// one result event instead of waiting forever.

#include "actors/actors.hpp"
#include "actors/status_report.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <string>

namespace lps {

struct provider_unconfigured_state {
  static inline const char* name = "provider:unconfigured";
  std::string provider;
  std::string reason;
  /// Messages handled, their processing times, the last error (for status).
  actor_stats stats;
  uint64_t items_total = 0;
};

/// Spawns for `provider`, failing every item with `reason`.
provider_actor::behavior_type
provider_unconfigured(provider_actor::stateful_pointer<provider_unconfigured_state> self,
                      std::string provider, std::string reason);

} // namespace lps
