#include "runtime/store_reader.hpp"

#include "runtime/batch_job_store.hpp"

#include <spdlog/spdlog.h>

#include <exception>
#include <utility>

namespace lps {

std::unique_ptr<store_reader> store_reader::start(const store_reader_options& options,
                                                  const connect_fn& connect, std::string& error,
                                                  const jobs_connect_fn& connect_jobs) {
  auto result = std::unique_ptr<store_reader>(new store_reader(options));
  auto connections = options.manual ? 1u : options.threads;
  for (unsigned i = 0; i < connections; ++i) {
    connection_set set{connect(error), nullptr};
    if (!set.store)
      return nullptr;
    if (connect_jobs && !(set.jobs = connect_jobs(error)))
      return nullptr;
    result->connections_.push_back(std::move(set));
  }
  if (!options.manual)
    for (auto& set : result->connections_)
      result->threads_.emplace_back([self = result.get(), &conn = set] { self->work(conn); });
  return result;
}

store_reader::store_reader(const store_reader_options& options) : options_(options) {}

store_reader::~store_reader() {
  stop();
}

void store_reader::post(read_fn read, fail_fn failed) {
  queue({std::move(read), nullptr, std::move(failed)});
}

void store_reader::post_jobs(jobs_read_fn read, fail_fn failed) {
  if (connections_.empty() || !connections_.front().jobs) {
    failed("the store reader has no batch job store connections");
    return;
  }
  queue({nullptr, std::move(read), std::move(failed)});
}

void store_reader::queue(job next) {
  const char* refusal = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (stopping_)
      refusal = "the store reader is stopping";
    else if (jobs_.size() >= options_.max_queued)
      refusal = "too many store reads are waiting";
    else
      jobs_.push_back(std::move(next));
  }
  if (refusal != nullptr) {
    next.failed(refusal);
    return;
  }
  ready_.notify_one();
}

size_t store_reader::run_pending() {
  size_t ran = 0;
  for (;;) {
    job next;
    {
      std::lock_guard lock(mutex_);
      if (jobs_.empty() || stopping_)
        return ran;
      next = std::move(jobs_.front());
      jobs_.pop_front();
    }
    run(next, connections_.front());
    ++ran;
  }
}

size_t store_reader::queued() const {
  std::lock_guard lock(mutex_);
  return jobs_.size();
}

void store_reader::stop() {
  std::deque<job> left;
  {
    std::lock_guard lock(mutex_);
    if (stopping_)
      return;
    stopping_ = true;
    left.swap(jobs_);
  }
  ready_.notify_all();
  for (auto& thread : threads_)
    thread.join();
  for (auto& x : left)
    x.failed("the store reader stopped");
}

void store_reader::work(connection_set& db) {
  for (;;) {
    job next;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_)
        return;
      next = std::move(jobs_.front());
      jobs_.pop_front();
    }
    run(next, db);
  }
}

// A read that throws must not end its thread (the pool would shrink until it hangs), nor
// leave its caller waiting for an answer: it fails instead.
void store_reader::run(job& next, connection_set& db) {
  try {
    if (next.jobs_read)
      next.jobs_read(*db.jobs);
    else
      next.read(*db.store);
  } catch (const std::exception& e) {
    spdlog::error("store reader: a read failed: {}", e.what());
    next.failed(std::string{"the store read failed: "} + e.what());
  }
}

} // namespace lps
