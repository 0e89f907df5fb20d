#pragma once

// Checkpoints lps.db's write-ahead log on its own thread and connection, so that copying
// WAL frames back into the database (and, with fsync on, syncing it) never runs inside a
// commit on the store's writer thread. SQLite's automatic checkpoint runs there and holds
// every commit behind it once per 64 MiB of WAL (figures: docs/benchmarks.md, "WAL
// checkpoints off the writer thread"). A PASSIVE checkpoint takes no write lock: commits
// go on while it copies.

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace lps {

class wal_checkpointer {
public:
  /// Opens its own connection to lps.db in `data_dir` and starts the thread; nullptr with
  /// `error` set when the connection cannot be opened.
  static std::unique_ptr<wal_checkpointer> start(const std::string& data_dir, int busy_timeout_ms,
                                                 std::string& error);

  /// Stops the thread (a checkpoint in progress finishes first).
  ~wal_checkpointer();
  wal_checkpointer(const wal_checkpointer&) = delete;
  wal_checkpointer& operator=(const wal_checkpointer&) = delete;

  /// Asks for a checkpoint soon; never blocks. Requests made while one runs fold into one.
  void request();

  /// Runs a RESTART checkpoint and waits for it: it copies every frame and makes the next
  /// commit start the WAL from its beginning. For a writer between two commits whose WAL
  /// grew too long; done here, so two checkpoints never race for the same lock.
  void restart();

  /// Checkpoints run so far on a non-empty WAL.
  uint64_t checkpoints() const;

private:
  struct connection;
  wal_checkpointer() = default;
  void run();
  bool checkpoint(int mode);

  std::unique_ptr<connection> db_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable restarted_;
  bool requested_ = false;
  uint64_t restarts_wanted_ = 0;
  uint64_t restarts_done_ = 0;
  bool warned_ = false; // touched by the thread only
  bool stopping_ = false;
  uint64_t checkpoints_ = 0;
  std::thread thread_;
};

} // namespace lps
