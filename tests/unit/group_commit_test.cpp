// Tests for the write queue both stores share (runtime/group_commit.hpp), with a fake commit
// function instead of a database. Catch2 assertions are not thread-safe, so the writer
// thread only records what happened; the test thread checks it afterwards. Where the writer
// must be held inside a commit, a promise holds it: no sleeps.

#include "runtime/group_commit.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using lps::commit_outcome;
using lps::group_commit_queue;
using lps::queued_write;
using lps::store_write;

// A write of `ops` operations named `name` (its first delivered id).
store_write named_write(const std::string& name, size_t ops = 1) {
  store_write write;
  for (size_t i = 0; i < ops; ++i)
    write.delivered.push_back(i == 0 ? name : name + "#" + std::to_string(i));
  return write;
}

// A new submission: one request insert named `name`.
store_write submission_write(const std::string& name) {
  store_write write;
  write.inserts.emplace_back();
  write.inserts.back().queue_id = name;
  return write;
}

std::string name_of(const queued_write& w) {
  if (!w.write.inserts.empty())
    return w.write.inserts.front().queue_id;
  return w.write.delivered.empty() ? "" : w.write.delivered.front();
}

// What a callback was told, and in which order callbacks ran.
struct callback_log {
  struct call {
    std::string name;
    bool ok = false;
    std::string error;
    /// Writes the fake had committed when the callback ran.
    size_t committed_before = 0;
    std::thread::id thread;
  };
  std::mutex mutex;
  std::vector<call> calls;
};

// A fake backend: records each transaction's writes by name; fails a transaction holding
// a write whose name starts with "bad" (write_failed), or every transaction while
// `environment_fails` (txn_failed).
struct fake_backend {
  std::mutex mutex;
  std::vector<std::vector<std::string>> transactions;
  std::atomic<size_t> committed_writes{0};
  std::atomic<bool> environment_fails{false};
  /// Failed transactions allowed before the environment recovers (with environment_fails).
  std::atomic<int> environment_failures_left{1000000};
  /// While set every transaction finds the database gone (store_down) and reconnect()
  /// fails `failed_reconnects` times before it clears this.
  std::atomic<bool> database_gone{false};
  std::atomic<int> failed_reconnects{0};
  std::atomic<int> reconnect_calls{0};
  /// Runs at each reconnect attempt (on the writer's thread), before its answer.
  std::function<void()> on_reconnect;

  bool reconnect(std::string& error) {
    ++reconnect_calls;
    if (on_reconnect)
      on_reconnect();
    if (failed_reconnects-- > 0) {
      error = "connection refused";
      return false;
    }
    database_gone = false;
    return true;
  }

  commit_outcome commit(std::span<const queued_write> writes, std::string& error) {
    std::vector<std::string> names;
    for (const auto& w : writes)
      names.push_back(name_of(w));
    {
      std::lock_guard lock(mutex);
      transactions.push_back(names);
    }
    if (database_gone) {
      error = "server closed the connection";
      return commit_outcome::store_down;
    }
    if (environment_fails && environment_failures_left-- > 0) {
      error = "disk is full";
      return commit_outcome::txn_failed;
    }
    for (const auto& name : names) {
      if (name.rfind("bad", 0) == 0) {
        error = "constraint failed on '" + name + "'";
        return commit_outcome::write_failed;
      }
    }
    committed_writes += writes.size();
    return commit_outcome::committed;
  }

  lps::group_commit_backend hooks(lps::purge_passes* retention = nullptr) {
    return {.commit = [this](std::span<const queued_write> writes,
                             std::string& error) { return commit(writes, error); },
            .after_commit = {},
            .retention = retention,
            .reconnect = [this](std::string& error) { return reconnect(error); },
            .outage_backoff_first = std::chrono::milliseconds{0}};
  }
};

struct fixture {
  fake_backend backend;
  callback_log log;

