#pragma once

// Retention of final results (RESULT_RETENTION_DAYS): deletes results whose callback was
// delivered, or that have none, once they are older than the retention, and gives the
// freed pages back to the file system where the file allows it. It runs on the store
// writer's connection and thread, between two commits, one small transaction per step, so
// it never competes with the writer for the write lock and a commit waits at most one step.
// A result still waiting for its callback is never deleted.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace lps::sqlite {

class database;

class result_purger {
public:
  using clock = std::chrono::steady_clock;

  /// Rows deleted per step; each step also gives back up to 128 free pages (1 MiB,
  /// sqlite_result_purger.cpp). Small, so a commit waits little for one step
  /// (docs/benchmarks.md, "Store micro-benchmarks").
  static constexpr int64_t rows_per_step = 100;

  /// Prepares its statements on `db` (the writer's connection, which must outlive it);
  /// nullptr with `error` set on failure. `retention` must be positive.
  static std::unique_ptr<result_purger> create(database& db, std::chrono::milliseconds retention,
                                               std::string& error);

  ~result_purger();
  result_purger(const result_purger&) = delete;
  result_purger& operator=(const result_purger&) = delete;

  /// True while a pass (steps with one cutoff, until one deletes less than rows_per_step)
  /// runs.
  bool in_pass() const {
    return in_pass_;
  }

  /// When the next pass is due: at once after creation, then a pass interval after the
  /// last one ended (a tenth of the retention, at least 100 ms, at most 10 minutes).
  clock::time_point next_pass() const {
    return next_pass_;
  }

  /// Runs one step, starting a pass (cutoff: now minus the retention) when none runs;
  /// true when the pass ended with it. A failing step is logged and ends the pass.
  bool step();

  /// Rows deleted and steps committed so far (read from any thread).
  uint64_t purged() const {
    return purged_.load();
  }
  uint64_t steps() const {
    return steps_.load();
  }

private:
  struct statements;
  result_purger(database& db, std::chrono::milliseconds retention);
  // One transaction: deletes up to rows_per_step rows older than cutoff_ms_ and gives back
  // free pages; the rows deleted, or -1 (error set) on failure.
  int64_t delete_step(std::string& error);

  database& db_;
  std::chrono::milliseconds retention_;
  std::unique_ptr<statements> stmts_;
  bool in_pass_ = false;
  int64_t cutoff_ms_ = 0;
  clock::time_point next_pass_;
  std::atomic<uint64_t> purged_{0};
  std::atomic<uint64_t> steps_{0};
};

} // namespace lps::sqlite
