// Tests for the reader pool (runtime/store_reader): order, refusal when full, reads on the
// pool's own threads with a connection each, shutdown, and reads through real SQLite reader
// connections. Catch2 assertions are not thread-safe, so reads only record what happened;
// the test thread checks it afterwards. Waiting is on latches and futures, never sleeps.

#include "fixtures/temp_dir.hpp"
#include "runtime/batch_job_store.hpp"
#include "runtime/store.hpp"
#include "runtime/store_reader.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <latch>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using lps::store_reader;
using lps::store_reads;

// A connection that answers nothing but knows which one it is.
class fake_reads final : public store_reads {
public:
  explicit fake_reads(int id) : id(id) {}
  const int id;

  std::optional<lps::stored_result> find_result(const std::string&) override {
    return std::nullopt;
  }
  std::optional<std::string> find_idempotency_key(const std::string&) override {
    return std::nullopt;
  }
  std::vector<lps::stored_request> load_rows(const std::vector<std::string>&) override {
    return {};
  }
  lps::run_rows load_run(const std::string&) override {
    return {};
  }
  std::vector<lps::run_summary> summarize_runs(int64_t, size_t) override {
    return {};
  }
  std::optional<lps::run_summary> summarize_run(const std::string&, int64_t) override {
    return std::nullopt;
  }
  std::vector<lps::stored_result>
  load_run_results(const std::string&, const std::optional<lps::result_cursor>&, size_t) override {
    return {};
  }
};

// For reads that are never refused in the test.
const store_reader::fail_fn ignore = [](const std::string&) {};

int id_of(store_reads& db) {
  return dynamic_cast<fake_reads&>(db).id;
}

// Connections numbered 0, 1, ... in the order the pool opens them.
store_reader::connect_fn numbered_connections() {
  auto next = std::make_shared<int>(0);
  return [next](std::string&) { return std::make_unique<fake_reads>((*next)++); };
}

std::unique_ptr<store_reader> start_pool(lps::store_reader_options options) {
  std::string error;
  auto pool = store_reader::start(options, numbered_connections(), error);
  INFO("start error: " << error);
  REQUIRE(pool != nullptr);
  return pool;
}

// Records refusals (the pool calls them on the posting or the stopping thread).
struct refusals {
  std::mutex mutex;
  std::vector<std::string> errors;
  store_reader::fail_fn record() {
    return [this](const std::string& error) {
      std::lock_guard lock(mutex);
      errors.push_back(error);
    };
  }
};

} // namespace

TEST_CASE("store reader in manual mode runs reads in order, only when asked, on the caller",
          "[store_reader]") {
  auto pool = start_pool({.threads = 2, .max_queued = 16, .manual = true});
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  refusals refused;
  for (int i = 0; i < 3; ++i)
    pool->post(
        [&, i](store_reads&) {
          order.push_back(i);
          threads.push_back(std::this_thread::get_id());
        },
        refused.record());
  CHECK(order.empty());
  CHECK(pool->queued() == 3);
  // A read that posts another: it runs in the same run_pending, after the ones before it.
  pool->post([&](store_reads&) { pool->post([&](store_reads&) { order.push_back(4); }, ignore); },
             refused.record());
  CHECK(pool->run_pending() == 5);
  CHECK(order == std::vector<int>{0, 1, 2, 4});
  CHECK(threads == std::vector<std::thread::id>(3, std::this_thread::get_id()));
  CHECK(refused.errors.empty());
  CHECK(pool->run_pending() == 0);
}

TEST_CASE("store reader runs reads on its own threads, each with its own connection",
          "[store_reader]") {
  auto pool = start_pool({.threads = 2, .max_queued = 16});
  // Both reads wait for each other: they can only finish if two threads run them at once.
  std::latch both_running{2};
  std::mutex mutex;
  std::set<int> connections;
  std::set<std::thread::id> threads;
  std::promise<void> done_1, done_2;
  auto read = [&](std::promise<void>& done) {
    return [&](store_reads& db) {
      both_running.arrive_and_wait();
      {
        std::lock_guard lock(mutex);
        connections.insert(id_of(db));
        threads.insert(std::this_thread::get_id());
      }
      done.set_value();
    };
  };
  pool->post(read(done_1), ignore);
  pool->post(read(done_2), ignore);
  REQUIRE(done_1.get_future().wait_for(std::chrono::seconds{30}) == std::future_status::ready);
  REQUIRE(done_2.get_future().wait_for(std::chrono::seconds{30}) == std::future_status::ready);
  std::lock_guard lock(mutex);
  CHECK(connections == std::set<int>{0, 1});
  CHECK(threads.size() == 2);
  CHECK(threads.count(std::this_thread::get_id()) == 0);
}

