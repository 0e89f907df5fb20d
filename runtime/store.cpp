#include "runtime/store.hpp"

#include "runtime/group_commit.hpp"
#include "runtime/sqlite_database.hpp"
#include "runtime/sqlite_result_purger.hpp"
#include "runtime/wal_checkpointer.hpp"

#include <sqlite3.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <span>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>

namespace lps {

namespace {

using sqlite::bind_text;
using sqlite::column_string;
using sqlite::database;
using sqlite::stmt_ptr;
using sqlite::stmt_scope;

constexpr int schema_version = 7;
constexpr int busy_timeout_ms = 5000;

// Page caches of the two connections. Without fsync at every commit checkpoints are the
// wal_checkpointer's (see keep_wal_short); with it, SQLite's own, inside a commit, every
// 64 MiB of WAL (sqlite_database.cpp).
constexpr uint32_t writer_cache_kib = 32768;
constexpr uint32_t reader_cache_kib = 16384;

// The partial index stays tiny: it only holds results still waiting for delivery.
// results_completed serves the retention purge (oldest first); on a file from before it,
// opening builds it once.
// Every column is NOT NULL, so a failed bind (it leaves NULL) fails the write loudly.
constexpr const char* schema_sql = R"sql(
CREATE TABLE IF NOT EXISTS requests(
  queue_id TEXT PRIMARY KEY NOT NULL,
  priority INTEGER NOT NULL,
  queued_at_ms INTEGER NOT NULL,
  size_bytes INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  payload BLOB NOT NULL,
  texts BLOB NOT NULL DEFAULT x'',
  provider TEXT NOT NULL DEFAULT '',
  bos_batch_id TEXT,
  model TEXT NOT NULL DEFAULT '',
  correlation_id TEXT NOT NULL DEFAULT '',
  cj_batch_id TEXT,
  dispatched INTEGER NOT NULL DEFAULT 0,
  status TEXT GENERATED ALWAYS AS (CASE dispatched WHEN 0 THEN 'queued' ELSE 'processing' END)
    VIRTUAL);
CREATE TABLE IF NOT EXISTS results(
  queue_id TEXT PRIMARY KEY NOT NULL,
  status TEXT NOT NULL,
  event_json TEXT NOT NULL,
  callback_url TEXT NOT NULL,
  delivered INTEGER NOT NULL,
  completed_at_ms INTEGER NOT NULL,
  delivery_failed_at_ms INTEGER NOT NULL DEFAULT 0,
  delivery_attempts INTEGER NOT NULL DEFAULT 0,
  last_delivery_error TEXT NOT NULL DEFAULT '',
  bos_batch_id TEXT,
  provider TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL DEFAULT '',
  error_code TEXT,
  correlation_id TEXT NOT NULL DEFAULT '',
  cj_batch_id TEXT,
  priority INTEGER,
  queued_at_ms INTEGER);
CREATE INDEX IF NOT EXISTS results_undelivered ON results(completed_at_ms)
  WHERE delivered = 0 AND callback_url <> '';
CREATE INDEX IF NOT EXISTS results_completed ON results(completed_at_ms);
PRAGMA user_version = 4;
)sql";

// Idempotency keys (the HTTP Idempotency-Key header, or a correlation id) and the request
// they created. Kept apart from the versioned schema so it can be added to any store; a key
// lives as long as its request's result (the trigger drops it with the result).
constexpr const char* idempotency_schema_sql = R"sql(
CREATE TABLE IF NOT EXISTS idempotency_keys(
  key TEXT PRIMARY KEY NOT NULL,
  queue_id TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS idempotency_keys_follow_results AFTER DELETE ON results
  BEGIN DELETE FROM idempotency_keys WHERE queue_id = old.queue_id; END;
)sql";
// Version 5: start-up recovery (load_index_sql) reads only this covering index of the
// scheduling columns, not the table, whose pages also hold every payload and text (a full scan
// read the whole file: 7.7 GB for 1,000,000 queued requests). Its order serves the ORDER BY up
// to the rowid tie-break, which SQLite sorts within equal (priority, queued_at_ms). Every
// insert and delete of a request pays one more index entry (docs/benchmarks.md, "Recovery
// reads the scheduling index"). Run at every open after schema_sql (which writes version 4):
// a no-op once the index exists.
constexpr const char* migrate_v5_sql = R"sql(
CREATE INDEX IF NOT EXISTS requests_schedule
  ON requests(priority DESC, queued_at_ms, queue_id, size_bytes, attempts, provider);
PRAGMA user_version = 5;
)sql";

// Version 6: the columns operators query (model, correlation and CJ batch ids, a request's
// status; a result's provider, model, error code, priority and queue time) and the indexes
// that answer "how far is batch X" from the indexes alone. A request's status is a virtual
// column computed from `dispatched`, an integer whose 0 and 1 take no bytes in the record:
// switching it rewrites no byte of the row's payload and texts, where a text status of
// another length would rewrite the whole row (docs/benchmarks.md, "Request status"). The
// indexes hold `dispatched`, not `status`: SQLite 3.40 does not answer a query from an
// index on a virtual column, it reads the row (and so the texts before it). The results'
// (bos_batch_id, completed_at_ms) replaces version 4's (bos_batch_id) index: its order also
// serves the pages of a run's results. Run at every open after migrate_v5_sql: a no-op once
// done.
constexpr const char* migrate_v6_sql = R"sql(
DROP INDEX IF EXISTS requests_bos_batch;
DROP INDEX IF EXISTS results_bos_batch;
CREATE INDEX IF NOT EXISTS requests_bos_batch_dispatched ON requests(bos_batch_id, dispatched)
  WHERE bos_batch_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS requests_cj_batch_dispatched ON requests(cj_batch_id, dispatched)
  WHERE cj_batch_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS results_bos_batch_completed ON results(bos_batch_id, completed_at_ms)
  WHERE bos_batch_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS results_cj_batch_status ON results(cj_batch_id, status)
  WHERE cj_batch_id IS NOT NULL;
PRAGMA user_version = 6;
)sql";

// Version 7: the requests marked processing, in a partial index that holds only them (a few
// per request in flight), so the start-up reset below finds them without reading the table,
// whose pages hold every payload and text. Each dispatch and each final pays one entry in
// it. Run at every open after migrate_v6_sql: a no-op once done.
constexpr const char* migrate_v7_sql = R"sql(
CREATE INDEX IF NOT EXISTS requests_processing ON requests(queue_id) WHERE dispatched = 1;
PRAGMA user_version = 7;
)sql";

