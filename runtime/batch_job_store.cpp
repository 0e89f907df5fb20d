#include "runtime/batch_job_store.hpp"

#include "runtime/sqlite_database.hpp"

#include <sqlite3.h>
#include <spdlog/spdlog.h>

#include <exception>
#include <limits>
#include <mutex>
#include <utility>

namespace lps {

namespace {

using sqlite::bind_text;
using sqlite::column_string;
using sqlite::database;
using sqlite::stmt_ptr;
using sqlite::stmt_scope;

constexpr int busy_timeout_ms = 5000;

// Only the batch tables: the main store owns requests, results and user_version. Every
// column is NOT NULL, so a failed bind (it leaves NULL) fails the write loudly.
// batch_job_items(job_id, seq) serves both "items of a job in order" and finish()'s delete.
constexpr const char* schema_sql = R"sql(
CREATE TABLE IF NOT EXISTS batch_jobs(
  job_id TEXT PRIMARY KEY NOT NULL,
  provider TEXT NOT NULL,
  model TEXT NOT NULL,
  state TEXT NOT NULL,
  provider_job_id TEXT NOT NULL,
  file_id TEXT NOT NULL,
  result_locations TEXT NOT NULL,
  provider_status TEXT NOT NULL,
  last_error TEXT NOT NULL,
  cancel_requested INTEGER NOT NULL,
  item_count INTEGER NOT NULL,
  succeeded INTEGER NOT NULL,
  failed INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  submitted_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  ended_at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS batch_jobs_provider_state ON batch_jobs(provider, state);
CREATE TABLE IF NOT EXISTS batch_job_items(
  queue_id TEXT PRIMARY KEY NOT NULL,
  job_id TEXT NOT NULL,
  seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS batch_job_items_job ON batch_job_items(job_id, seq);
)sql";

// Parameter and column order shared by insert, update and every SELECT of a whole job.
constexpr const char* insert_job_sql =
    "INSERT INTO batch_jobs(job_id, provider, model, state, provider_job_id, file_id, "
    "result_locations, provider_status, last_error, cancel_requested, item_count, succeeded, "
    "failed, created_at_ms, submitted_at_ms, updated_at_ms, ended_at_ms) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";
constexpr const char* update_job_sql =
    "UPDATE batch_jobs SET provider = ?2, model = ?3, state = ?4, provider_job_id = ?5, "
    "file_id = ?6, result_locations = ?7, provider_status = ?8, last_error = ?9, "
    "cancel_requested = ?10, item_count = ?11, succeeded = ?12, failed = ?13, "
    "created_at_ms = ?14, submitted_at_ms = ?15, updated_at_ms = ?16, ended_at_ms = ?17 "
    "WHERE job_id = ?1";
// An item row that belongs to an unfinished job stays as it is (no change: the caller
// reports it); one left behind by a final job, or by no job, is taken over.
constexpr const char* insert_item_sql =
    "INSERT INTO batch_job_items(queue_id, job_id, seq) VALUES(?1, ?2, ?3) "
    "ON CONFLICT(queue_id) DO UPDATE SET job_id = excluded.job_id, seq = excluded.seq "
    "WHERE NOT EXISTS (SELECT 1 FROM batch_jobs j WHERE j.job_id = batch_job_items.job_id "
    "AND j.state NOT IN ('collected', 'failed'))";
constexpr const char* item_owner_sql = "SELECT job_id FROM batch_job_items WHERE queue_id = ?1";
constexpr const char* delete_items_sql = "DELETE FROM batch_job_items WHERE job_id = ?1";

#define LPS_BATCH_JOB_COLUMNS                                                                      \
  "job_id, provider, model, state, provider_job_id, file_id, result_locations, "                   \
  "provider_status, last_error, cancel_requested, item_count, succeeded, failed, "                 \
  "created_at_ms, submitted_at_ms, updated_at_ms, ended_at_ms"

constexpr const char* find_job_sql =
    "SELECT " LPS_BATCH_JOB_COLUMNS " FROM batch_jobs WHERE job_id = ?1";
constexpr const char* load_unfinished_sql =
    "SELECT " LPS_BATCH_JOB_COLUMNS " FROM batch_jobs WHERE provider = ?1 "
    "AND state NOT IN ('collected', 'failed') ORDER BY created_at_ms ASC, rowid ASC";
constexpr const char* list_sql =
    "SELECT " LPS_BATCH_JOB_COLUMNS " FROM batch_jobs ORDER BY created_at_ms DESC, rowid DESC "
    "LIMIT ?1";
constexpr const char* load_items_sql =
    "SELECT queue_id FROM batch_job_items WHERE job_id = ?1 ORDER BY seq ASC";
constexpr const char* load_owned_sql =
    "SELECT i.queue_id, i.job_id FROM batch_job_items i JOIN batch_jobs j "
    "ON j.job_id = i.job_id WHERE j.state NOT IN ('collected', 'failed')";

#undef LPS_BATCH_JOB_COLUMNS

// Binds ?1..?17 in the column order shared by insert_job_sql and update_job_sql.
// `locations` is the encoded result_locations and must outlive the step.
void bind_job(sqlite3_stmt* stmt, const batch_job_record& job, const std::string& locations) {
  bind_text(stmt, 1, job.job_id);
  bind_text(stmt, 2, job.provider);
  bind_text(stmt, 3, job.model);
  bind_text(stmt, 4, job.state);
  bind_text(stmt, 5, job.provider_job_id);
  bind_text(stmt, 6, job.file_id);
  bind_text(stmt, 7, locations);
  bind_text(stmt, 8, job.provider_status);
  bind_text(stmt, 9, job.last_error);
  sqlite3_bind_int(stmt, 10, job.cancel_requested ? 1 : 0);
  // Unsigned counters are stored bit for bit as SQLite's signed 64-bit integers.
  sqlite3_bind_int64(stmt, 11, static_cast<int64_t>(job.item_count));
  sqlite3_bind_int64(stmt, 12, static_cast<int64_t>(job.succeeded));
  sqlite3_bind_int64(stmt, 13, static_cast<int64_t>(job.failed));
  sqlite3_bind_int64(stmt, 14, job.created_at_ms);
  sqlite3_bind_int64(stmt, 15, job.submitted_at_ms);
  sqlite3_bind_int64(stmt, 16, job.updated_at_ms);
  sqlite3_bind_int64(stmt, 17, job.ended_at_ms);
}

batch_job_record read_job(sqlite3_stmt* stmt) {
  batch_job_record job;
  job.job_id = column_string(stmt, 0);
  job.provider = column_string(stmt, 1);
  job.model = column_string(stmt, 2);
  job.state = column_string(stmt, 3);
  job.provider_job_id = column_string(stmt, 4);
  job.file_id = column_string(stmt, 5);
  job.result_locations = decode_result_locations(column_string(stmt, 6));
  job.provider_status = column_string(stmt, 7);
  job.last_error = column_string(stmt, 8);
  job.cancel_requested = sqlite3_column_int(stmt, 9) != 0;
  job.item_count = static_cast<uint64_t>(sqlite3_column_int64(stmt, 10));
  job.succeeded = static_cast<uint64_t>(sqlite3_column_int64(stmt, 11));
  job.failed = static_cast<uint64_t>(sqlite3_column_int64(stmt, 12));
  job.created_at_ms = sqlite3_column_int64(stmt, 13);
  job.submitted_at_ms = sqlite3_column_int64(stmt, 14);
  job.updated_at_ms = sqlite3_column_int64(stmt, 15);
  job.ended_at_ms = sqlite3_column_int64(stmt, 16);
  return job;
}

} // namespace

bool is_final_batch_job_state(const std::string& state) {
  return state == "collected" || state == "failed";
}

// Each location is terminated by '\n'; '\\' and '\n' inside it are escaped, so [] and
// [""] differ ("" and "\n") and any byte string survives.
std::string encode_result_locations(const std::vector<std::string>& locations) {
  std::string out;
  for (const auto& location : locations) {
    for (char c : location) {
      if (c == '\\')
        out += "\\\\";
      else if (c == '\n')
        out += "\\n";
      else
        out += c;
    }
    out += '\n';
  }
  return out;
}

std::vector<std::string> decode_result_locations(const std::string& text) {
  std::vector<std::string> out;
  std::string current;
  bool open = false; // characters seen since the last terminator
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n') {
      out.push_back(std::move(current));
      current.clear();
      open = false;
      continue;
    }
    open = true;
    if (c == '\\' && i + 1 < text.size()) {
      char next = text[++i];
      current += next == 'n' ? '\n' : next;
    } else {
      current += c;
    }
  }
  if (open) // a missing last terminator (hand-edited row): keep what is there
    out.push_back(std::move(current));
  return out;
}

