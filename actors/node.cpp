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

// The leader's singletons as the inspector of its term sees them, without that inspector's
// own status, each named "leader." and its name with the fact role=leader (this node's own
// intake-only queue manager and idle bundler keep the plain names); an error on a node that
// does not lead (the asker lists them unresponsive).
caf::result<std::vector<actor_status>>
inspect_leader(node_actor::stateful_pointer<node_state> self) {
  auto singletons = self->state.leader ? self->state.leader->local() : inspector_actor{};
  if (!singletons)
    return caf::make_error(caf::sec::runtime_error,
                           "node " + self->state.node_name + " does not lead");
  auto promise = self->make_response_promise<std::vector<actor_status>>();
  self->request(singletons, caf::infinite, atom::inspect_v)
      .then(
          [promise](std::vector<actor_status>& xs) mutable {
            std::erase_if(xs, [](const actor_status& x) { return x.kind == "inspector"; });
            for (auto& x : xs) {
              x.name = "leader." + x.name;
              x.facts["role"] = "leader";
            }
            promise.deliver(std::move(xs));
          },
          [promise](caf::error& err) mutable { promise.deliver(std::move(err)); });
  return promise;
}

} // namespace

node_actor::behavior_type node(node_actor::stateful_pointer<node_state> self, std::string name,
                               std::map<std::string, provider_actor> providers,
                               inspector_actor inspector,
                               std::shared_ptr<const leader_inspection> leader) {
  self->state.node_name = std::move(name);
  self->state.providers = std::move(providers);
  self->state.inspector = std::move(inspector);
  self->state.leader = std::move(leader);
  return {
      [=](atom::providers) -> node_providers {
        return providers_of(self->state, caf::actor_cast<caf::actor>(self));
      },
      [=](atom::inspect) -> caf::result<std::vector<actor_status>> {
        // The inspector marks each status with this node's name.
        return self->delegate(self->state.inspector, atom::inspect_v);
      },
      [=](atom::history, uint32_t n) -> caf::result<std::vector<inspection_snapshot>> {
        return self->delegate(self->state.inspector, atom::history_v, n);
      },
      [=](atom::inspect, atom::leader) -> caf::result<std::vector<actor_status>> {
        return inspect_leader(self);
      },
  };
}

} // namespace lps