// At open, before the writer starts: a request still marked processing was in flight when
// lps stopped; the recovery puts it back in the queue, so its row says queued again. Only a
// request that an unfinished provider batch job holds stays processing (the job resumes
// it). One process owns the file (data_dir_lock), so no other node can be processing it.
constexpr const char* requeue_processing_sql =
    "UPDATE requests SET dispatched = 0 WHERE dispatched = 1";
constexpr const char* requeue_processing_but_batch_owned_sql =
    "UPDATE requests SET dispatched = 0 WHERE dispatched = 1 AND queue_id NOT IN ("
    "SELECT i.queue_id FROM batch_job_items i JOIN batch_jobs j ON j.job_id = i.job_id "
    "WHERE j.state NOT IN ('collected', 'failed'))";

// The first request of a key wins.
constexpr const char* insert_idempotency_key_sql =
    "INSERT OR IGNORE INTO idempotency_keys(key, queue_id) VALUES(?1, ?2)";
constexpr const char* find_idempotency_key_sql =
    "SELECT queue_id FROM idempotency_keys WHERE key = ?1";

// Version 1 kept the texts inside payload; its rows keep working (texts stays empty).
constexpr const char* migrate_v1_sql = R"sql(
ALTER TABLE requests ADD COLUMN texts BLOB NOT NULL DEFAULT x'';
ALTER TABLE requests ADD COLUMN provider TEXT NOT NULL DEFAULT '';
PRAGMA user_version = 2;
)sql";
// Version 2 had no record of callbacks given up; its results count as not given up.
constexpr const char* migrate_v2_sql = R"sql(
ALTER TABLE results ADD COLUMN delivery_failed_at_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN delivery_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN last_delivery_error TEXT NOT NULL DEFAULT '';
PRAGMA user_version = 3;
)sql";

// Version 3 had no run column (metadata.bos_batch_id). Its rows get NULL: the run is only
// inside the serialized payload, which SQL cannot read, so their requests are not found by
// run (they finish normally).
constexpr const char* migrate_v3_requests_sql = "ALTER TABLE requests ADD COLUMN bos_batch_id TEXT";
constexpr const char* migrate_v3_results_sql = "ALTER TABLE results ADD COLUMN bos_batch_id TEXT";

// Version 5 and older had none of version 6's columns. Their rows get the defaults: their
// requests show no model, correlation or CJ batch (those sit in the serialized payload) and
// status queued (true at open: no request is processing before the queue dispatches it);
// their results show no provider, model, error code, correlation or CJ batch, and NULL
// priority and queue time (docs/operations.md shows the UPDATE that fills most of them
// from event_json).
constexpr const char* migrate_v5_requests_sql = R"sql(
ALTER TABLE requests ADD COLUMN model TEXT NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN correlation_id TEXT NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN cj_batch_id TEXT;
ALTER TABLE requests ADD COLUMN dispatched INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN status TEXT GENERATED ALWAYS AS
  (CASE dispatched WHEN 0 THEN 'queued' ELSE 'processing' END) VIRTUAL;
)sql";
constexpr const char* migrate_v5_results_sql = R"sql(
ALTER TABLE results ADD COLUMN provider TEXT NOT NULL DEFAULT '';
ALTER TABLE results ADD COLUMN model TEXT NOT NULL DEFAULT '';
ALTER TABLE results ADD COLUMN error_code TEXT;
ALTER TABLE results ADD COLUMN correlation_id TEXT NOT NULL DEFAULT '';
ALTER TABLE results ADD COLUMN cj_batch_id TEXT;
ALTER TABLE results ADD COLUMN priority INTEGER;
ALTER TABLE results ADD COLUMN queued_at_ms INTEGER;
)sql";

constexpr const char* insert_request_sql =
    "INSERT INTO requests(queue_id, priority, queued_at_ms, size_bytes, attempts, payload, "
    "texts, provider, bos_batch_id, model, correlation_id, cj_batch_id) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
// INSERT OR IGNORE: the first final result wins, so a request never gets two different
// final results (a late duplicate cannot replace one that may already be delivered).
// Priority and queue time come from the request's row, deleted right after (NULL when it is
// gone already), as on PostgreSQL.
constexpr const char* insert_result_sql =
    "INSERT OR IGNORE INTO results(queue_id, status, event_json, callback_url, delivered, "
    "completed_at_ms, bos_batch_id, provider, model, error_code, correlation_id, cj_batch_id, "
    "priority, queued_at_ms) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
    "request.priority, request.queued_at_ms FROM (SELECT 1) LEFT JOIN requests AS request "
    "ON request.queue_id = ?1";
constexpr const char* delete_request_sql = "DELETE FROM requests WHERE queue_id = ?1";
constexpr const char* mark_delivered_sql = "UPDATE results SET delivered = 1 WHERE queue_id = ?1";
constexpr const char* mark_given_up_sql =
    "UPDATE results SET delivery_failed_at_ms = ?2, delivery_attempts = ?3, "
    "last_delivery_error = ?4 WHERE queue_id = ?1";
constexpr const char* update_attempts_sql =
    "UPDATE requests SET attempts = ?2, dispatched = 0 WHERE queue_id = ?1";
constexpr const char* mark_dispatched_sql =
    "UPDATE requests SET dispatched = 1 WHERE queue_id = ?1";

constexpr const char* find_result_sql =
    "SELECT queue_id, status, event_json, callback_url, delivered, completed_at_ms, "
    "delivery_failed_at_ms, delivery_attempts, last_delivery_error FROM results WHERE queue_id = "
    "?1";
// Repeats the partial index's WHERE terms so the planner can use it; the few results given
// up stay in that index and are filtered here.
constexpr const char* load_undelivered_sql =
    "SELECT queue_id, status, event_json, callback_url, delivered, completed_at_ms, "
    "delivery_failed_at_ms, delivery_attempts, last_delivery_error FROM results "
    "WHERE delivered = 0 AND callback_url <> '' AND delivery_failed_at_ms = 0 "
    "ORDER BY completed_at_ms, rowid";
constexpr const char* load_row_sql =
    "SELECT queue_id, priority, queued_at_ms, size_bytes, attempts, payload, texts, provider "
    "FROM requests WHERE queue_id = ?1";
// Start-up reads only what scheduling needs: no payloads, so a large backlog loads fast.
constexpr const char* load_index_sql =
    "SELECT queue_id, priority, queued_at_ms, size_bytes, attempts, provider FROM requests "
    "ORDER BY priority DESC, queued_at_ms ASC, rowid ASC";
constexpr const char* count_requests_sql = "SELECT count(*) FROM requests";
constexpr const char* count_results_sql = "SELECT count(*) FROM results";
// A run's requests, read in one read transaction so no request is in both or neither.
constexpr const char* run_active_sql = "SELECT queue_id FROM requests WHERE bos_batch_id = ?1";
constexpr const char* run_finals_sql = "SELECT count(*) FROM results WHERE bos_batch_id = ?1";

