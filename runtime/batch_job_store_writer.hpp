#pragma once

// The batch job store's writes off the actor threads: a batch jobs actor hands each write
// (create, update, finish) to a writer and goes on; the writer runs the writes on a thread
// of its own, one at a time in the order given, and calls each write's callback on that
// thread once the store answered (committed or failed). The actor turns the callback into a
// message and starts a job's next step only then, so every step is still stored before the
// next one. Reads stay synchronous on the store (the actor reads only at spawn).

#include "runtime/batch_job_store.hpp"

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lps {

class batch_job_store_writer {
public:
  /// Called once per write with its outcome: ok, or false and the store's error.
  using callback = std::function<void(bool ok, const std::string& error)>;

  /// Where the writes run.
  enum class mode {
    /// A thread of the writer's own (the service).
    own_thread,
    /// At once on the caller's thread, callback included (deterministic actor tests).
    caller_thread,
  };

  /// `db` must outlive the writer.
  explicit batch_job_store_writer(batch_job_store& db, mode m = mode::own_thread);
  /// Runs the writes still queued, then ends the thread.
  ~batch_job_store_writer();
  batch_job_store_writer(const batch_job_store_writer&) = delete;
  batch_job_store_writer& operator=(const batch_job_store_writer&) = delete;

  /// batch_job_store::create, update and finish, queued.
  void create(batch_job_record job, std::vector<std::string> item_ids, callback done);
  void update(batch_job_record job, callback done);
  void finish(batch_job_record job, callback done);

  /// Blocks until every write queued before the call has run and called back.
  void flush();

private:
  using write = std::function<bool(std::string& error)>;
  void submit(write w, callback done);
  void run();

  batch_job_store& db_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable drained_;
  std::deque<std::pair<write, callback>> queue_;
  /// Writes queued and finished so far (flush waits for finished to reach queued).
  size_t queued_ = 0;
  size_t finished_ = 0;
  bool stopping_ = false;
  /// Started last, so the members above exist when it runs.
  std::thread thread_;
};

} // namespace lps
