#pragma once

// The node actor's link to the leader (docs/cluster.md, "New work reaches the leader"): the
// handlers that send the requests this node's intake stored to the leader, and ask the
// leader for what only it knows (a request's last retryable failure and next attempt, the
// providers' breakers and limits). While this node leads they go to its own singletons;
// else to the leader's node actor through the middleman. A message lost on the way (no
// leader reached, a connection that drops) loses nothing: the leader's store poller finds
// every stored request, and the HTTP routes fall back to what this node knows.

#include "actors/cluster_actors.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace lps {

struct node_state;
using node_self = node_actor::stateful_pointer<node_state>;

struct leader_link {
  /// This node's singletons while it leads (null handles otherwise).
  queue_manager_actor queue;
  bundler_actor bundler;
  /// The leader's node actor and name while another node leads and was reached.
  node_actor leader_node;
  std::string leader_name;
  /// New work gathered since the last flush, and whether a flush is on its way.
  std::vector<adopted_request> gathered;
  bool flush_due = false;
  /// Counts requests that reached this node, leading, by message.
  metrics_actor metrics;
  /// How long the leader's bundler may take to name its providers.
  caf::timespan ask_timeout = std::chrono::seconds{1};
};

void gather_new_work(node_self self, std::vector<adopted_request>& rows);
void flush_new_work(node_self self);
void take_new_work(node_self self, std::vector<adopted_request>& rows);
void lead_with(node_self self, caf::actor queue, caf::actor bundler);
void follow_leader(node_self self, std::string name, caf::actor leader);
caf::result<request_status> lookup_at_leader(node_self self, const std::string& id);
caf::result<request_status> lookup_as_leader(node_self self, const std::string& id);
caf::result<leader_providers> providers_at_leader(node_self self);
caf::result<leader_providers> providers_as_leader(node_self self);

} // namespace lps
