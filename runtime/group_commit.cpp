#include "runtime/group_commit.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <utility>

namespace lps {

namespace {

size_t count_ops(const store_write& write) {
  return write.inserts.size() + write.finals.size() + write.delivered.size() + write.attempts.size()
         + write.idempotency_keys.size() + write.delivery_give_ups.size() + write.dispatched.size();
}

// Runs a callback without letting an exception kill the writer thread.
void run_callback(const store_callback& done, bool ok, const std::string& error) noexcept {
  if (!done)
    return;
  try {
    done(ok, error);
  } catch (const std::exception& e) {
    spdlog::error("store: write callback threw: {}", e.what());
  } catch (...) {
    spdlog::error("store: write callback threw a non-standard exception");
  }
}

// A write recording a new submission: nothing was acknowledged for it yet, so failing it
// during a store outage loses nothing (its client is told to retry).
bool is_submission(const store_write& write) {
  return !write.inserts.empty() || !write.idempotency_keys.empty();
}

std::string unavailable_error(const store_health& health) {
  return "store unavailable: " + health.last_error;
}

int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool any_waiting(std::span<const queued_write> writes) {
  return std::any_of(writes.begin(), writes.end(), [](const auto& w) { return w.waiting; });
}

void set_waiting(std::span<queued_write> writes) {
  for (auto& w : writes)
    w.waiting = true;
}

} // namespace

group_commit_queue::group_commit_queue(size_t max_ops_per_commit, bool manual_commits,
                                       group_commit_backend backend)
    : max_ops_per_commit_(std::max<size_t>(1, max_ops_per_commit)), manual_commits_(manual_commits),
      backend_(std::move(backend)) {}

group_commit_queue::~group_commit_queue() {
  stop();
}

void group_commit_queue::start() {
  if (!manual_commits_)
    writer_ = std::thread([this] { writer_loop(); });
}

void group_commit_queue::stop() {
  if (manual_commits_)
    commit_on_caller_thread();
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (writer_.joinable())
    writer_.join();
}

void group_commit_queue::submit(store_write write, store_callback done) {
  queued_write item;
  item.ops = count_ops(write);
  item.write = std::move(write);
  item.done = std::move(done);
  std::unique_lock lock(mutex_);
  if (writer_exited_) {
    lock.unlock();
    run_callback(item.done, false, "store is closed");
    return;
  }
  if (!health_.available && is_submission(item.write)) {
    auto error = unavailable_error(health_);
    lock.unlock();
    run_callback(item.done, false, error);
    return;
  }
  try {
    // deque::push_back leaves `item` untouched if it throws (moves cannot throw).
    item.seq = submitted_seq_ + 1;
    queue_.push_back(std::move(item));
  } catch (const std::exception& e) {
    lock.unlock();
    run_callback(item.done, false, std::string("cannot queue write: ") + e.what());
    return;
  }
  ++submitted_seq_;
  pending_ops_ += queue_.back().ops;
  lock.unlock();
  work_cv_.notify_one();
}

void group_commit_queue::flush() {
  if (manual_commits_) {
    commit_on_caller_thread();
    return;
  }
  std::unique_lock lock(mutex_);
  // A callback runs on the writer thread: waiting there for later writes would deadlock.
  if (std::this_thread::get_id() == writer_id_)
    return;
  uint64_t target = submitted_seq_;
  done_cv_.wait(lock, [&] { return done_seq_ >= target || writer_exited_ || !health_.available; });
}

void group_commit_queue::purge_expired_results() {
  if (!backend_.retention)
    return;
  if (manual_commits_) {
    while (!backend_.retention->step())
      ; // a pass ends with a step that deleted less than a full step's rows
    return;
  }
  std::unique_lock lock(mutex_);
  if (std::this_thread::get_id() == writer_id_) // a callback: see flush()
    return;
  auto ticket = ++purges_wanted_;
  work_cv_.notify_one();
  done_cv_.wait(lock,
                [&] { return purges_done_ >= ticket || writer_exited_ || !health_.available; });
}

store_stats group_commit_queue::stats() const {
  store_stats out;
  out.commits = commits_.load();
  out.ops_committed = ops_committed_.load();
  out.failed_commits = failed_commits_.load();
  out.pending_ops = pending_ops_.load();
  return out;
}

store_health group_commit_queue::health() const {
  std::lock_guard lock(mutex_);
  return health_;
}

// -- writer thread --

void group_commit_queue::writer_loop() {
  {
    std::lock_guard lock(mutex_);
    writer_id_ = std::this_thread::get_id();
  }
  next_probe_ = std::chrono::steady_clock::now() + backend_.probe_interval;
  std::vector<queued_write> batch;
  while (take_work(batch)) {
    if (!batch.empty())
      commit(batch);
    purge_step_if_due();
    probe_if_due();
  }
}

// The next time the idle writer has work of its own: a purge pass or a probe (max: none).
std::chrono::steady_clock::time_point group_commit_queue::wake_time() const {
  auto result = std::chrono::steady_clock::time_point::max();
  if (backend_.retention)
    result = backend_.retention->next_pass();
  if (backend_.probe)
    result = std::min(result, next_probe_);
  return result;
}

// Waits until there are writes, a purge step is due, or the queue stops; takes the writes
// there are. Returns false once stopping and drained.
bool group_commit_queue::take_work(std::vector<queued_write>& batch) {
  std::unique_lock lock(mutex_);
  auto ready = [&] { return stopping_ || !queue_.empty() || purges_wanted_ > pass_ticket_; };
  if (!backend_.retention || !backend_.retention->in_pass()) {
    auto wake = wake_time();
    if (wake == std::chrono::steady_clock::time_point::max())
      work_cv_.wait(lock, ready);
    else
      work_cv_.wait_until(lock, wake, ready);
  }
  if (stopping_ && queue_.empty()) {
    writer_exited_ = true;
    lock.unlock();
    done_cv_.notify_all();
    return false;
  }
  take_writes(batch);
  return true;
}

// Takes every pending write up to max_ops_per_commit (at least one, however large); the
// caller holds mutex_.
void group_commit_queue::take_writes(std::vector<queued_write>& batch) {
  size_t ops = 0;
  while (!queue_.empty()) {
    size_t next = queue_.front().ops;
    if (!batch.empty() && ops + next > max_ops_per_commit_)
      break;
    ops += next;
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
}

// manual_commits: the caller's thread does the writer's work, so callbacks run there.
void group_commit_queue::commit_on_caller_thread() {
  std::vector<queued_write> batch;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (queue_.empty())
        return;
      take_writes(batch);
    }
    commit(batch);
  }
}

