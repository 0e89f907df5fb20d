#include "app/cluster_transport.hpp"

#include "runtime/cluster_tls.hpp"

namespace lps {

namespace {

// A publish waits for the middleman's answer at most this long (the bind itself is local).
constexpr caf::timespan publish_timeout = std::chrono::seconds{5};

} // namespace

void load_cluster_transport(caf::actor_system_config& cfg, const cluster_tls_files& tls) {
  load_cluster_middleman(cfg, tls);
}

caf::expected<uint16_t> publish_node(caf::actor_system&, const node_actor& node,
                                     const std::string& host, uint16_t port) {
  return publish_cluster(node, port, host, publish_timeout);
}

// caf::io::remote_actor waits without a deadline; connect_cluster bounds the wait and checks
// the interface as remote_actor does.
caf::expected<node_actor> connect_node(caf::actor_system& sys, const std::string& host,
                                       uint16_t port, caf::timespan timeout) {
  return connect_cluster<node_actor>(sys, host, port, timeout);
}

} // namespace lps