// Runs summed from both tables, so a run with only active requests or only results is one
// row too; `filter` picks the runs (?2: one run), ?1 is the since_ms of the recent count.
// Cancelled is a failed status with error code CANCELLED in the event (no column holds it).
std::string run_summary_sql(std::string_view filter, std::string_view tail) {
  auto where = std::string{" WHERE "} + std::string{filter};
  return "SELECT bos_batch_id, sum(active), sum(completed), sum(failed), sum(expired), "
         "sum(cancelled), sum(recent), min(first_queued), max(last_completed), total(cost) FROM ("
         "SELECT bos_batch_id, count(*) AS active, 0 AS completed, 0 AS failed, 0 AS expired, "
         "0 AS cancelled, 0 AS recent, min(queued_at_ms) AS first_queued, max(queued_at_ms) AS "
         "latest, NULL AS last_completed, 0.0 AS cost FROM requests"
         + where
         + " GROUP BY bos_batch_id UNION ALL "
           "SELECT bos_batch_id, 0, sum(status = 'completed'), sum(status = 'failed') - "
           "sum(cancelled), sum(status = 'expired'), sum(cancelled), sum(completed_at_ms >= ?1), "
           "NULL, max(completed_at_ms), max(completed_at_ms), total(cost) FROM ("
           "SELECT bos_batch_id, status, completed_at_ms, (status = 'failed' AND "
           "json_extract(event_json, '$.data.error_detail.error_code') IS 'CANCELLED') AS "
           "cancelled, json_extract(event_json, '$.data.cost_estimate') AS cost FROM results"
         + where + ") GROUP BY bos_batch_id) GROUP BY bos_batch_id ORDER BY max(latest) DESC, "
         + "bos_batch_id" + std::string{tail};
}
const std::string runs_summary_sql = run_summary_sql("bos_batch_id IS NOT NULL", " LIMIT ?2");
const std::string one_run_summary_sql = run_summary_sql("bos_batch_id = ?2", "");
constexpr const char* run_errors_sql =
    "SELECT coalesce(json_extract(event_json, '$.data.error_detail.error_code'), 'UNKNOWN') AS "
    "code, count(*) FROM results WHERE bos_batch_id = ?1 AND status <> 'completed' "
    "GROUP BY code ORDER BY code";
// A page of a run's results after a cursor (none: ?2 the smallest integer).
constexpr const char* run_results_sql =
    "SELECT queue_id, status, event_json, callback_url, delivered, completed_at_ms, "
    "delivery_failed_at_ms, delivery_attempts, last_delivery_error FROM results "
    "WHERE bos_batch_id = ?1 AND (completed_at_ms, queue_id) > (?2, ?3) "
    "ORDER BY completed_at_ms, queue_id LIMIT ?4";

run_summary read_run_summary(sqlite3_stmt* stmt) {
  auto count_at = [&](int column) {
    return static_cast<uint64_t>(sqlite3_column_int64(stmt, column));
  };
  run_summary row;
  row.bos_batch_id = column_string(stmt, 0);
  row.active = count_at(1);
  row.completed = count_at(2);
  row.failed = count_at(3);
  row.expired = count_at(4);
  row.cancelled = count_at(5);
  row.finals_since = count_at(6);
  row.first_queued_at_ms = sqlite3_column_int64(stmt, 7);
  row.last_completed_at_ms = sqlite3_column_int64(stmt, 8);
  row.cost_estimate = sqlite3_column_double(stmt, 9);
  return row;
}

// A write of marks that nobody waits for: requests handed to a provider (dispatched) and
// results delivered. Losing one to a power failure loses no request and no result: the row
// says queued (a restart requeues processing rows anyway), or the result is delivered again
// with the same event_id, which the contract allows (its consumers drop duplicates).
bool marks_only(const store_write& write) {
  return write.inserts.empty() && write.finals.empty() && write.attempts.empty()
         && write.idempotency_keys.empty() && write.delivery_give_ups.empty();
}

// A 64-bit bind like sqlite::bind_text (sqlite_util.hpp), for the same reason.
void bind_blob(sqlite3_stmt* stmt, int index, const std::string& bytes) {
  // An empty payload is an empty blob, not NULL (which a null pointer would bind).
  sqlite3_bind_blob64(stmt, index, bytes.empty() ? "" : bytes.data(), bytes.size(), SQLITE_STATIC);
}

// A request without a run stores NULL, so the partial run indexes leave it out.
void bind_text_or_null(sqlite3_stmt* stmt, int index, const std::string& text) {
  if (text.empty())
    sqlite3_bind_null(stmt, index);
  else
    bind_text(stmt, index, text);
}

// The columns scheduling needs, first in every SELECT of requests: queue_id, priority,
// queued_at_ms, size_bytes, attempts.
stored_request read_request_head(sqlite3_stmt* stmt) {
  stored_request row;
  row.queue_id = column_string(stmt, 0);
  row.priority = sqlite3_column_int(stmt, 1);
  row.queued_at_ms = sqlite3_column_int64(stmt, 2);
  row.size_bytes = static_cast<uint64_t>(sqlite3_column_int64(stmt, 3));
  row.attempts = static_cast<uint32_t>(sqlite3_column_int64(stmt, 4));
  return row;
}

stored_request read_request(sqlite3_stmt* stmt) {
  stored_request row = read_request_head(stmt);
  row.payload = column_string(stmt, 5);
  return row;
}

stored_result read_result(sqlite3_stmt* stmt) {
  stored_result row;
  row.queue_id = column_string(stmt, 0);
  row.status = column_string(stmt, 1);
  row.event_json = column_string(stmt, 2);
  row.callback_url = column_string(stmt, 3);
  row.delivered = sqlite3_column_int(stmt, 4) != 0;
  row.completed_at_ms = sqlite3_column_int64(stmt, 5);
  row.delivery_failed_at_ms = sqlite3_column_int64(stmt, 6);
  row.delivery_attempts = static_cast<uint32_t>(sqlite3_column_int64(stmt, 7));
  row.last_delivery_error = column_string(stmt, 8);
  return row;
}

// The retention purger as the write queue runs it between commits.
class sqlite_purge_passes final : public purge_passes {
public:
  explicit sqlite_purge_passes(sqlite::result_purger& purger) : purger_(purger) {}
  bool in_pass() const override {
    return purger_.in_pass();
  }
  clock::time_point next_pass() const override {
    return purger_.next_pass();
  }
  bool step() override {
    return purger_.step();
  }

private:
  sqlite::result_purger& purger_;
};

