#pragma once

// The cluster's node registry in PostgreSQL (issue #11): one row per node in `cluster_nodes`
// (schema version 3) with its name, CAF middleman address, version, roles, when it started
// and its last heartbeat. Liveness is the database server's clock: a node is live while its
// heartbeat is newer than the window the caller gives, stale after. Plain C++ on a libpq
// connection; nothing here knows an actor. docs/cluster.md.

#include "runtime/postgres.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lps::cluster {

/// What a node says about itself when it registers.
struct node_registration {
  /// CLUSTER_NODE_NAME, unique in the cluster.
  std::string name;
  /// The CAF middleman's address (CLUSTER_HOST, and the port it bound).
  std::string host;
  uint16_t port = 0;
  /// The lps version the node runs.
  std::string version;
  /// Its roles, comma-separated (e.g. "intake,provider").
  std::string roles;
};

/// A registered node as the database sees it now.
struct node_info {
  node_registration node;
  /// Changes at every registration of the name (a new process).
  int64_t incarnation = 0;
  /// When it registered and when it last sent a heartbeat (ISO 8601, the server's time).
  std::string started_at;
  std::string heartbeat_at;
  /// Time since its last heartbeat by the database's clock.
  std::chrono::milliseconds heartbeat_age{0};
  /// The heartbeat is newer than the window given to list().
  bool live = false;
  /// It got SIGTERM and is finishing its work before it leaves (schema version 7).
  bool leaving = false;
};

class node_registry {
public:
  /// The registry in the database of `db`, which must hold schema version 3 or later. `db`
  /// outlives this object.
  explicit node_registry(pg::connection& db);

  /// Registers `self` with a heartbeat of now and a new incarnation, replacing a row of the
  /// same name whose heartbeat is older than `live_within` (a node that died and restarts).
  /// Returns the incarnation, or nothing when a live node holds the name (two processes
  /// with one CLUSTER_NODE_NAME) or the database failed; error() says which.
  std::optional<int64_t> register_node(const node_registration& self,
                                       std::chrono::milliseconds live_within);

  /// Records a heartbeat of the node `name` at `incarnation`: true, or false when its row is
  /// gone or belongs to a newer process of that name (this one must register again or
  /// stop), or the database failed.
  bool heartbeat(const std::string& name, int64_t incarnation);

  /// Marks the node `name` at `incarnation` as leaving (it stops, finishing its work first);
  /// false when its row is gone or the database failed.
  bool mark_leaving(const std::string& name, int64_t incarnation);

  /// Every registered node by name, each marked live when its heartbeat is newer than
  /// `live_within`, else stale. Empty when the database failed (see error()).
  std::vector<node_info> list(std::chrono::milliseconds live_within);

  /// Removes the node `name` (it leaves, or an operator removes a dead one); false when
  /// there was no such node or the database failed.
  bool remove(const std::string& name);

  /// The reason of the last call that failed ("" when none failed).
  const std::string& error() const {
    return error_;
  }

private:
  pg::connection& db_;
  std::string error_;
};

} // namespace lps::cluster