// The SQLite implementation of the batch job store contract (batch_job_store.hpp).
class sqlite_batch_job_store final : public batch_job_store {
public:
  struct impl;
  explicit sqlite_batch_job_store(std::unique_ptr<impl> ptr);
  ~sqlite_batch_job_store() override;

  bool create(const batch_job_record& job, const std::vector<std::string>& item_ids,
              std::string& error) override;
  bool update(const batch_job_record& job, std::string& error) override;
  bool finish(const batch_job_record& job, std::string& error) override;
  std::optional<batch_job_record> find(const std::string& job_id) override;
  std::vector<batch_job_record> load_unfinished(const std::string& provider) override;
  std::vector<std::string> load_items(const std::string& job_id) override;
  std::unordered_map<std::string, std::string> load_owned_items() override;
  std::vector<batch_job_record> list(size_t limit) override;
  const std::string& path() const override;

private:
  std::unique_ptr<impl> impl_;
};

struct sqlite_batch_job_store::impl {
  explicit impl(batch_job_store_options opts) : options(std::move(opts)) {}

  batch_job_store_options options;
  std::string db_path;

  // Every use of the connection and its statements holds this mutex.
  std::mutex mutex;

  // The connection is declared before the statements so the statements are finalized first.
  std::unique_ptr<database> db;
  stmt_ptr insert_job_stmt, update_job_stmt, insert_item_stmt, item_owner_stmt;
  stmt_ptr delete_items_stmt;
  stmt_ptr find_job_stmt, load_unfinished_stmt, list_stmt, load_items_stmt, load_owned_stmt;

