#include "runtime/cluster_status.hpp"

#include <cstdio>

namespace lps::cluster {

namespace {

/// "4.2 s" for a duration in milliseconds.
std::string seconds(std::chrono::milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms.count()) / 1000);
  return buf;
}

std::string leader_line(const std::optional<lease_state>& leader) {
  if (!leader)
    return "leader: none (no node has held the lease)\n";
  auto epoch = std::to_string(leader->epoch);
  if (leader->live)
    return "leader: " + leader->holder + ", epoch " + epoch + ", lease live for "
           + seconds(leader->remaining) + "\n";
  return "leader: none (" + leader->holder + "'s lease at epoch " + epoch + " ended "
         + seconds(-leader->remaining) + " ago)\n";
}

std::string node_line(const node_info& x) {
  return x.node.name + " " + x.node.host + ":" + std::to_string(x.node.port)
         + (x.live ? " live" : " stale") + ", heartbeat " + seconds(x.heartbeat_age)
         + " ago, started " + x.started_at + ", version " + x.node.version + ", roles "
         + x.node.roles + "\n";
}

} // namespace

std::string render_status(const std::optional<lease_state>& leader,
                          const std::vector<node_info>& nodes,
                          std::chrono::milliseconds live_within) {
  auto result = leader_line(leader);
  result += "nodes (live: a heartbeat within " + seconds(live_within) + "):";
  result += nodes.empty() ? " none registered\n" : "\n";
  for (const auto& x : nodes)
    result += node_line(x);
  return result;
}

bool read_status(pg::connection& db, std::chrono::milliseconds live_within, std::string& text,
                 std::string& error) {
  lease leader{db};
  auto state = leader.read();
  if (!leader.error().empty()) {
    error = "cannot read the leader lease: " + leader.error();
    return false;
  }
  node_registry registry{db};
  auto nodes = registry.list(live_within);
  if (!registry.error().empty()) {
    error = "cannot read the node registry: " + registry.error();
    return false;
  }
  text = render_status(state, nodes, live_within);
  return true;
}

} // namespace lps::cluster
