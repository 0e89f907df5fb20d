#pragma once

// How cluster nodes reach each other (docs/cluster.md): each node publishes its node actor on
// CLUSTER_HOST:CLUSTER_PORT through CAF's middleman, and the leader connects to every live
// node's. The only place that calls the middleman; with the CLUSTER_TLS_* files every
// connection runs mutual TLS (runtime/cluster_tls.*, docs/cluster.md "Security").

#include "actors/cluster_actors.hpp"
#include "runtime/cluster_tls_files.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/expected.hpp>

#include <cstdint>
#include <string>

namespace lps {

/// Loads the transport into the actor system's configuration (before the system starts):
/// the middleman, and CAF's OpenSSL manager when `tls` names the three files.
void load_cluster_transport(caf::actor_system_config& cfg, const cluster_tls_files& tls);

/// Publishes `node` on `host`:`port` (0: any free port); the port bound, or why not.
caf::expected<uint16_t> publish_node(caf::actor_system& sys, const node_actor& node,
                                     const std::string& host, uint16_t port);

/// Connects to the node actor published on `host`:`port`, waiting at most `timeout` (a
/// paused node's kernel still accepts the TCP connection: the handshake never ends); an
/// established connection is reused. The node actor, or why not.
caf::expected<node_actor> connect_node(caf::actor_system& sys, const std::string& host,
                                       uint16_t port, caf::timespan timeout);

} // namespace lps
