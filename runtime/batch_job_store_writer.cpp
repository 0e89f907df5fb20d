#include "runtime/batch_job_store_writer.hpp"

#include <utility>

namespace lps {

batch_job_store_writer::batch_job_store_writer(batch_job_store& db, mode m) : db_(db) {
  if (m == mode::own_thread)
    thread_ = std::thread{[this] { run(); }};
}

batch_job_store_writer::~batch_job_store_writer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable())
    thread_.join();
}

void batch_job_store_writer::create(batch_job_record job, std::vector<std::string> item_ids,
                                    callback done) {
  submit([this, job = std::move(job),
          ids = std::move(item_ids)](std::string& error) { return db_.create(job, ids, error); },
         std::move(done));
}

void batch_job_store_writer::update(batch_job_record job, callback done) {
  submit([this, job = std::move(job)](std::string& error) { return db_.update(job, error); },
         std::move(done));
}

void batch_job_store_writer::finish(batch_job_record job, callback done) {
  submit([this, job = std::move(job)](std::string& error) { return db_.finish(job, error); },
         std::move(done));
}

void batch_job_store_writer::flush() {
  std::unique_lock lock(mutex_);
  auto target = queued_;
  drained_.wait(lock, [&] { return finished_ >= target; });
}

void batch_job_store_writer::submit(write w, callback done) {
  if (!thread_.joinable()) { // mode::caller_thread
    std::string error;
    bool ok = w(error);
    done(ok, error);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    queue_.emplace_back(std::move(w), std::move(done));
    ++queued_;
  }
  wake_.notify_one();
}

void batch_job_store_writer::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty())
      return; // stopping, and every queued write has run
    auto [w, done] = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    std::string error;
    bool ok = w(error);
    done(ok, error);
    lock.lock();
    ++finished_;
    drained_.notify_all();
  }
}

} // namespace lps
