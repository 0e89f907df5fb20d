#pragma once

// The cluster's middleman transport with or without mutual TLS (issue #11, docs/cluster.md).
// load_cluster_middleman() puts CAF's middleman into the actor system config and, with the
// three CLUSTER_TLS_* files, CAF's OpenSSL manager configured with them; publish and connect
// below then go through TLS when that manager is loaded and through the plain middleman
// otherwise, so callers never choose. With TLS both ends present a certificate the CA signed
// (CAF sets SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT on both sides); a peer without
// one, or with one from another CA, never completes the handshake. CAF's OpenSSL headers stay
// in cluster_tls.cpp.

#include "runtime/cluster_tls_files.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_control_block.hpp>
#include <caf/actor_system.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include <cstdint>
#include <set>
#include <string>

namespace lps {

/// Loads CAF's middleman into `cfg` and, when `tls.enabled()`, CAF's OpenSSL manager with the
/// files as openssl_certificate, openssl_key and openssl_cafile, with CAF's automatic
/// connections off (they would be plain). Call before the actor_system is made from `cfg`,
/// with files check_cluster_tls_files() found usable (CAF throws from its network thread on a
/// file it cannot load).
void load_cluster_middleman(caf::actor_system_config& cfg, const cluster_tls_files& tls);

/// True when `sys` talks to peers over mutual TLS (load_cluster_middleman had the files).
bool cluster_uses_tls(caf::actor_system& sys);

/// Publishes `whom` (with message interface `ifs`) on `host`:`port` (0: any free port) through
/// TLS or the plain middleman; the bound port or CAF's error (port taken, no answer within
/// `timeout`).
caf::expected<uint16_t> publish_cluster_actor(caf::actor_system& sys, caf::strong_actor_ptr whom,
                                              std::set<std::string> ifs, uint16_t port,
                                              const std::string& host, caf::timespan timeout);

/// Connects to the actor published on `host`:`port` through TLS or the plain middleman. An
/// error when the peer refuses the handshake (another CA, no TLS, no certificate), nothing is
/// published there, its interface is not assignable to `ifs`, or no answer comes within
/// `timeout`.
caf::expected<caf::strong_actor_ptr> connect_cluster_actor(caf::actor_system& sys,
                                                           const std::set<std::string>& ifs,
                                                           std::string host, uint16_t port,
                                                           caf::timespan timeout);

/// publish_cluster_actor for a typed or dynamically typed handle.
template <class Handle>
caf::expected<uint16_t> publish_cluster(const Handle& whom, uint16_t port, const std::string& host,
                                        caf::timespan timeout) {
  auto& sys = whom.home_system();
  return publish_cluster_actor(sys, caf::actor_cast<caf::strong_actor_ptr>(whom),
                               sys.message_types(whom), port, host, timeout);
}

/// connect_cluster_actor, cast to `Handle` (caf::actor or a typed_actor).
template <class Handle>
caf::expected<Handle> connect_cluster(caf::actor_system& sys, std::string host, uint16_t port,
                                      caf::timespan timeout) {
  auto ifs = sys.message_types(caf::detail::type_list<Handle>{});
  auto found = connect_cluster_actor(sys, ifs, std::move(host), port, timeout);
  if (!found)
    return std::move(found.error());
  return caf::actor_cast<Handle>(std::move(*found));
}

} // namespace lps
