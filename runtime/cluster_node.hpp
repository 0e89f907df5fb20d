#pragma once

// One node's part in the cluster (issue #11, docs/cluster.md): a thread of its own that
// registers the node in `cluster_nodes`, sends its heartbeat every tick, and competes for the
// leader lease: it takes the lease when it is free or expired and then renews it every tick.
// Taking it calls `lead(epoch)`; a failed renewal (another node took over, the lease ran
// out, the database is unreachable) calls `step_down()` at once. Each tick also refreshes a
// snapshot of the nodes and the lease for GET /api/v1/cluster, so that route does no I/O.
// Plain C++ on libpq connections of its own (a renewal never waits behind the store's
// group commits); nothing here knows an actor.

#include "runtime/cluster_registry.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lps::cluster {

/// A node's state as the cluster sees it, from the age of its heartbeat; `unreachable` is the
/// leader's word for a node with a live heartbeat it cannot reach through the middleman.
enum class node_state { up, suspect, down, leaving, unreachable };

const char* to_string(node_state x);

/// up while the heartbeat is at most half the lease old, suspect up to the lease, then down;
/// a node that marked itself leaving is leaving while its heartbeat is live, down after.
node_state state_of(std::chrono::milliseconds heartbeat_age, std::chrono::milliseconds lease,
                    bool leaving = false);

/// The cluster as of the last tick.
struct cluster_view {
  /// This node's name, and whether it leads now.
  std::string self;
  bool self_leads = false;
  /// The lease holder and epoch ("" and 0: never held, or unreadable).
  std::string leader;
  int64_t epoch = 0;
  bool lease_live = false;
  std::vector<node_info> nodes;
  /// The lease duration (node states are judged by it).
  std::chrono::milliseconds lease{0};
  /// Why the last tick's reads failed ("" when they did not).
  std::string error;
  /// While this node leads: the nodes it could not reach through the middleman at its last
  /// try, with the reason (a refused TLS handshake, a failed connect); else empty.
  std::map<std::string, std::string> unreachable;
};

/// The state shown for `n` (GET /api/v1/cluster, the nodes view): `unreachable` while
/// `view.unreachable` names it and its heartbeat says up or suspect, else state_of.
node_state state_in(const cluster_view& view, const node_info& n);

struct node_settings {
  std::string postgres_url;
  node_registration self;
  /// CLUSTER_LEASE_SECONDS.
  std::chrono::milliseconds lease{5000};
  /// Heartbeat and renewal period (the design's second).
  std::chrono::milliseconds tick{1000};
};

struct node_hooks {
  /// This node took the lease at `epoch`: start the singletons (called on the node's thread).
  std::function<void(int64_t epoch)> lead;
  /// This node lost the lease: stop the singletons at once (called on the node's thread).
  std::function<void()> step_down;
  /// The snapshot of every tick, once taken (called on the node's thread; must not block:
  /// the leader's connections to the other nodes are made elsewhere). May be empty.
  std::function<void(const cluster_view&)> tick;
};

class node {
public:
  /// Connects, registers `settings.self` (refused while a live node holds the name) and
  /// starts the thread; nullptr with `error` set on failure (the password masked).
  static std::unique_ptr<node> start(node_settings settings, node_hooks hooks, std::string& error);

  /// Stops the thread; a leader steps down and releases the lease at once (the next leader
  /// need not wait it out); the node leaves the registry.
  ~node();

  /// SIGTERM: marks the node leaving in the registry at once and no longer competes for the
  /// lease (a leader keeps it until it is destroyed, renewing it meanwhile). Thread-safe.
  void begin_leaving();

  /// The snapshot of the last tick (thread-safe).
  cluster_view view() const;

private:
  node(node_settings settings, node_hooks hooks);
  void run();
  void tick();
  void refresh_view();

  node_settings settings_;
  node_hooks hooks_;
  std::unique_ptr<pg::connection> db_;
  int64_t incarnation_ = 0;
  /// The epoch this node leads at (0: it does not lead).
  int64_t epoch_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  /// begin_leaving was called; the registry row is marked once `leaving_marked_`.
  bool leaving_ = false;
  bool leaving_marked_ = false;
  cluster_view view_;
  std::thread thread_;
};

} // namespace lps::cluster