// Runs a read; an exception (bad_alloc, a failed conversion) is logged and reads as nothing.
template <class Read>
auto guarded(const char* what, Read read) -> decltype(read()) {
  try {
    return read();
  } catch (const std::exception& e) {
    spdlog::error("store: {}: {}", what, e.what());
    if constexpr (!std::is_void_v<decltype(read())>)
      return {};
  }
}

// One read-only connection on lps.db with its statements: the store's own, and one per
// reader thread of the pool (store::open_reader). WAL mode lets it read while the writer
// commits. The mutex serialises the store's own reader, which any thread may call.
class sqlite_reader final : public store_reads {
public:
  static std::unique_ptr<sqlite_reader> open(const std::string& data_dir, std::string& error) {
    auto result = std::unique_ptr<sqlite_reader>(new sqlite_reader);
    result->db_ = database::open({.data_dir = data_dir,
                                  .purpose = sqlite::role::reader,
                                  .cache_kib = reader_cache_kib,
                                  .busy_timeout_ms = busy_timeout_ms},
                                 error);
    if (!result->db_)
      return nullptr;
    if (!result->prepare(error)) {
      error = "cannot open database '" + result->db_->path() + "': " + error;
      return nullptr;
    }
    return result;
  }

  std::optional<stored_result> find_result(const std::string& queue_id) override {
    return guarded("find_result", [&] { return find_result_row(queue_id); });
  }

  std::optional<std::string> find_idempotency_key(const std::string& key) override {
    return guarded("find_idempotency_key", [&] { return find_key(key); });
  }

  std::vector<stored_request> load_rows(const std::vector<std::string>& ids) override {
    return guarded("load_rows", [&] { return load_request_rows(ids); });
  }

  run_rows load_run(const std::string& bos_batch_id) override {
    return guarded("load_run", [&] { return load_run_rows(bos_batch_id); });
  }

  std::vector<run_summary> summarize_runs(int64_t since_ms, size_t limit) override {
    return guarded("summarize_runs", [&] { return summarize_recent_runs(since_ms, limit); });
  }

  std::optional<run_summary> summarize_run(const std::string& bos_batch_id,
                                           int64_t since_ms) override {
    return guarded("summarize_run", [&] { return summarize_one_run(bos_batch_id, since_ms); });
  }

  std::vector<stored_result> load_run_results(const std::string& bos_batch_id,
                                              const std::optional<result_cursor>& after,
                                              size_t limit) override {
    return guarded("load_run_results",
                   [&] { return load_run_result_rows(bos_batch_id, after, limit); });
  }

  // -- the store's own reads (not part of store_reads) --

  void load_index(const std::function<void(stored_request&&)>& visit) {
    guarded("load_active_index", [&] { stream_index(visit); });
  }

  std::vector<stored_result> load_undelivered() {
    return guarded("load_undelivered_results", [&] {
      return read_all<stored_result>(load_undelivered_stmt, read_result,
                                     "load_undelivered_results");
    });
  }

  uint64_t count_requests() {
    return count(count_requests_stmt.get(), "count_active_requests");
  }

  uint64_t count_results() {
    return count(count_results_stmt.get(), "count_results");
  }

private:
  sqlite_reader() = default;

  bool prepare(std::string& error) {
    database& db = *db_;
    return (find_result_stmt = db.prepare(find_result_sql, error))
           && (load_row_stmt = db.prepare(load_row_sql, error))
           && (load_index_stmt = db.prepare(load_index_sql, error))
           && (load_undelivered_stmt = db.prepare(load_undelivered_sql, error))
           && (count_requests_stmt = db.prepare(count_requests_sql, error))
           && (count_results_stmt = db.prepare(count_results_sql, error))
           && (find_idempotency_key_stmt = db.prepare(find_idempotency_key_sql, error))
           && (run_active_stmt = db.prepare(run_active_sql, error))
           && (run_finals_stmt = db.prepare(run_finals_sql, error))
           && (runs_summary_stmt = db.prepare(runs_summary_sql.c_str(), error))
           && (one_run_summary_stmt = db.prepare(one_run_summary_sql.c_str(), error))
           && (run_errors_stmt = db.prepare(run_errors_sql, error))
           && (run_results_stmt = db.prepare(run_results_sql, error));
  }

  void log_read_error(const char* what) {
    spdlog::error("store: {} failed on '{}': {}", what, db_->path(), sqlite::message(db_->get()));
  }

  template <class Row, class Reader>
  std::vector<Row> read_all(const stmt_ptr& statement, Reader reader, const char* what) {
    std::vector<Row> rows;
    std::lock_guard lock(mutex_);
    sqlite3_stmt* stmt = statement.get();
    stmt_scope scope(stmt);
    if (!sqlite::step_rows(stmt, [&](sqlite3_stmt* s) { rows.push_back(reader(s)); }))
      log_read_error(what);
    return rows;
  }

  uint64_t count(sqlite3_stmt* stmt, const char* what) {
    std::lock_guard lock(mutex_);
    stmt_scope scope(stmt);
    if (sqlite3_step(stmt) != SQLITE_ROW) {
      log_read_error(what);
      return 0;
    }
    return static_cast<uint64_t>(sqlite3_column_int64(stmt, 0));
  }

