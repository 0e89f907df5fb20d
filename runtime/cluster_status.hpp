#pragma once

// The cluster as `lps cluster --status` prints it: the leader lease and every registered
// node, live or stale, read from the PostgreSQL store (docs/cluster.md).

#include "runtime/cluster_lease.hpp"
#include "runtime/cluster_registry.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace lps::cluster {

/// Lines for a terminal: "leader: ..." and one line per node; `live_within` is the window
/// the nodes were listed with.
std::string render_status(const std::optional<lease_state>& leader,
                          const std::vector<node_info>& nodes,
                          std::chrono::milliseconds live_within);

/// Reads the leader lease and the nodes (live when their heartbeat is newer than
/// `live_within`) from `db` and renders them; false with `error` set when the database
/// cannot say (e.g. a schema without the cluster tables).
bool read_status(pg::connection& db, std::chrono::milliseconds live_within, std::string& text,
                 std::string& error);

} // namespace lps::cluster
