#pragma once

// The asking side of a cluster cancel (issue #11, docs/cluster.md): a node that does not hold
// the queue records the cancel in the store (runtime/cluster_cancels) and waits a little for
// the leader's answer, so the route answers as a single node does; when the leader has not
// answered within `wait` (none leads, a takeover is under way) the cancel stays recorded for
// the next leader and the route says so. A thread of its own on its own libpq connection,
// checking every waiting cancel in one statement every `check_every`.

#include "runtime/cluster_cancels.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lps::cluster {

struct relay_outcome {
  enum class kind {
    answered, ///< the leader applied it: `counts`
    pending,  ///< recorded, not answered within the wait: the leader applies it later
    failed,   ///< not recorded (`error`): nothing will happen
  };
  kind what = kind::failed;
  cancel_counts counts;
  std::string error;
};

struct relay_settings {
  std::string postgres_url;
  /// This node's name (recorded as the asker).
  std::string node;
  /// How long a cancel waits for the leader's answer.
  std::chrono::milliseconds wait{5000};
  std::chrono::milliseconds check_every{50};
};

class cancel_relay {
public:
  /// Called on the relay's thread.
  using done_fn = std::function<void(relay_outcome)>;

  /// Connects and starts the thread; nullptr with `error` set when the database cannot be
  /// reached.
  static std::unique_ptr<cancel_relay> start(relay_settings settings, std::string& error);

  /// Stops the thread; cancels still waiting are answered `pending`.
  ~cancel_relay();

  /// Records `ask` and calls `done` once the leader answered or the wait is over.
  void ask(cancel_ask ask, done_fn done);

private:
  struct waiting {
    int64_t id = 0;
    std::chrono::steady_clock::time_point deadline;
    done_fn done;
  };

  explicit cancel_relay(relay_settings settings) : settings_(std::move(settings)) {}
  void run();
  void record(std::deque<std::pair<cancel_ask, done_fn>> incoming);
  void check_answers();

  relay_settings settings_;
  std::unique_ptr<pg::connection> db_;
  std::vector<waiting> waiting_; ///< the relay thread's own
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<cancel_ask, done_fn>> incoming_;
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace lps::cluster
