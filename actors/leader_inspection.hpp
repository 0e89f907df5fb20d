#pragma once

// Where a cluster node's inspector finds the leader's singletons (queue manager, bundler,
// callbacks, batch jobs; docs/cluster.md, "Inspection") and the other nodes (their figures
// for the nodes view). Shared by three parties on different threads: the cluster member sets
// the leader inspector of the term this node leads and tells where the leader and the other
// nodes are; the node actor answers other nodes' questions with that inspector; the node's
// inspector asks the leader and the other nodes every second. A plain class under a mutex:
// every call is short and does no I/O.

#include "actors/cluster_actors.hpp"

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace lps {

/// A node (the leader or another) as this node reaches it: its name and its node actor
/// (null: not connected, so it is listed as unresponsive).
struct node_endpoint {
  std::string node;
  node_actor handle;
};

class leader_inspection {
public:
  /// This node leads: `x` inspects the singletons of its term.
  void lead(inspector_actor x);

  /// This node no longer leads.
  void step_down();

  /// The inspector of the term this node leads (null: it does not lead).
  inspector_actor local() const;

  /// Where the leader is from now on (an empty function: nowhere; the member leaving).
  void set_source(std::function<std::optional<node_endpoint>()> source);

  /// The leader as the source knows it now; nullopt: no node leads (or no source).
  std::optional<node_endpoint> find() const;

  /// Where the other registered nodes are from now on (an empty function: none).
  void set_peers(std::function<std::vector<node_endpoint>()> source);

  /// Every other registered node as the source knows it now (empty: none, or no source).
  std::vector<node_endpoint> peers() const;

private:
  mutable std::mutex mutex_;
  inspector_actor local_;
  std::function<std::optional<node_endpoint>()> source_;
  std::function<std::vector<node_endpoint>()> peers_;
};

} // namespace lps
