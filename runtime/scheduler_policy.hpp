#pragma once

// lps's CAF scheduling policy (`scheduler.policy = 'lps'`, the default): CAF's work
// stealing, except for how long an idle worker sleeps. CAF's idle worker wakes every
// relaxed-sleep-duration (10 ms) to look for work to steal; on this VM each wake-up costs
// 30-40 us of CPU, which kept an idle lps at 1-1.5 % of a core. A longer interval for everyone
// cut that but let one worker sit on a queue of jobs while the other slept, and cost 8-20 % of
// throughput under load (docs/benchmarks.md, "Idle CPU"). Here a worker that goes to sleep
// while another one is busy sleeps as CAF's does (it looks for work to steal every
// relaxed-sleep-duration); when every worker sleeps, the system is idle and it sleeps deeply,
// until told: by work enqueued for it (as in CAF), or by a busy worker that adds a job while a
// peer sleeps deeply or while jobs already wait in its queue. A deep sleeper also wakes once a
// second. The quick polls before sleeping are CAF's, so a reply that comes back within half a
// millisecond is still picked up without a wake-up.
//
// Included by runtime/scheduler.cpp only: CAF's scheduler headers are heavy.

#include <caf/policy/work_stealing.hpp>
#include <caf/resumable.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <thread>

namespace lps {

/// How often a deep sleeper (every worker asleep) looks for work nobody told it about. Nothing
/// depends on it: a worker that adds a job while a peer sleeps deeply wakes that peer.
inline constexpr std::chrono::seconds idle_worker_safety_wake{1};

class deep_sleep_stealing : public caf::policy::work_stealing {
public:
  using base = caf::policy::work_stealing;

  struct coordinator_data : base::coordinator_data {
    using base::coordinator_data::coordinator_data;
    /// Workers sleeping on their condition variable: a busy worker reads this before it
    /// looks for one to wake, so under load enqueueing costs one atomic load more.
    std::atomic<size_t> sleepers{0};
  };

  struct worker_data : base::worker_data {
    using base::worker_data::worker_data;
    worker_data(const worker_data& other) : base::worker_data(other) {}
    /// Set (under waitdata.lock) by a busy peer that wants a job of its queue taken.
    bool steal_hint = false;
    /// Sleeping with idle_worker_safety_wake as the timeout: every worker was asleep when
    /// this one went to sleep (under waitdata.lock).
    bool deep = false;
  };

  template <class Coordinator>
  void central_enqueue(Coordinator* self, caf::resumable* job) {
    auto target = self->worker_by_id(d(self).next_worker++ % self->num_workers());
    external_enqueue(target, job);
  }

  /// From a thread outside the scheduler (HTTP, store, timers).
  template <class Worker>
  void external_enqueue(Worker* self, caf::resumable* job) {
    bool backlog = !d(self).queue.empty();
    d(self).queue.append(job);
    bool woke_target = false;
    {
      std::unique_lock<std::mutex> guard{d(self).waitdata.lock};
      if (d(self).waitdata.sleeping) {
        d(self).waitdata.cv.notify_one();
        woke_target = true;
      }
    }
    if (!woke_target)
      wake_idle_peer(self, backlog);
  }

  /// From a job running on this worker: the new job runs after it, or on a peer that steals
  /// it if jobs were already waiting.
  template <class Worker>
  void internal_enqueue(Worker* self, caf::resumable* job) {
    add_own(self, job, true);
  }

  /// A job that yielded goes to the back of this worker's queue.
  template <class Worker>
  void resume_job_later(Worker* self, caf::resumable* job) {
    add_own(self, job, false);
  }

  template <class Worker>
  caf::resumable* dequeue(Worker* self) {
    if (auto job = poll(self))
      return job;
    for (;;) {
      if (auto job = sleep_until_told(self))
        return job;
    }
  }

private:
  /// Adds a job from this worker's own thread, waking an idle peer when jobs already wait.
  template <class Worker>
  void add_own(Worker* self, caf::resumable* job, bool first) {
    bool backlog = !d(self).queue.empty();
    if (first)
      d(self).queue.prepend(job);
    else
      d(self).queue.append(job);
    wake_idle_peer(self, backlog);
  }

  /// CAF's first two strategies: quick polls, then polls 50 us apart (lps sets 10 of them),
  /// stealing every steal_interval polls.
  template <class Worker>
  caf::resumable* poll(Worker* self) {
    auto& strategies = d(self).strategies;
    for (size_t k = 0; k < 2; ++k) {
      auto& strategy = strategies[k];
      for (size_t i = 0; i < strategy.attempts; i += strategy.step_size) {
        if (auto job = d(self).queue.take_head())
          return job;
        if (i % strategy.steal_interval == 0)
          if (auto job = steal_from_any(self))
            return job;
        if (strategy.sleep_duration.count() > 0)
          std::this_thread::sleep_for(strategy.sleep_duration);
      }
    }
    return nullptr;
  }

  /// One sleep on the condition variable and what it brings: deep when every worker sleeps,
  /// else CAF's relaxed sleep, after which it looks for work to steal. The worker counts
  /// itself a sleeper before its last look at the peers' queues, and a peer adds its job
  /// before it reads the count (both sequentially consistent), so a peer that adds a job
  /// while this one sleeps deeply always sees it asleep.
  template <class Worker>
  caf::resumable* sleep_until_told(Worker* self) {
    auto& data = d(self);
    auto& sleepers = d(self->parent()).sleepers;
    std::unique_lock<std::mutex> guard{data.waitdata.lock};
    data.waitdata.sleeping = true;
    data.deep = ++sleepers == self->parent()->num_workers();
    auto job = steal_from_any(self);
    if (job == nullptr) {
      auto timeout =
          data.deep ? timespan_of(idle_worker_safety_wake) : data.strategies[2].sleep_duration;
      data.waitdata.cv.wait_for(guard, timeout,
                                [&] { return !data.queue.empty() || data.steal_hint; });
    }
    data.waitdata.sleeping = false;
    data.deep = false;
    data.steal_hint = false;
    --sleepers;
    guard.unlock();
    if (job != nullptr)
      return job;
    if (auto own = data.queue.take_head())
      return own;
    return steal_from_any(self);
  }

  static caf::timespan timespan_of(std::chrono::seconds s) {
    return std::chrono::duration_cast<caf::timespan>(s);
  }

  /// The oldest job of the first peer that has one (CAF's try_steal asks one random peer).
  template <class Worker>
  caf::resumable* steal_from_any(Worker* self) {
    auto parent = self->parent();
    auto n = parent->num_workers();
    for (size_t step = 1; step < n; ++step) {
      auto peer = parent->worker_by_id((self->id() + step) % n);
      if (auto job = d(peer).queue.take_tail())
        return job;
    }
    return nullptr;
  }

  /// Wakes a sleeping peer to take a job: any sleeper when jobs were already waiting
  /// (`backlog`), else only a deep one, which would not look for a second.
  template <class Worker>
  void wake_idle_peer(Worker* self, bool backlog) {
    auto parent = self->parent();
    // The job just added must be visible before the count is read (see sleep_until_told).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (d(parent).sleepers.load() == 0)
      return;
    auto n = parent->num_workers();
    for (size_t step = 1; step < n; ++step) {
      auto& peer = d(parent->worker_by_id((self->id() + step) % n));
      std::unique_lock<std::mutex> guard{peer.waitdata.lock};
      if (peer.waitdata.sleeping && (backlog || peer.deep)) {
        peer.steal_hint = true;
        peer.waitdata.cv.notify_one();
        return;
      }
    }
  }
};

} // namespace lps