  std::vector<stored_request> load_request_rows(const std::vector<std::string>& ids) {
    std::vector<stored_request> result;
    std::lock_guard lock(mutex_);
    for (const auto& id : ids) {
      sqlite3_stmt* stmt = load_row_stmt.get();
      stmt_scope scope(stmt);
      bind_text(stmt, 1, id);
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_ROW) {
        auto row = read_request(stmt);
        row.texts = column_string(stmt, 6);
        row.provider = column_string(stmt, 7);
        result.push_back(std::move(row));
      } else if (rc != SQLITE_DONE) {
        log_read_error("load_rows");
      }
    }
    return result;
  }

  void stream_index(const std::function<void(stored_request&&)>& visit) {
    std::lock_guard lock(mutex_);
    sqlite3_stmt* stmt = load_index_stmt.get();
    stmt_scope scope(stmt);
    bool ok = sqlite::step_rows(stmt, [&](sqlite3_stmt* s) {
      stored_request row = read_request_head(s);
      row.provider = column_string(s, 5);
      visit(std::move(row));
    });
    if (!ok)
      log_read_error("load_index");
  }

  std::optional<stored_result> find_result_row(const std::string& queue_id) {
    std::lock_guard lock(mutex_);
    sqlite3_stmt* stmt = find_result_stmt.get();
    stmt_scope scope(stmt);
    bind_text(stmt, 1, queue_id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
      return read_result(stmt);
    if (rc != SQLITE_DONE)
      log_read_error("find_result");
    return std::nullopt;
  }

  // Ends a read transaction however its reader returns (a rollback ends a read like a commit).
  struct end_read {
    sqlite3* db;
    void operator()(void*) const {
      sqlite::rollback(db, nullptr);
    }
  };
  using read_transaction = std::unique_ptr<void, end_read>;

  // Opens a read transaction (mutex_ held); null when BEGIN failed.
  read_transaction begin_read(const char* what) {
    std::string error;
    if (!db_->exec("BEGIN", "begin read", error)) {
      spdlog::error("store: {}: {}", what, error);
      return read_transaction{nullptr, end_read{db_->get()}};
    }
    return read_transaction{this, end_read{db_->get()}};
  }

  std::vector<run_summary> summarize_recent_runs(int64_t since_ms, size_t limit) {
    std::vector<run_summary> rows;
    std::lock_guard lock(mutex_);
    sqlite3_stmt* stmt = runs_summary_stmt.get();
    stmt_scope scope(stmt);
    sqlite3_bind_int64(stmt, 1, since_ms);
    sqlite3_bind_int64(stmt, 2, static_cast<int64_t>(limit));
    if (!sqlite::step_rows(stmt, [&](sqlite3_stmt* s) { rows.push_back(read_run_summary(s)); }))
      log_read_error("summarize_runs");
    return rows;
  }

  // The counts and the errors in one read transaction, so they agree.
  std::optional<run_summary> summarize_one_run(const std::string& bos_batch_id, int64_t since_ms) {
    std::lock_guard lock(mutex_);
    auto txn = begin_read("summarize_run");
    if (!txn)
      return std::nullopt;
    std::optional<run_summary> summary;
    {
      sqlite3_stmt* stmt = one_run_summary_stmt.get();
      stmt_scope scope(stmt);
      sqlite3_bind_int64(stmt, 1, since_ms);
      bind_text(stmt, 2, bos_batch_id);
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_ROW)
        summary = read_run_summary(stmt);
      else if (rc != SQLITE_DONE)
        log_read_error("summarize_run");
    }
    if (!summary)
      return std::nullopt;
    sqlite3_stmt* stmt = run_errors_stmt.get();
    stmt_scope scope(stmt);
    bind_text(stmt, 1, bos_batch_id);
    if (!sqlite::step_rows(stmt, [&](sqlite3_stmt* s) {
          summary->errors_by_code[column_string(s, 0)] =
              static_cast<uint64_t>(sqlite3_column_int64(s, 1));
        }))
      log_read_error("summarize_run");
    return summary;
  }

  std::vector<stored_result> load_run_result_rows(const std::string& bos_batch_id,
                                                  const std::optional<result_cursor>& after,
                                                  size_t limit) {
    std::vector<stored_result> rows;
    // Bound without a copy: it must outlive the step.
    const std::string after_id = after ? after->queue_id : "";
    std::lock_guard lock(mutex_);
    sqlite3_stmt* stmt = run_results_stmt.get();
    stmt_scope scope(stmt);
    bind_text(stmt, 1, bos_batch_id);
    sqlite3_bind_int64(stmt, 2, after ? after->completed_at_ms : INT64_MIN);
    bind_text(stmt, 3, after_id);
    sqlite3_bind_int64(stmt, 4, static_cast<int64_t>(limit));
    if (!sqlite::step_rows(stmt, [&](sqlite3_stmt* s) { rows.push_back(read_result(s)); }))
      log_read_error("load_run_results");
    return rows;
  }

  // Both reads in one read transaction: a final write committing in between moves a
  // request from one count to the other, never into both or neither.
  run_rows load_run_rows(const std::string& bos_batch_id) {
    run_rows result;
    std::lock_guard lock(mutex_);
    auto txn = begin_read("load_run");
    if (!txn)
      return result;
    {
      stmt_scope scope(run_active_stmt.get());
      bind_text(run_active_stmt.get(), 1, bos_batch_id);
      if (!sqlite::step_rows(run_active_stmt.get(), [&](sqlite3_stmt* s) {
            result.active.push_back(column_string(s, 0));
          }))
        log_read_error("load_run");
    }
    {
      stmt_scope scope(run_finals_stmt.get());
      bind_text(run_finals_stmt.get(), 1, bos_batch_id);
      if (sqlite3_step(run_finals_stmt.get()) == SQLITE_ROW)
        result.finals = static_cast<uint64_t>(sqlite3_column_int64(run_finals_stmt.get(), 0));
      else
        log_read_error("load_run");
    }
    return result;
  }

  std::optional<std::string> find_key(const std::string& key) {
    std::lock_guard lock(mutex_);
    sqlite3_stmt* stmt = find_idempotency_key_stmt.get();
    stmt_scope scope(stmt);
    bind_text(stmt, 1, key);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
      return column_string(stmt, 0);
    if (rc != SQLITE_DONE)
      log_read_error("find_idempotency_key");
    return std::nullopt;
  }

  // The connection is declared first so the statements are finalized before it closes.
  std::unique_ptr<database> db_;
  std::mutex mutex_;
  stmt_ptr find_result_stmt, load_undelivered_stmt;
  stmt_ptr load_row_stmt, load_index_stmt;
  stmt_ptr count_requests_stmt, count_results_stmt, find_idempotency_key_stmt;
  stmt_ptr run_active_stmt, run_finals_stmt;
  stmt_ptr runs_summary_stmt, one_run_summary_stmt, run_errors_stmt, run_results_stmt;
};

} // namespace

// The SQLite implementation of the store contract (store.hpp).
class sqlite_store final : public store {
public:
  struct impl;
  explicit sqlite_store(std::unique_ptr<impl> ptr);
  ~sqlite_store() override;

  void submit(store_write write, store_callback done) override;
  void flush() override;
  std::optional<stored_result> find_result(const std::string& queue_id) override;
  std::optional<std::string> find_idempotency_key(const std::string& key) override;
  void load_active_index(const std::function<void(stored_request&&)>& visit) override;
  std::vector<stored_request> load_rows(const std::vector<std::string>& queue_ids) override;
  std::vector<stored_result> load_undelivered_results() override;
  void purge_expired_results() override;
  std::unique_ptr<store_reads> open_reader(std::string& error) override;
  uint64_t count_active_requests() override;
  uint64_t count_results() override;
  run_rows load_run(const std::string& bos_batch_id) override;
  std::vector<run_summary> summarize_runs(int64_t since_ms, size_t limit) override;
  std::optional<run_summary> summarize_run(const std::string& bos_batch_id,
                                           int64_t since_ms) override;
  std::vector<stored_result> load_run_results(const std::string& bos_batch_id,
                                              const std::optional<result_cursor>& after,
                                              size_t limit) override;
  store_stats stats() const override;
  const std::string& path() const override;

private:
  std::unique_ptr<impl> impl_;
};

