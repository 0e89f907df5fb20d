#pragma once

// The write queue both store backends share (store.cpp: SQLite, pg_store.cpp: PostgreSQL):
// writes are queued with their callbacks and committed by one writer thread, as many as
// max_ops_per_commit operations in one transaction; each callback runs only after the
// transaction holding its write committed (or failed). Between two commits the writer runs
// a backend's own work (SQLite's checkpoint backstop) and the retention's purge steps.
// The backend supplies the transaction; the queue knows no database.
//
// A backend that can lose its database (a PostgreSQL connection) says so with store_down:
// the queue is then unavailable until the backend's reconnect() succeeds, tried with
// backoff on the writer thread. Meanwhile writes that record new submissions (inserts,
// idempotency keys: nothing was acknowledged for them) fail at once, and every other write
// (finals, delivered marks, attempts, give-ups: what accepted requests did) waits and
// commits after the reconnect. An idle writer notices an outage too: a backend with a
// probe (one cheap round trip) has it run after probe_interval without a round trip, so
// health() reflects a database that went away while nothing was written.

#include "runtime/store.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace lps {

/// How a transaction ended: a failing statement blames its write; a failing BEGIN or
/// COMMIT (busy, full disk) blames the environment, not any one write; store_down: the
/// database is gone (a lost connection), so the writes wait for backend.reconnect().
enum class commit_outcome { committed, write_failed, txn_failed, store_down };

/// One queued write and, once processed, its outcome.
struct queued_write {
  store_write write;
  store_callback done;
  uint64_t seq = 0;
  size_t ops = 0;
  bool ok = false;
  std::string error;
  /// Its transaction was cut by a store outage: it commits again after the reconnect.
  bool waiting = false;
};

/// Retention as the writer runs it: passes of small steps, between commits.
class purge_passes {
public:
  using clock = std::chrono::steady_clock;
  virtual ~purge_passes() = default;
  /// True while a pass runs (it has steps left).
  virtual bool in_pass() const = 0;
  /// When the next pass is due (outside a pass).
  virtual clock::time_point next_pass() const = 0;
  /// One step in its own transaction; true when the pass ended with it.
  virtual bool step() = 0;
};

/// What the queue needs of a backend.
struct group_commit_backend {
  /// Applies `writes` in order in one transaction (all or nothing); on failure `error` says
  /// why. Called on the writer thread (the caller's with manual commits).
  std::function<commit_outcome(std::span<const queued_write> writes, std::string& error)> commit;
  /// Runs after each batch's callbacks (may be empty).
  std::function<void()> after_commit;
  /// Retention (nullptr: results are kept forever); must outlive the queue's stop().
  purge_passes* retention = nullptr;
  /// After a store_down commit: one attempt to get the database back; true when it is, else
  /// `error` says why. Empty for a backend that never answers store_down.
  std::function<bool(std::string& error)> reconnect{};
  /// The wait before the first reconnect attempt, doubled after each failed one up to
  /// outage_backoff_max.
  std::chrono::milliseconds outage_backoff_first{100};
  std::chrono::milliseconds outage_backoff_max{std::chrono::seconds{5}};
  /// One cheap round trip to the database (PostgreSQL: SELECT 1); false with `error` set
  /// when it is gone, which starts the outage as a store_down commit would. Run by the
  /// writer thread when it made no round trip for probe_interval. Empty: no probe.
  std::function<bool(std::string& error)> probe{};
  std::chrono::milliseconds probe_interval{std::chrono::seconds{1}};
};

/// Store writes committed in groups by one writer thread (see the top of this file).
class group_commit_queue {
public:
  /// `max_ops_per_commit` 0 counts as 1. With `manual_commits` no writer thread runs:
  /// flush() commits on the caller's thread and runs the callbacks there.
  group_commit_queue(size_t max_ops_per_commit, bool manual_commits, group_commit_backend backend);
  /// Stops (see stop()).
  ~group_commit_queue();
  group_commit_queue(const group_commit_queue&) = delete;
  group_commit_queue& operator=(const group_commit_queue&) = delete;

  /// Starts the writer thread (not with manual commits).
  void start();

  /// Commits what is queued (manual commits: on the caller's thread; otherwise the writer
  /// drains the queue and exits). Later writes fail with "store is closed" once the writer
  /// exited. Call it before whatever the backend's functions use goes away.
  void stop();

  /// Queues a write; thread-safe; never blocks on I/O.
  void submit(store_write write, store_callback done);

  /// Blocks until every write submitted before this call committed and its callback ran,
  /// or the store is unavailable (those writes wait for the reconnect; blocking until then
  /// would hold a shutdown for as long as the database is down). From a callback on the
  /// writer thread it returns at once (waiting would deadlock).
  void flush();

  /// Runs a whole purge pass (on the writer thread between commits, or on the caller's with
  /// manual commits) and waits for it; from a callback on the writer thread it returns at
  /// once. Does nothing without retention.
  void purge_expired_results();

  /// commits, ops_committed, failed_commits and pending_ops (the rest stays 0).
  store_stats stats() const;

  /// Available, or since when not and why (thread-safe).
  store_health health() const;

private:
  void writer_loop();
  bool take_work(std::vector<queued_write>& batch);
  void take_writes(std::vector<queued_write>& batch);
  void commit_on_caller_thread();
  void commit(std::vector<queued_write>& batch);
  void commit_batch(std::span<queued_write> batch);
  void retry_one_by_one(std::span<queued_write> batch);
  void mark_committed(std::span<queued_write> writes);
  void finish_batch(std::span<queued_write> batch);
  void purge_step_if_due();
  std::chrono::steady_clock::time_point wake_time() const;
  void probe_if_due();
  void ride_out_outage(std::vector<queued_write>& batch);
  bool wait_for_reconnect(std::vector<queued_write>& batch);
  void take_all_waiting(std::vector<queued_write>& batch);
  void fail_waiting(std::vector<queued_write>& batch, bool submissions_only,
                    const std::string& error);
  void commit_waiting(std::vector<queued_write>& batch);
  void mark_down(const std::string& error);
  void mark_up();

  const size_t max_ops_per_commit_;
  const bool manual_commits_;
  const group_commit_backend backend_;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::deque<queued_write> queue_;
  uint64_t submitted_seq_ = 0;
  uint64_t done_seq_ = 0;
  bool stopping_ = false;
  bool writer_exited_ = false;
  /// purge_expired_results() calls made, and those a finished pass answered.
  uint64_t purges_wanted_ = 0;
  uint64_t purges_done_ = 0;
  /// purges_wanted_ when the running pass started (writer thread only).
  uint64_t pass_ticket_ = 0;
  /// Under mutex_; the writer thread changes it.
  store_health health_;
  /// Why the last transaction found the store down (writer thread only).
  std::string outage_error_;
  /// When the idle writer probes the database next (writer thread only).
  std::chrono::steady_clock::time_point next_probe_{};
  std::thread::id writer_id_;
  std::thread writer_;

  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> ops_committed_{0};
  std::atomic<uint64_t> failed_commits_{0};
  std::atomic<uint64_t> pending_ops_{0};
};

} // namespace lps
