#include "runtime/cluster_tls.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/sec.hpp>

namespace lps {

namespace {

// The middleman actor that publishes and connects: the OpenSSL manager's when it is loaded
// (every connection then runs TLS), the plain middleman's otherwise.
caf::io::middleman_actor transport_of(caf::actor_system& sys) {
  if (cluster_uses_tls(sys))
    return sys.openssl_manager().actor_handle();
  return sys.middleman().actor_handle();
}

} // namespace

void load_cluster_middleman(caf::actor_system_config& cfg, const cluster_tls_files& tls) {
  cfg.load<caf::io::middleman>();
  if (!tls.enabled())
    return;
  // CAF's automatic connections (a mesh between every node it learns of) open plain TCP
  // connections, past the TLS module: forced off whatever the config file says.
  cfg.set("middleman.enable-automatic-connections", false);
  cfg.openssl_certificate = tls.cert_file;
  cfg.openssl_key = tls.key_file;
  cfg.openssl_cafile = tls.ca_file;
  cfg.load<caf::openssl::manager>();
}

bool cluster_uses_tls(caf::actor_system& sys) {
  // CAF's manager without certificates would run an anonymous cipher: encrypted but not
  // authenticated. load_cluster_middleman never loads it so; this guards other callers.
  return sys.has_openssl_manager() && sys.openssl_manager().authentication_enabled();
}

caf::expected<uint16_t> publish_cluster_actor(caf::actor_system& sys, caf::strong_actor_ptr whom,
                                              std::set<std::string> ifs, uint16_t port,
                                              const std::string& host, caf::timespan timeout) {
  if (!whom)
    return caf::make_error(caf::sec::cannot_publish_invalid_actor);
  caf::expected<uint16_t> result{caf::make_error(caf::sec::request_timeout)};
  caf::scoped_actor self{sys};
  // reuse = true sets SO_REUSEADDR: a node restarted on its port binds it while connections
  // of its previous run linger in TIME_WAIT (Linux still refuses a port another socket
  // listens on, so two nodes never share one).
  self->request(transport_of(sys), timeout, caf::publish_atom_v, port, std::move(whom),
                std::move(ifs), host, true)
      .receive([&](uint16_t bound) { result = bound; },
               [&](caf::error& err) { result = std::move(err); });
  return result;
}

caf::expected<caf::strong_actor_ptr> connect_cluster_actor(caf::actor_system& sys,
                                                           const std::set<std::string>& ifs,
                                                           std::string host, uint16_t port,
                                                           caf::timespan timeout) {
  caf::expected<caf::strong_actor_ptr> result{caf::make_error(caf::sec::request_timeout)};
  caf::scoped_actor self{sys};
  self->request(transport_of(sys), timeout, caf::connect_atom_v, std::move(host), port)
      .receive(
          [&](const caf::node_id&, caf::strong_actor_ptr& found, std::set<std::string>& found_ifs) {
            if (!found)
              result = caf::make_error(caf::sec::no_actor_published_at_port);
            else if (!sys.assignable(found_ifs, ifs))
              result = caf::make_error(caf::sec::unexpected_actor_messaging_interface);
            else
              result = std::move(found);
          },
          [&](caf::error& err) { result = std::move(err); });
  return result;
}

} // namespace lps
