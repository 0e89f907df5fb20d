#pragma once

// Every node's links to the other nodes' node actors, for inspection (docs/cluster.md,
// "Inspection"): `?node=all` asks each node's actors through them, and the node's inspector
// asks the leader's singletons through the leader's and the other nodes' figures through
// theirs. On every tick of the cluster node it
// connects to each live node it has no link to yet (app/cluster_transport) on a thread of its
// own, so a connection to a paused node waits for its timeout here, never in a route or the
// lease's tick. The leader's bundler has links of its own (app/cluster_connector).

#include "actors/cluster_actors.hpp"
#include "actors/leader_inspection.hpp"
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

/// A node of the cluster as the inspection routes ask it.
struct cluster_peer {
  std::string name;
  /// Its node actor (this node's own for itself); null: not connected (yet).
  node_actor handle;
  /// Its heartbeat is live.
  bool live = false;
};

class cluster_peers {
public:
  /// Starts the thread; `self` is this node's name and `own` its node actor.
  cluster_peers(caf::actor_system& sys, std::string self, node_actor own);

  /// Stops the thread (waits for a connection attempt under way, at most its timeout).
  ~cluster_peers();

  cluster_peers(const cluster_peers&) = delete;
  cluster_peers& operator=(const cluster_peers&) = delete;

  /// The cluster as of the last tick: connect to the nodes not linked yet.
  void update(cluster::cluster_view view);

  /// Every registered node as of the last tick, by name (this node among them).
  std::vector<cluster_peer> nodes() const;

  /// The leader as of the last tick; nullopt when no node holds a live lease.
  std::optional<node_endpoint> leader() const;

  /// Every other registered node as of the last tick (null handle: not connected), for the
  /// inspector's nodes figures.
  std::vector<node_endpoint> others() const;

private:
  struct link {
    /// What the handle was made for: a node that registers again gets a new link.
    int64_t incarnation = 0;
    node_actor handle;
  };

  void run();
  void connect(const cluster::cluster_view& view);

  caf::actor_system& sys_;
  std::string self_;
  node_actor own_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  /// The last tick's view (what nodes() and leader() answer from) and whether the thread
  /// has yet to look at it.
  cluster::cluster_view view_;
  bool fresh_ = false;
  std::map<std::string, link> links_;
  std::thread thread_;
};

} // namespace lps