  lps::store_callback record(const std::string& name) {
    return [this, name](bool ok, const std::string& error) {
      std::lock_guard lock(log.mutex);
      log.calls.push_back(
          {name, ok, error, backend.committed_writes.load(), std::this_thread::get_id()});
    };
  }

  void submit(group_commit_queue& queue, const std::string& name, size_t ops = 1) {
    queue.submit(named_write(name, ops), record(name));
  }

  std::vector<std::string> called_names() {
    std::lock_guard lock(log.mutex);
    std::vector<std::string> names;
    for (const auto& c : log.calls)
      names.push_back(c.name);
    return names;
  }
};

// Holds the writer inside its next commit until released.
class writer_gate {
public:
  // Queues a write whose callback signals that the writer entered it and waits for
  // release().
  void block_writer(group_commit_queue& queue) {
    auto entered = std::make_shared<std::promise<void>>();
    auto entered_future = entered->get_future();
    queue.submit({}, [entered, released = released_](bool, const std::string&) {
      entered->set_value();
      released.wait();
    });
    entered_future.wait();
  }

  void release() {
    if (!released_once_) {
      released_once_ = true;
      promise_.set_value();
    }
  }

  ~writer_gate() {
    release();
  }

private:
  std::promise<void> promise_;
  std::shared_future<void> released_{promise_.get_future().share()};
  bool released_once_ = false;
};

// A purge whose passes take three steps; the first is not due on its own for an hour, so
// only purge_expired_results() starts one.
class fake_purge final : public lps::purge_passes {
public:
  bool in_pass() const override {
    return in_pass_;
  }
  clock::time_point next_pass() const override {
    return next_pass_;
  }
  bool step() override {
    in_pass_ = true;
    if (++steps % 3 != 0)
      return false;
    in_pass_ = false;
    next_pass_ = clock::now() + std::chrono::hours{1};
    return true;
  }

  std::atomic<int> steps{0};

private:
  std::atomic<bool> in_pass_{false};
  clock::time_point next_pass_ = clock::now() + std::chrono::hours{1};
};

} // namespace

TEST_CASE("the queue folds writes into transactions of at most max_ops_per_commit operations") {
  fixture f;
  group_commit_queue queue(3, true, f.backend.hooks());
  f.submit(queue, "a");
  f.submit(queue, "b");
  f.submit(queue, "c");
  f.submit(queue, "d", 2);
  f.submit(queue, "huge", 5); // alone: a write is never split, however large
  f.submit(queue, "e");
  CHECK(queue.stats().pending_ops == 11);
  CHECK(f.backend.transactions.empty());

  queue.flush();
  using names = std::vector<std::string>;
  CHECK(f.backend.transactions == std::vector<names>{{"a", "b", "c"}, {"d"}, {"huge"}, {"e"}});
  auto stats = queue.stats();
  CHECK(stats.commits == 4);
  CHECK(stats.ops_committed == 11);
  CHECK(stats.failed_commits == 0);
  CHECK(stats.pending_ops == 0);
}

TEST_CASE("max_ops_per_commit 0 counts as 1") {
  fixture f;
  group_commit_queue queue(0, true, f.backend.hooks());
  f.submit(queue, "a");
  f.submit(queue, "b");
  queue.flush();
  CHECK(f.backend.transactions == std::vector<std::vector<std::string>>{{"a"}, {"b"}});
}

TEST_CASE("each callback runs once, after its transaction committed, in submission order") {
  fixture f;
  constexpr int writes = 200;
  {
    group_commit_queue queue(7, false, f.backend.hooks());
    queue.start();
    for (int i = 0; i < writes; ++i)
      f.submit(queue, "w" + std::to_string(i));
    queue.flush();
  }
  REQUIRE(f.log.calls.size() == writes);
  for (int i = 0; i < writes; ++i) {
    INFO("write " << i);
    const auto& call = f.log.calls[i];
    CHECK(call.name == "w" + std::to_string(i));
    CHECK(call.ok);
    CHECK(call.error.empty());
    CHECK(call.committed_before >= static_cast<size_t>(i + 1));
  }
}

