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
    // -- the leader link (actors/node_link.*) --
    // Requests this node's intake just stored: gathered, then sent to the leader in one
    // message per burst (flush_work).
    caf::reacts_to<atom::adopt, std::vector<adopted_request>>, caf::reacts_to<atom::flush_work>,
    // This node leads with this queue manager and bundler, or no longer (null handles).
    caf::reacts_to<atom::lead, caf::actor, caf::actor>,
    // The leader's name and node actor as the connector last reached it (null: none).
    caf::reacts_to<atom::follow, std::string, caf::actor>,
    // Over mutual TLS, the node actors the leader reached (it is the only node that opens
    // connections): kept to be asked through the leader's connection, until no leader is
    // followed.
    caf::reacts_to<atom::peers, node_peers>, caf::replies_to<atom::peers>::with<node_peers>,
    // The leader's answers, for this node's HTTP routes: a request's status as the leader's
    // queue holds it (not found: the leader does not hold it), the leader's providers.
    caf::replies_to<atom::leader, atom::lookup, std::string>::with<request_status>,
    caf::replies_to<atom::leader, atom::providers>::with<leader_providers>,
    // What another node's node actor asks: answered only while this node leads (else an
    // error), never passed on, so a stale view cannot make two nodes ask each other.
    caf::reacts_to<atom::relayed, atom::adopt, std::vector<adopted_request>>,
    caf::replies_to<atom::relayed, atom::lookup, std::string>::with<request_status>,
    caf::replies_to<atom::relayed, atom::providers>::with<leader_providers>,
    // The bundler of the leader now serving this node (untyped: it crosses the middleman).
    caf::reacts_to<atom::leader, caf::actor>,
    // SIGTERM: asks that bundler to retire this node; `drained` once it has no bundle of this
    // node in flight (at once when no leader serves it).
    caf::replies_to<atom::retire>::with<atom::drained>,
    // Its own check, a while after it started, that a leader reached it.
    caf::reacts_to<atom::wake>,
    // The node inspector's newest snapshots (?node=all on the actors view).
    caf::replies_to<atom::history, uint32_t>::with<std::vector<inspection_snapshot>>,
    // The node inspector's own figures of this node (every other node's nodes view).
    caf::replies_to<atom::inspect, atom::figures>::with<node_figures>,
    // The status of the leader's singletons (queue manager, bundler, callbacks, batch jobs),
    // each marked with this node's name; an error when this node does not lead.
    caf::replies_to<atom::inspect, atom::leader>::with<std::vector<actor_status>>,
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
    // The node of this name leaves (SIGTERM): it gets no new bundles; `drained` once none of
    // its bundles is in flight (their answers handed on), at once for an unknown node.
    caf::replies_to<atom::retire, std::string>::with<atom::drained>,
    // Time to sync the provider gate with every other node (docs/cluster.md, "Limits").
    caf::reacts_to<atom::gate>>;

} // namespace lps
