#pragma once

// Every figure of a run (sent, accepted, refused, results, duplicates, latencies) in one
// tracker behind one mutex.

#include "tools/loadgen/events.hpp"
#include "tools/loadgen/options.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lps::loadgen {

/// Nanoseconds since `origin`.
int64_t now_ns(clock_type::time_point origin);

struct progress_figures {
  uint64_t submitted = 0;
  uint64_t accepted = 0;
  uint64_t refused = 0;
  uint64_t not_accepted = 0;
  uint64_t completed = 0;
};

/// Every figure of the run, behind one mutex (callers: client threads, the callback receiver,
/// the main thread). Times are nanoseconds since the start of the run.
class tracker {
public:
  explicit tracker(uint64_t count) : slots_(count) {}

  void sent(const std::vector<uint64_t>& indices, int64_t at) {
    std::lock_guard<std::mutex> lock{mutex_};
    first_sent_ = std::min(first_sent_, at);
    for (auto i : indices) {
      if (slots_[i].sent_ns < 0) {
        slots_[i].sent_ns = at;
        ++submitted_;
      }
    }
  }

  void post_answered(double latency_ms) {
    std::lock_guard<std::mutex> lock{mutex_};
    accept_ms_.push_back(latency_ms);
  }

  void accepted(uint64_t index, const std::string& queue_id, int64_t at) {
    std::lock_guard<std::mutex> lock{mutex_};
    ++accepted_;
    last_accept_ = std::max(last_accept_, at);
    by_queue_id_.emplace(queue_id, index);
    // The result may have overtaken the 202 (a fast server answers before we read the 202).
    auto early = early_.find(queue_id);
    if (early == early_.end())
      return;
    for (auto& [event, when] : early->second)
      record(index, event, when);
    early_.erase(early);
  }

  /// `key` names the reason ("503", "transport", "item:QUEUE_FULL"); `final` = not retried.
  void refused(const std::string& key, size_t n, bool final) {
    std::lock_guard<std::mutex> lock{mutex_};
    refusals_[key] += n;
    refused_ += n;
    (final ? not_accepted_ : retries_) += n;
  }

  void result(const event_info& event, int64_t at) {
    std::lock_guard<std::mutex> lock{mutex_};
    auto it = by_queue_id_.find(event.queue_id);
    if (it == by_queue_id_.end())
      early_[event.queue_id].emplace_back(event, at);
    else
      record(it->second, event, at);
  }

  void bad_event() {
    std::lock_guard<std::mutex> lock{mutex_};
    ++bad_events_;
  }

  progress_figures progress() const {
    std::lock_guard<std::mutex> lock{mutex_};
    return {submitted_, accepted_, refused_, not_accepted_, completed_};
  }

  void print_summary(const options& opt, double elapsed_s) const;

private:
  struct slot {
    int64_t sent_ns = -1;
    int64_t result_ns = -1;
    int64_t provider_ms = -1;
    int64_t inside_ms = -1;
    std::string event_id;
  };

  void record(uint64_t index, const event_info& event, int64_t at) {
    auto& s = slots_[index];
    if (s.result_ns >= 0) {
      ++(s.event_id == event.event_id ? redeliveries_ : conflicting_);
      return;
    }
    s.result_ns = at;
    s.provider_ms = event.provider_ms;
    s.inside_ms = event.inside_ms;
    s.event_id = event.event_id;
    ++completed_;
    ++(event.error ? errors_ : successes_);
    last_result_ = std::max(last_result_, at);
  }

  std::vector<double> e2e_latencies_ms() const;
  /// `field` (provider_ms or inside_ms) of every completed request that carried it.
  std::vector<double> event_figures_ms(int64_t slot::*field) const;

  mutable std::mutex mutex_;
  std::vector<slot> slots_;
  std::unordered_map<std::string, uint64_t> by_queue_id_;
  std::unordered_map<std::string, std::vector<std::pair<event_info, int64_t>>> early_;
  std::map<std::string, uint64_t> refusals_;
  std::vector<double> accept_ms_;
  uint64_t submitted_ = 0;
  uint64_t accepted_ = 0;
  uint64_t refused_ = 0;
  uint64_t retries_ = 0;
  uint64_t not_accepted_ = 0;
  uint64_t completed_ = 0;
  uint64_t successes_ = 0;
  uint64_t errors_ = 0;
  uint64_t redeliveries_ = 0;
  uint64_t conflicting_ = 0;
  uint64_t bad_events_ = 0;
  int64_t first_sent_ = INT64_MAX;
  int64_t last_accept_ = 0;
  int64_t last_result_ = 0;

  friend int exit_code(const tracker&, const options&);
};

/// 0 when every request was accepted and got exactly one result (missing 0, no conflicting
/// duplicates), else 1.
int exit_code(const tracker& t, const options& opt);

} // namespace lps::loadgen
