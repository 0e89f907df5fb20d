#include "runtime/cluster_registry.hpp"

#include "runtime/cluster_lease.hpp"

namespace lps::cluster {

namespace {

// A name whose heartbeat is live stays with its holder: the upsert updates nothing and
// returns no row.
constexpr const char* register_sql = R"sql(
INSERT INTO cluster_nodes AS n(name, host, port, version, roles) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (name) DO UPDATE
  SET host = excluded.host, port = excluded.port, version = excluded.version,
      roles = excluded.roles, incarnation = nextval('cluster_node_incarnations'),
      started_at = now(), heartbeat_at = now(), leaving = false
  WHERE n.heartbeat_at <= now() - $6::bigint * interval '1 millisecond'
RETURNING incarnation)sql";

constexpr const char* heartbeat_sql = R"sql(
UPDATE cluster_nodes SET heartbeat_at = now() WHERE name = $1 AND incarnation = $2)sql";

constexpr const char* list_sql = R"sql(
SELECT name, host, port, version, roles, incarnation,
       to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
       to_char(heartbeat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
       round(extract(epoch FROM now() - heartbeat_at) * 1000)::bigint,
       heartbeat_at > now() - $1::bigint * interval '1 millisecond', leaving
  FROM cluster_nodes ORDER BY name)sql";

constexpr const char* leaving_sql = R"sql(
UPDATE cluster_nodes SET leaving = true WHERE name = $1 AND incarnation = $2)sql";

node_info node_of(const pg::row& row) {
  node_info result;
  result.node = {*row[0], *row[1], static_cast<uint16_t>(std::stoi(*row[2])), *row[3], *row[4]};
  result.incarnation = std::stoll(*row[5]);
  result.started_at = *row[6];
  result.heartbeat_at = *row[7];
  result.heartbeat_age = std::chrono::milliseconds{std::stoll(*row[8])};
  result.live = row[9] == "t";
  result.leaving = row[10] == "t";
  return result;
}

} // namespace

node_registry::node_registry(pg::connection& db) : db_(db) {}

std::optional<int64_t> node_registry::register_node(const node_registration& self,
                                                    std::chrono::milliseconds live_within) {
  auto r = exec_reconnecting(db_, register_sql,
                             {self.name, self.host, std::to_string(self.port), self.version,
                              self.roles, std::to_string(live_within.count())},
                             error_);
  if (!r.ok)
    return std::nullopt;
  if (r.rows.empty()) {
    error_ = "node name '" + self.name
             + "' is held by a live node: CLUSTER_NODE_NAME must be unique in the cluster";
    return std::nullopt;
  }
  return std::stoll(*r.rows[0][0]);
}

bool node_registry::mark_leaving(const std::string& name, int64_t incarnation) {
  auto r = exec_reconnecting(db_, leaving_sql, {name, std::to_string(incarnation)}, error_);
  return r.ok && r.affected == 1;
}

bool node_registry::heartbeat(const std::string& name, int64_t incarnation) {
  auto r = exec_reconnecting(db_, heartbeat_sql, {name, std::to_string(incarnation)}, error_);
  return r.ok && r.affected == 1;
}

std::vector<node_info> node_registry::list(std::chrono::milliseconds live_within) {
  auto r = exec_reconnecting(db_, list_sql, {std::to_string(live_within.count())}, error_);
  std::vector<node_info> result;
  for (const auto& row : r.rows)
    result.push_back(node_of(row));
  return result;
}

bool node_registry::remove(const std::string& name) {
  auto r = exec_reconnecting(db_, "DELETE FROM cluster_nodes WHERE name = $1", {name}, error_);
  return r.ok && r.affected == 1;
}

} // namespace lps::cluster
