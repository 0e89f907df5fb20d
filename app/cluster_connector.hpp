#pragma once

// The leader's links to the other nodes (docs/cluster.md): on every tick of the cluster
// node it connects to each live node's node actor through the middleman
// (app/cluster_transport), asks it for its provider actors and hands them to the leader's
// bundler (`join`; the bundler monitors the node actor, so a lost connection puts that
// node's bundles back at once); a node whose heartbeat went stale is dropped (`leave`).
// While another node leads, it connects to the leader's node actor instead and hands it to
// this node's (`follow`), which sends the leader the requests this node stores. Over mutual
// TLS only the leader connects (see tell_followers): each node gets the leader's node actor
// and every other node's through the leader's connection.
// A thread of its own: a connection to a paused node waits for its timeout here, never in
// the lease's tick. Every message is idempotent, so every tick simply sends them again.

#include "actors/cluster_actors.hpp"
#include "runtime/cluster_node.hpp"

#include <caf/actor_system.hpp>

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace lps {

class cluster_connector {
public:
  /// Starts the thread; `self` is this node's name (its providers join the bundler when it is
  /// spawned), `local` its node actor, told the leader's node actor while another node leads.
  cluster_connector(caf::actor_system& sys, std::string self, node_actor local);

  /// Stops the thread (waits for a connection attempt under way, at most its timeout).
  ~cluster_connector();

  cluster_connector(const cluster_connector&) = delete;
  cluster_connector& operator=(const cluster_connector&) = delete;

  /// The bundler of the term this node leads (a null handle: it does not lead).
  void serve(cluster_bundler_actor bundler);

  /// The cluster as of the last tick: look at the nodes again.
  void update(cluster::cluster_view view);

  /// While this node leads: the live nodes it could not reach at its last try, with CAF's
  /// reason (a refused TLS handshake, a failed connect); empty on a follower.
  std::map<std::string, std::string> unreachable() const;

private:
  void run();
  void link(const cluster_bundler_actor& bundler, const cluster::cluster_view& view);
  void follow(const cluster::cluster_view& view);
  void note_unreachable(const cluster::node_info& n, const std::string& failure);
  void note_failures(std::map<std::string, std::string> failures);
  void tell_followers(const std::vector<node_providers>& reached);

  caf::actor_system& sys_;
  std::string self_;
  node_actor local_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  cluster_bundler_actor bundler_;
  std::optional<cluster::cluster_view> view_;
  /// The last reason each node could not be reached (logged once per change; the run
  /// thread's own).
  std::map<std::string, std::string> failures_;
  /// The failures of the last tick's live nodes, for unreachable() (under mutex_).
  std::map<std::string, std::string> unreachable_;
  std::thread thread_;
};

/// Over mutual TLS on a follower: the other nodes' node actors by name, as the leader last
/// handed them to `own` (this node's node actor); empty when none did. Messages to them go
/// through the leader's connections (CAF routes them via the node that sent the handle).
std::map<std::string, node_actor> nodes_reached_by_leader(caf::actor_system& sys,
                                                          const node_actor& own);

} // namespace lps
