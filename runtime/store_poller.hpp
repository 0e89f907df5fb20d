#pragma once

// How new work reaches the cluster's leader (issue #11, docs/cluster.md): every node stores
// the requests it accepts straight into the shared PostgreSQL store; the leader's poller reads
// the requests table for rows newer than those it saw (by `seq`, indexed, schema version 5)
// and hands their scheduling columns to the queue manager, which skips those it holds. It
// LISTENs on channel lps_work, which every commit that inserts a request or a cancel
// NOTIFYs (schema version 7), and reads at once on a notification; else every `interval`,
// so a lost notification delays new work, never loses it. Row sequence numbers are taken at
// insert but become visible at commit, so a row may appear behind one already seen: every
// `lookback_every` intervals the poller reads again from the highest sequence number it had
// seen `lookback` ago. The first poll reads
// every active row (a new leader may see rows committed after its recovery read). A row is
// never lost: at worst it waits for the next look back. Each poll first reads the cancels
// asked on any node and not answered yet (runtime/cluster_cancels): it hands on the rows
// each one targets (so the queue manager holds them), then the cancel; the answers it is
// given back are recorded at the next poll. Plain C++ on a libpq connection of its own, on a
// thread of its own.

#include "runtime/cluster_cancels.hpp"
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
#include <optional>
#include <set>
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
  /// Every how many intervals one poll looks back (by time: notifications add polls).
  uint32_t lookback_every = 8;
  /// LISTEN for lps_work (false: the timer alone, as before schema version 7).
  bool listen = true;
  /// Rows read per statement at most (a poll reads on while pages come back full).
  uint32_t page_rows = 5000;
};

/// Receives the rows of one page (scheduling columns only: no payload, no texts).
using rows_sink = std::function<void(std::vector<stored_request>&&)>;

/// What a handed-on cancel did, given back from any thread (once); nullopt when it could not
/// be applied (the queue did not answer): it is handed on again at the next poll. Safe to
/// call after the poller stopped (the answer is then dropped; the next leader applies the
/// cancel again).
using cancel_reply = std::function<void(std::optional<cancel_counts>)>;

/// Receives a cancel to apply, after the rows it targets went to the rows sink.
using cancels_sink = std::function<void(const cancel_ask&, cancel_reply)>;

class store_poller {
public:
  /// Connects and starts polling; nullptr with `error` set when the database cannot be
  /// reached.
  static std::unique_ptr<store_poller> start(poller_settings settings, rows_sink sink,
                                             cancels_sink cancels, std::string& error);

  /// Stops the thread (a poll in flight finishes first).
  ~store_poller();

  /// Rows handed to the sink so far (repeats included).
  uint64_t rows_read() const;

  /// Polls started by a notification so far.
  uint64_t notified_polls() const;

private:
  store_poller(poller_settings settings, rows_sink sink, cancels_sink cancels);
  void run();
  void poll(bool look_back);
  /// Returns after `interval`, at once on a notification, when stopping or when a cancel's
  /// answer is to be recorded.
  void wait_for_work();
  void listen();
  void enable_notifications();
  /// Records the answers given back, then hands on the open cancels not handed on yet.
  void poll_cancels();
  void hand_on(const cancel_ask& ask);
  /// Reads every row with seq > `after`, page by page; returns the highest seq read.
  int64_t read_after(int64_t after);

  poller_settings settings_;
  rows_sink sink_;
  cancels_sink cancels_;
  std::unique_ptr<pg::connection> db_;
  /// The highest seq handed on, and its history (time it was seen, seq) for look-backs.
  int64_t highest_ = 0;
  std::deque<std::pair<std::chrono::steady_clock::time_point, int64_t>> seen_;
  uint64_t polls_ = 0;
  std::chrono::steady_clock::time_point last_lookback_ = std::chrono::steady_clock::now();
  /// Whether this session LISTENs (a reconnected session no longer does).
  bool listening_ = false;
  /// The trigger that notifies inserts into requests is enabled.
  bool notify_enabled_ = false;
  std::atomic<uint64_t> notified_polls_{0};
  std::atomic<uint64_t> rows_read_{0};
  /// Cancels handed on and not answered yet (the poller thread's own).
  std::set<int64_t> handed_;
  /// Shared with the replies of cancels handed on, which may outlive the poller.
  struct signals {
    std::mutex mutex;
    std::condition_variable wake;
    bool stopping = false;
    std::vector<cancel_answer> answers;
    std::vector<int64_t> retries;
  };
  std::shared_ptr<signals> signals_ = std::make_shared<signals>();
  std::thread thread_;
};

} // namespace lps::cluster
