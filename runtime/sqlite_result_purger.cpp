#include "runtime/sqlite_result_purger.hpp"

#include "runtime/sqlite_database.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace lps::sqlite {

namespace {

// Oldest first through the results_completed index. The delivered/callback terms keep
// every result still waiting for its callback (store.cpp's outbox); a callback given up has
// nothing left to deliver.
constexpr const char* delete_sql =
    "DELETE FROM results WHERE rowid IN (SELECT rowid FROM results WHERE completed_at_ms < ?1 "
    "AND (delivered = 1 OR callback_url = '' OR delivery_failed_at_ms <> 0) "
    "ORDER BY completed_at_ms LIMIT ?2)";
// A no-op on a file made without auto_vacuum=INCREMENTAL: there freed pages stay on the
// free list and new rows reuse them.
// A pragma takes no bound parameter: the page count (1 MiB of 8 KiB pages) is in the text.
constexpr const char* vacuum_sql = "PRAGMA incremental_vacuum(128)";

int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

} // namespace

struct result_purger::statements {
  stmt_ptr remove;
  stmt_ptr vacuum;
};

result_purger::result_purger(database& db, std::chrono::milliseconds retention)
    : db_(db), retention_(retention), stmts_(std::make_unique<statements>()),
      next_pass_(clock::now()) {}

result_purger::~result_purger() = default;

std::unique_ptr<result_purger>
result_purger::create(database& db, std::chrono::milliseconds retention, std::string& error) {
  std::unique_ptr<result_purger> result{new result_purger(db, retention)};
  auto& stmts = *result->stmts_;
  if (!(stmts.remove = db.prepare(delete_sql, error))
      || !(stmts.vacuum = db.prepare(vacuum_sql, error)))
    return nullptr;
  return result;
}

bool result_purger::step() {
  if (!in_pass_) {
    in_pass_ = true;
    cutoff_ms_ = unix_now_ms() - retention_.count();
  }
  std::string error;
  int64_t deleted = delete_step(error);
  if (deleted < 0)
    spdlog::warn("store: purging old results failed: {}", error);
  if (deleted == rows_per_step)
    return false;
  in_pass_ = false;
  auto interval = std::clamp<std::chrono::milliseconds>(
      retention_ / 10, std::chrono::milliseconds{100}, std::chrono::minutes{10});
  next_pass_ = clock::now() + interval;
  return true;
}

int64_t result_purger::delete_step(std::string& error) {
  int64_t deleted = 0;
  auto outcome = db_.transaction(
      [&](std::string& err) {
        sqlite3_stmt* remove = stmts_->remove.get();
        sqlite3_bind_int64(remove, 1, cutoff_ms_);
        sqlite3_bind_int64(remove, 2, rows_per_step);
        if (!step_done(db_.get(), remove, "delete old results", {}, err))
          return false;
        deleted = sqlite3_changes64(db_.get());
        sqlite3_stmt* vacuum = stmts_->vacuum.get();
        stmt_scope scope(vacuum);
        if (step_rows(vacuum, [](sqlite3_stmt*) {}))
          return true;
        err = std::string("give back free pages: ") + message(db_.get());
        return false;
      },
      error);
  if (outcome != txn_outcome::committed)
    return -1;
  purged_ += static_cast<uint64_t>(deleted);
  ++steps_;
  return deleted;
}

} // namespace lps::sqlite
