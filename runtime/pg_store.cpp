#include "runtime/pg_store.hpp"

#include "runtime/group_commit.hpp"
#include "runtime/pg_schema.hpp"
#include "runtime/pg_write_set.hpp"
#include "runtime/postgres.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <exception>
#include <map>
#include <mutex>
#include <span>
#include <thread>
#include <utility>

namespace lps {

namespace {

using pg::param;

// Times are timestamptz columns; the store contract speaks Unix milliseconds. Both
// conversions are exact (timestamptz keeps microseconds, extract() returns numeric).
#define LPS_TS(p) "(timestamptz 'epoch' + " p "::bigint * interval '1 millisecond')"
#define LPS_MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"

// clang-format cannot lay out strings joined around macros.
// clang-format off

// A result is delivered when it has no row in results_undelivered (schema version 8).
#define LPS_DELIVERED(results)                                                                     \
  "NOT EXISTS (SELECT 1 FROM results_undelivered u WHERE u.queue_id = " results ".queue_id)"

// Oldest first; a result still waiting for its callback stays (the outbox). Its undelivered
// row, if any, goes with it (the trigger of schema version 8).
constexpr const char* purge_step_sql =
    "DELETE FROM results WHERE queue_id IN (SELECT queue_id FROM results "
    "WHERE completed_at < " LPS_TS("$1") " "
    "AND (callback_url = '' OR delivery_failed_at IS NOT NULL OR " LPS_DELIVERED("results") ") "
    "ORDER BY completed_at LIMIT $2::integer)";

constexpr const char* result_columns =
    "SELECT queue_id, status, event_json, callback_url, " LPS_DELIVERED("results") ", "
    LPS_MS("completed_at") ", "
    "coalesce(" LPS_MS("delivery_failed_at") ", 0), delivery_attempts, "
    "coalesce(last_delivery_error, '') FROM results ";
// The columns scheduling needs come first in every SELECT of requests.
constexpr const char* request_head =
    "SELECT queue_id, priority, " LPS_MS("queued_at") ", size_bytes, attempts, ";
// The start-up recovery scan: exactly the order and columns of the index requests_recovery
// (runtime/pg_schema.cpp, version 6), which answers it without a sort.
const std::string recovery_scan_sql = std::string{request_head}
    + "provider FROM requests ORDER BY priority DESC, queued_at, seq";

// Runs summed from both tables, so a run with only active requests or only results is one
// row too; `filter` picks the runs ($2: one run), $1 is the since_ms of the recent count.
// Cancelled is a failed status with error code CANCELLED in the event (no column holds it).
std::string run_summary_sql(const std::string& filter, const std::string& tail) {
  auto where = " WHERE " + filter;
  return "SELECT bos_batch_id, sum(active)::bigint, sum(completed)::bigint, sum(failed)::bigint, "
         "sum(expired)::bigint, sum(cancelled)::bigint, sum(recent)::bigint, "
         LPS_MS("min(first_queued)") ", " LPS_MS("max(last_completed)") ", sum(cost)::float8 FROM ("
         "SELECT bos_batch_id, count(*) AS active, 0::bigint AS completed, 0::bigint AS failed, "
         "0::bigint AS expired, 0::bigint AS cancelled, 0::bigint AS recent, min(queued_at) AS "
         "first_queued, max(queued_at) AS latest, NULL::timestamptz AS last_completed, "
         "0::float8 AS cost FROM requests" + where + " GROUP BY bos_batch_id UNION ALL "
         "SELECT bos_batch_id, 0, count(*) FILTER (WHERE status = 'completed'), "
         "count(*) FILTER (WHERE status = 'failed' AND NOT cancelled), "
         "count(*) FILTER (WHERE status = 'expired'), count(*) FILTER (WHERE cancelled), "
         "count(*) FILTER (WHERE completed_at >= " LPS_TS("$1") "), NULL, max(completed_at), "
         "max(completed_at), coalesce(sum(cost), 0) FROM ("
         "SELECT bos_batch_id, status, completed_at, (status = 'failed' AND coalesce("
         "event_json::jsonb #>> '{data,error_detail,error_code}' = 'CANCELLED', false)) AS "
         "cancelled, (event_json::jsonb #>> '{data,cost_estimate}')::float8 AS cost FROM results"
         + where + ") AS finals GROUP BY bos_batch_id) AS runs GROUP BY bos_batch_id "
         "ORDER BY max(latest) DESC, bos_batch_id" + tail;
}
// One run's summary row, then one row per error code: (NULL, count, ..., code), so both come
// from one statement's snapshot.
std::string one_run_summary_sql() {
  return "SELECT *, NULL::text FROM (" + run_summary_sql("bos_batch_id = $2", "")
         + ") AS summary UNION ALL SELECT NULL, count(*), 0, 0, 0, 0, 0, NULL, NULL, 0, "
           "coalesce(event_json::jsonb #>> '{data,error_detail,error_code}', 'UNKNOWN') AS code "
           "FROM results WHERE bos_batch_id = $2 AND status <> 'completed' GROUP BY code";
}
// A page of a run's results after a cursor ($2 NULL: from the first).
const std::string run_results_sql = std::string{result_columns}
    + "WHERE bos_batch_id = $1 AND ($2::bigint IS NULL OR (completed_at, queue_id) > ("
      LPS_TS("$2") ", $3)) ORDER BY completed_at, queue_id LIMIT $4::bigint";

// clang-format on

#undef LPS_TS
#undef LPS_MS
#undef LPS_DELIVERED

constexpr int64_t purge_rows_per_step = 100;

// Rows of the recovery scan per round trip: a few MB of answer in memory at a time, and 50
// round trips for 1,000,000 requests.
constexpr size_t index_rows_per_chunk = 20000;

// Waits between attempts when the server goes away during start-up (as during an outage).
constexpr std::chrono::milliseconds start_backoff_first{100};
constexpr std::chrono::milliseconds start_backoff_max{5000};

// Write statements sent in one round trip (a pipeline) before their results are read: the
// round trips are what a commit waits for. Bounded, so the few bytes the server answers per
// statement never fill the socket while lps is still sending, and the array parameters of
// only so many statements are in memory at once.
constexpr size_t statements_per_round_trip = 16;
// Rows in one set-based statement at most (pg_write_set.hpp): a 6 KB request is 6 MB of
// parameters per statement.
constexpr size_t rows_per_statement = 1000;

std::string text_of(const pg::row& row, size_t column) {
  return row[column].value_or("");
}

// An absent id or code is NULL, not "", as in the SQLite store: no run is named "".
param null_if_empty(const std::string& text) {
  if (text.empty())
    return {};
  return {text};
}

// A request without a run has no run.
param run_of(const std::string& bos_batch_id) {
  return null_if_empty(bos_batch_id);
}

int64_t int_of(const pg::row& row, size_t column) {
  return row[column] ? std::stoll(*row[column]) : 0;
}

// Columns of run_summary_sql, in its order.
run_summary read_run_summary(const pg::row& row) {
  auto count_at = [&](size_t column) { return static_cast<uint64_t>(int_of(row, column)); };
  run_summary out;
  out.bos_batch_id = text_of(row, 0);
  out.active = count_at(1);
  out.completed = count_at(2);
  out.failed = count_at(3);
  out.expired = count_at(4);
  out.cancelled = count_at(5);
  out.finals_since = count_at(6);
  out.first_queued_at_ms = int_of(row, 7);
  out.last_completed_at_ms = int_of(row, 8);
  out.cost_estimate = row[9] ? std::stod(*row[9]) : 0.0;
  return out;
}

stored_request read_request_head(const pg::row& row) {
  stored_request out;
  out.queue_id = text_of(row, 0);
  out.priority = static_cast<int32_t>(int_of(row, 1));
  out.queued_at_ms = int_of(row, 2);
  out.size_bytes = static_cast<uint64_t>(int_of(row, 3));
  out.attempts = static_cast<uint32_t>(int_of(row, 4));
  return out;
}

// A whole number in a text column; 0 when it is not one (never, for the columns read).
template <typename T>
T number_of(std::string_view text) {
  T value{};
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

// A row of recovery_scan_sql, parsed in place (a million of them at a restart).
stored_request read_index_row(const pg::row_ref& row) {
  stored_request out;
  out.queue_id = row.text(0);
  out.priority = number_of<int32_t>(row.text(1));
  out.queued_at_ms = number_of<int64_t>(row.text(2));
  out.size_bytes = number_of<uint64_t>(row.text(3));
  out.attempts = number_of<uint32_t>(row.text(4));
  out.provider = row.text(5);
  return out;
}

stored_result read_result(const pg::row& row) {
  stored_result out;
  out.queue_id = text_of(row, 0);
  out.status = text_of(row, 1);
  out.event_json = text_of(row, 2);
  out.callback_url = text_of(row, 3);
  out.delivered = text_of(row, 4) == "t";
  out.completed_at_ms = int_of(row, 5);
  out.delivery_failed_at_ms = int_of(row, 6);
  out.delivery_attempts = static_cast<uint32_t>(int_of(row, 7));
  out.last_delivery_error = text_of(row, 8);
  return out;
}

// libpq's message on one line ("ERROR: ...; DETAIL: ...").
std::string one_line(std::string message) {
  for (auto at = message.find('\n'); at != std::string::npos; at = message.find('\n', at))
    message.replace(at, 1, "; ");
  return message;
}

int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Seconds a reader connection of the pool may take to connect (as the store's own).
constexpr std::chrono::seconds reader_connect_timeout{10};

// One reader connection with its prepared reads: the store's own, and one per reader thread
// of the pool (store::open_reader). The mutex serialises the store's own reader, which any
// thread may call.
class pg_reader final : public store_reads {
public:
  static std::unique_ptr<pg_reader> open(const std::string& url,
                                         std::chrono::seconds connect_timeout, std::string& error) {
    auto db = pg::connection::open(url, connect_timeout, error);
    if (!db)
      return nullptr;
    return std::unique_ptr<pg_reader>(new pg_reader(pg::masked_url(url), std::move(db)));
  }

  std::optional<stored_result> find_result(const std::string& queue_id) override {
    auto r = read(std::string{result_columns} + "WHERE queue_id = $1", {{queue_id}}, "find_result");
    if (r.rows.empty())
      return std::nullopt;
    return read_result(r.rows.front());
  }

  std::optional<std::string> find_idempotency_key(const std::string& key) override {
    auto r = read("SELECT queue_id FROM idempotency_keys WHERE key = $1", {{key}},
                  "find_idempotency_key");
    if (r.rows.empty())
      return std::nullopt;
    return text_of(r.rows.front(), 0);
  }

  std::vector<stored_request> load_rows(const std::vector<std::string>& queue_ids) override {
    std::vector<stored_request> rows;
    auto sql = std::string{request_head}
               + "payload, texts, provider, EXISTS (SELECT 1 FROM requests_processing p WHERE "
                 "p.queue_id = requests.queue_id) FROM requests WHERE queue_id = $1";
    for (const auto& id : queue_ids) {
      auto r = read(sql, {{id}}, "load_rows");
      if (r.rows.empty())
        continue;
      auto out = read_request_head(r.rows.front());
      out.payload = pg::decode_bytea(text_of(r.rows.front(), 5));
      out.texts = pg::decode_bytea(text_of(r.rows.front(), 6));
      out.provider = text_of(r.rows.front(), 7);
      out.processing = text_of(r.rows.front(), 8) == "t";
      rows.push_back(std::move(out));
    }
    return rows;
  }

  // One statement, so one snapshot: the run's active queue ids, then a row with a NULL id
  // holding the count of its final results.
  run_rows load_run(const std::string& bos_batch_id) override {
    run_rows out;
    auto r = read("SELECT queue_id, 0::bigint FROM requests WHERE bos_batch_id = $1 "
                  "UNION ALL SELECT NULL, count(*) FROM results WHERE bos_batch_id = $1",
                  {run_of(bos_batch_id)}, "load_run");
    for (const auto& row : r.rows) {
      if (row[0])
        out.active.push_back(text_of(row, 0));
      else
        out.finals = static_cast<uint64_t>(int_of(row, 1));
    }
    return out;
  }

  std::vector<run_summary> summarize_runs(int64_t since_ms, size_t limit) override {
    static const std::string sql = run_summary_sql("bos_batch_id IS NOT NULL", " LIMIT $2");
    auto r = read(sql, {{std::to_string(since_ms)}, {std::to_string(limit)}}, "summarize_runs");
    std::vector<run_summary> rows;
    rows.reserve(r.rows.size());
    for (const auto& row : r.rows)
      rows.push_back(read_run_summary(row));
    return rows;
  }

  std::optional<run_summary> summarize_run(const std::string& bos_batch_id,
                                           int64_t since_ms) override {
    static const std::string sql = one_run_summary_sql();
    auto r = read(sql, {{std::to_string(since_ms)}, {bos_batch_id}}, "summarize_run");
    std::optional<run_summary> summary;
    std::map<std::string, uint64_t> errors;
    for (const auto& row : r.rows) {
      if (row[0])
        summary = read_run_summary(row);
      else
        errors[text_of(row, 10)] = static_cast<uint64_t>(int_of(row, 1));
    }
    if (summary)
      summary->errors_by_code = std::move(errors);
    return summary;
  }

  std::vector<stored_result> load_run_results(const std::string& bos_batch_id,
                                              const std::optional<result_cursor>& after,
                                              size_t limit) override {
    param after_ms, after_id;
    if (after) {
      after_ms = {std::to_string(after->completed_at_ms)};
      after_id = {after->queue_id};
    }
    auto r = read(run_results_sql, {{bos_batch_id}, after_ms, after_id, {std::to_string(limit)}},
                  "load_run_results");
    std::vector<stored_result> rows;
    rows.reserve(r.rows.size());
    for (const auto& row : r.rows)
      rows.push_back(read_result(row));
    return rows;
  }

  // -- the store's own reads (not part of store_reads) --

  // The recovery scan at start, in chunks of a cursor over requests_recovery (schema
  // version 6: an index in the scan's order holding its columns, so no sort and, on pages
  // the visibility map marks all-visible, no read of the table). A connection lost in it is
  // retried with backoff from the row it reached (each attempt logged): nothing writes
  // requests before it ends, so the order of the rows stays the same.
  void load_index(const std::function<void(stored_request&&)>& visit) {
    size_t visited = 0;
    auto delay = start_backoff_first;
    for (int attempt = 1;; ++attempt) {
      size_t skip = visited;
      auto lost = !fetch_index(recovery_scan_sql, [&](const pg::row_ref& row) {
        if (skip > 0) {
          --skip;
          return;
        }
        visit(read_index_row(row));
        ++visited;
      });
      if (!lost)
        return;
      spdlog::warn("store: lost {} while loading active requests (attempt {}, {} loaded); "
                   "retrying in {} ms",
                   masked_, attempt, visited, delay.count());
      std::this_thread::sleep_for(delay);
      delay = std::min(delay * 2, start_backoff_max);
    }
  }

  // See pg_store::load_active_index. The marks are the rows of requests_processing (schema
  // version 8), a few per provider call in flight, so the DELETE reads them alone.
  void requeue_processing() {
    auto r = read("DELETE FROM requests_processing WHERE queue_id NOT IN ("
                  "SELECT i.queue_id FROM batch_job_items i JOIN batch_jobs j ON j.job_id = "
                  "i.job_id WHERE j.state NOT IN ('collected', 'failed'))",
                  {}, "requeue_processing");
    if (r.ok && r.affected > 0)
      spdlog::info("store: {} requests that were processing when lps stopped are queued again",
                   r.affected);
  }

  std::vector<stored_result> load_undelivered() {
    // The few results in results_undelivered (schema version 8), not a scan of all of them.
    auto r = read(std::string{result_columns}
                      + "WHERE queue_id IN (SELECT queue_id FROM results_undelivered) AND "
                        "callback_url <> '' AND delivery_failed_at IS NULL "
                        "ORDER BY completed_at, seq",
                  {}, "load_undelivered_results");
    std::vector<stored_result> rows;
    rows.reserve(r.rows.size());
    for (const auto& row : r.rows)
      rows.push_back(read_result(row));
    return rows;
  }

  uint64_t count(const std::string& sql, const char* what) {
    auto r = read(sql, {}, what);
    return r.rows.empty() ? 0 : static_cast<uint64_t>(int_of(r.rows.front(), 0));
  }

private:
  pg_reader(std::string masked, std::unique_ptr<pg::connection> db)
      : masked_(std::move(masked)), db_(std::move(db)) {}

  pg::result read(const std::string& sql, const std::vector<param>& params, const char* what) {
    std::lock_guard lock(mutex_);
    auto name = prepared_read(sql);
    if (name.empty())
      return {};
    auto r = db_->exec_prepared(name, params);
    if (!r.ok)
      log_read_error(what, r);
    return r;
  }

  // A visit that throws ends the scan; the error is logged, as the SQLite store does.
  // False when the connection was lost (and reset) on the way.
  bool fetch_index(const std::string& sql, const std::function<void(const pg::row_ref&)>& visit) {
    std::lock_guard lock(mutex_);
    try {
      if (auto r = db_->fetch_in_chunks(sql, index_rows_per_chunk, visit); !r.ok) {
        auto lost = !db_->healthy();
        log_read_error("load_active", r);
        return !lost;
      }
    } catch (const std::exception& e) {
      spdlog::error("store: loading active requests: {}", e.what());
    }
    return true;
  }

  // Each read statement is prepared once on the reader connection; "" when that failed
  // (logged).
  std::string prepared_read(const std::string& sql) {
    auto [it, added] = statements_.try_emplace(sql, "r" + std::to_string(statements_.size()));
    if (added) {
      if (auto why = db_->prepare(it->second, sql); !why.empty()) {
        statements_.erase(it);
        spdlog::error("store: cannot prepare a read on {}: {}", masked_, one_line(why));
        return "";
      }
    }
    return it->second;
  }

  void log_read_error(const char* what, const pg::result& r) {
    spdlog::error("store: {} failed on {}: {}", what, masked_, one_line(r.error));
    if (!db_->healthy() && db_->reset())
      statements_.clear(); // a new session has none of them
  }

  std::string masked_;
  std::unique_ptr<pg::connection> db_;
  std::mutex mutex_;
  /// Read statement text -> its prepared name on the connection.
  std::map<std::string, std::string> statements_;
};

} // namespace

// The PostgreSQL implementation of the store contract (store.hpp). Its queue, group commit,
// one-by-one retry of a failed batch and flush() are the SQLite store's (group_commit.hpp);
// its purge passes run between commits as the SQLite purger's do.
class pg_store final : public store, private purge_passes {
public:
  pg_store(std::string url, store_options options)
      : url_(std::move(url)), masked_(pg::masked_url(url_)), options_(std::move(options)),
        queue_(options_.max_ops_per_commit, options_.manual_commits,
               {.commit = [this](std::span<const queued_write> writes,
                                 std::string& error) { return run_transaction(writes, error); },
                .after_commit = {},
                .retention = retains() ? this : nullptr,
                .reconnect = [this](std::string& error) { return reconnect(error); },
                .probe = [this](std::string& error) { return probe(error); }}) {}

  // The queue's writer uses the writer connection: it stops first.
  ~pg_store() override {
    queue_.stop();
  }

  // A server unreachable at the first connect refuses the start (the caller exits 2); one
  // that goes away after it is waited for (set_up_writer).
  bool open(std::chrono::seconds connect_timeout, std::string& error) {
    writer_db_ = pg::connection::open(url_, connect_timeout, error);
    if (!writer_db_)
      return false;
    if (!set_up_writer(error))
      return false;
    reader_ = pg_reader::open(url_, connect_timeout, error);
    if (!reader_)
      return false;
    queue_.start();
    return true;
  }

  // -- the contract --

  void submit(store_write write, store_callback done) override {
    queue_.submit(std::move(write), std::move(done));
  }

  void flush() override {
    queue_.flush();
  }

  std::optional<stored_result> find_result(const std::string& queue_id) override {
    return reader_->find_result(queue_id);
  }

  std::optional<std::string> find_idempotency_key(const std::string& key) override {
    return reader_->find_idempotency_key(key);
  }

  // The start-up recovery: a request still marked processing was in flight when its node
  // stopped and goes back to the queue, so its row says queued first (one UPDATE; a request
  // an unfinished provider batch job holds stays processing: the job resumes it). Here, in
  // the path that rebuilds the queue's index, not at open: a cluster will share the
  // database, and only a node that owns the whole queue (the only node, or the leader
  // recovering it) may put other nodes' requests back. A failed UPDATE (logged) leaves the
  // rows as they were: they say queued again at their next write.
  void load_active_index(const std::function<void(stored_request&&)>& visit) override {
    reader_->requeue_processing();
    reader_->load_index(visit);
  }

  std::vector<stored_request> load_rows(const std::vector<std::string>& queue_ids) override {
    return reader_->load_rows(queue_ids);
  }

  std::vector<stored_result> load_undelivered_results() override {
    return reader_->load_undelivered();
  }

  void purge_expired_results() override {
    queue_.purge_expired_results();
  }

  std::unique_ptr<store_reads> open_reader(std::string& error) override {
    return pg_reader::open(url_, reader_connect_timeout, error);
  }

  run_rows load_run(const std::string& bos_batch_id) override {
    return reader_->load_run(bos_batch_id);
  }

  std::vector<run_summary> summarize_runs(int64_t since_ms, size_t limit) override {
    return reader_->summarize_runs(since_ms, limit);
  }

  std::optional<run_summary> summarize_run(const std::string& bos_batch_id,
                                           int64_t since_ms) override {
    return reader_->summarize_run(bos_batch_id, since_ms);
  }

  std::vector<stored_result> load_run_results(const std::string& bos_batch_id,
                                              const std::optional<result_cursor>& after,
                                              size_t limit) override {
    return reader_->load_run_results(bos_batch_id, after, limit);
  }

  uint64_t count_active_requests() override {
    return reader_->count("SELECT count(*) FROM requests", "count_active_requests");
  }

  uint64_t count_results() override {
    return reader_->count("SELECT count(*) FROM results", "count_results");
  }

  store_health health() const override {
    return queue_.health();
  }

  store_stats stats() const override {
    store_stats out = queue_.stats();
    out.results_purged = results_purged_.load();
    out.purge_steps = purge_steps_.load();
    return out;
  }

  /// The database's URL with the password masked.
  const std::string& path() const override {
    return masked_;
  }

private:
  // -- writer --

  // Migrations, then the writer's session settings and statements. A connection lost
  // meanwhile (the server went away after the first connect) is retried with backoff, each
  // attempt logged, until it works; any other failure refuses the start.
  bool set_up_writer(std::string& error) {
    auto delay = start_backoff_first;
    for (int attempt = 1;; ++attempt) {
      auto why = pg::migrate(*writer_db_).error;
      if (why.empty())
        why = prepare_writer();
      if (why.empty())
        return true;
      if (writer_db_->healthy()) {
        error = "PostgreSQL store " + masked_ + ": " + why;
        return false;
      }
      spdlog::warn("store: lost {} while starting (attempt {}: {}); retrying in {} ms", masked_,
                   attempt, one_line(why), delay.count());
      std::this_thread::sleep_for(delay);
      delay = std::min(delay * 2, start_backoff_max);
      writer_db_->reset();
    }
  }

  std::string set_writer_plans() {
    for (const auto* setting : pg::writer_session_settings())
      if (auto r = writer_db_->exec(setting); !r.ok)
        return r.error;
    return "";
  }

  std::string prepare_writer() {
    if (!options_.fsync_every_commit)
      if (auto r = writer_db_->exec("SET synchronous_commit = off"); !r.ok)
        return r.error;
    if (auto why = set_writer_plans(); !why.empty())
      return why;
    auto statements = pg::write_statements();
    statements.emplace_back("purge_step", purge_step_sql);
    statements.emplace_back("begin", "BEGIN");
    statements.emplace_back("commit", "COMMIT");
    for (auto [name, sql] : statements)
      if (auto why = writer_db_->prepare(name, sql); !why.empty())
        return "cannot prepare " + std::string{name} + ": " + why;
    return "";
  }

  // After the server went away: a new session, with its settings and statements again.
  bool reconnect(std::string& error) {
    if (writer_db_->healthy())
      return true;
    if (!writer_db_->reset()) {
      error = "lost the connection to " + masked_ + ": " + writer_db_->error_message();
      return false;
    }
    if (auto why = prepare_writer(); !why.empty()) {
      error = "reconnected to " + masked_ + " but " + one_line(why);
      return false;
    }
    return true;
  }

  // The idle writer's round trip (group_commit_backend::probe): a server stopped while
  // nothing is written is noticed here, within a second, not at the next submission.
  bool probe(std::string& error) {
    if (!reconnect(error))
      return false;
    if (auto r = writer_db_->exec("SELECT 1"); !r.ok) {
      error = "lost the connection to " + masked_ + ": " + one_line(r.error);
      return false;
    }
    return true;
  }

  // One transaction: BEGIN, the writes as statements of pg_write_set.hpp, COMMIT, sent
  // statements_per_round_trip at a time in pipelines, BEGIN with the first and COMMIT with
  // the last, so a small commit is one round trip (at one request in flight a commit waits
  // for its round trips, not for the server's work).
  commit_outcome run_transaction(std::span<const queued_write> writes, std::string& error) {
    if (!reconnect(error))
      return commit_outcome::store_down;
    pg::write_set set{rows_per_statement};
    std::vector<pg::labelled_call> statements{
        {{"begin", {}}, "cannot begin a transaction on " + masked_}};
    for (const auto& w : writes) {
      set.add(w.write);
      if (set.ready() + statements.size() < statements_per_round_trip)
        continue;
      for (auto& s : set.take())
        statements.push_back(std::move(s));
      if (auto failed = run_statements(statements, error); failed != step::none)
        return outcome_of(failed);
      statements.clear();
    }
    for (auto& s : set.take())
      statements.push_back(std::move(s));
    statements.push_back({{"commit", {}}, "cannot commit on " + masked_});
    return outcome_of(run_statements(statements, error));
  }

  // Which statement of a transaction failed: none, its BEGIN or COMMIT, or a write.
  enum class step { none, begin_or_commit, write };

  // A failed write rolls back and blames the writes (group_commit retries them one by one);
  // a failed BEGIN or COMMIT blames the environment; a lost connection is a store outage:
  // the queue waits for reconnect() and commits the writes again (every statement is safe to
  // repeat should the lost COMMIT have landed: finals and keys are ON CONFLICT DO NOTHING,
  // the updates set values; inserts are not repeated, they fail as submissions).
  commit_outcome outcome_of(step failed) {
    if (failed == step::none)
      return commit_outcome::committed;
    // A failed write leaves the transaction open and aborted; after a failed COMMIT there is
    // none, and the ROLLBACK only warns.
    if (writer_db_->healthy())
      writer_db_->exec("ROLLBACK");
    if (!writer_db_->healthy())
      return commit_outcome::store_down;
    return failed == step::write ? commit_outcome::write_failed : commit_outcome::txn_failed;
  }

  // Runs the statements in pipelines of statements_per_round_trip, a COPY on its own
  // between them (libpq allows none in a pipeline); on a failure `error` names the
  // statement's operation and rows.
  step run_statements(std::vector<pg::labelled_call>& statements, std::string& error) {
    size_t end = 0;
    for (size_t start = 0; start < statements.size(); start = end) {
      if (const auto* copy = statements[start].copy_sql) {
        end = start + 1;
        auto r = writer_db_->copy_in(copy, *statements[start].call.params.at(0).value);
        if (r.ok)
          continue;
        error = statements[start].label + ": " + one_line(r.error);
        return step::write;
      }
      end = start + 1;
      while (end < statements.size() && end - start < statements_per_round_trip
             && statements[end].copy_sql == nullptr)
        ++end;
      std::vector<pg::prepared_call> calls;
      calls.reserve(end - start);
      for (size_t i = start; i < end; ++i)
        calls.push_back(std::move(statements[i].call));
      auto results = writer_db_->exec_pipelined(calls);
      for (size_t i = 0; i < results.size(); ++i) {
        if (results[i].ok)
          continue;
        error = statements[start + i].label + ": " + one_line(results[i].error);
        const auto& name = calls[i].name;
        return name == "begin" || name == "commit" ? step::begin_or_commit : step::write;
      }
    }
    return step::none;
  }

  // -- retention: purge_passes for the queue (its writer thread, or the caller's with manual
  // commits) --

  bool retains() const {
    return options_.result_retention.count() > 0;
  }

  bool in_pass() const override {
    return in_pass_;
  }

  clock::time_point next_pass() const override {
    return next_pass_;
  }

  // One transaction deleting up to purge_rows_per_step results older than the pass's cutoff;
  // true when the pass ended with it (fewer rows left, or an error, which is logged). The
  // next pass is due a tenth of the retention later (at least 100 ms, at most 10 minutes).
  bool step() override {
    if (!in_pass_) {
      in_pass_ = true;
      cutoff_ms_ = unix_now_ms() - options_.result_retention.count();
    }
    pg::result r;
    if (reconnect(r.error))
      r = writer_db_->exec_prepared(
          "purge_step", {{std::to_string(cutoff_ms_)}, {std::to_string(purge_rows_per_step)}});
    if (r.ok) {
      ++purge_steps_;
      results_purged_ += r.affected;
    } else {
      spdlog::error("store: purging old results on {} failed: {}", masked_, one_line(r.error));
    }
    if (r.ok && static_cast<int64_t>(r.affected) == purge_rows_per_step)
      return false;
    in_pass_ = false;
    next_pass_ = clock::now()
                 + std::clamp<std::chrono::milliseconds>(options_.result_retention / 10,
                                                         std::chrono::milliseconds{100},
                                                         std::chrono::minutes{10});
    return true;
  }

  std::string url_;
  std::string masked_;
  store_options options_;
  std::unique_ptr<pg::connection> writer_db_;
  /// The store's own read connection (recovery, tools, tests; the reader pool opens more).
  std::unique_ptr<pg_reader> reader_;

  /// The running purge pass (writer thread only); the first is due at once.
  bool in_pass_ = false;
  int64_t cutoff_ms_ = 0;
  clock::time_point next_pass_{};
  std::atomic<uint64_t> results_purged_{0};
  std::atomic<uint64_t> purge_steps_{0};

  /// Last: its writer stops (in the destructor) before anything above goes.
  group_commit_queue queue_;
};

const std::string& pg_recovery_scan_sql() {
  return recovery_scan_sql;
}

std::unique_ptr<store> open_postgres_store(const std::string& url, const store_options& options,
                                           std::string& error,
                                           std::chrono::seconds connect_timeout) {
  auto db = std::make_unique<pg_store>(url, options);
  if (!db->open(connect_timeout, error))
    return nullptr;
  return db;
}

} // namespace lps
