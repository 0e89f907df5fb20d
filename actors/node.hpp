#pragma once

// The node actor: the one actor a cluster node publishes on CLUSTER_HOST:CLUSTER_PORT
// (app/cluster_transport). Through it the leader gets the node's provider actors (its
// bundler sends them bundles), the node's inspection (?node=all) and the leader's provider
// gate syncs (the node's gate follows them). It holds no state of its own: it hands out
// handles, forwards to the inspector and passes syncs to the gate.

#include "actors/cluster_actors.hpp"
#include "actors/provider_gate.hpp"

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
  /// The node's provider gate: the leader's syncs reach it here.
  std::shared_ptr<provider_gate> gate;
};

/// Spawns with the node's name, its provider actors by name, its inspector and its gate.
node_actor::behavior_type node(node_actor::stateful_pointer<node_state> self, std::string name,
                               std::map<std::string, provider_actor> providers,
                               inspector_actor inspector, std::shared_ptr<provider_gate> gate);

} // namespace lps
