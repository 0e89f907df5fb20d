#include "runtime/sqlite_database.hpp"

#include <filesystem>
#include <system_error>

namespace lps::sqlite {

namespace {

/// Creates `data_dir` ("" is the working directory) with its parents.
bool make_data_dir(const std::string& data_dir, std::string& error) {
  std::error_code ec;
  std::filesystem::path dir(data_dir.empty() ? "." : data_dir);
  std::filesystem::create_directories(dir, ec);
  // create_directories reports success for an existing non-directory on some libraries.
  if (!ec) {
    bool is_dir = std::filesystem::is_directory(dir, ec);
    if (!ec && !is_dir)
      ec = std::make_error_code(std::errc::not_a_directory);
  }
  if (ec) {
    error = "cannot create data directory '" + data_dir + "': " + ec.message();
    return false;
  }
  return true;
}

/// The database file of `data_dir` ("" is the working directory): lps.db, which every store
/// shares.
std::string database_path(const std::string& data_dir) {
  return (std::filesystem::path(data_dir.empty() ? "." : data_dir) / "lps.db").string();
}

/// Opens `path` with `flags` (SQLITE_OPEN_NOMUTEX added: each connection is used under one
/// lock or by one thread) into `db`, with extended result codes and a busy timeout.
bool open_connection(const std::string& path, int flags, int busy_timeout_ms, db_ptr& db,
                     std::string& error) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  db.reset(raw); // closes a half-opened handle on failure too
  if (rc != SQLITE_OK) {
    error = message(raw);
    return false;
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, busy_timeout_ms);
  return true;
}

/// Switches the database to WAL mode; fails when it stays in another journal mode.
bool enable_wal(sqlite3* db, std::string& error) {
  stmt_ptr stmt = prepare(db, "PRAGMA journal_mode=WAL", error);
  if (!stmt)
    return false;
  if (sqlite3_step(stmt.get()) != SQLITE_ROW) {
    error = "set WAL mode: " + message(db);
    return false;
  }
  std::string mode = column_string(stmt.get(), 0);
  if (mode != "wal") {
    error = "WAL mode unavailable (journal_mode is '" + mode + "')";
    return false;
  }
  return true;
}

// A 64 MiB WAL before SQLite's own checkpoint (where it runs: the main store replaces it
// with the wal_checkpointer when it does not fsync every commit), and the same limit for
// truncating the WAL after it restarts, so a burst does not leave a huge file behind. Every
// writer uses the same values: a smaller threshold on one connection would make it run
// small checkpoints of the other's WAL traffic after its own commits.
constexpr const char* writer_pragmas = "PRAGMA wal_autocheckpoint=8192;"
                                       "PRAGMA journal_size_limit=67108864;";

int open_flags(role purpose) {
  return purpose == role::writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                 : SQLITE_OPEN_READWRITE; // WAL readers write the -shm file
}

} // namespace

std::unique_ptr<database> database::open(const open_options& options, std::string& error) {
  std::unique_ptr<database> result{new database};
  if (options.purpose == role::writer && !make_data_dir(options.data_dir, error))
    return nullptr;
  result->path_ = database_path(options.data_dir);
  if (!open_connection(result->path_, open_flags(options.purpose), options.busy_timeout_ms,
                       result->db_, error)
      || !result->configure(options, error) || !result->prepare_transactions(error)) {
    error = "cannot open database '" + result->path_ + "': " + error;
    return nullptr;
  }
  return result;
}

bool database::configure(const open_options& options, std::string& error) {
  if (!exec("PRAGMA temp_store=MEMORY", "configure", error))
    return false;
  if (options.cache_kib > 0) {
    auto sql = "PRAGMA cache_size=-" + std::to_string(options.cache_kib);
    if (!exec(sql.c_str(), "set cache size", error))
      return false;
  }
  switch (options.purpose) {
  case role::writer:
    return configure_writer(options, error);
  case role::reader:
    return exec("PRAGMA query_only=1", "configure reader", error);
  case role::checkpointer:
    // A connection that has read nothing does not know the file is in WAL mode yet, and
    // its checkpoints would do nothing: read the schema once.
    return exec("SELECT count(*) FROM sqlite_master", "read schema", error);
  }
  return false;
}

bool database::configure_writer(const open_options& options, std::string& error) {
  // page_size and auto_vacuum must precede WAL mode and any table; both are no-ops on an
  // existing file. 8 KiB pages keep a ~6 KB payload in one overflow page instead of two.
  // Incremental auto-vacuum lets the retention purge give freed pages back to the file
  // system (a file made before it keeps auto_vacuum=NONE: docs/operations.md, "Retention").
  if (!exec("PRAGMA page_size=8192", "set page size", error)
      || !exec("PRAGMA auto_vacuum=INCREMENTAL", "set auto-vacuum", error)
      || !enable_wal(db_.get(), error))
    return false;
  const char* sync =
      options.fsync_every_commit ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
  return exec(sync, "set synchronous", error)
         && exec(writer_pragmas, "configure checkpoints", error);
}

bool database::prepare_transactions(std::string& error) {
  return (begin_ = prepare("BEGIN IMMEDIATE", error)) && (commit_ = prepare("COMMIT", error))
         && (rollback_ = prepare("ROLLBACK", error));
}

} // namespace lps::sqlite