void group_commit_queue::commit(std::vector<queued_write>& batch) {
  // A commit is a round trip: it notices an outage itself, so no probe is due before long.
  next_probe_ = std::chrono::steady_clock::now() + backend_.probe_interval;
  commit_batch(batch);
  if (any_waiting(batch))
    ride_out_outage(batch);
  finish_batch(batch);
  batch.clear();
  if (backend_.after_commit)
    backend_.after_commit();
}

void group_commit_queue::commit_batch(std::span<queued_write> batch) {
  std::string error;
  commit_outcome result = backend_.commit(batch, error);
  if (result == commit_outcome::committed) {
    mark_committed(batch);
    return;
  }
  ++failed_commits_;
  if (result == commit_outcome::store_down) {
    outage_error_ = std::move(error);
    set_waiting(batch);
    return;
  }
  if (batch.size() == 1) {
    batch.front().error = std::move(error);
    return;
  }
  retry_one_by_one(batch);
}

// One write per transaction, so only a write that fails on its own is reported failed.
// An environmental failure (BEGIN/COMMIT) fails the rest too rather than waiting out the
// busy timeout once per write.
void group_commit_queue::retry_one_by_one(std::span<queued_write> batch) {
  for (size_t i = 0; i < batch.size(); ++i) {
    std::string error;
    commit_outcome result = backend_.commit(batch.subspan(i, 1), error);
    if (result == commit_outcome::committed) {
      mark_committed(batch.subspan(i, 1));
      continue;
    }
    ++failed_commits_;
    if (result == commit_outcome::store_down) {
      outage_error_ = std::move(error);
      set_waiting(batch.subspan(i));
      return;
    }
    batch[i].error = error;
    if (result == commit_outcome::txn_failed) {
      for (size_t j = i + 1; j < batch.size(); ++j)
        batch[j].error = error;
      return;
    }
  }
}

void group_commit_queue::mark_committed(std::span<queued_write> writes) {
  uint64_t ops = 0;
  for (auto& w : writes) {
    w.ok = true;
    ops += w.ops;
  }
  ++commits_;
  ops_committed_ += ops;
}

// Callbacks first, then done_seq_: when flush() returns, the callbacks have run. (A batch
// that rode out an outage is no longer in seq order, hence the max.)
void group_commit_queue::finish_batch(std::span<queued_write> batch) {
  uint64_t ops = 0;
  uint64_t last_seq = 0;
  for (auto& w : batch) {
    run_callback(w.done, w.ok, w.error);
    ops += w.ops;
    last_seq = std::max(last_seq, w.seq);
  }
  pending_ops_ -= ops;
  {
    std::lock_guard lock(mutex_);
    done_seq_ = last_seq;
  }
  done_cv_.notify_all();
}

// -- store outage (writer thread, or the caller's with manual commits) --

// The batch's waiting writes commit once the backend is back; new submissions fail
// meanwhile. Ends early only when the queue stops: what still waits then fails as closed
// (a final not stored leaves its request stored, so it runs again after the next start).
void group_commit_queue::ride_out_outage(std::vector<queued_write>& batch) {
  while (any_waiting(batch)) {
    mark_down(outage_error_);
    if (!wait_for_reconnect(batch)) {
      fail_waiting(batch, false, "store is closed: " + unavailable_error(health()));
      return;
    }
    commit_waiting(batch);
  }
}

