#pragma once

// The inspector: asks every registered actor for its status (high priority, so the
// question overtakes a backlog) and answers with all replies for /api/v1/inspect.

#include "actors/actors.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <vector>

namespace lps {

struct inspector_state {
  static inline const char* name = "inspector";
  std::vector<status_client_actor> targets;
  caf::timespan timeout = std::chrono::seconds{2};
  uint64_t handled = 0;
};

/// Spawns with the actors to inspect.
inspector_actor::behavior_type inspector(inspector_actor::stateful_pointer<inspector_state> self,
                                         std::vector<status_client_actor> targets);

} // namespace lps