TEST_CASE("store reader with one thread runs reads in the order posted", "[store_reader]") {
  auto pool = start_pool({.threads = 1, .max_queued = 1000});
  std::vector<int> order; // only the one reader thread writes it
  std::promise<void> done;
  constexpr int reads = 200;
  for (int i = 0; i < reads; ++i)
    pool->post(
        [&, i](store_reads&) {
          order.push_back(i);
          if (i == reads - 1)
            done.set_value();
        },
        ignore);
  REQUIRE(done.get_future().wait_for(std::chrono::seconds{30}) == std::future_status::ready);
  std::vector<int> expected(reads);
  for (int i = 0; i < reads; ++i)
    expected[i] = i;
  CHECK(order == expected);
}

TEST_CASE("store reader refuses a read at once when its queue is full", "[store_reader]") {
  auto pool = start_pool({.threads = 1, .max_queued = 2});
  std::promise<void> running;
  std::promise<void> release;
  auto released = release.get_future().share();
  pool->post(
      [&](store_reads&) {
        running.set_value();
        released.wait();
      },
      ignore);
  REQUIRE(running.get_future().wait_for(std::chrono::seconds{30}) == std::future_status::ready);
  // The one thread is busy: two reads wait (max_queued), the third is refused.
  refusals refused;
  std::latch both_ran{2};
  for (int i = 0; i < 3; ++i)
    pool->post([&](store_reads&) { both_ran.count_down(); }, refused.record());
  CHECK(pool->queued() == 2);
  {
    std::lock_guard lock(refused.mutex);
    CHECK(refused.errors == std::vector<std::string>{"too many store reads are waiting"});
  }
  release.set_value();
  both_ran.wait(); // the two that waited run once the thread is free
  CHECK(refused.errors.size() == 1);
}

TEST_CASE("store reader stop fails the queued reads and refuses new ones", "[store_reader]") {
  auto pool = start_pool({.threads = 1, .max_queued = 16, .manual = true});
  refusals refused;
  bool ran = false;
  pool->post([&](store_reads&) { ran = true; }, refused.record());
  pool->post([&](store_reads&) { ran = true; }, refused.record());
  pool->stop();
  CHECK_FALSE(ran);
  CHECK(refused.errors == std::vector<std::string>(2, "the store reader stopped"));
  pool->post([&](store_reads&) { ran = true; }, refused.record());
  CHECK(pool->run_pending() == 0);
  CHECK_FALSE(ran);
  CHECK(refused.errors.back() == "the store reader is stopping");
  pool->stop(); // idempotent
}

TEST_CASE("store reader stop waits for the reads running on its threads", "[store_reader]") {
  auto pool = start_pool({.threads = 2, .max_queued = 16});
  std::promise<void> running;
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<bool> read_finished{false};
  pool->post(
      [&](store_reads&) {
        running.set_value();
        released.wait();
        read_finished = true;
      },
      ignore);
  REQUIRE(running.get_future().wait_for(std::chrono::seconds{30}) == std::future_status::ready);
  bool finished_before_stop_returned = false;
  std::thread stopper([&] {
    pool->stop();
    finished_before_stop_returned = read_finished;
  });
  release.set_value();
  stopper.join();
  CHECK(finished_before_stop_returned);
}

