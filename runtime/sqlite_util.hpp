#pragma once

// SQLite helpers the stores share (store.cpp: requests and results; batch_job_store.cpp:
// batch jobs), both on the same lps.db: RAII handles, error text, preparing, executing and
// stepping statements. Opening a connection and transactions are sqlite_database.hpp's.
// Includes sqlite3.h, so only the store .cpp files include it.

#include <sqlite3.h>

#include <memory>
#include <string>

namespace lps::sqlite {

struct db_closer {
  void operator()(sqlite3* db) const noexcept {
    sqlite3_close_v2(db);
  }
};
using db_ptr = std::unique_ptr<sqlite3, db_closer>;

struct stmt_finalizer {
  void operator()(sqlite3_stmt* stmt) const noexcept {
    sqlite3_finalize(stmt);
  }
};
using stmt_ptr = std::unique_ptr<sqlite3_stmt, stmt_finalizer>;

// Resets a statement when leaving scope: a read statement left un-reset would pin an old
// WAL snapshot (later reads would miss new commits), and a write statement would keep
// pointers to caller memory bound (all binds are SQLITE_STATIC to avoid copying payloads;
// every bound value outlives the scope).
class stmt_scope {
public:
  explicit stmt_scope(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~stmt_scope() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  stmt_scope(const stmt_scope&) = delete;
  stmt_scope& operator=(const stmt_scope&) = delete;

private:
  sqlite3_stmt* stmt_;
};

/// The connection's last error; "out of memory" when there is no connection (sqlite3_open_v2
/// leaves none when it cannot allocate one).
inline std::string message(sqlite3* db) {
  return db ? sqlite3_errmsg(db) : "out of memory";
}

/// Runs `sql` (one or more statements); on failure `error` is "`what`: reason".
inline bool exec(sqlite3* db, const char* sql, const char* what, std::string& error) {
  char* text = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &text) == SQLITE_OK)
    return true;
  error = std::string(what) + ": " + (text ? text : message(db));
  sqlite3_free(text);
  return false;
}

/// A statement kept for the connection's lifetime; nullptr (and `error`) on failure.
inline stmt_ptr prepare(sqlite3* db, const char* sql, std::string& error) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    error = std::string("prepare '") + sql + "': " + message(db);
    sqlite3_finalize(stmt);
    return nullptr;
  }
  return stmt_ptr{stmt};
}

// 64-bit binds turn an oversized value into SQLITE_TOOBIG (the parameter stays NULL, so a
// NOT NULL column fails the write) instead of a truncated length.
inline void bind_text(sqlite3_stmt* stmt, int index, const std::string& text) {
  sqlite3_bind_text64(stmt, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
}

/// A TEXT or BLOB column's bytes; "" for NULL.
inline std::string column_string(sqlite3_stmt* stmt, int column) {
  const void* data = sqlite3_column_blob(stmt, column);
  int size = sqlite3_column_bytes(stmt, column);
  if (data == nullptr || size <= 0)
    return {};
  return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

/// Steps a statement once and resets it (a write, BEGIN, COMMIT). On failure `error` names
/// the operation, then the quoted `subject` (a row's id) when there is one (the text is built
/// only on failure: this runs for every row).
inline bool step_done(sqlite3* db, sqlite3_stmt* stmt, const char* what, const std::string& subject,
                      std::string& error) {
  stmt_scope scope(stmt);
  if (sqlite3_step(stmt) == SQLITE_DONE)
    return true;
  error = what;
  if (!subject.empty())
    error += " '" + subject + "'";
  error += ": " + message(db);
  return false;
}

/// Steps a bound statement to the end, calling `visit(stmt)` per row; false when it stopped
/// on an error instead (the caller reports it: sqlite::message has the reason).
template <class Visit>
bool step_rows(sqlite3_stmt* stmt, Visit&& visit) {
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
    visit(stmt);
  return rc == SQLITE_DONE;
}

/// Rolls back the open transaction, if any: some errors (full disk, I/O) already rolled it
/// back. Without a prepared `rollback_stmt` (before the statements exist) it runs the SQL.
inline void rollback(sqlite3* db, sqlite3_stmt* rollback_stmt) {
  if (sqlite3_get_autocommit(db) != 0)
    return;
  if (rollback_stmt) {
    stmt_scope scope(rollback_stmt);
    sqlite3_step(rollback_stmt);
  } else {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

} // namespace lps::sqlite
