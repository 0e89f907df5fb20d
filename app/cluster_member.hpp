#pragma once

// This process as a member of the cluster (issue #11, docs/cluster.md): it joins through
// cluster::node (registration, heartbeat, the leader lease) and, while it holds the lease,
// runs the leader's singletons (spawn_leader) fed by the store poller, which hands the queue
// manager the requests any node stored. Losing the lease stops both at once.

#include "app/cluster_connector.hpp"
#include "app/cluster_peers.hpp"
#include "app/topology.hpp"
#include "runtime/cluster_node.hpp"
#include "runtime/store_poller.hpp"

#include <caf/actor_system.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace lps {

/// What the leader's singletons are spawned with (all outlive the member).
struct member_parts {
  caf::actor_system* sys = nullptr;
  const config* cfg = nullptr;
  store* db = nullptr;
  const topology* node = nullptr;
  http_transport* callback_http = nullptr;
  http_transport* provider_transport = nullptr;
  const model_manifest* manifest = nullptr;
  batch_job_store* jobs_db = nullptr;
};

class cluster_member {
public:
  /// Publishes the node actor on CLUSTER_HOST:CLUSTER_PORT (0: a free port), registers this
  /// node (CLUSTER_NODE_NAME, else the host name) with the port bound and starts competing
  /// for the lease; nullptr with `error` set when the port cannot be bound or the database
  /// refuses (e.g. a live node holds the name).
  static std::unique_ptr<cluster_member> join(member_parts parts, std::string& error);

  /// Steps down at once if leading, releases the lease and leaves the registry.
  ~cluster_member();

  /// SIGTERM: a leader gives bundles in flight `grace` and flushes before it releases the
  /// lease (the next leader starts at once); a follower has the leader retire it (no new
  /// bundles) and gives the leader's bundles in flight here `grace` to finish; then the node
  /// leaves.
  void leave(caf::timespan grace);

  cluster::cluster_view view() const;

  /// The node actor: asked by the HTTP routes for what the leader knows (actors/node_link).
  node_actor node() const {
    return node_actor_;
  }

  /// Every registered node with its node actor, for the inspection routes (no I/O).
  std::vector<cluster_peer> peers() const;

private:
  explicit cluster_member(member_parts parts) : parts_(parts) {}
  void lead(int64_t epoch);
  void step_down();
  void leave_registry();
  void retire_from_leader(caf::timespan grace);

  member_parts parts_;
  std::mutex mutex_;
  std::optional<leader_topology> leader_;
  std::unique_ptr<cluster::store_poller> poller_;
  /// Fenced stores of past terms: an actor told to exit may still run one handler with it.
  std::vector<std::unique_ptr<fenced_store>> retired_;
  /// What this node publishes for the leader (app/cluster_transport).
  node_actor node_actor_;
  /// The leader's links to the other nodes' provider actors.
  std::unique_ptr<cluster_connector> connector_;
  /// Every node's links to the others' node actors (inspection).
  std::unique_ptr<cluster_peers> peers_;
  std::vector<std::unique_ptr<batch_job_store>> retired_jobs_;
  mutable std::mutex node_mutex_;
  std::unique_ptr<cluster::node> node_;
};

} // namespace lps
