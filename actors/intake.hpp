#pragma once

// Intake: the front door. Takes requests the HTTP edge already validated, assigns queue
// ids and defaults, and answers only after the queue manager stored them durably.

#include "actors/actors.hpp"
#include "runtime/store.hpp"
#include "actors/status_report.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <functional>

namespace lps {

struct intake_config {
  /// How long to wait for the queue manager's durable answer.
  caf::timespan store_timeout = std::chrono::seconds{30};
  /// Wall clock that stamps acceptance times (tests pass one that follows the test
  /// coordinator's virtual time).
  std::function<caf::timestamp()> now = [] { return caf::make_timestamp(); };
  /// Whether the store takes writes (store::health; thread-safe, no I/O). While it does not,
  /// submissions are refused at once instead of queueing inserts that would fail. Empty:
  /// always available.
  std::function<store_health()> store_health_of{};
};

struct intake_state {
  static inline const char* name = "intake";
  intake_config cfg;
  queue_manager_actor queue;
  /// Set by stop: refuse new submissions (shutdown).
  bool stopped = false;
  /// Messages handled, their processing times, the last error (for status).
  actor_stats stats;
  uint64_t submitted_total = 0;
  uint64_t refused_total = 0;
};

/// Spawns with its config and the queue manager.
intake_actor::behavior_type intake(intake_actor::stateful_pointer<intake_state> self,
                                   intake_config cfg, queue_manager_actor queue);

} // namespace lps