TEST_CASE("a failed batch is retried one write per transaction, so only the bad write fails") {
  fixture f;
  group_commit_queue queue(10, true, f.backend.hooks());
  f.submit(queue, "a");
  f.submit(queue, "bad");
  f.submit(queue, "c", 2);
  queue.flush();

  using names = std::vector<std::string>;
  CHECK(f.backend.transactions == std::vector<names>{{"a", "bad", "c"}, {"a"}, {"bad"}, {"c"}});
  REQUIRE(f.log.calls.size() == 3);
  CHECK(f.log.calls[0].ok);
  CHECK_FALSE(f.log.calls[1].ok);
  CHECK(f.log.calls[1].error == "constraint failed on 'bad'");
  CHECK(f.log.calls[2].ok);
  auto stats = queue.stats();
  CHECK(stats.commits == 2);
  CHECK(stats.ops_committed == 3);
  CHECK(stats.failed_commits == 2); // the batch, then the bad write alone
  CHECK(stats.pending_ops == 0);
}

TEST_CASE("a failing environment fails every write of the batch with its error") {
  fixture f;
  f.backend.environment_fails = true;
  group_commit_queue queue(10, true, f.backend.hooks());
  f.submit(queue, "a");
  f.submit(queue, "b");
  f.submit(queue, "c");
  queue.flush();

  // The batch, then its first write alone: a second environmental failure stops the retry.
  CHECK(f.backend.transactions.size() == 2);
  REQUIRE(f.log.calls.size() == 3);
  for (const auto& call : f.log.calls) {
    INFO(call.name);
    CHECK_FALSE(call.ok);
    CHECK(call.error == "disk is full");
  }
  auto stats = queue.stats();
  CHECK(stats.commits == 0);
  CHECK(stats.failed_commits == 2);
  CHECK(stats.pending_ops == 0);
}

TEST_CASE("a batch failed by a passing environmental fault commits on the one-by-one retry") {
  fixture f;
  f.backend.environment_fails = true;
  f.backend.environment_failures_left = 1;
  group_commit_queue queue(10, true, f.backend.hooks());
  f.submit(queue, "a");
  f.submit(queue, "b");
  queue.flush();

  CHECK(f.backend.transactions.size() == 3);
  REQUIRE(f.log.calls.size() == 2);
  CHECK(f.log.calls[0].ok);
  CHECK(f.log.calls[1].ok);
  CHECK(queue.stats().commits == 2);
  CHECK(queue.stats().failed_commits == 1);
}

TEST_CASE("a single write's failure reaches its callback without a retry") {
  fixture f;
  group_commit_queue queue(10, true, f.backend.hooks());
  f.submit(queue, "bad-alone");
  queue.flush();
  CHECK(f.backend.transactions.size() == 1);
  REQUIRE(f.log.calls.size() == 1);
  CHECK_FALSE(f.log.calls[0].ok);
  CHECK(f.log.calls[0].error == "constraint failed on 'bad-alone'");
}

TEST_CASE("flush waits for every earlier write and its callback, not for later ones") {
  fixture f;
  group_commit_queue queue(100, false, f.backend.hooks());
  queue.start();
  writer_gate gate;
  gate.block_writer(queue);
  f.submit(queue, "a");
  f.submit(queue, "b");
  auto flushed = std::async(std::launch::async, [&] { queue.flush(); });
  // The writer is held inside the gate's callback, so nothing can let flush return yet.
  CHECK(flushed.wait_for(std::chrono::seconds{0}) == std::future_status::timeout);
  gate.release();
  flushed.get();
  CHECK(f.called_names() == std::vector<std::string>{"a", "b"});
  CHECK(queue.stats().pending_ops == 0);
}

