#include "app/cluster_route.hpp"

#include "runtime/json_writer.hpp"

namespace lps {

namespace {

void render_node(std::string& out, const cluster::cluster_view& view, const cluster::node_info& n) {
  object_writer node{out};
  node.string("name", n.node.name)
      .string("address", n.node.host + ":" + std::to_string(n.node.port))
      .boolean("leader", view.lease_live && n.node.name == view.leader)
      .string("state", cluster::to_string(cluster::state_in(view, n)))
      .string("last_heartbeat", n.heartbeat_at)
      .number("heartbeat_age_seconds", double(n.heartbeat_age.count()) / 1000.0)
      .string("started_at", n.started_at)
      .string("version", n.node.version)
      .string("roles", n.node.roles);
  auto unreachable = view.unreachable.find(n.node.name);
  node.string_or_null("reason", unreachable != view.unreachable.end() ? unreachable->second : "");
  node.close();
}

} // namespace

std::string render_cluster(const cluster::cluster_view& view) {
  std::string out;
  object_writer body{out};
  body.string("node", view.self)
      .string_or_null("leader", view.lease_live ? view.leader : "")
      .integer("epoch", view.epoch)
      .number("lease_seconds", double(view.lease.count()) / 1000.0);
  array_writer nodes{body.member("nodes")};
  for (const auto& n : view.nodes)
    render_node(nodes.element(), view, n);
  nodes.close();
  body.string_or_null("error", view.error);
  body.close();
  return out;
}

http_response cluster_response(const cluster::cluster_view& view) {
  return {200, render_cluster(view), "application/json", {{"Cache-Control", "no-store"}}};
}

} // namespace lps