  // -- opening --

  // The same writer settings as the main store's (sqlite_database.cpp): page size and
  // checkpoint threshold match whichever store creates lps.db first.
  bool open_database(std::string& error) {
    db = database::open({.data_dir = options.data_dir,
                         .purpose = sqlite::role::writer,
                         .fsync_every_commit = options.fsync_every_commit,
                         .busy_timeout_ms = busy_timeout_ms},
                        error);
    if (!db)
      return false;
    db_path = db->path();
    if (!create_schema(error) || !prepare_statements(error)) {
      error = "cannot open database '" + db_path + "': " + error;
      return false;
    }
    return true;
  }

  bool create_schema(std::string& error) {
    return transaction(
        "create batch tables",
        [&](std::string& err) { return db->exec(schema_sql, "create batch tables", err); }, error);
  }

  bool prepare_statements(std::string& error) {
    database& raw = *db;
    return (insert_job_stmt = raw.prepare(insert_job_sql, error))
           && (update_job_stmt = raw.prepare(update_job_sql, error))
           && (insert_item_stmt = raw.prepare(insert_item_sql, error))
           && (item_owner_stmt = raw.prepare(item_owner_sql, error))
           && (delete_items_stmt = raw.prepare(delete_items_sql, error))
           && (find_job_stmt = raw.prepare(find_job_sql, error))
           && (load_unfinished_stmt = raw.prepare(load_unfinished_sql, error))
           && (list_stmt = raw.prepare(list_sql, error))
           && (load_items_stmt = raw.prepare(load_items_sql, error))
           && (load_owned_stmt = raw.prepare(load_owned_sql, error));
  }

  // -- writes (under mutex) --

  // Runs body in one transaction (sqlite::database::transaction). `context` ("create batch
  // job 'x'") prefixes a failing BEGIN's or COMMIT's error.
  template <class Body>
  bool transaction(const std::string& context, Body&& body, std::string& error) {
    auto result = db->transaction(std::forward<Body>(body), error);
    if (result == sqlite::txn_outcome::txn_failed)
      error = context + ": " + error;
    return result == sqlite::txn_outcome::committed;
  }

