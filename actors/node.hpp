#pragma once

// The node actor: the one actor a cluster node publishes on CLUSTER_HOST:CLUSTER_PORT
// (app/cluster_transport). Through it the leader gets the node's provider actors (its
// bundler sends them bundles) and the node's inspection (?node=all). It holds no state of
// its own: it only hands out handles and forwards to the inspector.

#include "actors/cluster_actors.hpp"
#include "actors/leader_inspection.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <map>
#include <memory>
#include <string>

namespace lps {

struct node_state {
  static inline const char* name = "node";
  std::string node_name;
  std::map<std::string, provider_actor> providers;
  inspector_actor inspector;
  /// The inspector of the leader's singletons while this node leads.
  std::shared_ptr<const leader_inspection> leader;
};

/// Spawns with the node's name, its provider actors by name, its inspector and where the
/// inspector of the leader's singletons is while it leads.
node_actor::behavior_type node(node_actor::stateful_pointer<node_state> self, std::string name,
                               std::map<std::string, provider_actor> providers,
                               inspector_actor inspector,
                               std::shared_ptr<const leader_inspection> leader);

} // namespace lps
