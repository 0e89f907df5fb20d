#pragma once

// --reset-url: an empty POST to one URL every interval during the run.

#include "runtime/http_client.hpp"
#include "tools/loadgen/flow.hpp"
#include "tools/loadgen/options.hpp"
#include "tools/loadgen/report.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace lps::loadgen {

/// POSTs an empty body to one URL every interval on its own thread and connection, until
/// stopped; counts the answers and the longest gap between two successful ones.
class periodic_poster {
public:
  explicit periodic_poster(const options& opt)
      : url_(opt.reset_url), interval_(opt.reset_interval_ms), client_(client_options(1)) {
    if (!url_.empty())
      thread_ = std::thread([this] { loop(); });
  }

  ~periodic_poster() {
    stop();
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock{mutex_};
      if (stopped_)
        return;
      stopped_ = true;
      wake_.notify_all();
    }
    if (thread_.joinable())
      thread_.join();
    client_.stop();
  }

  void print() const {
    if (url_.empty())
      return;
    std::lock_guard<std::mutex> lock{mutex_};
    line("resets", std::to_string(ok_) + " ok, " + std::to_string(failed_) + " failed (every "
                       + std::to_string(interval_.count()) + " ms to " + url_ + ")");
    line("reset_max_gap_ms", fixed(double(max_gap_ns_) / 1e6, 1));
  }

private:
  void loop() {
    std::unique_lock<std::mutex> lock{mutex_};
    auto next = clock_type::now();
    while (!stopped_) {
      lock.unlock();
      lps::http_client_request req;
      req.url = url_;
      req.timeout = milliseconds{2000};
      client_.send(std::move(req), [this](lps::http_client_response r) { answered(r.status); });
      lock.lock();
      next += interval_;
      wake_.wait_until(lock, next, [this] { return stopped_; });
    }
  }

  void answered(unsigned status) {
    auto now = clock_type::now();
    std::lock_guard<std::mutex> lock{mutex_};
    if (stopped_)
      return; // cancelled by stop(), or answered after the run: neither counts
    if (status < 200 || status > 299) {
      ++failed_;
      return;
    }
    ++ok_;
    if (last_ok_)
      max_gap_ns_ = std::max<int64_t>(
          max_gap_ns_,
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - *last_ok_).count());
    last_ok_ = now;
  }

  std::string url_;
  milliseconds interval_;
  lps::http_client client_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopped_ = false;
  uint64_t ok_ = 0;
  uint64_t failed_ = 0;
  std::optional<clock_type::time_point> last_ok_;
  int64_t max_gap_ns_ = 0;
  std::thread thread_;
};

} // namespace lps::loadgen
