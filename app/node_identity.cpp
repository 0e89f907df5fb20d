#include "app/node_identity.hpp"
#include "app/build_info.hpp"

#include <unistd.h>

#include <array>

namespace lps {

namespace {

inspect_node inspect_node_of(const cluster::cluster_view& view, const cluster::node_info& n) {
  inspect_node result;
  result.name = n.node.name;
  result.address = n.node.host + ":" + std::to_string(n.node.port);
  result.leader = view.lease_live && n.node.name == view.leader;
  result.state = cluster::to_string(cluster::state_in(view, n));
  result.last_heartbeat = n.heartbeat_at;
  result.heartbeat_age_seconds = double(n.heartbeat_age.count()) / 1000.0;
  result.version = n.node.version;
  return result;
}

} // namespace

std::string this_node_name(const config& cfg) {
  if (!cfg.cluster_node_name.empty())
    return cfg.cluster_node_name;
  std::array<char, 256> buf{};
  if (gethostname(buf.data(), buf.size() - 1) != 0 || buf[0] == '\0')
    return "localhost";
  return buf.data();
}

node_directory node_directory_of(const std::optional<cluster::cluster_view>& cluster) {
  node_directory result;
  result.version = build_version();
  if (!cluster)
    return result;
  inspect_cluster x;
  x.leader = cluster->lease_live ? cluster->leader : "";
  x.epoch = cluster->epoch;
  x.lease_seconds = double(cluster->lease.count()) / 1000.0;
  x.error = cluster->error;
  for (const auto& n : cluster->nodes)
    x.nodes.push_back(inspect_node_of(*cluster, n));
  result.cluster = std::move(x);
  return result;
}

} // namespace lps
