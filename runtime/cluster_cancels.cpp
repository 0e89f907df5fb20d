#include "runtime/cluster_cancels.hpp"

#include "runtime/cluster_lease.hpp"

namespace lps::cluster {

namespace {

uint64_t count_of(const std::optional<std::string>& text) {
  return text ? std::stoull(*text) : 0;
}

/// `ids` as a PostgreSQL array literal for a `$n::bigint[]` parameter.
std::string array_of(const std::vector<int64_t>& ids) {
  std::string out = "{";
  for (size_t i = 0; i < ids.size(); ++i)
    out += (i > 0 ? "," : "") + std::to_string(ids[i]);
  return out + "}";
}

} // namespace

std::optional<int64_t> record_cancel(pg::connection& db, const cancel_ask& ask,
                                     const std::string& node, std::string& error) {
  auto r = exec_reconnecting(db,
                             "INSERT INTO cluster_cancels(queue_id, bos_batch_id, requested_by) "
                             "VALUES($1, $2, $3) RETURNING id",
                             {ask.queue_id, ask.bos_batch_id, node}, error);
  if (!r.ok || r.rows.empty())
    return std::nullopt;
  return std::stoll(r.rows[0][0].value_or("0"));
}

std::vector<cancel_answer> read_answers(pg::connection& db, const std::vector<int64_t>& ids,
                                        std::string& error) {
  auto r = exec_reconnecting(db,
                             "SELECT id, cancelled, already_processing, already_final, not_found "
                             "FROM cluster_cancels WHERE id = ANY($1::bigint[]) "
                             "AND answered_at IS NOT NULL",
                             {array_of(ids)}, error);
  std::vector<cancel_answer> out;
  for (const auto& row : r.rows)
    out.push_back({std::stoll(row[0].value_or("0")),
                   {count_of(row[1]), count_of(row[2]), count_of(row[3]), count_of(row[4])}});
  return out;
}

std::vector<cancel_ask> read_open_cancels(pg::connection& db, std::string& error) {
  auto r = exec_reconnecting(db,
                             "SELECT id, queue_id, bos_batch_id FROM cluster_cancels "
                             "WHERE answered_at IS NULL ORDER BY id",
                             {}, error);
  std::vector<cancel_ask> out;
  for (const auto& row : r.rows)
    out.push_back({std::stoll(row[0].value_or("0")), row[1].value_or(""), row[2].value_or("")});
  return out;
}

bool record_answer(pg::connection& db, const cancel_answer& answer, std::string& error) {
  const auto& c = answer.counts;
  auto r = exec_reconnecting(db,
                             "UPDATE cluster_cancels SET answered_at = now(), cancelled = $2, "
                             "already_processing = $3, already_final = $4, not_found = $5 "
                             "WHERE id = $1 AND answered_at IS NULL",
                             {std::to_string(answer.id), std::to_string(c.cancelled),
                              std::to_string(c.already_processing), std::to_string(c.already_final),
                              std::to_string(c.not_found)},
                             error);
  return r.ok;
}

void forget_answered(pg::connection& db, std::chrono::seconds age) {
  std::string error;
  exec_reconnecting(db,
                    "DELETE FROM cluster_cancels WHERE answered_at < now() - make_interval(secs "
                    "=> $1::double precision)",
                    {std::to_string(age.count())}, error);
}

} // namespace lps::cluster
