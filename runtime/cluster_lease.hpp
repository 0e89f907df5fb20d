#pragma once

// The cluster's leader lease in PostgreSQL (issue #11): one row per lease in `cluster_lease`
// (schema version 3) naming its holder, a fencing epoch and when it expires. Every time is
// the database server's clock (now()), so the nodes' clocks never matter. A new holder
// always gets the previous epoch + 1; final writes carry the epoch they were made under and
// pass through the fencing guard below, so a leader that was paused or cut off past its
// lease can never write once another node took over. Plain C++ on a libpq connection of
// its own (a renewal must not wait behind the store's group commits); nothing here knows an
// actor. docs/cluster.md.

#include "runtime/postgres.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace lps::cluster {

/// The name of the lease whose holder runs the cluster's singletons.
inline constexpr const char* leader_lease = "leader";

/// A lease row as the database sees it now.
struct lease_state {
  std::string holder;
  int64_t epoch = 0;
  /// expires_at is still ahead of the database's clock.
  bool live = false;
  /// How long the lease still runs by the database's clock (negative once expired).
  std::chrono::milliseconds remaining{0};
};

class lease {
public:
  /// A lease named `name` in the database of `db`, which must hold schema version 3 or
  /// later. `db` outlives this object.
  explicit lease(pg::connection& db, std::string name = leader_lease);

  /// Takes the lease for `node` for `ttl` when nobody holds it or its holder's lease has
  /// expired (also when that holder is `node`: a restarted node gets a new epoch). Returns
  /// the new epoch (the previous one + 1, or 1 for a new lease), or nothing when another
  /// holder's lease is live or the database failed (then error() says why). Of several
  /// nodes trying at once, one wins.
  std::optional<int64_t> try_acquire(const std::string& node, std::chrono::milliseconds ttl);

  /// Extends the lease to `ttl` from now while `node` still holds it at `epoch`: true, or
  /// false when another node took it over (the caller steps down) or the database failed.
  /// A lease that expired but was taken by nobody is extended too: its epoch is unchanged,
  /// so no other node has led in between.
  bool renew(const std::string& node, int64_t epoch, std::chrono::milliseconds ttl);

  /// Ends the lease at once (on shutdown), so the next holder need not wait out the ttl;
  /// the epoch stays, so that holder gets epoch + 1. False when `node` no longer held it at
  /// `epoch`, or the database failed.
  bool release(const std::string& node, int64_t epoch);

  /// The lease row; nothing when no node ever held the lease or the database failed.
  std::optional<lease_state> read();

  /// The database's reason of the last call that failed ("" when none failed).
  const std::string& error() const {
    return error_;
  }

private:
  pg::connection& db_;
  std::string name_;
  std::string error_;
};

/// Runs one statement of the cluster's tables, reconnecting first when the server went away
/// (the lease and the registry outlive a database restart); `error` gets the reason of a
/// failure, "" on success.
pg::result exec_reconnecting(pg::connection& db, const std::string& sql,
                             const std::vector<std::optional<std::string>>& params,
                             std::string& error);

/// The fencing guard as an SQL condition for a final write's WHERE clause, with the epoch in
/// parameter $`epoch_param` (e.g. `fencing_condition(3)` for $3): true while the leader lease
/// is live at that epoch. It locks the lease row until the transaction ends, so the write
/// either commits before a takeover or affects no rows:
/// `UPDATE results SET delivered = true WHERE queue_id = $1 AND <fencing_condition(2)>`.
std::string fencing_condition(int epoch_param);

} // namespace lps::cluster
