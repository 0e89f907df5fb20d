#pragma once

// The cluster's CAF type-ID block (docs/cluster.md), after lps's own: what only cluster
// nodes exchange. A block of its own keeps messages/type_ids.hpp, which every actor
// includes, unchanged; system_config registers both.

#include "messages/cluster.hpp"
#include "messages/type_ids.hpp"

#include <caf/type_id.hpp>

CAF_BEGIN_TYPE_ID_BLOCK(lps_cluster, caf::id_block::lps::end)

CAF_ADD_TYPE_ID(lps_cluster, (lps::node_providers))

// A node's providers join the leader's bundler, or leave it.
CAF_ADD_ATOM(lps_cluster, lps::atom, join, "join")
CAF_ADD_ATOM(lps_cluster, lps::atom, leave, "leave")

// The leader link (docs/cluster.md, "New work reaches the leader"): each node's node actor
// knows the leader's, and asks it on behalf of its own intake and HTTP routes.
CAF_ADD_TYPE_ID(lps_cluster, (lps::leader_providers))
// Asked of the local node actor: answered by the leader (this node's singletons, or the
// leader's node actor through the middleman).
CAF_ADD_ATOM(lps_cluster, lps::atom, leader, "leader")
// What one node actor asks another (the leader's): answered only by a leader, never passed on.
CAF_ADD_ATOM(lps_cluster, lps::atom, relayed, "relayed")
// This node leads (its queue manager and bundler), or stops leading (null handles).
CAF_ADD_ATOM(lps_cluster, lps::atom, lead, "lead")
// The leader's node actor as the connector last reached it (null: none reached).
CAF_ADD_ATOM(lps_cluster, lps::atom, follow, "follow")
// Internal: send the new work gathered so far to the leader.
CAF_ADD_ATOM(lps_cluster, lps::atom, flush_work, "flushwork")
// Graceful leave (SIGTERM): the leader's bundler introduces itself to each node it serves
// (atom leader, above), and a leaving node asks it to retire the node (no new bundles;
// answered once none is in flight).
CAF_ADD_ATOM(lps_cluster, lps::atom, retire, "retire")
// The provider gate's sync between the leader and a follower (docs/cluster.md, "Limits").
CAF_ADD_TYPE_ID(lps_cluster, (lps::gate_provider_state))
CAF_ADD_TYPE_ID(lps_cluster, (lps::gate_sync))
CAF_ADD_TYPE_ID(lps_cluster, (lps::gate_provider_use))
CAF_ADD_TYPE_ID(lps_cluster, (lps::gate_report))
CAF_ADD_TYPE_ID(lps_cluster, (std::vector<lps::gate_provider_state>))
CAF_ADD_TYPE_ID(lps_cluster, (std::vector<lps::gate_provider_use>))
CAF_ADD_ATOM(lps_cluster, lps::atom, gate, "gate")

// Over mutual TLS: the node actors the leader reached, handed to every node it reached.
CAF_ADD_TYPE_ID(lps_cluster, (lps::node_peers))
CAF_ADD_ATOM(lps_cluster, lps::atom, peers, "peers")

CAF_END_TYPE_ID_BLOCK(lps_cluster)
