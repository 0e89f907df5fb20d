#pragma once

// Who this node is in what operators see: its name (inspection views, the console, lpsctl,
// llm_provider_build_info) and the nodes the inspection views list (the cluster's, or this
// node alone). docs/console.md, "Nodes".

#include "runtime/cluster_node.hpp"
#include "runtime/config.hpp"
#include "runtime/inspect_bodies.hpp"

#include <optional>
#include <string>

namespace lps {

/// CLUSTER_NODE_NAME when set, else the host name ("localhost" when it cannot be read): the
/// name the node registers under in a cluster, so every view names a node the same way.
std::string this_node_name(const config& cfg);

/// The nodes for the inspection views: those of `cluster` (the node's last tick) in cluster
/// mode, nullopt for a single node; with this lps' version.
node_directory node_directory_of(const std::optional<cluster::cluster_view>& cluster);

} // namespace lps
