#pragma once

// GET /api/v1/cluster (docs/api.md, docs/cluster.md): the cluster as this node saw it at its
// last tick (no I/O in the route): every registered node with its address, leader flag,
// state (up, suspect, down), last heartbeat and version, and the leader's epoch.

#include "runtime/cluster_node.hpp"
#include "runtime/http_server.hpp"

namespace lps {

/// The JSON body of GET /api/v1/cluster for `view`.
std::string render_cluster(const cluster::cluster_view& view);

/// The 200 answer (never cached).
http_response cluster_response(const cluster::cluster_view& view);

} // namespace lps