TEST_CASE("with manual commits nothing commits before flush, which runs callbacks on the "
          "caller's thread") {
  fixture f;
  std::vector<int> after_commits;
  auto hooks = f.backend.hooks();
  hooks.after_commit = [&] { after_commits.push_back(static_cast<int>(f.log.calls.size())); };
  group_commit_queue queue(1, true, std::move(hooks));
  queue.start(); // starts no thread
  f.submit(queue, "a");
  f.submit(queue, "b");
  CHECK(f.backend.transactions.empty());
  CHECK(f.log.calls.empty());

  queue.flush();
  REQUIRE(f.log.calls.size() == 2);
  for (const auto& call : f.log.calls)
    CHECK(call.thread == std::this_thread::get_id());
  // The hook runs after each transaction's callbacks.
  CHECK(after_commits == std::vector<int>{1, 2});
}

TEST_CASE("a callback may submit, flush and purge on the writer thread without a deadlock") {
  fixture f;
  fake_purge purge;
  group_commit_queue queue(100, false, f.backend.hooks(&purge));
  queue.start();
  std::promise<std::thread::id> inner_ran;
  queue.submit(named_write("outer"), [&](bool, const std::string&) {
    queue.submit(named_write("inner"), [&](bool ok, const std::string&) {
      if (ok)
        inner_ran.set_value(std::this_thread::get_id());
    });
    queue.flush();                 // returns at once: waiting here would wait for itself
    queue.purge_expired_results(); // likewise
  });
  queue.flush(); // the outer write
  queue.flush(); // the inner one, submitted before the outer's flush could return
  auto inner_future = inner_ran.get_future();
  REQUIRE(inner_future.wait_for(std::chrono::seconds{0}) == std::future_status::ready);
  CHECK(inner_future.get() != std::this_thread::get_id());
  CHECK(purge.steps == 0);
}

TEST_CASE("in manual mode a write submitted by a callback commits in the same flush") {
  fixture f;
  group_commit_queue queue(100, true, f.backend.hooks());
  queue.submit(named_write("outer"), [&](bool, const std::string&) { f.submit(queue, "inner"); });
  queue.flush();
  CHECK(f.called_names() == std::vector<std::string>{"inner"});
  CHECK(f.backend.transactions.size() == 2);
}

TEST_CASE("purge_expired_results runs one whole pass and waits for it") {
  fixture f;
  fake_purge purge;
  SECTION("on the writer thread") {
    group_commit_queue queue(100, false, f.backend.hooks(&purge));
    queue.start();
    queue.purge_expired_results();
    CHECK(purge.steps == 3);
    queue.purge_expired_results();
    CHECK(purge.steps == 6);
  }
  SECTION("with manual commits, on the caller's thread") {
    group_commit_queue queue(100, true, f.backend.hooks(&purge));
    queue.purge_expired_results();
    CHECK(purge.steps == 3);
  }
}

TEST_CASE("stop commits the queued writes, then later writes fail as closed") {
  fixture f;
  group_commit_queue queue(1, false, f.backend.hooks());
  queue.start();
  writer_gate gate;
  gate.block_writer(queue);
  f.submit(queue, "a");
  f.submit(queue, "b");
  auto stopping = std::async(std::launch::async, [&] { queue.stop(); });
  gate.release();
  stopping.get();
  CHECK(f.called_names() == std::vector<std::string>{"a", "b"});
  CHECK(f.log.calls[0].ok);
  CHECK(f.log.calls[1].ok);

  f.submit(queue, "late");
  REQUIRE(f.log.calls.size() == 3);
  CHECK_FALSE(f.log.calls[2].ok);
  CHECK(f.log.calls[2].error == "store is closed");
  CHECK(f.backend.transactions.size() == 3); // the gate's, a and b; never "late"
}

TEST_CASE("the destructor of a manual queue commits what is pending") {
  fixture f;
  {
    group_commit_queue queue(100, true, f.backend.hooks());
    f.submit(queue, "a");
  }
  REQUIRE(f.log.calls.size() == 1);
  CHECK(f.log.calls[0].ok);
}

