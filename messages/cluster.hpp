#pragma once

// What crosses between cluster nodes through CAF's middleman (docs/cluster.md): a node's
// answer to the leader's question for its provider actors.

#include "messages/status.hpp"

#include <caf/actor.hpp>
#include <caf/meta/type_name.hpp>

#include <string>
#include <vector>

namespace lps {

/// A node's provider actors, as its node actor hands them to the leader. Handles travel
/// untyped (messages/ knows no actor interface); the leader casts them to provider_actor.
struct node_providers {
  /// CLUSTER_NODE_NAME of the node.
  std::string node;
  /// The node actor itself: the leader monitors it (a lost connection is a down message).
  caf::actor node_actor;
  /// Provider names and their actors, index for index.
  std::vector<std::string> names;
  std::vector<caf::actor> handles;
  friend bool operator==(const node_providers&, const node_providers&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_providers& x) {
  return f(caf::meta::type_name("lps.node_providers"), x.node, x.node_actor, x.names, x.handles);
}

/// The providers as the leader's bundler sees them (breaker, limits, bundles in flight), for
/// /api/v1/providers and /healthz on any node, with the name of the node that answered.
struct leader_providers {
  std::string node;
  std::vector<provider_status> providers;
  friend bool operator==(const leader_providers&, const leader_providers&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, leader_providers& x) {
  return f(caf::meta::type_name("lps.leader_providers"), x.node, x.providers);
}

} // namespace lps