struct sqlite_store::impl {
  explicit impl(store_options opts) : options(std::move(opts)) {}

  // The queue's writer uses the connections, the purger and the checkpointer: it stops first.
  ~impl() {
    if (queue)
      queue->stop();
  }

  store_options options;
  std::string db_path;

  // Connections are declared before statements so statements are finalized first.
  std::unique_ptr<database> write_db;
  /// The store's own read connection (recovery, tools, tests; the reader pool opens more).
  std::unique_ptr<sqlite_reader> reader;

  stmt_ptr insert_request_stmt, insert_result_stmt, delete_request_stmt;
  stmt_ptr mark_delivered_stmt, update_attempts_stmt, insert_idempotency_key_stmt;
  stmt_ptr mark_given_up_stmt, mark_dispatched_stmt;
  /// Retention (null when results are kept forever); writer thread only.
  std::unique_ptr<sqlite::result_purger> purger;

  /// The purger as the queue runs it (null when results are kept forever).
  std::unique_ptr<sqlite_purge_passes> retention;
  /// Group commit (made once the databases are open).
  std::unique_ptr<group_commit_queue> queue;

  std::atomic<uint64_t> writer_checkpoints{0};

  // Declared after the connections: it stops (and closes its own) first.
  std::unique_ptr<wal_checkpointer> checkpointer;
  /// Frames in the WAL after the last commit (writer thread only; from the WAL hook).
  int wal_frames = 0;

  // -- opening --

  bool open_databases(std::string& error) {
    return open_writer(error) && open_reader(error);
  }

  bool open_writer(std::string& error) {
    write_db = database::open({.data_dir = options.data_dir,
                               .purpose = sqlite::role::writer,
                               .fsync_every_commit = options.fsync_every_commit,
                               .cache_kib = writer_cache_kib,
                               .busy_timeout_ms = busy_timeout_ms},
                              error);
    if (!write_db)
      return false;
    db_path = write_db->path();
    if (!create_schema(error) || !prepare_writer(error) || !create_purger(error)) {
      error = "cannot open database '" + db_path + "': " + error;
      return false;
    }
    if (checkpoints_in_background()) // replaces SQLite's automatic checkpoint
      sqlite3_wal_hook(write_db->get(), &impl::on_wal_commit, this);
    return true;
  }

  bool create_purger(std::string& error) {
    if (options.result_retention.count() <= 0)
      return true;
    purger = sqlite::result_purger::create(*write_db, options.result_retention, error);
    return purger != nullptr;
  }

  static int on_wal_commit(void* self, sqlite3*, const char*, int frames) {
    static_cast<impl*>(self)->wal_frames = frames;
    return SQLITE_OK;
  }

  bool checkpoints_in_background() const {
    return options.wal_checkpoint_frames > 0 && !options.fsync_every_commit;
  }

  bool start_checkpointer(std::string& error) {
    if (!checkpoints_in_background())
      return true;
    checkpointer = wal_checkpointer::start(options.data_dir, busy_timeout_ms, error);
    return checkpointer != nullptr;
  }

