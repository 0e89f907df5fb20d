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
    // The node inspector's newest snapshots (?node=all on the actors view).
    caf::replies_to<atom::history, uint32_t>::with<std::vector<inspection_snapshot>>,
    // The status of the leader's singletons (queue manager, bundler, callbacks, batch jobs),
    // each marked with this node's name; an error when this node does not lead.
    caf::replies_to<atom::inspect, atom::leader>::with<std::vector<actor_status>>>;

// -- the bundler as the cluster leader sees it ------------------------------------------

using cluster_bundler_actor = bundler_actor::extend<
    // A node's provider actors take bundles from now on (a node already served is left as
    // it is).
    caf::reacts_to<atom::join, node_providers>,
    // The node of this name is gone (stale heartbeat): its bundles in flight are put back in
    // the queue at once and it takes no more.
    caf::reacts_to<atom::leave, std::string>>;

} // namespace lps
