#include "runtime/cluster_lease.hpp"

namespace lps::cluster {

namespace {

// One statement, so two nodes racing for the lease serialise on its row: the loser's
// ON CONFLICT sees the winner's committed row, whose expiry is ahead, and updates nothing.
constexpr const char* acquire_sql = R"sql(
INSERT INTO cluster_lease AS l(name, holder, epoch, acquired_at, renewed_at, expires_at)
  VALUES ($1, $2, 1, now(), now(), now() + $3::bigint * interval '1 millisecond')
ON CONFLICT (name) DO UPDATE
  SET holder = excluded.holder, epoch = l.epoch + 1, acquired_at = now(), renewed_at = now(),
      expires_at = excluded.expires_at
  WHERE l.expires_at <= now()
RETURNING epoch)sql";

constexpr const char* renew_sql = R"sql(
UPDATE cluster_lease
  SET renewed_at = now(), expires_at = now() + $4::bigint * interval '1 millisecond'
  WHERE name = $1 AND holder = $2 AND epoch = $3)sql";

constexpr const char* release_sql = R"sql(
UPDATE cluster_lease SET expires_at = now()
  WHERE name = $1 AND holder = $2 AND epoch = $3)sql";

constexpr const char* read_sql = R"sql(
SELECT holder, epoch, expires_at > now(),
       round(extract(epoch FROM expires_at - now()) * 1000)::bigint
  FROM cluster_lease WHERE name = $1)sql";

} // namespace

lease::lease(pg::connection& db, std::string name) : db_(db), name_(std::move(name)) {}

pg::result exec_reconnecting(pg::connection& db, const std::string& sql,
                             const std::vector<std::optional<std::string>>& params,
                             std::string& error) {
  if (!db.healthy())
    db.reset();
  auto result = db.exec(sql, params);
  error = result.ok ? "" : result.error;
  return result;
}

std::optional<int64_t> lease::try_acquire(const std::string& node, std::chrono::milliseconds ttl) {
  auto r = exec_reconnecting(db_, acquire_sql, {name_, node, std::to_string(ttl.count())}, error_);
  if (!r.ok || r.rows.empty())
    return std::nullopt;
  return std::stoll(*r.rows[0][0]);
}

bool lease::renew(const std::string& node, int64_t epoch, std::chrono::milliseconds ttl) {
  auto r = exec_reconnecting(
      db_, renew_sql, {name_, node, std::to_string(epoch), std::to_string(ttl.count())}, error_);
  return r.ok && r.affected == 1;
}

bool lease::release(const std::string& node, int64_t epoch) {
  auto r = exec_reconnecting(db_, release_sql, {name_, node, std::to_string(epoch)}, error_);
  return r.ok && r.affected == 1;
}

std::optional<lease_state> lease::read() {
  auto r = exec_reconnecting(db_, read_sql, {name_}, error_);
  if (!r.ok || r.rows.empty())
    return std::nullopt;
  const auto& row = r.rows[0];
  return lease_state{*row[0], std::stoll(*row[1]), row[2] == "t",
                     std::chrono::milliseconds{std::stoll(*row[3])}};
}

std::string fencing_condition(int epoch_param) {
  return std::string{"lps_lease_held('"} + leader_lease + "', $" + std::to_string(epoch_param)
         + "::bigint)";
}

} // namespace lps::cluster
