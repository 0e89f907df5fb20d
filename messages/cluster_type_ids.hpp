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

// The provider gate's sync between the leader and a follower (docs/cluster.md, "Limits").
CAF_ADD_TYPE_ID(lps_cluster, (lps::gate_provider_state))
CAF_ADD_TYPE_ID(lps_cluster, (lps::gate_sync))
CAF_ADD_TYPE_ID(lps_cluster, (lps::gate_provider_use))
CAF_ADD_TYPE_ID(lps_cluster, (lps::gate_report))
CAF_ADD_TYPE_ID(lps_cluster, (std::vector<lps::gate_provider_state>))
CAF_ADD_TYPE_ID(lps_cluster, (std::vector<lps::gate_provider_use>))
CAF_ADD_ATOM(lps_cluster, lps::atom, gate, "gate")

CAF_END_TYPE_ID_BLOCK(lps_cluster)
