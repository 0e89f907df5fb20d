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
                               inspector_actor inspector, metrics_actor metrics) {
  self->state.node_name = std::move(name);
  self->state.providers = std::move(providers);
  self->state.inspector = std::move(inspector);
  self->state.link.metrics = std::move(metrics);
  return {
      [=](atom::providers) -> node_providers {
        return providers_of(self->state, caf::actor_cast<caf::actor>(self));
      },
      [=](atom::inspect) -> caf::result<std::vector<actor_status>> {
        // The inspector marks each status with this node's name.
        return self->delegate(self->state.inspector, atom::inspect_v);
      },
      // -- the leader link --
      [=](atom::adopt, std::vector<adopted_request>& rows) { gather_new_work(self, rows); },
      [=](atom::flush_work) { flush_new_work(self); },
      [=](atom::lead, caf::actor queue, caf::actor bundler) {
        lead_with(self, std::move(queue), std::move(bundler));
      },
      [=](atom::follow, std::string& name, caf::actor leader) {
        follow_leader(self, std::move(name), std::move(leader));
      },
      [=](atom::leader, atom::lookup, const std::string& id) -> caf::result<request_status> {
        return lookup_at_leader(self, id);
      },
      [=](atom::leader, atom::providers) -> caf::result<leader_providers> {
        return providers_at_leader(self);
      },
      [=](atom::relayed, atom::adopt, std::vector<adopted_request>& rows) {
        take_new_work(self, rows);
      },
      [=](atom::relayed, atom::lookup, const std::string& id) -> caf::result<request_status> {
        return lookup_as_leader(self, id);
      },
      [=](atom::relayed, atom::providers) -> caf::result<leader_providers> {
        return providers_as_leader(self);
      },
  };
}

} // namespace lps