TEST_CASE("store reader fails a read that throws and keeps its thread", "[store_reader]") {
  auto pool = start_pool({.threads = 1, .max_queued = 16});
  std::promise<std::string> failed;
  std::promise<void> done;
  pool->post([](store_reads&) { throw std::runtime_error("boom"); },
             [&](const std::string& why) { failed.set_value(why); });
  pool->post([&](store_reads&) { done.set_value(); }, ignore);
  auto why = failed.get_future();
  REQUIRE(why.wait_for(std::chrono::seconds{30}) == std::future_status::ready);
  CHECK(why.get() == "the store read failed: boom");
  CHECK(done.get_future().wait_for(std::chrono::seconds{30}) == std::future_status::ready);
}

TEST_CASE("store reader does not start when a connection cannot be opened", "[store_reader]") {
  int opened = 0;
  std::string error;
  auto pool = store_reader::start(
      {.threads = 3},
      [&](std::string& why) -> std::unique_ptr<store_reads> {
        if (++opened == 2) {
          why = "no more connections";
          return nullptr;
        }
        return std::make_unique<fake_reads>(opened);
      },
      error);
  CHECK(pool == nullptr);
  CHECK(error == "no more connections");
  CHECK(opened == 2);
}

TEST_CASE("store reader reads committed rows through the SQLite store's reader connections",
          "[store_reader]") {
  lps::test::temp_dir dir;
  std::string error;
  auto db = lps::store::open({.data_dir = dir.str(), .fsync_every_commit = false}, error);
  REQUIRE(db != nullptr);
  lps::store_write write;
  lps::stored_result result;
  result.queue_id = "q1";
  result.status = "completed";
  result.event_json = "{}";
  write.finals = {result};
  db->submit(std::move(write), nullptr);
  db->flush();
  auto pool = store_reader::start(
      {.threads = 2}, [&](std::string& why) { return db->open_reader(why); }, error);
  INFO("start error: " << error);
  REQUIRE(pool != nullptr);
  std::promise<std::optional<lps::stored_result>> found;
  pool->post([&](store_reads& reads) { found.set_value(reads.find_result("q1")); }, ignore);
  auto future = found.get_future();
  REQUIRE(future.wait_for(std::chrono::seconds{30}) == std::future_status::ready);
  auto row = future.get();
  REQUIRE(row);
  CHECK(row->status == "completed");
}

TEST_CASE("store reader gives each thread a batch job store connection of its own",
          "[store_reader]") {
  lps::test::temp_dir dir;
  std::string error;
  lps::batch_job_store_options where{.data_dir = dir.str(), .fsync_every_commit = false};
  auto writer = lps::batch_job_store::open(where, error);
  REQUIRE(writer != nullptr);
  lps::batch_job_record job;
  job.job_id = "bj-1";
  job.provider = "openai";
  job.state = "submitted";
  REQUIRE(writer->create(job, {"q1", "q2"}, error));
  auto pool = store_reader::start(
      {.threads = 2}, numbered_connections(), error,
      [&where](std::string& why) { return lps::batch_job_store::open(where, why); });
  INFO("start error: " << error);
  REQUIRE(pool != nullptr);
  // Both reads must be running at once to pass the latch: on two threads, each with the
  // connection it was given.
  std::latch both{2};
  std::mutex mutex;
  std::set<const lps::batch_job_store*> connections;
  std::vector<std::string> found;
  std::promise<void> done[2];
  for (auto& finished : done)
    pool->post_jobs(
        [&](lps::batch_job_store& jobs) {
          both.arrive_and_wait();
          auto row = jobs.find("bj-1");
          {
            std::lock_guard lock(mutex);
            connections.insert(&jobs);
            found.push_back(row ? row->state : "");
          }
          finished.set_value();
        },
        ignore);
  for (auto& finished : done)
    REQUIRE(finished.get_future().wait_for(std::chrono::seconds{30}) == std::future_status::ready);
  CHECK(connections.size() == 2);
  CHECK(found == std::vector<std::string>{"submitted", "submitted"});
}

TEST_CASE("store reader without batch job store connections refuses their reads at once",
          "[store_reader]") {
  auto pool = start_pool({.threads = 1});
  refusals refused;
  bool ran = false;
  pool->post_jobs([&](lps::batch_job_store&) { ran = true; }, refused.record());
  pool->stop();
  CHECK_FALSE(ran);
  REQUIRE(refused.errors.size() == 1);
  CHECK(refused.errors.front().find("no batch job store") != std::string::npos);
}
