#pragma once

// The reader pool: a few threads, each with a read connection of its own on the store
// (store::open_reader), that run the reads request paths need (results, idempotency keys,
// texts read back, runs) off the actors' threads and the HTTP server's I/O threads. A read is
// a callback given the thread's connection; it hands its answer on itself (sends a CAF
// message, calls an HTTP responder). The queue of waiting reads is bounded: a read beyond it
// is refused at once, never waited for. It knows no actor. Reads of the batch job store
// (its routes, the console's jobs view) run on the same threads, each thread with a batch
// job store connection of its own, so they neither wait for each other on one connection
// nor for the batch jobs actors' writes.

#include "runtime/store.hpp"

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lps {

class batch_job_store;

/// How the pool runs.
struct store_reader_options {
  /// Reader threads, each with its own connection (STORE_READER_THREADS).
  unsigned threads = 2;
  /// Reads waiting for a thread; a read beyond them is refused at once.
  size_t max_queued = 4096;
  /// Tests only: no threads and one connection; queued reads run when the test calls
  /// run_pending(), on its thread (as the store's manual_commits do for writes).
  bool manual = false;
};

class store_reader {
public:
  /// A read: runs once on a reader thread with that thread's connection.
  using read_fn = std::function<void(store_reads&)>;
  /// Runs instead of the read when it cannot run, with why.
  using fail_fn = std::function<void(const std::string& error)>;
  /// Opens one read connection (store::open_reader); nullptr with `error` set on failure.
  using connect_fn = std::function<std::unique_ptr<store_reads>(std::string& error)>;
  /// A read of the batch job store, with the thread's own connection to it.
  using jobs_read_fn = std::function<void(batch_job_store&)>;
  /// Opens one batch job store connection; nullptr with `error` set on failure.
  using jobs_connect_fn = std::function<std::unique_ptr<batch_job_store>(std::string& error)>;

  /// Opens every thread's connection (and batch job store connection, when `connect_jobs`
  /// is given), then starts the threads; nullptr with `error` set when a connection cannot
  /// be opened.
  static std::unique_ptr<store_reader> start(const store_reader_options& options,
                                             const connect_fn& connect, std::string& error,
                                             const jobs_connect_fn& connect_jobs = {});

  /// stop().
  ~store_reader();
  store_reader(const store_reader&) = delete;
  store_reader& operator=(const store_reader&) = delete;

  /// Queues `read` for the next free reader thread (reads start in the order posted). Never
  /// blocks: when max_queued reads wait already, or the pool stopped, `failed` runs at once
  /// on the calling thread instead. Exactly one of the two runs, except that a read that
  /// throws gets `failed` too, on its reader thread (so a read hands its answer on last).
  /// Thread-safe.
  void post(read_fn read, fail_fn failed);

  /// As post, for a read of the batch job store; `failed` runs at once when the pool was
  /// started without batch job store connections.
  void post_jobs(jobs_read_fn read, fail_fn failed);

  /// Manual mode: runs the queued reads, and those they post, on the calling thread; returns
  /// how many ran.
  size_t run_pending();

  /// Reads waiting for a thread.
  size_t queued() const;

  /// Takes no more reads, lets each thread finish the read it runs, joins the threads and
  /// fails the reads still queued (on the calling thread, never a reader thread).
  /// Idempotent.
  void stop();

private:
  /// One of the two reads is set.
  struct job {
    read_fn read;
    jobs_read_fn jobs_read;
    fail_fn failed;
  };
  /// A thread's connections (`jobs` null when the pool has none).
  struct connection_set {
    std::unique_ptr<store_reads> store;
    std::unique_ptr<batch_job_store> jobs;
  };

  explicit store_reader(const store_reader_options& options);
  void queue(job next);
  void work(connection_set& db);
  static void run(job& next, connection_set& db);

  store_reader_options options_;
  /// One per thread (one in manual mode); they outlive the threads.
  std::vector<connection_set> connections_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

} // namespace lps
