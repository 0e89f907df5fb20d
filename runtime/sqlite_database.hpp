#pragma once

// The one place lps opens SQLite: lps.db under DATA_DIR with the settings every connection
// shares (extended result codes, the busy timeout, temp_store in memory), the writers'
// settings (WAL mode, 8 KiB pages, incremental auto-vacuum on a new file, synchronous,
// checkpoint thresholds), and transactions (BEGIN IMMEDIATE ... COMMIT on statements prepared
// once, rolled back on any failure). The requests-and-results store, the batch job store and
// the WAL checkpointer all open their connections here; each keeps only its own tables and
// statements. Includes sqlite3.h, so only the store .cpp files include it.
//
// A PostgreSQL backend is a different class behind the same store contracts (store.hpp,
// batch_job_store.hpp: plain structs, no SQLite type), not a variant of this one.

#include "runtime/sqlite_util.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace lps::sqlite {

/// What a connection is for; it decides the flags and pragmas.
enum class role {
  /// Writes: creates the folder and lps.db if missing; WAL mode, page size, auto-vacuum,
  /// synchronous and the checkpoint settings.
  writer,
  /// Reads only (query_only); the file must exist.
  reader,
  /// Checkpoints the WAL of an existing lps.db; no pragmas beyond the shared ones.
  checkpointer,
};

struct open_options {
  /// Folder of lps.db ("" is the working directory).
  std::string data_dir;
  role purpose = role::writer;
  /// Writers: true sets synchronous=FULL (fsync at every commit), false NORMAL.
  bool fsync_every_commit = true;
  /// Page cache of this connection in KiB; 0 keeps SQLite's default (2 MiB).
  uint32_t cache_kib = 0;
  int busy_timeout_ms = 5000;
};

/// How a transaction ended: a failing body blames what the body wrote; a failing BEGIN or
/// COMMIT (busy, full disk, I/O error) blames the environment.
enum class txn_outcome { committed, body_failed, txn_failed };

/// One connection. Not thread-safe: its owner uses it from one thread or under one lock.
class database {
public:
  /// Opens lps.db for `options.purpose`; nullptr with `error` ("cannot open database
  /// '<path>': reason") on failure.
  static std::unique_ptr<database> open(const open_options& options, std::string& error);

  sqlite3* get() const {
    return db_.get();
  }

  /// Path of the database file.
  const std::string& path() const {
    return path_;
  }

  /// Runs `sql` (one or more statements); on failure `error` is "`what`: reason".
  bool exec(const char* sql, const char* what, std::string& error) {
    return sqlite::exec(db_.get(), sql, what, error);
  }

  /// A statement kept for the connection's lifetime; nullptr (and `error`) on failure.
  stmt_ptr prepare(const char* sql, std::string& error) {
    return sqlite::prepare(db_.get(), sql, error);
  }

  /// Runs `body(error)` (returns bool) inside BEGIN IMMEDIATE ... COMMIT: the write lock is
  /// taken up front, so a concurrent writer makes BEGIN wait out the busy timeout instead
  /// of failing a read-to-write upgrade half way. Rolls back when anything fails or the
  /// body throws (the exception goes on).
  template <class Body>
  txn_outcome transaction(Body&& body, std::string& error) {
    if (!step_done(db_.get(), begin_.get(), "begin", {}, error))
      return txn_outcome::txn_failed;
    bool ok = false;
    try {
      ok = body(error);
    } catch (...) {
      rollback();
      throw;
    }
    if (!ok) {
      rollback();
      return txn_outcome::body_failed;
    }
    if (!step_done(db_.get(), commit_.get(), "commit", {}, error)) {
      rollback();
      return txn_outcome::txn_failed;
    }
    return txn_outcome::committed;
  }

  /// Rolls back the open transaction, if any (some errors already rolled it back).
  void rollback() {
    sqlite::rollback(db_.get(), rollback_.get());
  }

private:
  database() = default;
  bool configure(const open_options& options, std::string& error);
  bool configure_writer(const open_options& options, std::string& error);
  bool prepare_transactions(std::string& error);

  std::string path_;
  // The connection is declared first so the statements are finalized before it closes.
  db_ptr db_;
  stmt_ptr begin_, commit_, rollback_;
};

} // namespace lps::sqlite
