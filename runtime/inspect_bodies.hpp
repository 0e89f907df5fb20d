#pragma once

// Bodies of the /api/v1/inspect/* routes and of the inspection stream's events, rendered from
// the inspector's snapshots (docs/api.md, "Inspection").

#include "messages/status.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lps {

/// What of a snapshot a body shows.
enum class inspect_view {
  /// Every actor: name, kind, node, responsive, mailbox, messages and their rate,
  /// processing-time percentiles, last error, figures and facts.
  actors,
  /// The "queue" table: waiting requests by provider and model with the oldest one's age.
  queue,
  /// The "recent_bundles" and "items_per_call" tables.
  bundles,
  /// The "providers" table: breaker, calls in flight against the limit, rate-limit headroom,
  /// latency, errors by class.
  providers,
  /// The nodes: every node of the cluster in cluster mode, this one alone otherwise.
  nodes,
  /// All of the above: one event of the stream.
  all,
};

/// A node of the cluster as the nodes view lists it (from the registry, as of the cluster's
/// last tick).
struct inspect_node {
  std::string name;
  /// The CLUSTER_HOST:CLUSTER_PORT it registered.
  std::string address;
  /// It holds the live leader lease.
  bool leader = false;
  /// "up", "suspect" or "down" (by the age of its heartbeat against the lease).
  std::string state;
  /// ISO 8601 by the database's clock, and its age.
  std::string last_heartbeat;
  double heartbeat_age_seconds = 0;
  std::string version;
};

/// The cluster as the nodes view shows it.
struct inspect_cluster {
  /// The holder of the live lease ("": nobody holds a live lease).
  std::string leader;
  int64_t epoch = 0;
  double lease_seconds = 0;
  /// Why the cluster's last tick could not read the registry ("": it could).
  std::string error;
  std::vector<inspect_node> nodes;
};

/// What the nodes view shows besides the snapshot.
struct node_directory {
  /// This lps' version.
  std::string version;
  /// Cluster mode: the cluster as of its last tick; nullopt: a single node.
  std::optional<inspect_cluster> cluster;
};

/// `{"seq", "at", "node", ...}` with what `view` shows of `snapshot`. The nodes view lists
/// the nodes of `nodes` (nullptr: this node alone, its version unknown).
std::string render_inspect_view(const inspection_snapshot& snapshot, inspect_view view,
                                const node_directory* nodes = nullptr);

/// This node's figures in the nodes view as `x` (taken on it) shows them: provider calls in
/// flight, its own actors and the unresponsive ones among them.
node_figures own_figures(const inspection_snapshot& x);

/// One node's answer to `?node=all` or `?node=NAME` (GET /api/v1/inspect and its actors view).
struct node_answer {
  std::string name;
  /// Why it gave no answer ("": it answered): no answer within 500 ms, not connected, ...
  std::string error = {};
  /// GET /api/v1/inspect: every actor's status, as the node's inspector collected it.
  std::vector<actor_status> statuses = {};
  /// The actors view: the node inspector's newest snapshot.
  std::optional<inspection_snapshot> snapshot = {};
};

/// GET /api/v1/inspect?node=...: `{"node": self, "nodes": [{"name", "responsive", "error",
/// "actors"}], "actors": [...]}`, every node's actors in node order, each with its node.
std::string render_nodes_inspection(const std::string& self, const std::vector<node_answer>& nodes);

/// GET /api/v1/inspect/actors?node=...: as the actors view, `actors` gathered from every
/// node's newest snapshot, with `nodes` as above (plus each snapshot's `seq` and `at`).
std::string render_nodes_actors(const std::string& self, const std::vector<node_answer>& nodes);

/// GET /api/v1/inspect/history: `{"seconds": n, "snapshots": [...]}`, oldest first, each
/// snapshot with its actors.
std::string render_inspect_history(const std::vector<inspection_snapshot>& snapshots,
                                   uint32_t seconds);

} // namespace lps
