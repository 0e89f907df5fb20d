#pragma once

// Metric samples gathered on I/O threads and handed to the metrics actor in one message per
// interval instead of one per event: every message to an actor wakes a CAF worker, which then
// polls its queue before it sleeps again, and at 1,000 gateway calls a second those wake-ups
// cost more CPU than the calls' own work (docs/benchmarks.md, "Gateway overhead at 1,000
// calls/s"). Whoever reads the metrics takes what is gathered first (take()), so a reader
// never sees them late.

#include "messages/metrics.hpp"

#include <chrono>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace lps {

class metric_batch {
public:
  using clock = std::chrono::steady_clock;

  metric_batch() = default;
  explicit metric_batch(clock::duration interval) : interval_(interval) {}

  /// Adds `samples`; returns everything gathered when the last hand-over is at least an
  /// interval ago (then it is the caller's to send), else nullopt.
  std::optional<std::vector<metric_sample>> add(std::vector<metric_sample> samples,
                                                clock::time_point now) {
    std::lock_guard<std::mutex> lock{mutex_};
    if (gathered_.empty())
      gathered_ = std::move(samples);
    else
      gathered_.insert(gathered_.end(), std::make_move_iterator(samples.begin()),
                       std::make_move_iterator(samples.end()));
    if (now - handed_over_ < interval_)
      return std::nullopt;
    handed_over_ = now;
    return std::exchange(gathered_, {});
  }

  /// Everything gathered (empty when nothing is).
  std::vector<metric_sample> take() {
    std::lock_guard<std::mutex> lock{mutex_};
    return std::exchange(gathered_, {});
  }

private:
  clock::duration interval_ = std::chrono::milliseconds{100};
  std::mutex mutex_;
  std::vector<metric_sample> gathered_; // guarded by mutex_
  clock::time_point handed_over_{};     // guarded by mutex_
};

} // namespace lps
