#pragma once

// Delayed work and bounded concurrency: the scheduler thread (Retry-After waits, poll
// back-off, --rate pacing), the open-loop pacer, the window of units in flight, and what the
// HTTP clients of a run share.

#include "runtime/http_client.hpp"
#include "tools/loadgen/options.hpp"
#include "tools/loadgen/tracker.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <queue>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

namespace lps::loadgen {

/// Runs functions at a time or after a delay on one thread (Retry-After waits, poll back-off,
/// --rate pacing). It runs them without holding its lock, so they may schedule again.
class scheduler {
public:
  scheduler() : thread_([this] { run(); }) {}

  ~scheduler() {
    stop();
  }

  void after(milliseconds delay, std::function<void()> fn) {
    at(clock_type::now() + delay, std::move(fn));
  }

  void at(clock_type::time_point when, std::function<void()> fn) {
    std::lock_guard<std::mutex> lock{mutex_};
    if (stopped_)
      return;
    items_.push({when, next_seq_++, std::move(fn)});
    wake_.notify_one();
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock{mutex_};
      stopped_ = true;
      wake_.notify_one();
    }
    if (thread_.joinable())
      thread_.join();
  }

private:
  struct item {
    clock_type::time_point at;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const item& other) const {
      return std::tie(at, seq) > std::tie(other.at, other.seq);
    }
  };

  void run() {
    std::unique_lock<std::mutex> lock{mutex_};
    while (!stopped_) {
      if (items_.empty()) {
        wake_.wait(lock);
        continue;
      }
      if (clock_type::now() < items_.top().at) {
        wake_.wait_until(lock, items_.top().at);
        continue;
      }
      auto fn = std::move(const_cast<item&>(items_.top()).fn);
      items_.pop();
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::priority_queue<item, std::vector<item>, std::greater<>> items_;
  uint64_t next_seq_ = 0;
  bool stopped_ = false;
  std::thread thread_;
};

/// How far a paced run kept to its schedule (--rate).
struct pacing_figures {
  uint64_t started = 0;
  /// Units that started more than 1 ms after their due time (every slot was busy, or the
  /// thread that starts them did not get the CPU in time).
  uint64_t late = 0;
  /// The latest start of any unit, relative to its due time.
  clock_type::duration late_max{};
};

/// The open-loop schedule of fresh units: unit k is due at start + k / rate seconds, the
/// start being the first question asked. The schedule never slips, so after a stall the
/// overdue units go at once (an open loop's offered load does not wait for the server).
/// Rate 0: every unit is due at once (closed loop). Not synchronized: the caller locks.
class pacer {
public:
  explicit pacer(uint64_t rate) : rate_(rate) {}

  bool paced() const {
    return rate_ > 0;
  }

  /// Whether the next fresh unit may start at `now`.
  bool due(clock_type::time_point now) {
    if (!paced())
      return true;
    if (!start_)
      start_ = now;
    return now >= next_due();
  }

  /// When the next fresh unit is due (only after due() was asked once).
  clock_type::time_point next_due() const {
    // Whole nanoseconds: --count (<= 1e8) times 1e9 stays within 64 bits.
    return *start_ + std::chrono::nanoseconds{figures_.started * 1'000'000'000 / rate_};
  }

  /// Records that the next fresh unit starts at `now` (after due() said it may).
  void started(clock_type::time_point now) {
    if (paced()) {
      auto late = now - next_due();
      figures_.late += late > milliseconds{1} ? 1 : 0;
      figures_.late_max = std::max(figures_.late_max, late);
    }
    ++figures_.started;
  }

  const pacing_figures& figures() const {
    return figures_;
  }

private:
  uint64_t rate_;
  std::optional<clock_type::time_point> start_;
  pacing_figures figures_;
};

/// Keeps at most `limit` units in flight: units due again (retries, polls) go first, then
/// fresh ones from `fresh` when `rate` (per second, 0: no pacing) says one is due. `launch`
/// must eventually call done() once per unit. `sched` (needed when rate > 0) wakes the window
/// when the next fresh unit falls due, as no answer may arrive to do it.
template <class Unit>
class window {
public:
  window(size_t limit, std::function<std::optional<Unit>()> fresh, std::function<void(Unit)> launch,
         uint64_t rate = 0, scheduler* sched = nullptr)
      : limit_(limit), fresh_(std::move(fresh)), launch_(std::move(launch)), pace_(rate),
        sched_(sched) {
    if (rate > 0 && !sched)
      throw std::logic_error("a paced window needs a scheduler");
  }

  void push(Unit unit) {
    {
      std::lock_guard<std::mutex> lock{mutex_};
      ready_.push_back(std::move(unit));
    }
    pump();
  }

  void done() {
    {
      std::lock_guard<std::mutex> lock{mutex_};
      --inflight_;
    }
    pump();
  }

  /// Launches nothing more (before the client stops: its failures would relaunch at once).
  void close() {
    std::lock_guard<std::mutex> lock{mutex_};
    closed_ = true;
  }

  void pump() {
    for (;;) {
      std::optional<Unit> unit;
      {
        std::lock_guard<std::mutex> lock{mutex_};
        if (closed_ || inflight_ >= limit_)
          return;
        unit = next_unit();
        if (!unit)
          return;
        ++inflight_;
      }
      launch_(std::move(*unit));
    }
  }

  pacing_figures pacing() const {
    std::lock_guard<std::mutex> lock{mutex_};
    return pace_.figures();
  }

private:
  /// Called under the lock: a unit due again, else a fresh one if one is due.
  std::optional<Unit> next_unit() {
    if (!ready_.empty()) {
      auto unit = std::move(ready_.front());
      ready_.pop_front();
      return unit;
    }
    if (!fresh_)
      return std::nullopt;
    auto now = clock_type::now();
    if (!pace_.due(now)) {
      wake_when_due();
      return std::nullopt;
    }
    auto unit = fresh_();
    if (unit)
      pace_.started(now);
    return unit;
  }

  /// Called under the lock (safe: the scheduler runs its functions without its own lock).
  /// Every answer pumps, so one pending wake-up is enough however many find nothing due.
  void wake_when_due() {
    if (wake_pending_)
      return;
    wake_pending_ = true;
    sched_->at(pace_.next_due(), [this] {
      {
        std::lock_guard<std::mutex> lock{mutex_};
        wake_pending_ = false;
      }
      pump();
    });
  }

  size_t limit_;
  std::function<std::optional<Unit>()> fresh_;
  std::function<void(Unit)> launch_;
  mutable std::mutex mutex_;
  std::deque<Unit> ready_;
  size_t inflight_ = 0;
  bool closed_ = false;
  pacer pace_;
  scheduler* sched_;
  bool wake_pending_ = false;
};

/// Everything the submitter and the poller share.
struct run_context {
  const options& opt;
  tracker& track;
  scheduler& sched;
  clock_type::time_point origin;
  milliseconds http_timeout;
};

/// A client of `connections` keep-alive connections on one I/O thread.
lps::http_client_options client_options(uint64_t connections);

/// The value of header `name` ("" when absent).
std::string header(const lps::http_client_response& r, std::string_view name);

/// Retry-After in seconds (capped); `fallback` when absent or unreadable.
milliseconds retry_delay(const lps::http_client_response& r, milliseconds fallback);

/// "503", "transport_<error>": why a POST was refused.
std::string refusal_key(const lps::http_client_response& r);

} // namespace lps::loadgen
