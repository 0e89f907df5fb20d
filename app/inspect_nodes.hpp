#pragma once

// `?node=all` and `?node=NAME` on GET /api/v1/inspect and /api/v1/inspect/actors (docs/api.md,
// "Inspection"; docs/cluster.md): the actors of every node of the cluster, or of one, asked
// through CAF's middleman from each node's node actor (this node's own inspector directly).
// A node that does not answer within 500 ms is listed as unresponsive; the answer never waits
// longer for it. Outside a cluster this node is the only node.

#include "app/http_api.hpp"

namespace lps {

/// How long a node may take to answer before it is listed as unresponsive.
constexpr auto node_answer_timeout = std::chrono::milliseconds{500};

/// Whether the request names nodes (`node` in the query).
bool names_nodes(const http_request& req);

/// Answers a GET of /api/v1/inspect (`actors_view` false) or /api/v1/inspect/actors with the
/// nodes its `node` parameter names: 400 for a malformed value, 404 for a node not in the
/// cluster.
void get_nodes_inspection(const api_context& ctx, const http_request& req, bool actors_view,
                          http_responder respond);

} // namespace lps
