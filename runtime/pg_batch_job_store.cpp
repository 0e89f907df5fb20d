#include "runtime/pg_batch_job_store.hpp"

#include "runtime/pg_schema.hpp"
#include "runtime/postgres.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace lps {

namespace {

// clang-format cannot lay out strings joined around macros.
// clang-format off

// Parameter and column order shared by insert, update and every SELECT of a whole job.
#define LPS_BATCH_JOB_COLUMNS                                                                      \
  "job_id, provider, model, state, provider_job_id, file_id, result_locations, "                   \
  "provider_status, last_error, cancel_requested, item_count, succeeded, failed, "                 \
  "created_at_ms, submitted_at_ms, updated_at_ms, ended_at_ms"

constexpr const char* insert_job_sql =
    "INSERT INTO batch_jobs(" LPS_BATCH_JOB_COLUMNS ") VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, "
    "$10::boolean, $11::bigint, $12::bigint, $13::bigint, $14::bigint, $15::bigint, $16::bigint, "
    "$17::bigint)";
constexpr const char* update_job_sql =
    "UPDATE batch_jobs SET provider = $2, model = $3, state = $4, provider_job_id = $5, "
    "file_id = $6, result_locations = $7, provider_status = $8, last_error = $9, "
    "cancel_requested = $10::boolean, item_count = $11::bigint, succeeded = $12::bigint, "
    "failed = $13::bigint, created_at_ms = $14::bigint, submitted_at_ms = $15::bigint, "
    "updated_at_ms = $16::bigint, ended_at_ms = $17::bigint WHERE job_id = $1";
// Every item in one statement (a job holds up to 100,000). A row of an unfinished job stays
// as it is (not counted: the caller reports it); one left behind by a final job is taken over.
constexpr const char* insert_items_sql =
    "INSERT INTO batch_job_items(queue_id, job_id, seq) "
    "SELECT item, $2, position - 1 FROM unnest($1::text[]) WITH ORDINALITY AS t(item, position) "
    "ON CONFLICT (queue_id) DO UPDATE SET job_id = excluded.job_id, seq = excluded.seq "
    "WHERE NOT EXISTS (SELECT 1 FROM batch_jobs j WHERE j.job_id = batch_job_items.job_id "
    "AND j.state NOT IN ('collected', 'failed'))";
constexpr const char* other_owners_sql =
    "SELECT queue_id, job_id FROM batch_job_items WHERE queue_id = ANY($1::text[]) "
    "AND job_id <> $2";
constexpr const char* delete_items_sql = "DELETE FROM batch_job_items WHERE job_id = $1";
constexpr const char* find_job_sql =
    "SELECT " LPS_BATCH_JOB_COLUMNS " FROM batch_jobs WHERE job_id = $1";
constexpr const char* load_unfinished_sql =
    "SELECT " LPS_BATCH_JOB_COLUMNS " FROM batch_jobs WHERE provider = $1 "
    "AND state NOT IN ('collected', 'failed') ORDER BY created_at_ms ASC, seq ASC";
constexpr const char* list_sql =
    "SELECT " LPS_BATCH_JOB_COLUMNS " FROM batch_jobs ORDER BY created_at_ms DESC, seq DESC "
    "LIMIT $1::bigint";
constexpr const char* load_items_sql =
    "SELECT queue_id FROM batch_job_items WHERE job_id = $1 ORDER BY seq ASC";
constexpr const char* load_owned_sql =
    "SELECT i.queue_id, i.job_id FROM batch_job_items i JOIN batch_jobs j "
    "ON j.job_id = i.job_id WHERE j.state NOT IN ('collected', 'failed')";

// clang-format on
#undef LPS_BATCH_JOB_COLUMNS

using params = std::vector<std::optional<std::string>>;

// Unsigned counters are stored bit for bit as PostgreSQL's signed bigint (as on SQLite).
std::string as_bigint(uint64_t x) {
  return std::to_string(static_cast<int64_t>(x));
}

// $1..$17 in the column order shared by insert_job_sql and update_job_sql.
params job_params(const batch_job_record& job) {
  return {job.job_id,
          job.provider,
          job.model,
          job.state,
          job.provider_job_id,
          job.file_id,
          encode_result_locations(job.result_locations),
          job.provider_status,
          job.last_error,
          job.cancel_requested ? "true" : "false",
          as_bigint(job.item_count),
          as_bigint(job.succeeded),
          as_bigint(job.failed),
          std::to_string(job.created_at_ms),
          std::to_string(job.submitted_at_ms),
          std::to_string(job.updated_at_ms),
          std::to_string(job.ended_at_ms)};
}

// Every column is NOT NULL.
const std::string& text(const pg::row& r, size_t i) {
  return *r.at(i);
}

int64_t integer(const pg::row& r, size_t i) {
  return std::stoll(text(r, i));
}

batch_job_record read_job(const pg::row& r) {
  batch_job_record job;
  job.job_id = text(r, 0);
  job.provider = text(r, 1);
  job.model = text(r, 2);
  job.state = text(r, 3);
  job.provider_job_id = text(r, 4);
  job.file_id = text(r, 5);
  job.result_locations = decode_result_locations(text(r, 6));
  job.provider_status = text(r, 7);
  job.last_error = text(r, 8);
  job.cancel_requested = text(r, 9) == "t";
  job.item_count = static_cast<uint64_t>(integer(r, 10));
  job.succeeded = static_cast<uint64_t>(integer(r, 11));
  job.failed = static_cast<uint64_t>(integer(r, 12));
  job.created_at_ms = integer(r, 13);
  job.submitted_at_ms = integer(r, 14);
  job.updated_at_ms = integer(r, 15);
  job.ended_at_ms = integer(r, 16);
  return job;
}

// A text[] literal: every element quoted, '"' and '\' escaped.
std::string array_literal(const std::vector<std::string>& xs) {
  std::string out = "{";
  for (const auto& x : xs) {
    if (out.size() > 1)
      out += ',';
    out += '"';
    for (char c : x) {
      if (c == '"' || c == '\\')
        out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

// An empty or repeated item id, in the order given (SQLite's store reports the same).
bool check_item_ids(const std::string& job_id, const std::vector<std::string>& item_ids,
                    std::string& error) {
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < item_ids.size(); ++i) {
    if (item_ids[i].empty()) {
      error = "batch job '" + job_id + "': empty item id at position " + std::to_string(i);
      return false;
    }
    if (!seen.insert(item_ids[i]).second) {
      error = "batch job '" + job_id + "': item '" + item_ids[i] + "' is listed twice";
      return false;
    }
  }
  return true;
}

constexpr const char* unique_violation = "23505";

class pg_batch_job_store final : public batch_job_store {
public:
  pg_batch_job_store(std::unique_ptr<pg::connection> db, std::string masked_url)
      : db_(std::move(db)), path_(std::move(masked_url)) {}

  bool create(const batch_job_record& job, const std::vector<std::string>& item_ids,
              std::string& error) override {
    return create_at(0, job, item_ids, error);
  }

  bool update(const batch_job_record& job, std::string& error) override {
    return update_at(0, job, error);
  }

  bool finish(const batch_job_record& job, std::string& error) override {
    return finish_at(0, job, error);
  }

  std::unique_ptr<batch_job_store> fenced(int64_t epoch) override;

  // The writes of a leader at `epoch` (0: not fenced, a single node).
  bool create_at(int64_t epoch, const batch_job_record& job,
                 const std::vector<std::string>& item_ids, std::string& error) {
    if (job.job_id.empty()) {
      error = "batch job id is empty";
      return false;
    }
    if (!check_item_ids(job.job_id, item_ids, error))
      return false;
    return write(epoch, "create batch job '" + job.job_id + "'", error, [&](std::string& err) {
      return insert_job(job, err) && insert_items(job.job_id, item_ids, err);
    });
  }

  bool update_at(int64_t epoch, const batch_job_record& job, std::string& error) {
    return write(epoch, "update batch job '" + job.job_id + "'", error,
                 [&](std::string& err) { return update_job(job, err); });
  }

  bool finish_at(int64_t epoch, const batch_job_record& job, std::string& error) {
    if (!is_final_batch_job_state(job.state)) {
      error = "finish batch job '" + job.job_id + "': state '" + job.state
              + "' is not final (collected or failed)";
      return false;
    }
    return write(epoch, "finish batch job '" + job.job_id + "'", error, [&](std::string& err) {
      if (!update_job(job, err))
        return false;
      auto r = db_->exec(delete_items_sql, {job.job_id});
      if (!r.ok)
        err = "batch job '" + job.job_id + "': release items: " + r.error;
      return r.ok;
    });
  }

  std::optional<batch_job_record> find(const std::string& job_id) override {
    auto jobs = read_jobs("find", find_job_sql, {job_id});
    if (jobs.empty())
      return std::nullopt;
    return std::move(jobs.front());
  }

  std::vector<batch_job_record> load_unfinished(const std::string& provider) override {
    return read_jobs("load_unfinished", load_unfinished_sql, {provider});
  }

  std::vector<std::string> load_items(const std::string& job_id) override {
    std::vector<std::string> items;
    for (const auto& r : read("load_items", load_items_sql, {job_id}))
      items.push_back(text(r, 0));
    return items;
  }

  std::unordered_map<std::string, std::string> load_owned_items() override {
    std::unordered_map<std::string, std::string> owned;
    for (const auto& r : read("load_owned_items", load_owned_sql, {}))
      owned.emplace(text(r, 0), text(r, 1));
    return owned;
  }

  std::vector<batch_job_record> list(size_t limit) override {
    constexpr auto max = static_cast<size_t>(std::numeric_limits<int64_t>::max());
    return read_jobs("list", list_sql, {std::to_string(std::min(limit, max))});
  }

  const std::string& path() const override {
    return path_;
  }

private:
  // -- connection --

  // A connection the server dropped is reopened before the next statement.
  bool connected(std::string& error) {
    if (db_->healthy() || db_->reset())
      return true;
    error = "the database at " + path_ + " is unreachable";
    return false;
  }

  // -- writes (under mutex_) --

  // Runs body in one transaction; `context` prefixes the error of BEGIN or COMMIT. With an
  // epoch the transaction first requires the leader lease at it (lps_require_lease, schema
  // version 5), which also holds the lease row until COMMIT, so a takeover waits for it.
  template <class Body>
  bool write(int64_t epoch, const std::string& context, std::string& error, Body&& body) {
    try {
      std::lock_guard lock(mutex_);
      if (!connected(error))
        return false;
      if (auto r = db_->exec("BEGIN"); !r.ok) {
        error = context + ": " + r.error;
        return false;
      }
      if (epoch > 0)
        if (auto r = db_->exec("SELECT lps_require_lease('leader', $1)", {std::to_string(epoch)});
            !r.ok) {
          error = context + ": " + r.error;
          db_->exec("ROLLBACK");
          return false;
        }
      if (!body(error)) {
        db_->exec("ROLLBACK");
        return false;
      }
      if (auto r = db_->exec("COMMIT"); !r.ok) {
        error = context + ": " + r.error;
        return false;
      }
      return true;
    } catch (const std::exception& e) {
      error = context + ": " + e.what();
      return false;
    }
  }

  bool insert_job(const batch_job_record& job, std::string& error) {
    auto r = db_->exec(insert_job_sql, job_params(job));
    if (r.ok)
      return true;
    if (r.sqlstate == unique_violation)
      error = "batch job '" + job.job_id + "' already exists";
    else
      error = "insert batch job '" + job.job_id + "': " + r.error;
    return false;
  }

  // Changes every column; fails for an unknown job.
  bool update_job(const batch_job_record& job, std::string& error) {
    auto r = db_->exec(update_job_sql, job_params(job));
    if (!r.ok)
      error = "update batch job '" + job.job_id + "': " + r.error;
    else if (r.affected == 0)
      error = "unknown batch job '" + job.job_id + "'";
    return r.ok && r.affected > 0;
  }

  bool insert_items(const std::string& job_id, const std::vector<std::string>& item_ids,
                    std::string& error) {
    auto ids = array_literal(item_ids);
    auto r = db_->exec(insert_items_sql, {ids, job_id});
    if (!r.ok) {
      error = "batch job '" + job_id + "': insert items: " + r.error;
      return false;
    }
    if (r.affected == item_ids.size())
      return true;
    report_owned(job_id, item_ids, ids, error);
    return false;
  }

  // Some item insert changed nothing: the first such item belongs to an unfinished job.
  void report_owned(const std::string& job_id, const std::vector<std::string>& item_ids,
                    const std::string& ids, std::string& error) {
    std::unordered_map<std::string, std::string> owners;
    for (const auto& r : db_->exec(other_owners_sql, {ids, job_id}).rows)
      owners.emplace(*r.at(0), *r.at(1));
    for (const auto& id : item_ids)
      if (auto i = owners.find(id); i != owners.end()) {
        error = "batch job '" + job_id + "': item '" + id
                + "' already belongs to unfinished batch job '" + i->second + "'";
        return;
      }
    error = "batch job '" + job_id + "': some items already belong to an unfinished batch job";
  }

  // -- reads (under mutex_): empty on failure, which is logged --

  std::vector<pg::row> read(const char* what, const char* sql, const params& args) {
    try {
      std::lock_guard lock(mutex_);
      std::string error;
      if (!connected(error)) {
        spdlog::error("batch_job_store: {} failed: {}", what, error);
        return {};
      }
      auto r = db_->exec(sql, args);
      if (!r.ok)
        spdlog::error("batch_job_store: {} failed on {}: {}", what, path_, r.error);
      return std::move(r.rows);
    } catch (const std::exception& e) {
      spdlog::error("batch_job_store: {}: {}", what, e.what());
      return {};
    }
  }

  std::vector<batch_job_record> read_jobs(const char* what, const char* sql, const params& args) {
    std::vector<batch_job_record> jobs;
    for (const auto& r : read(what, sql, args))
      jobs.push_back(read_job(r));
    return jobs;
  }

  std::mutex mutex_;
  std::unique_ptr<pg::connection> db_;
  /// The URL with its password masked (path() names the store in logs).
  std::string path_;
};

// A leader's view (batch_job_store::fenced): its writes carry its epoch, reads go through.
class fenced_pg_batch_job_store final : public batch_job_store {
public:
  fenced_pg_batch_job_store(pg_batch_job_store& shared, int64_t epoch)
      : shared_(shared), epoch_(epoch) {}

  bool create(const batch_job_record& job, const std::vector<std::string>& item_ids,
              std::string& error) override {
    return shared_.create_at(epoch_, job, item_ids, error);
  }
  bool update(const batch_job_record& job, std::string& error) override {
    return shared_.update_at(epoch_, job, error);
  }
  bool finish(const batch_job_record& job, std::string& error) override {
    return shared_.finish_at(epoch_, job, error);
  }
  std::optional<batch_job_record> find(const std::string& job_id) override {
    return shared_.find(job_id);
  }
  std::vector<batch_job_record> load_unfinished(const std::string& provider) override {
    return shared_.load_unfinished(provider);
  }
  std::vector<std::string> load_items(const std::string& job_id) override {
    return shared_.load_items(job_id);
  }
  std::unordered_map<std::string, std::string> load_owned_items() override {
    return shared_.load_owned_items();
  }
  std::vector<batch_job_record> list(size_t limit) override {
    return shared_.list(limit);
  }
  const std::string& path() const override {
    return shared_.path();
  }

private:
  pg_batch_job_store& shared_;
  int64_t epoch_;
};

std::unique_ptr<batch_job_store> pg_batch_job_store::fenced(int64_t epoch) {
  return std::make_unique<fenced_pg_batch_job_store>(*this, epoch);
}

} // namespace

std::unique_ptr<batch_job_store>
open_postgres_batch_job_store(const std::string& url, std::string& error,
                              std::chrono::seconds connect_timeout) {
  auto db = pg::connection::open(url, connect_timeout, error);
  if (!db)
    return nullptr;
  if (auto report = pg::migrate(*db); !report.error.empty()) {
    error = "batch job store at " + pg::masked_url(url) + ": " + report.error;
    return nullptr;
  }
  return std::make_unique<pg_batch_job_store>(std::move(db), pg::masked_url(url));
}

} // namespace lps
