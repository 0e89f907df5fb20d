#include "app/cluster_transport.hpp"

#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/io/publish.hpp>
#include <caf/scoped_actor.hpp>

#include <set>

namespace lps {

void load_cluster_transport(caf::actor_system_config& cfg) {
  cfg.load<caf::io::middleman>();
}

caf::expected<uint16_t> publish_node(caf::actor_system&, const node_actor& node,
                                     const std::string& host, uint16_t port) {
  return caf::io::publish(node, port, host.c_str());
}

// caf::io::remote_actor waits without a deadline; asking the middleman actor directly bounds
// the wait and checks the interface as remote_actor does.
caf::expected<node_actor> connect_node(caf::actor_system& sys, const std::string& host,
                                       uint16_t port, caf::timespan timeout) {
  caf::expected<node_actor> result{caf::sec::request_timeout};
  caf::scoped_actor self{sys};
  self->request(sys.middleman().actor_handle(), timeout, caf::connect_atom::value, host, port)
      .receive(
          [&](const caf::node_id&, caf::strong_actor_ptr& ptr,
              const std::set<std::string>& interface) {
            if (!ptr)
              result = caf::make_error(caf::sec::no_actor_published_at_port, port);
            else if (!sys.assignable<node_actor>(interface))
              result = caf::make_error(caf::sec::unexpected_actor_messaging_interface);
            else
              result = caf::actor_cast<node_actor>(std::move(ptr));
          },
          [&](caf::error& err) { result = std::move(err); });
  return result;
}

} // namespace lps
