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
    // The bundler of the leader now serving this node (untyped: it crosses the middleman).
    caf::reacts_to<atom::leader, caf::actor>,
    // SIGTERM: asks that bundler to retire this node; `drained` once it has no bundle of this
    // node in flight (at once when no leader serves it).
    caf::replies_to<atom::retire>::with<atom::drained>,
    // Its own check, a while after it started, that a leader reached it.
    caf::reacts_to<atom::wake>>;

// -- the bundler as the cluster leader sees it ------------------------------------------

using cluster_bundler_actor = bundler_actor::extend<
    // A node's provider actors take bundles from now on (a node already served is left as
    // it is).
    caf::reacts_to<atom::join, node_providers>,
    // The node of this name is gone (stale heartbeat): its bundles in flight are put back in
    // the queue at once and it takes no more.
    caf::reacts_to<atom::leave, std::string>,
    // The node of this name leaves (SIGTERM): it gets no new bundles; `drained` once none of
    // its bundles is in flight (their answers handed on), at once for an unknown node.
    caf::replies_to<atom::retire, std::string>::with<atom::drained>>;

} // namespace lps