TEST_CASE("a throwing callback does not stop the writer") {
  fixture f;
  group_commit_queue queue(1, false, f.backend.hooks());
  queue.start();
  queue.submit(named_write("thrower"),
               [](bool, const std::string&) { throw std::runtime_error("boom"); });
  f.submit(queue, "after");
  queue.flush();
  CHECK(f.called_names() == std::vector<std::string>{"after"});
}

TEST_CASE("a store outage fails new submissions at once and commits the other writes after "
          "the reconnect") {
  fixture f;
  f.backend.database_gone = true;
  f.backend.failed_reconnects = 2;
  group_commit_queue queue(10, true, f.backend.hooks());
  f.submit(queue, "kept-1");
  queue.submit(submission_write("insert-1"), f.record("insert-1"));
  f.submit(queue, "kept-2");
  std::vector<lps::store_health> seen;
  f.backend.on_reconnect = [&] {
    seen.push_back(queue.health());
    if (f.backend.reconnect_calls == 1) { // during the outage: refused at once, or kept
      queue.submit(submission_write("insert-2"), f.record("insert-2"));
      f.submit(queue, "kept-3");
    }
  };
  queue.flush();

  // The batch found the store gone; after three reconnect attempts (two refused) the kept
  // writes commit in one transaction, the one submitted during the outage included.
  using names = std::vector<std::string>;
  CHECK(f.backend.transactions
        == std::vector<names>{{"kept-1", "insert-1", "kept-2"}, {"kept-1", "kept-2", "kept-3"}});
  CHECK(f.backend.reconnect_calls == 3);
  REQUIRE(seen.size() == 3);
  CHECK_FALSE(seen[0].available);
  CHECK(seen[0].unavailable_since_ms > 0);
  CHECK(seen[0].last_error == "server closed the connection");
  CHECK(seen[2].last_error == "connection refused");
  // The submissions were told before the reconnect: insert-2 by submit itself.
  REQUIRE(f.log.calls.size() == 5);
  CHECK(f.called_names() == names{"insert-1", "insert-2", "kept-1", "kept-2", "kept-3"});
  for (size_t i = 0; i < 2; ++i) {
    INFO(f.log.calls[i].name);
    CHECK_FALSE(f.log.calls[i].ok);
    CHECK(f.log.calls[i].committed_before == 0);
    CHECK(f.log.calls[i].error.rfind("store unavailable: ", 0) == 0);
  }
  for (size_t i = 2; i < 5; ++i)
    CHECK(f.log.calls[i].ok);
  auto health = queue.health();
  CHECK(health.available);
  CHECK(health.unavailable_since_ms == 0);
  CHECK(health.reconnects == 1);
  CHECK(queue.stats().pending_ops == 0);
}

TEST_CASE("an outage during the one-by-one retry keeps the rest of the batch for the reconnect") {
  fixture f;
  auto hooks = f.backend.hooks();
  // The database goes away right after "bad" failed on its own.
  hooks.commit = [&](std::span<const queued_write> writes, std::string& error) {
    auto result = f.backend.commit(writes, error);
    if (writes.size() == 1 && name_of(writes.front()) == "bad")
      f.backend.database_gone = true;
    return result;
  };
  group_commit_queue queue(10, true, hooks);
  f.submit(queue, "x");
  f.submit(queue, "bad");
  f.submit(queue, "y");
  queue.flush();

  using names = std::vector<std::string>;
  CHECK(f.backend.transactions
        == std::vector<names>{{"x", "bad", "y"}, {"x"}, {"bad"}, {"y"}, {"y"}});
  REQUIRE(f.log.calls.size() == 3);
  CHECK(f.log.calls[0].ok);
  CHECK_FALSE(f.log.calls[1].ok);
  CHECK(f.log.calls[1].error == "constraint failed on 'bad'");
  CHECK(f.log.calls[2].name == "y");
  CHECK(f.log.calls[2].ok);
  CHECK(queue.health().reconnects == 1);
}

