#pragma once

// How new work reaches the cluster's leader (issue #11, docs/cluster.md): every node stores
// the requests it accepts straight into the shared PostgreSQL store; the leader's poller reads
// the requests table every `interval` for rows newer than those it saw (by `seq`, indexed,
// schema version 5) and hands their scheduling columns to the queue manager, which skips
// those it holds. Row sequence numbers are taken at insert but become visible at commit, so a
// row may appear behind one already seen: every `lookback_every` polls the poller reads
// again from the highest sequence number it had seen `lookback` ago. The first poll reads
// every active row (a new leader may see rows committed after its recovery read). A row is
// never lost: at worst it waits for the next look back. Plain C++ on a libpq connection of
// its own, on a thread of its own.

#include "runtime/postgres.hpp"
#include "runtime/store.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace lps::cluster {

struct poller_settings {
  std::string postgres_url;
  std::chrono::milliseconds interval{250};
  /// How far back the look-back polls read (longer than any insert transaction runs).
  std::chrono::milliseconds lookback{10'000};
  /// Every how many polls one looks back.
  uint32_t lookback_every = 8;
  /// Rows read per statement at most (a poll reads on while pages come back full).
  uint32_t page_rows = 5000;
};

/// Receives the rows of one page (scheduling columns only: no payload, no texts).
using rows_sink = std::function<void(std::vector<stored_request>&&)>;

class store_poller {
public:
  /// Connects and starts polling; nullptr with `error` set when the database cannot be
  /// reached.
  static std::unique_ptr<store_poller> start(poller_settings settings, rows_sink sink,
                                             std::string& error);

  /// Stops the thread (a poll in flight finishes first).
  ~store_poller();

  /// Rows handed to the sink so far (repeats included).
  uint64_t rows_read() const;

private:
  store_poller(poller_settings settings, rows_sink sink);
  void run();
  void poll(bool look_back);
  /// Reads every row with seq > `after`, page by page; returns the highest seq read.
  int64_t read_after(int64_t after);

  poller_settings settings_;
  rows_sink sink_;
  std::unique_ptr<pg::connection> db_;
  /// The highest seq handed on, and its history (time it was seen, seq) for look-backs.
  int64_t highest_ = 0;
  std::deque<std::pair<std::chrono::steady_clock::time_point, int64_t>> seen_;
  uint64_t polls_ = 0;
  std::atomic<uint64_t> rows_read_{0};
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace lps::cluster
