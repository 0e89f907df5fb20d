#pragma once

// The metrics actor: receives counter steps, gauge values and observations as messages
// and renders the Prometheus text exposition on request.

#include "actors/actors.hpp"
#include "actors/status_report.hpp"
#include "actors/metrics_registry.hpp"

#include <caf/typed_event_based_actor.hpp>

namespace lps {

struct metrics_state {
  static inline const char* name = "metrics";
  metrics_registry registry;
  /// Messages handled, their processing times, the last error (for status).
  actor_stats stats;
  uint64_t samples_total = 0;
  /// CPU seconds already added to process_cpu_seconds_total.
  double reported_cpu_seconds = 0;
};

/// Spawns the metrics actor.
metrics_actor::behavior_type metrics(metrics_actor::stateful_pointer<metrics_state> self);

} // namespace lps
