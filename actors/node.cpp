#include "actors/node.hpp"

#include "runtime/logging.hpp"

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

// SIGTERM: the leader's bundler sends this node no new bundle and answers once none of its
// bundles is in flight, so calls already made finish here instead of running twice.
caf::result<atom::drained> retire(node_actor::stateful_pointer<node_state> self) {
  auto& st = self->state;
  if (!st.leader_bundler)
    return atom::drained_v;
  return self->delegate(caf::actor_cast<cluster_bundler_actor>(st.leader_bundler), atom::retire_v,
                        st.node_name);
}

// No leader's bundler joined this node's providers: it takes no bundles. Leaders connect to
// every live node within a tick, so this is a node the leader cannot reach.
void warn_if_unreached(node_actor::stateful_pointer<node_state> self) {
  if (self->state.leader_bundler)
    return;
  LPS_LOG_WARN(get_logger("cluster"),
               "no leader has reached node {} through the middleman in {} s: it takes no "
               "bundles; with mutual TLS, check that its CLUSTER_TLS_CERT is signed by the CA "
               "the other nodes trust (CLUSTER_TLS_CA), and the leader's log",
               self->state.node_name,
               std::chrono::duration_cast<std::chrono::seconds>(node_unreached_warning).count());
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
                               inspector_actor inspector, metrics_actor metrics,
                               std::shared_ptr<const leader_inspection> leader,
                               std::shared_ptr<provider_gate> gate) {
  self->state.node_name = std::move(name);
  self->state.gate = std::move(gate);
  self->state.providers = std::move(providers);
  self->state.inspector = std::move(inspector);
  self->state.link.metrics = std::move(metrics);
  self->state.leader = std::move(leader);
  self->delayed_send(self, node_unreached_warning, atom::wake_v);
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
        if (!leader) // handles routed through a leader that is gone are of no use
          self->state.peers = {};
        follow_leader(self, std::move(name), std::move(leader));
      },
      [=](atom::peers, node_peers& peers) { self->state.peers = std::move(peers); },
      [=](atom::peers) { return self->state.peers; },
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
      // -- a graceful leave --
      [=](atom::leader, caf::actor bundler) { self->state.leader_bundler = std::move(bundler); },
      [=](atom::retire) -> caf::result<atom::drained> { return retire(self); },
      [=](atom::wake) { warn_if_unreached(self); },
      // -- inspection across the cluster --
      [=](atom::history, uint32_t n) -> caf::result<std::vector<inspection_snapshot>> {
        return self->delegate(self->state.inspector, atom::history_v, n);
      },
      [=](atom::inspect, atom::figures) -> caf::result<node_figures> {
        return self->delegate(self->state.inspector, atom::inspect_v, atom::figures_v);
      },
      [=](atom::inspect, atom::leader) -> caf::result<std::vector<actor_status>> {
        return inspect_leader(self);
      },
      // -- the leader's provider gate --
      [=](atom::gate, const gate_sync& sync) -> gate_report {
        if (!self->state.gate) // a node spawned without a gate (tests) uses no lease
          return gate_report{};
        return self->state.gate->follow(sync, self->clock().now());
      },
  };
}

} // namespace lps
