#pragma once

// The inspector: asks every registered actor for its status (high priority, so the
// question overtakes a backlog), answers with all replies for /api/v1/inspect, and samples
// them once a second into a bounded history for /api/v1/inspect/* and its stream.

#include "actors/actors.hpp"
#include "actors/leader_inspection.hpp"
#include "actors/status_report.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lps {

struct inspector_config {
  /// The actors to inspect.
  std::vector<status_client_actor> targets = {};
  /// The node's name in every status (the host name until the cluster has names).
  std::string node = {};
  /// An actor that has not answered within this is shown as unresponsive.
  caf::timespan timeout = std::chrono::milliseconds{500};
  /// Time between samples (0: no sampling).
  caf::timespan interval = std::chrono::seconds{1};
  /// Samples kept (600 a second apart: 10 minutes).
  size_t history_size = 600;
  /// Wall clock of the snapshots' `at` (tests pass one that follows virtual time).
  std::function<caf::timestamp()> now = [] { return caf::make_timestamp(); };
  /// Called with each new snapshot, on the inspector's thread (the SSE stream); must not
  /// block.
  std::function<void(const inspection_snapshot&)> on_sample = {};
  /// Cluster mode: where the leader's singletons are inspected and the other nodes are
  /// (null: a single node). Every answer and snapshot then lists the singletons, from the
  /// leader; the tables (queue, bundles, providers) are theirs alone, not those of this
  /// node's intake-only queue manager and idle bundler. Every snapshot has the other nodes'
  /// figures.
  std::shared_ptr<const leader_inspection> leader = {};
};

struct inspector_state {
  static inline const char* name = "inspector";
  inspector_config cfg;
  /// Name and kind of each target's last answer, by position (shown when it stops answering).
  std::vector<actor_status> last_seen;
  /// The last `history_size` snapshots, oldest first; only the newest keeps actor tables.
  std::deque<inspection_snapshot> history;
  /// When the newest snapshot was taken (actor clock: the time between samples).
  caf::actor_clock::time_point sampled_at;
  /// A sample is being collected (the next tick skips instead of overlapping it).
  bool sampling = false;
  /// Cluster mode: every other node's last known figures, by name (see collect_peers).
  std::map<std::string, node_figures> peer_figures;
  actor_stats stats;
};

/// Spawns with its config; starts sampling at once when `cfg.interval` is not zero.
inspector_impl_actor::behavior_type
inspector(inspector_impl_actor::stateful_pointer<inspector_state> self, inspector_config cfg);

} // namespace lps