TEST_CASE("flush returns while the store is unavailable, and stop fails the waiting writes as "
          "closed") {
  fixture f;
  f.backend.database_gone = true;
  f.backend.failed_reconnects = 1000000;
  auto hooks = f.backend.hooks();
  hooks.outage_backoff_first = std::chrono::milliseconds{1};
  hooks.outage_backoff_max = std::chrono::milliseconds{1};
  group_commit_queue queue(10, false, hooks);
  queue.start();
  f.submit(queue, "final");
  queue.flush(); // returns once the writer found the store gone
  CHECK_FALSE(queue.health().available);
  queue.submit(submission_write("refused"), f.record("refused"));
  queue.stop();

  REQUIRE(f.log.calls.size() == 2);
  CHECK(f.log.calls[0].name == "refused");
  CHECK_FALSE(f.log.calls[0].ok);
  CHECK(f.log.calls[0].error.rfind("store unavailable: ", 0) == 0);
  CHECK(f.log.calls[1].name == "final");
  CHECK_FALSE(f.log.calls[1].ok);
  CHECK(f.log.calls[1].error.rfind("store is closed: store unavailable: ", 0) == 0);
}

namespace {

// Polls `done` every millisecond for up to five seconds (the writer thread acts on its own).
template <class F>
bool soon(F done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  return true;
}

} // namespace

TEST_CASE("an idle writer's probe notices an outage with no writes, refuses submissions and "
          "gets the store back by itself") {
  fixture f;
  std::atomic<int> probes{0};
  auto hooks = f.backend.hooks();
  hooks.outage_backoff_first = std::chrono::milliseconds{1};
  hooks.outage_backoff_max = std::chrono::milliseconds{1};
  hooks.probe_interval = std::chrono::milliseconds{5};
  hooks.probe = [&](std::string& error) {
    ++probes;
    if (!f.backend.database_gone)
      return true;
    error = "server closed the connection";
    return false;
  };
  f.backend.failed_reconnects = 1000000; // down until the test lets it come back
  group_commit_queue queue(10, false, hooks);
  queue.start();
  REQUIRE(soon([&] { return probes >= 2; })); // idle, and probing
  CHECK(queue.health().available);
  CHECK(f.backend.transactions.empty()); // a probe is no transaction

  f.backend.database_gone = true;
  REQUIRE(soon([&] { return !queue.health().available; }));
  auto down = queue.health();
  // The probe's error, or that of a reconnect tried since (every 1 ms here, so on a busy
  // machine one may have run before this reads the health).
  CHECK((down.last_error.find("server closed the connection") != std::string::npos
         || down.last_error.find("connection refused") != std::string::npos));
  CHECK(down.unavailable_since_ms > 0);
  queue.submit(submission_write("refused"), f.record("refused"));
  f.submit(queue, "kept"); // an accepted request's write waits for the reconnect
  f.backend.failed_reconnects = 0;
  REQUIRE(soon([&] { return queue.health().available; }));
  queue.flush();
  queue.stop();

  CHECK(queue.health().reconnects == 1);
  REQUIRE(f.log.calls.size() == 2);
  CHECK(f.log.calls[0].name == "refused");
  CHECK_FALSE(f.log.calls[0].ok);
  CHECK(f.log.calls[0].error.rfind("store unavailable: ", 0) == 0);
  CHECK(f.log.calls[1].name == "kept");
  CHECK(f.log.calls[1].ok);
}

TEST_CASE("writes keep the probe away: a writer that commits makes no probe round trip") {
  fixture f;
  std::atomic<int> probes{0};
  auto hooks = f.backend.hooks();
  hooks.probe_interval = std::chrono::hours{1};
  hooks.probe = [&](std::string&) {
    ++probes;
    return true;
  };
  group_commit_queue queue(10, false, hooks);
  queue.start();
  for (int i = 0; i < 20; ++i)
    f.submit(queue, "w" + std::to_string(i));
  queue.flush();
  queue.stop();
  CHECK(probes == 0);
  CHECK(f.backend.committed_writes == 20);
}
