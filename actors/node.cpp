#include "actors/node.hpp"

#include <chrono>

namespace lps {

namespace {

node_providers providers_of(const node_state& st, caf::actor self) {
  node_providers result;
  result.node = st.node_name;
  result.node_actor = std::move(self);
  for (const auto& [name, hdl] : st.providers) {
    result.names.push_back(name);
    result.handles.push_back(caf::actor_cast<caf::actor>(hdl));
  }
  return result;
}

} // namespace

node_actor::behavior_type node(node_actor::stateful_pointer<node_state> self, std::string name,
                               std::map<std::string, provider_actor> providers,
                               inspector_actor inspector, std::shared_ptr<provider_gate> gate) {
  self->state.node_name = std::move(name);
  self->state.gate = std::move(gate);
  self->state.providers = std::move(providers);
  self->state.inspector = std::move(inspector);
  return {
      [=](atom::providers) -> node_providers {
        return providers_of(self->state, caf::actor_cast<caf::actor>(self));
      },
      [=](atom::inspect) -> caf::result<std::vector<actor_status>> {
        // The inspector marks each status with this node's name.
        return self->delegate(self->state.inspector, atom::inspect_v);
      },
      [=](atom::gate, const gate_sync& sync) -> gate_report {
        return self->state.gate->follow(sync, self->clock().now());
      },
  };
}

} // namespace lps
