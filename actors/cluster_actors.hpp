#pragma once

// The actor interfaces of cluster mode (docs/cluster.md): what a node offers the leader
// through the middleman, and the bundler's part in it. Kept apart from actors/actors.hpp,
// which every actor includes.

#include "actors/actors.hpp"
#include "messages/cluster_type_ids.hpp"

namespace lps {

// -- node: the one actor a cluster node publishes ------------------------------------------

using node_actor = caf::typed_actor<
    // The node's provider actors, for the leader's bundler.
    caf::replies_to<atom::providers>::with<node_providers>,
    // The node's inspector's answer: every actor's status, each marked with its node.
    caf::replies_to<atom::inspect>::with<std::vector<actor_status>>,
    // The leader's provider gate sync: the node mirrors it and reports its gateway's use.
    caf::replies_to<atom::gate, gate_sync>::with<gate_report>>;

// -- the bundler as the cluster leader sees it ------------------------------------------

using cluster_bundler_actor = bundler_actor::extend<
    // A node's provider actors take bundles from now on (a node already served is left as
    // it is).
    caf::reacts_to<atom::join, node_providers>,
    // The node of this name is gone (stale heartbeat): its bundles in flight are put back in
    // the queue at once and it takes no more.
    caf::reacts_to<atom::leave, std::string>,
    // Time to sync the provider gate with every other node (docs/cluster.md, "Limits").
    caf::reacts_to<atom::gate>>;

} // namespace lps