  // After each transaction. A long WAL is checkpointed by the background thread. A WAL
  // only restarts from its beginning once a checkpoint caught up with every commit, which
  // steady commits (or a starved background thread) can keep from happening; so at 8 times
  // the threshold the writer waits, between two commits, for a RESTART checkpoint: it
  // copies what is left (most frames are copied already) and the next commit starts the WAL
  // from its beginning. Without the thread (manual commits) the writer runs it itself.
  void keep_wal_short() {
    auto threshold = static_cast<int>(options.wal_checkpoint_frames);
    if (!checkpoints_in_background() || wal_frames < threshold)
      return;
    if (wal_frames < 8 * threshold) {
      if (checkpointer)
        checkpointer->request();
      return;
    }
    if (checkpointer) {
      checkpointer->restart();
    } else if (int rc = sqlite3_wal_checkpoint_v2(write_db->get(), nullptr,
                                                  SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
               rc != SQLITE_OK && rc != SQLITE_BUSY) {
      spdlog::warn("store: WAL checkpoint failed: {}", sqlite::message(write_db->get()));
    }
    ++writer_checkpoints;
    wal_frames = 0;
  }

  bool create_schema(std::string& error) {
    int version = 0;
    if (!read_user_version(version, error))
      return false;
    if (version > schema_version) {
      error = "unsupported schema version " + std::to_string(version) + " (this build knows "
              + std::to_string(schema_version) + ")";
      return false;
    }
    auto created = write_db->transaction(
        [&](std::string& err) {
          return (version != 1 || write_db->exec(migrate_v1_sql, "migrate schema", err))
                 && migrate_v2(version, err) && migrate_v3(version, err) && migrate_v5(version, err)
                 && write_db->exec(schema_sql, "create schema", err)
                 && write_db->exec(idempotency_schema_sql, "create schema", err)
                 && write_db->exec(migrate_v5_sql, "migrate schema", err)
                 && write_db->exec(migrate_v6_sql, "migrate schema", err)
                 && write_db->exec(migrate_v7_sql, "migrate schema", err)
                 && requeue_processing(err);
        },
        error);
    return created == sqlite::txn_outcome::committed;
  }

  // See requeue_processing_sql. The batch job tables exist once a batch job store opened
  // the file.
  bool requeue_processing(std::string& error) {
    bool has_batch_jobs = false;
    return has_table("batch_job_items", has_batch_jobs, error)
           && write_db->exec(has_batch_jobs ? requeue_processing_but_batch_owned_sql
                                            : requeue_processing_sql,
                             "requeue processing requests", error);
  }

  // A version 1 file may have no results table yet: the schema then creates it whole.
  bool migrate_v2(int version, std::string& error) {
    if (version != 1 && version != 2)
      return true;
    bool has_results = false;
    return has_table("results", has_results, error)
           && (!has_results || write_db->exec(migrate_v2_sql, "migrate schema", error));
  }

  // Adds the run column to whichever of the two tables an older file has (the schema
  // creates a missing one whole).
  bool migrate_v3(int version, std::string& error) {
    if (version < 1 || version > 3)
      return true;
    bool has_requests = false;
    bool has_results = false;
    return has_table("requests", has_requests, error) && has_table("results", has_results, error)
           && (!has_requests || write_db->exec(migrate_v3_requests_sql, "migrate schema", error))
           && (!has_results || write_db->exec(migrate_v3_results_sql, "migrate schema", error));
  }

  // Adds version 6's columns to whichever of the two tables an older file has without them
  // (the schema creates a missing table whole).
  bool migrate_v5(int version, std::string& error) {
    if (version < 1 || version > 5)
      return true;
    bool old_requests = false;
    bool old_results = false;
    return lacks_column("requests", "dispatched", old_requests, error)
           && lacks_column("results", "error_code", old_results, error)
           && (!old_requests || write_db->exec(migrate_v5_requests_sql, "migrate schema", error))
           && (!old_results || write_db->exec(migrate_v5_results_sql, "migrate schema", error));
  }

  bool has_table(const std::string& name, bool& exists, std::string& error) {
    stmt_ptr stmt =
        write_db->prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", error);
    if (!stmt)
      return false;
    bind_text(stmt.get(), 1, name);
    exists = sqlite3_step(stmt.get()) == SQLITE_ROW;
    return true;
  }

  // True in `lacks` when the table exists without the column (a file stamped with an older
  // version may have it already).
  bool lacks_column(const std::string& table, const std::string& column, bool& lacks,
                    std::string& error) {
    bool exists = false;
    if (!has_table(table, exists, error))
      return false;
    stmt_ptr stmt = write_db->prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", error);
    if (!stmt)
      return false;
    bind_text(stmt.get(), 1, table);
    bind_text(stmt.get(), 2, column);
    lacks = exists && sqlite3_step(stmt.get()) != SQLITE_ROW;
    return true;
  }

  bool read_user_version(int& version, std::string& error) {
    stmt_ptr stmt = write_db->prepare("PRAGMA user_version", error);
    if (!stmt)
      return false;
    if (sqlite3_step(stmt.get()) != SQLITE_ROW) {
      error = "read schema version: " + sqlite::message(write_db->get());
      return false;
    }
    version = sqlite3_column_int(stmt.get(), 0);
    return true;
  }

  bool prepare_writer(std::string& error) {
    database& db = *write_db;
    return (insert_request_stmt = db.prepare(insert_request_sql, error))
           && (insert_result_stmt = db.prepare(insert_result_sql, error))
           && (delete_request_stmt = db.prepare(delete_request_sql, error))
           && (mark_delivered_stmt = db.prepare(mark_delivered_sql, error))
           && (update_attempts_stmt = db.prepare(update_attempts_sql, error))
           && (mark_dispatched_stmt = db.prepare(mark_dispatched_sql, error))
           && (mark_given_up_stmt = db.prepare(mark_given_up_sql, error))
           && (insert_idempotency_key_stmt = db.prepare(insert_idempotency_key_sql, error));
  }

  bool open_reader(std::string& error) {
    reader = sqlite_reader::open(options.data_dir, error);
    return reader != nullptr;
  }

  // -- queue --

  // Starts group commit: the writer thread (not with manual commits), which checkpoints a
  // long WAL after each commit and runs the retention's purge steps between commits.
  void start_queue() {
    if (purger)
      retention = std::make_unique<sqlite_purge_passes>(*purger);
    queue = std::make_unique<group_commit_queue>(
        options.max_ops_per_commit, options.manual_commits,
        group_commit_backend{
            .commit = [this](std::span<const queued_write> writes,
                             std::string& error) { return run_transaction(writes, error); },
            .after_commit = [this] { keep_wal_short(); },
            .retention = retention.get()});
    queue->start();
  }

  commit_outcome run_transaction(std::span<const queued_write> writes, std::string& error) {
    if (!set_synchronous(writes, error))
      return commit_outcome::txn_failed;
    auto result = write_db->transaction(
        [&](std::string& err) {
          for (const auto& w : writes)
            if (!apply(w.write, err))
              return false;
          return true;
        },
        error);
    switch (result) {
    case sqlite::txn_outcome::committed:
      return commit_outcome::committed;
    case sqlite::txn_outcome::body_failed:
      return commit_outcome::write_failed;
    case sqlite::txn_outcome::txn_failed:
      return commit_outcome::txn_failed;
    }
    return commit_outcome::txn_failed;
  }

  // Sets the writer's synchronous level for the next transaction, every time: with Debian's
  // SQLite 3.40.1 the synchronous=FULL set at open fell back to NORMAL (no fsync at commit)
  // once the first transaction after opening committed, so a store opened on its own did not
  // fsync its commits (store_sync_test); only the service's other start-up work happened to
  // bring FULL back. With fsync on, a
  // transaction of marks only (marks_only) commits without an fsync: under NORMAL in WAL
  // mode it survives a crash of lps, and the next commit that fsyncs the WAL (an insert's,
  // a final's, a checkpoint) makes it durable too, as the WAL is written in order. At one
  // request in flight those marks are two of the four commits per request, and the insert or
  // final behind them would wait for their fsync (docs/benchmarks.md, "Queue-path latency").
  // Writer thread only.
  bool set_synchronous(std::span<const queued_write> writes, std::string& error) {
    bool full = options.fsync_every_commit
                && !std::all_of(writes.begin(), writes.end(),
                                [](const queued_write& w) { return marks_only(w.write); });
    // Not a statement prepared once: SQLite applies a PRAGMA's setting when it compiles it.
    return write_db->exec(full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                          "set synchronous", error);
  }

  // Steps a bound write statement once; the error names the operation and queue id.
  bool step_done(sqlite3_stmt* stmt, const char* what, const std::string& queue_id,
                 std::string& error) {
    return sqlite::step_done(write_db->get(), stmt, what, queue_id, error);
  }

  bool apply(const store_write& write, std::string& error) {
    for (const auto& row : write.inserts)
      if (!insert_request(row, error))
        return false;
    for (const auto& row : write.finals)
      if (!record_final(row, error))
        return false;
    for (const auto& id : write.delivered)
      if (!mark_delivered(id, error))
        return false;
    for (const auto& [id, attempts] : write.attempts)
      if (!update_attempts(id, attempts, error))
        return false;
    for (const auto& [key, id] : write.idempotency_keys)
      if (!insert_idempotency_key(key, id, error))
        return false;
    for (const auto& give_up : write.delivery_give_ups)
      if (!mark_given_up(give_up, error))
        return false;
    for (const auto& id : write.dispatched)
      if (!mark_dispatched(id, error))
        return false;
    return true;
  }

  bool insert_idempotency_key(const std::string& key, const std::string& queue_id,
                              std::string& error) {
    sqlite3_stmt* stmt = insert_idempotency_key_stmt.get();
    bind_text(stmt, 1, key);
    bind_text(stmt, 2, queue_id);
    return step_done(stmt, "insert idempotency key", queue_id, error);
  }

  bool insert_request(const stored_request& row, std::string& error) {
    sqlite3_stmt* stmt = insert_request_stmt.get();
    bind_text(stmt, 1, row.queue_id);
    sqlite3_bind_int(stmt, 2, row.priority);
    sqlite3_bind_int64(stmt, 3, row.queued_at_ms);
    sqlite3_bind_int64(stmt, 4, static_cast<int64_t>(row.size_bytes));
    sqlite3_bind_int64(stmt, 5, row.attempts);
    bind_blob(stmt, 6, row.payload);
    bind_blob(stmt, 7, row.texts);
    bind_text(stmt, 8, row.provider);
    bind_text_or_null(stmt, 9, row.bos_batch_id);
    bind_text(stmt, 10, row.model);
    bind_text(stmt, 11, row.correlation_id);
    bind_text_or_null(stmt, 12, row.cj_batch_id);
    return step_done(stmt, "insert request", row.queue_id, error);
  }

  bool record_final(const stored_result& row, std::string& error) {
    sqlite3_stmt* stmt = insert_result_stmt.get();
    bind_text(stmt, 1, row.queue_id);
    bind_text(stmt, 2, row.status);
    bind_text(stmt, 3, row.event_json);
    bind_text(stmt, 4, row.callback_url);
    sqlite3_bind_int(stmt, 5, row.delivered ? 1 : 0);
    sqlite3_bind_int64(stmt, 6, row.completed_at_ms);
    bind_text_or_null(stmt, 7, row.bos_batch_id);
    bind_text(stmt, 8, row.provider);
    bind_text(stmt, 9, row.model);
    bind_text_or_null(stmt, 10, row.error_code);
    bind_text(stmt, 11, row.correlation_id);
    bind_text_or_null(stmt, 12, row.cj_batch_id);
    if (!step_done(stmt, "insert result", row.queue_id, error))
      return false;
    // The request goes even when an earlier result won: it is final either way.
    bind_text(delete_request_stmt.get(), 1, row.queue_id);
    return step_done(delete_request_stmt.get(), "delete request", row.queue_id, error);
  }

  bool mark_delivered(const std::string& queue_id, std::string& error) {
    bind_text(mark_delivered_stmt.get(), 1, queue_id);
    return step_done(mark_delivered_stmt.get(), "mark delivered", queue_id, error);
  }

  bool mark_dispatched(const std::string& queue_id, std::string& error) {
    bind_text(mark_dispatched_stmt.get(), 1, queue_id);
    return step_done(mark_dispatched_stmt.get(), "mark dispatched", queue_id, error);
  }

  bool mark_given_up(const delivery_give_up& give_up, std::string& error) {
    sqlite3_stmt* stmt = mark_given_up_stmt.get();
    bind_text(stmt, 1, give_up.queue_id);
    sqlite3_bind_int64(stmt, 2, give_up.failed_at_ms);
    sqlite3_bind_int64(stmt, 3, give_up.attempts);
    bind_text(stmt, 4, give_up.last_error);
    return step_done(stmt, "mark delivery given up", give_up.queue_id, error);
  }

  bool update_attempts(const std::string& queue_id, uint32_t attempts, std::string& error) {
    sqlite3_stmt* stmt = update_attempts_stmt.get();
    bind_text(stmt, 1, queue_id);
    sqlite3_bind_int64(stmt, 2, attempts);
    return step_done(stmt, "update attempts", queue_id, error);
  }
};

sqlite_store::sqlite_store(std::unique_ptr<impl> ptr) : impl_(std::move(ptr)) {}

sqlite_store::~sqlite_store() = default;

std::unique_ptr<store> store::open(const store_options& options, std::string& error) {
  try {
    auto state = std::make_unique<sqlite_store::impl>(options);
    if (!state->open_databases(error))
      return nullptr;
    if (!options.manual_commits && !state->start_checkpointer(error))
      return nullptr;
    state->start_queue();
    return std::make_unique<sqlite_store>(std::move(state));
  } catch (const std::exception& e) {
    error = "cannot open store in '" + options.data_dir + "': " + e.what();
    return nullptr;
  }
}

std::optional<std::string> sqlite_store::find_idempotency_key(const std::string& key) {
  return impl_->reader->find_idempotency_key(key);
}

void sqlite_store::submit(store_write write, store_callback done) {
  impl_->queue->submit(std::move(write), std::move(done));
}

void sqlite_store::flush() {
  impl_->queue->flush();
}

std::optional<stored_result> sqlite_store::find_result(const std::string& queue_id) {
  return impl_->reader->find_result(queue_id);
}

std::vector<stored_request> sqlite_store::load_rows(const std::vector<std::string>& queue_ids) {
  return impl_->reader->load_rows(queue_ids);
}

void sqlite_store::load_active_index(const std::function<void(stored_request&&)>& visit) {
  impl_->reader->load_index(visit);
}

std::vector<stored_result> sqlite_store::load_undelivered_results() {
  return impl_->reader->load_undelivered();
}

void sqlite_store::purge_expired_results() {
  impl_->queue->purge_expired_results();
}

std::unique_ptr<store_reads> sqlite_store::open_reader(std::string& error) {
  return sqlite_reader::open(impl_->options.data_dir, error);
}

uint64_t sqlite_store::count_active_requests() {
  return impl_->reader->count_requests();
}

uint64_t sqlite_store::count_results() {
  return impl_->reader->count_results();
}

run_rows sqlite_store::load_run(const std::string& bos_batch_id) {
  return impl_->reader->load_run(bos_batch_id);
}

std::vector<run_summary> sqlite_store::summarize_runs(int64_t since_ms, size_t limit) {
  return impl_->reader->summarize_runs(since_ms, limit);
}

std::optional<run_summary> sqlite_store::summarize_run(const std::string& bos_batch_id,
                                                       int64_t since_ms) {
  return impl_->reader->summarize_run(bos_batch_id, since_ms);
}

std::vector<stored_result> sqlite_store::load_run_results(const std::string& bos_batch_id,
                                                          const std::optional<result_cursor>& after,
                                                          size_t limit) {
  return impl_->reader->load_run_results(bos_batch_id, after, limit);
}

store_stats sqlite_store::stats() const {
  store_stats out = impl_->queue->stats();
  out.background_checkpoints = impl_->checkpointer ? impl_->checkpointer->checkpoints() : 0;
  out.writer_checkpoints = impl_->writer_checkpoints.load();
  out.results_purged = impl_->purger ? impl_->purger->purged() : 0;
  out.purge_steps = impl_->purger ? impl_->purger->steps() : 0;
  return out;
}

const std::string& sqlite_store::path() const {
  return impl_->db_path;
}

} // namespace lps
