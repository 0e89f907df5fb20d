#include "actors/node_link.hpp"

#include "actors/node.hpp"
#include "actors/request_timeout.hpp"

#include <caf/sec.hpp>

namespace lps {

namespace {

bool leads(const leader_link& link) {
  return static_cast<bool>(link.queue);
}

// Neither leading nor linked to a leader: the caller falls back to what it knows.
caf::error no_leader() {
  return caf::make_error(caf::sec::request_receiver_down);
}

} // namespace

// Every `adopt` already in the mailbox joins this batch: the flush is queued behind them, so
// the commits of one group commit (each answered on its own) travel in one message.
void gather_new_work(node_self self, std::vector<adopted_request>& rows) {
  auto& link = self->state.link;
  link.gathered.insert(link.gathered.end(), std::make_move_iterator(rows.begin()),
                       std::make_move_iterator(rows.end()));
  if (link.flush_due)
    return;
  link.flush_due = true;
  self->send(self, atom::flush_work_v);
}

// With no leader reached the batch is dropped: the leader's store poller finds it.
void flush_new_work(node_self self) {
  auto& link = self->state.link;
  link.flush_due = false;
  auto rows = std::move(link.gathered);
  link.gathered.clear();
  if (rows.empty())
    return;
  if (leads(link))
    take_new_work(self, rows);
  else if (link.leader_node)
    self->send(link.leader_node, atom::relayed_v, atom::adopt_v, std::move(rows));
}

// The queue manager skips what it holds already (the store poller may have been first).
void take_new_work(node_self self, std::vector<adopted_request>& rows) {
  auto& link = self->state.link;
  if (!leads(link) || rows.empty())
    return; // not (or no longer) the leader: the next leader's recovery reads the store
  if (link.metrics)
    self->send(link.metrics, atom::record_v,
               std::vector<metric_sample>{
                   {"llm_provider_cluster_new_work_by_message_total", {}, double(rows.size())}});
  self->send(link.queue, atom::adopt_v, std::move(rows));
}

void lead_with(node_self self, caf::actor queue, caf::actor bundler) {
  auto& link = self->state.link;
  link.queue = caf::actor_cast<queue_manager_actor>(queue);
  link.bundler = caf::actor_cast<bundler_actor>(bundler);
}

void follow_leader(node_self self, std::string name, caf::actor leader) {
  auto& link = self->state.link;
  link.leader_name = std::move(name);
  link.leader_node = caf::actor_cast<node_actor>(leader);
}

caf::result<request_status> lookup_at_leader(node_self self, const std::string& id) {
  auto& link = self->state.link;
  if (leads(link))
    return self->delegate(link.queue, atom::lookup_v, id);
  if (link.leader_node)
    return self->delegate(link.leader_node, atom::relayed_v, atom::lookup_v, id);
  return no_leader();
}

caf::result<request_status> lookup_as_leader(node_self self, const std::string& id) {
  auto& link = self->state.link;
  if (!leads(link))
    return no_leader();
  return self->delegate(link.queue, atom::lookup_v, id);
}

caf::result<leader_providers> providers_at_leader(node_self self) {
  auto& link = self->state.link;
  if (leads(link))
    return providers_as_leader(self);
  if (link.leader_node)
    return self->delegate(link.leader_node, atom::relayed_v, atom::providers_v);
  return no_leader();
}

// The bundler's view, marked with this node's name.
caf::result<leader_providers> providers_as_leader(node_self self) {
  auto& link = self->state.link;
  if (!leads(link) || !link.bundler)
    return no_leader();
  auto promise = self->make_response_promise<leader_providers>();
  auto reply = self->request(link.bundler, link.ask_timeout, atom::providers_v);
  auto reply_id = reply.id();
  std::move(reply).then(
      [self, promise, reply_id](std::vector<provider_status>& xs) mutable {
        forget_request_timeout(self, reply_id);
        promise.deliver(leader_providers{self->state.node_name, std::move(xs)});
      },
      [self, promise, reply_id](caf::error& err) mutable {
        forget_request_timeout(self, reply_id);
        promise.deliver(std::move(err));
      });
  return promise;
}

} // namespace lps