// Tries backend_.reconnect() after waits doubling from outage_backoff_first up to
// outage_backoff_max. Before each wait it takes every queued write into the batch, where
// submissions fail at once and the rest wait. False when the queue stops first.
bool group_commit_queue::wait_for_reconnect(std::vector<queued_write>& batch) {
  auto delay = backend_.outage_backoff_first;
  for (;;) {
    take_all_waiting(batch);
    fail_waiting(batch, true, unavailable_error(health()));
    {
      std::unique_lock lock(mutex_);
      if (work_cv_.wait_for(lock, delay, [&] { return stopping_; }))
        return false;
    }
    std::string error;
    if (!backend_.reconnect || backend_.reconnect(error)) {
      mark_up();
      return true;
    }
    {
      std::lock_guard lock(mutex_);
      health_.last_error = error;
    }
    delay = std::min(delay * 2, backend_.outage_backoff_max);
  }
}

void group_commit_queue::take_all_waiting(std::vector<queued_write>& batch) {
  std::lock_guard lock(mutex_);
  for (auto& w : queue_) {
    w.waiting = true;
    batch.push_back(std::move(w));
  }
  queue_.clear();
}

// Fails the waiting writes (only the submissions, or all) and runs their callbacks now, so
// a client is not held until the outage ends.
void group_commit_queue::fail_waiting(std::vector<queued_write>& batch, bool submissions_only,
                                      const std::string& error) {
  for (auto& w : batch) {
    if (!w.waiting || (submissions_only && !is_submission(w.write)))
      continue;
    w.waiting = false;
    w.error = error;
    run_callback(w.done, false, error);
    w.done = nullptr;
  }
}

// Commits the waiting writes (moved behind the settled ones, in their order) in groups of
// max_ops_per_commit; a new outage leaves the rest waiting.
void group_commit_queue::commit_waiting(std::vector<queued_write>& batch) {
  auto first = std::stable_partition(batch.begin(), batch.end(),
                                     [](const queued_write& w) { return !w.waiting; });
  std::span<queued_write> rest{first, batch.end()};
  while (!rest.empty()) {
    size_t count = 0;
    size_t ops = 0;
    while (count < rest.size() && (count == 0 || ops + rest[count].ops <= max_ops_per_commit_))
      ops += rest[count++].ops;
    auto group = rest.first(count);
    for (auto& w : group)
      w.waiting = false;
    commit_batch(group);
    if (any_waiting(group))
      return;
    rest = rest.subspan(count);
  }
}

// Nothing was written for probe_interval: one round trip tells whether the database is still
// there. A failed probe is an outage like a store_down commit (health() says unavailable,
// new submissions fail at once) and is ridden out the same way, with the writes queued
// meanwhile; so /healthz and llm_provider_store_up see an outage within about a probe
// interval even with no traffic, and the store comes back by itself.
void group_commit_queue::probe_if_due() {
  if (!backend_.probe || std::chrono::steady_clock::now() < next_probe_)
    return;
  next_probe_ = std::chrono::steady_clock::now() + backend_.probe_interval;
  std::string error;
  if (backend_.probe(error))
    return;
  outage_error_ = error;
  mark_down(error);
  std::vector<queued_write> batch;
  if (wait_for_reconnect(batch)) {
    commit_waiting(batch);
    ride_out_outage(batch);
  } else {
    fail_waiting(batch, false, "store is closed: " + unavailable_error(health()));
  }
  if (!batch.empty())
    finish_batch(batch);
  next_probe_ = std::chrono::steady_clock::now() + backend_.probe_interval;
}

// One error line per outage; flush() and purge waiters stop waiting for the writer.
void group_commit_queue::mark_down(const std::string& error) {
  {
    std::lock_guard lock(mutex_);
    health_.last_error = error;
    if (!health_.available)
      return;
    health_.available = false;
    health_.unavailable_since_ms = unix_now_ms();
  }
  done_cv_.notify_all();
  spdlog::error("store unavailable: {}; new submissions are refused (503) and the writes of "
                "accepted requests wait until it is back",
                error);
}

void group_commit_queue::mark_up() {
  int64_t since_ms = 0;
  {
    std::lock_guard lock(mutex_);
    since_ms = health_.unavailable_since_ms;
    health_.available = true;
    health_.unavailable_since_ms = 0;
    ++health_.reconnects;
  }
  spdlog::info("store available again after {} ms", unix_now_ms() - since_ms);
}

// -- retention (writer thread) --

// One purge step when a pass runs, is due, or was asked for; a finished pass answers the
// purge_expired_results() calls made before it started.
void group_commit_queue::purge_step_if_due() {
  purge_passes* retention = backend_.retention;
  if (!retention)
    return;
  if (!retention->in_pass()) {
    std::lock_guard lock(mutex_);
    if (purges_wanted_ == pass_ticket_ && purge_passes::clock::now() < retention->next_pass())
      return;
    pass_ticket_ = purges_wanted_;
  }
  if (!retention->step())
    return;
  {
    std::lock_guard lock(mutex_);
    purges_done_ = pass_ticket_;
  }
  done_cv_.notify_all();
}

} // namespace lps