  bool insert_job(const batch_job_record& job, std::string& error) {
    sqlite3_stmt* stmt = insert_job_stmt.get();
    std::string locations = encode_result_locations(job.result_locations);
    stmt_scope scope(stmt);
    bind_job(stmt, job, locations);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE)
      return true;
    if (sqlite3_extended_errcode(db->get()) == SQLITE_CONSTRAINT_PRIMARYKEY)
      error = "batch job '" + job.job_id + "' already exists";
    else
      error = "insert batch job '" + job.job_id + "': " + sqlite::message(db->get());
    return false;
  }

  // Changes every column; fails for an unknown job.
  bool update_job(const batch_job_record& job, std::string& error) {
    sqlite3_stmt* stmt = update_job_stmt.get();
    std::string locations = encode_result_locations(job.result_locations);
    stmt_scope scope(stmt);
    bind_job(stmt, job, locations);
    if (sqlite3_step(stmt) != SQLITE_DONE) {
      error = "update batch job '" + job.job_id + "': " + sqlite::message(db->get());
      return false;
    }
    if (sqlite3_changes(db->get()) == 0) {
      error = "unknown batch job '" + job.job_id + "'";
      return false;
    }
    return true;
  }

  bool insert_items(const std::string& job_id, const std::vector<std::string>& item_ids,
                    std::string& error) {
    sqlite3_stmt* stmt = insert_item_stmt.get();
    for (size_t i = 0; i < item_ids.size(); ++i) {
      const std::string& queue_id = item_ids[i];
      if (queue_id.empty()) {
        error = "batch job '" + job_id + "': empty item id at position " + std::to_string(i);
        return false;
      }
      stmt_scope scope(stmt);
      bind_text(stmt, 1, queue_id);
      bind_text(stmt, 2, job_id);
      sqlite3_bind_int64(stmt, 3, static_cast<int64_t>(i));
      if (sqlite3_step(stmt) != SQLITE_DONE) {
        error = "batch job '" + job_id + "': insert item '" + queue_id
                + "': " + sqlite::message(db->get());
        return false;
      }
      if (sqlite3_changes(db->get()) == 0) {
        report_owned(job_id, queue_id, error);
        return false;
      }
    }
    return true;
  }

  // The item insert changed nothing: the item belongs to an unfinished job (maybe this one).
  void report_owned(const std::string& job_id, const std::string& queue_id, std::string& error) {
    sqlite3_stmt* stmt = item_owner_stmt.get();
    stmt_scope scope(stmt);
    bind_text(stmt, 1, queue_id);
    std::string owner;
    if (sqlite3_step(stmt) == SQLITE_ROW)
      owner = column_string(stmt, 0);
    if (owner == job_id)
      error = "batch job '" + job_id + "': item '" + queue_id + "' is listed twice";
    else
      error = "batch job '" + job_id + "': item '" + queue_id
              + "' already belongs to unfinished batch job '" + owner + "'";
  }

  bool create(const batch_job_record& job, const std::vector<std::string>& item_ids,
              std::string& error) {
    if (job.job_id.empty()) {
      error = "batch job id is empty";
      return false;
    }
    std::lock_guard lock(mutex);
    return transaction(
        "create batch job '" + job.job_id + "'",
        [&](std::string& err) {
          return insert_job(job, err) && insert_items(job.job_id, item_ids, err);
        },
        error);
  }

  bool update(const batch_job_record& job, std::string& error) {
    std::lock_guard lock(mutex);
    // One statement: atomic on its own, no explicit transaction needed.
    return update_job(job, error);
  }

  bool finish(const batch_job_record& job, std::string& error) {
    if (!is_final_batch_job_state(job.state)) {
      error = "finish batch job '" + job.job_id + "': state '" + job.state
              + "' is not final (collected or failed)";
      return false;
    }
    std::lock_guard lock(mutex);
    return transaction(
        "finish batch job '" + job.job_id + "'",
        [&](std::string& err) {
          if (!update_job(job, err))
            return false;
          sqlite3_stmt* stmt = delete_items_stmt.get();
          stmt_scope scope(stmt);
          bind_text(stmt, 1, job.job_id);
          if (sqlite3_step(stmt) == SQLITE_DONE)
            return true;
          err = "batch job '" + job.job_id + "': release items: " + sqlite::message(db->get());
          return false;
        },
        error);
  }

  // -- reads (under mutex) --

  void log_read_error(const char* what) {
    spdlog::error("batch_job_store: {} failed on '{}': {}", what, db_path,
                  sqlite::message(db->get()));
  }

  // Steps a bound statement to the end, calling visit per row; logs a failure.
  template <class Visit>
  void read_rows(sqlite3_stmt* stmt, const char* what, Visit&& visit) {
    if (!sqlite::step_rows(stmt, visit))
      log_read_error(what);
  }

  std::optional<batch_job_record> find(const std::string& job_id) {
    std::lock_guard lock(mutex);
    sqlite3_stmt* stmt = find_job_stmt.get();
    stmt_scope scope(stmt);
    bind_text(stmt, 1, job_id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
      return read_job(stmt);
    if (rc != SQLITE_DONE)
      log_read_error("find");
    return std::nullopt;
  }

  std::vector<batch_job_record> load_unfinished(const std::string& provider) {
    std::vector<batch_job_record> jobs;
    std::lock_guard lock(mutex);
    sqlite3_stmt* stmt = load_unfinished_stmt.get();
    stmt_scope scope(stmt);
    bind_text(stmt, 1, provider);
    read_rows(stmt, "load_unfinished", [&](sqlite3_stmt* s) { jobs.push_back(read_job(s)); });
    return jobs;
  }

  std::vector<batch_job_record> list(size_t limit) {
    std::vector<batch_job_record> jobs;
    std::lock_guard lock(mutex);
    sqlite3_stmt* stmt = list_stmt.get();
    stmt_scope scope(stmt);
    constexpr auto max = static_cast<size_t>(std::numeric_limits<int64_t>::max());
    sqlite3_bind_int64(stmt, 1, static_cast<int64_t>(limit > max ? max : limit));
    read_rows(stmt, "list", [&](sqlite3_stmt* s) { jobs.push_back(read_job(s)); });
    return jobs;
  }

  std::vector<std::string> load_items(const std::string& job_id) {
    std::vector<std::string> items;
    std::lock_guard lock(mutex);
    sqlite3_stmt* stmt = load_items_stmt.get();
    stmt_scope scope(stmt);
    bind_text(stmt, 1, job_id);
    read_rows(stmt, "load_items", [&](sqlite3_stmt* s) { items.push_back(column_string(s, 0)); });
    return items;
  }

  std::unordered_map<std::string, std::string> load_owned_items() {
    std::unordered_map<std::string, std::string> owned;
    std::lock_guard lock(mutex);
    sqlite3_stmt* stmt = load_owned_stmt.get();
    stmt_scope scope(stmt);
    read_rows(stmt, "load_owned_items",
              [&](sqlite3_stmt* s) { owned.emplace(column_string(s, 0), column_string(s, 1)); });
    return owned;
  }
};

sqlite_batch_job_store::sqlite_batch_job_store(std::unique_ptr<impl> ptr) : impl_(std::move(ptr)) {}

sqlite_batch_job_store::~sqlite_batch_job_store() = default;

std::unique_ptr<batch_job_store> batch_job_store::open(const batch_job_store_options& options,
                                                       std::string& error) {
  try {
    auto state = std::make_unique<sqlite_batch_job_store::impl>(options);
    if (!state->open_database(error))
      return nullptr;
    return std::make_unique<sqlite_batch_job_store>(std::move(state));
  } catch (const std::exception& e) {
    error = "cannot open batch job store in '" + options.data_dir + "': " + e.what();
    return nullptr;
  }
}

bool sqlite_batch_job_store::create(const batch_job_record& job,
                                    const std::vector<std::string>& item_ids, std::string& error) {
  try {
    return impl_->create(job, item_ids, error);
  } catch (const std::exception& e) {
    error = "create batch job '" + job.job_id + "': " + e.what();
    return false;
  }
}

bool sqlite_batch_job_store::update(const batch_job_record& job, std::string& error) {
  try {
    return impl_->update(job, error);
  } catch (const std::exception& e) {
    error = "update batch job '" + job.job_id + "': " + e.what();
    return false;
  }
}

bool sqlite_batch_job_store::finish(const batch_job_record& job, std::string& error) {
  try {
    return impl_->finish(job, error);
  } catch (const std::exception& e) {
    error = "finish batch job '" + job.job_id + "': " + e.what();
    return false;
  }
}

std::optional<batch_job_record> sqlite_batch_job_store::find(const std::string& job_id) {
  try {
    return impl_->find(job_id);
  } catch (const std::exception& e) {
    spdlog::error("batch_job_store: find: {}", e.what());
    return std::nullopt;
  }
}

std::vector<batch_job_record> sqlite_batch_job_store::load_unfinished(const std::string& provider) {
  try {
    return impl_->load_unfinished(provider);
  } catch (const std::exception& e) {
    spdlog::error("batch_job_store: load_unfinished: {}", e.what());
    return {};
  }
}

std::vector<std::string> sqlite_batch_job_store::load_items(const std::string& job_id) {
  try {
    return impl_->load_items(job_id);
  } catch (const std::exception& e) {
    spdlog::error("batch_job_store: load_items: {}", e.what());
    return {};
  }
}

std::unordered_map<std::string, std::string> sqlite_batch_job_store::load_owned_items() {
  try {
    return impl_->load_owned_items();
  } catch (const std::exception& e) {
    spdlog::error("batch_job_store: load_owned_items: {}", e.what());
    return {};
  }
}

std::vector<batch_job_record> sqlite_batch_job_store::list(size_t limit) {
  try {
    return impl_->list(limit);
  } catch (const std::exception& e) {
    spdlog::error("batch_job_store: list: {}", e.what());
    return {};
  }
}

const std::string& sqlite_batch_job_store::path() const {
  return impl_->db_path;
}

} // namespace lps
