// Tests for the durable store, run against each backend (fixtures/store_backend.hpp); cases
// tagged [sqlite] test what only the SQLite file has. Catch2 assertions are not thread-safe, so
// callbacks and worker threads only record what happened; the test thread checks it afterwards.

#include "fixtures/batch_job_store_backend.hpp"
#include "fixtures/sqlite_probe.hpp"
#include "fixtures/store_backend.hpp"
#include "fixtures/temp_dir.hpp"
#include "runtime/sqlite_result_purger.hpp"
#include "runtime/ids.hpp"
#include "runtime/store.hpp"

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace {

using lps::test::temp_dir;

// The SQLite schema version this build writes (runtime/store.cpp).
const std::string schema_version = "7";

lps::store_options options_for(const temp_dir& dir, bool fsync = false, size_t max_ops = 4096) {
  lps::store_options options;
  options.data_dir = dir.str();
  options.fsync_every_commit = fsync;
  options.max_ops_per_commit = max_ops;
  return options;
}

std::unique_ptr<lps::store> open_store(const lps::store_options& options) {
  std::string error;
  auto db = lps::test::open_backend_store(options, error);
  INFO("open error: " << error);
  REQUIRE(db != nullptr);
  CHECK(error.empty());
  return db;
}

lps::stored_request make_request(const std::string& id, int32_t priority = 5,
                                 int64_t queued_at_ms = 1000, std::string payload = "{}") {
  lps::stored_request row;
  row.queue_id = id;
  row.priority = priority;
  row.queued_at_ms = queued_at_ms;
  row.size_bytes = payload.size();
  row.payload = std::move(payload);
  return row;
}

lps::stored_result make_result(const std::string& id, const std::string& status = "completed",
                               const std::string& callback_url = "",
                               int64_t completed_at_ms = 2000) {
  lps::stored_result row;
  row.queue_id = id;
  row.status = status;
  row.event_json = R"({"queue_id":")" + id + R"(","status":")" + status + R"("})";
  row.callback_url = callback_url;
  row.completed_at_ms = completed_at_ms;
  return row;
}

lps::store_write inserts(std::vector<lps::stored_request> rows) {
  lps::store_write write;
  write.inserts = std::move(rows);
  return write;
}

lps::store_write finals(std::vector<lps::stored_result> rows) {
  lps::store_write write;
  write.finals = std::move(rows);
  return write;
}

// Outcome of one write, filled on the writer thread and read after flush().
struct outcome {
  int calls = 0;
  bool ok = false;
  std::string error;
};

lps::store_callback record(outcome& out) {
  return [&out](bool ok, const std::string& error) {
    ++out.calls;
    out.ok = ok;
    out.error = error;
  };
}

// Submits one write, waits for it and returns its outcome.
outcome run(lps::store& db, lps::store_write write) {
  outcome out;
  db.submit(std::move(write), record(out));
  db.flush();
  return out;
}

void require_ok(lps::store& db, lps::store_write write) {
  outcome out = run(db, std::move(write));
  INFO("write error: " << out.error);
  REQUIRE(out.calls == 1);
  REQUIRE(out.ok);
}

std::vector<std::string> ids_of(const std::vector<lps::stored_request>& rows) {
  std::vector<std::string> ids;
  for (const auto& row : rows)
    ids.push_back(row.queue_id);
  return ids;
}

// The active requests' scheduling rows, in the order the queue loads them at start-up.
std::vector<lps::stored_request> active_index(lps::store& db) {
  std::vector<lps::stored_request> rows;
  db.load_active_index([&](lps::stored_request&& row) { rows.push_back(std::move(row)); });
  return rows;
}

// The active requests' whole rows (payload and texts), in start-up order.
std::vector<lps::stored_request> active_rows(lps::store& db) {
  return db.load_rows(ids_of(active_index(db)));
}

std::vector<std::string> ids_of(const std::vector<lps::stored_result>& rows) {
  std::vector<std::string> ids;
  for (const auto& row : rows)
    ids.push_back(row.queue_id);
  return ids;
}

// Holds the writer thread inside a callback until release(), so that writes submitted
// meanwhile are all pending when it resumes.
class writer_gate {
public:
  writer_gate() : released_(promise_.get_future().share()) {}
  ~writer_gate() {
    release();
  }

  void block_writer(lps::store& db) {
    auto entered = std::make_shared<std::promise<void>>();
    auto entered_future = entered->get_future();
    db.submit({}, [entered, released = released_](bool, const std::string&) {
      entered->set_value();
      released.wait();
    });
    entered_future.wait();
  }

  void release() {
    if (!done_) {
      done_ = true;
      promise_.set_value();
    }
  }

private:
  std::promise<void> promise_;
  std::shared_future<void> released_;
  bool done_ = false;
};

using lps::test::exec_raw;
using lps::test::query_text;

// The detail column of every EXPLAIN QUERY PLAN row, joined.
std::string query_plan(const fs::path& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(db_path.string().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    std::string explain = "EXPLAIN QUERY PLAN " + sql;
    if (sqlite3_prepare_v2(db, explain.c_str(), -1, &stmt, nullptr) == SQLITE_OK)
      while (sqlite3_step(stmt) == SQLITE_ROW)
        out += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3)) + std::string("; ");
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return out;
}

} // namespace

TEST_CASE("store open creates the data directory and the schema", "[store][sqlite]") {
  temp_dir dir;
  auto options = options_for(dir);
  options.data_dir = (dir.path() / "nested" / "deeper").string();
  auto db = open_store(options);
  fs::path file = dir.path() / "nested" / "deeper" / "lps.db";
  CHECK(fs::path(db->path()) == file);
  CHECK(fs::is_regular_file(file));
  CHECK(db->count_active_requests() == 0);
  CHECK(db->count_results() == 0);
  CHECK(active_index(*db).empty());
  CHECK(db->load_undelivered_results().empty());

  CHECK(query_text(file, "PRAGMA user_version") == schema_version);
  CHECK(query_text(file, "PRAGMA journal_mode") == "wal");
  CHECK(query_text(file, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN "
                         "('requests','results')")
        == "2");
  CHECK(query_text(file, "SELECT count(*) FROM sqlite_master WHERE type='index' AND "
                         "name='results_undelivered'")
        == "1");
  // The undelivered query must use the partial index, not scan every result ever stored.
  auto plan = query_plan(file, "SELECT * FROM results WHERE delivered = 0 AND "
                               "callback_url <> '' ORDER BY completed_at_ms, rowid");
  CHECK_THAT(plan, Catch::Contains("results_undelivered"));
  CHECK_THAT(plan, !Catch::Contains("TEMP B-TREE"));
}

TEST_CASE("store reopen is idempotent and keeps all data", "[store]") {
  temp_dir dir;
  const char raw[] = "\0\x01\xff\xfe payload \0 end";
  std::string binary(raw, sizeof raw - 1);
  REQUIRE(binary.size() == 18);
  {
    auto db = open_store(options_for(dir, true));
    require_ok(*db, inserts({make_request("a", 7, 100, binary), make_request("b", 3, 200, "")}));
    auto result = make_result("c", "failed", "http://cb/c", 555);
    require_ok(*db, inserts({make_request("c")}));
    require_ok(*db, finals({result}));
    lps::store_write attempts;
    attempts.attempts = {{"a", 4}};
    require_ok(*db, attempts);
  }
  for (int round = 0; round < 2; ++round) {
    auto db = open_store(options_for(dir, true));
    auto active = active_rows(*db);
    REQUIRE(active.size() == 2);
    CHECK(active[0].queue_id == "a");
    CHECK(active[0].priority == 7);
    CHECK(active[0].queued_at_ms == 100);
    CHECK(active[0].size_bytes == binary.size());
    CHECK(active[0].attempts == 4);
    CHECK(active[0].payload == binary);
    CHECK(active[1].queue_id == "b");
    CHECK(active[1].payload.empty());
    auto found = db->find_result("c");
    REQUIRE(found);
    CHECK(found->status == "failed");
    CHECK(found->event_json == make_result("c", "failed").event_json);
    CHECK(found->callback_url == "http://cb/c");
    CHECK(found->completed_at_ms == 555);
    CHECK_FALSE(found->delivered);
    CHECK(db->count_results() == 1);
    if (!lps::test::store_backend_is_postgres())
      CHECK(query_text(db->path(), "PRAGMA user_version") == schema_version);
  }
}

TEST_CASE("store loads active requests by priority then FIFO", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  require_ok(*db, inserts({make_request("low-late", 1, 300), make_request("high-late", 9, 500),
                           make_request("mid-b", 5, 100), make_request("mid-a", 5, 50)}));
  require_ok(*db, inserts({make_request("high-early", 9, 10)}));
  // Same priority and timestamp: insertion order decides.
  require_ok(*db, inserts({make_request("tie-1", 5, 100)}));
  require_ok(*db, inserts({make_request("tie-2", 5, 100)}));
  require_ok(*db, inserts({make_request("negative", -3, 0)}));
  auto expected = std::vector<std::string>{"high-early", "high-late", "mid-a",    "mid-b",
                                           "tie-1",      "tie-2",     "low-late", "negative"};
  CHECK(ids_of(active_index(*db)) == expected);
  CHECK(db->count_active_requests() == expected.size());
}

TEST_CASE("store finals remove the request and are readable by id", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  require_ok(*db, inserts({make_request("q1"), make_request("q2"), make_request("q3")}));
  require_ok(*db, finals({make_result("q1", "completed", "http://cb/1", 10),
                          make_result("q3", "expired", "", 30)}));
  CHECK(ids_of(active_index(*db)) == std::vector<std::string>{"q2"});
  CHECK(db->count_active_requests() == 1);
  CHECK(db->count_results() == 2);
  auto q1 = db->find_result("q1");
  REQUIRE(q1);
  CHECK(q1->queue_id == "q1");
  CHECK(q1->status == "completed");
  CHECK(q1->event_json == make_result("q1").event_json);
  CHECK(q1->callback_url == "http://cb/1");
  CHECK(q1->completed_at_ms == 10);
  auto q3 = db->find_result("q3");
  REQUIRE(q3);
  CHECK(q3->status == "expired");
  CHECK_FALSE(db->find_result("q2"));
  CHECK_FALSE(db->find_result("unknown"));
  CHECK_FALSE(db->find_result(""));
}

TEST_CASE("store keeps the first final result for a queue id", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  require_ok(*db, inserts({make_request("dup")}));
  require_ok(*db, finals({make_result("dup", "completed", "http://cb", 1)}));
  lps::store_write delivered;
  delivered.delivered = {"dup"};
  require_ok(*db, delivered);

  // A later, different final for the same id is accepted but ignored.
  require_ok(*db, finals({make_result("dup", "expired", "http://other", 2)}));
  auto found = db->find_result("dup");
  REQUIRE(found);
  CHECK(found->status == "completed");
  CHECK(found->callback_url == "http://cb");
  CHECK(found->completed_at_ms == 1);
  CHECK(found->delivered);
  CHECK(db->count_results() == 1);

  SECTION("two finals in one write: the first wins") {
    require_ok(*db, inserts({make_request("pair")}));
    require_ok(*db, finals({make_result("pair", "failed"), make_result("pair", "completed")}));
    CHECK(db->find_result("pair")->status == "failed");
  }
  SECTION("a request re-inserted after its final is removed again by a second final") {
    require_ok(*db, inserts({make_request("dup")}));
    require_ok(*db, finals({make_result("dup", "failed")}));
    CHECK(db->count_active_requests() == 0);
    CHECK(db->find_result("dup")->status == "completed");
  }
}

TEST_CASE("store tracks delivery and lists undelivered results", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  auto already = make_result("already", "completed", "http://cb/x", 5);
  already.delivered = true;
  require_ok(*db, finals({make_result("late", "completed", "http://cb/l", 300),
                          make_result("early", "failed", "http://cb/e", 100),
                          make_result("no-callback", "completed", "", 50),
                          make_result("middle", "expired", "http://cb/m", 200), already}));
  CHECK(ids_of(db->load_undelivered_results())
        == std::vector<std::string>{"early", "middle", "late"});

  lps::store_write delivered;
  delivered.delivered = {"middle", "unknown-id"};
  require_ok(*db, delivered);
  auto pending = db->load_undelivered_results();
  CHECK(ids_of(pending) == std::vector<std::string>{"early", "late"});
  REQUIRE(pending.size() == 2);
  CHECK(pending[0].callback_url == "http://cb/e");
  CHECK(pending[0].status == "failed");
  CHECK(pending[0].completed_at_ms == 100);
  CHECK_FALSE(pending[0].delivered);
  CHECK(db->find_result("middle")->delivered);
  CHECK(db->find_result("already")->delivered);
  CHECK_FALSE(db->find_result("no-callback")->delivered);
}

TEST_CASE("store updates attempt counters of active requests", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  require_ok(*db, inserts({make_request("a", 5, 1), make_request("b", 5, 2)}));
  lps::store_write write;
  write.attempts = {{"a", 2}, {"b", 7}, {"gone", 9}};
  require_ok(*db, write);
  write = {};
  write.attempts = {{"a", 3}};
  require_ok(*db, write);
  auto active = active_index(*db);
  REQUIRE(active.size() == 2);
  CHECK(active[0].attempts == 3);
  CHECK(active[1].attempts == 7);
  CHECK(db->count_active_requests() == 2);
}

TEST_CASE("store calls each callback exactly once and in submission order", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  constexpr int writes = 2000;
  std::vector<int> order;
  std::vector<int> oks;
  for (int i = 0; i < writes; ++i) {
    // Every 100th write re-inserts id 0 and fails; the order must still hold.
    std::string id = i % 100 == 99 ? "id-0" : "id-" + std::to_string(i);
    db->submit(inserts({make_request(id)}), [&order, &oks, i](bool ok, const std::string&) {
      order.push_back(i);
      oks.push_back(ok ? 1 : 0);
    });
  }
  db->flush();
  REQUIRE(order.size() == writes);
  for (int i = 0; i < writes; ++i) {
    INFO("write " << i);
    REQUIRE(order[i] == i);
    REQUIRE(oks[i] == (i % 100 == 99 ? 0 : 1));
  }
  CHECK(db->count_active_requests() == writes - writes / 100);
  CHECK(db->stats().pending_ops == 0);
}

TEST_CASE("store isolates a bad write from its neighbours in the same batch", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  require_ok(*db, inserts({make_request("existing")}));
  auto failed_before = db->stats().failed_commits;

  outcome good1, duplicate, good2, partial, delivered;
  {
    writer_gate gate;
    gate.block_writer(*db);
    db->submit(inserts({make_request("good-1")}), record(good1));
    db->submit(inserts({make_request("existing")}), record(duplicate));
    db->submit(finals({make_result("existing")}), record(good2));
    // All or nothing: the clash on its third row must undo its first two.
    db->submit(inserts({make_request("p1"), make_request("p2"), make_request("good-1")}),
               record(partial));
    lps::store_write mark;
    mark.delivered = {"existing"};
    db->submit(mark, record(delivered));
  }
  db->flush();

  for (auto* out : {&good1, &duplicate, &good2, &partial, &delivered})
    CHECK(out->calls == 1);
  CHECK(good1.ok);
  CHECK(good1.error.empty());
  CHECK_FALSE(duplicate.ok);
  CHECK_THAT(duplicate.error,
             Catch::Contains("unique", Catch::CaseSensitive::No) && Catch::Contains("existing"));
  CHECK(good2.ok);
  CHECK_FALSE(partial.ok);
  CHECK_THAT(partial.error, Catch::Contains("good-1"));
  CHECK(delivered.ok);

  CHECK(ids_of(active_index(*db)) == std::vector<std::string>{"good-1"});
  auto result = db->find_result("existing");
  REQUIRE(result);
  CHECK(result->delivered);
  CHECK(db->stats().failed_commits > failed_before);
}

TEST_CASE("store loses nothing under concurrent submits", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  constexpr int threads = 4;
  constexpr int writes_per_thread = 500;
  std::atomic<int> ok_calls{0};
  std::atomic<int> failed_calls{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < writes_per_thread; ++i) {
        std::string base = "t" + std::to_string(t) + "-" + std::to_string(i);
        db->submit(inserts({make_request(base + "a"), make_request(base + "b")}),
                   [&](bool ok, const std::string&) { ++(ok ? ok_calls : failed_calls); });
      }
    });
  }
  for (auto& worker : workers)
    worker.join();
  db->flush();
  CHECK(ok_calls == threads * writes_per_thread);
  CHECK(failed_calls == 0);
  CHECK(db->count_active_requests() == 2 * threads * writes_per_thread);
  auto stats = db->stats();
  CHECK(stats.ops_committed == 2 * threads * writes_per_thread);
  CHECK(stats.pending_ops == 0);
  CHECK(stats.failed_commits == 0);
}

TEST_CASE("store flush waits for every earlier write", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir, true));

  SECTION("flush on an idle store returns at once") {
    db->flush();
    db->flush();
    CHECK(db->stats().commits == 0);
  }
  SECTION("writes and callbacks are done when flush returns") {
    std::atomic<int> calls{0};
    for (int i = 0; i < 300; ++i)
      db->submit(inserts({make_request("f" + std::to_string(i))}),
                 [&](bool, const std::string&) { ++calls; });
    db->flush();
    CHECK(calls == 300);
    CHECK(db->count_active_requests() == 300);
    CHECK(db->find_result("f1") == std::nullopt);
    require_ok(*db, finals({make_result("f1")}));
    CHECK(db->find_result("f1"));
  }
  SECTION("flush blocks while an earlier write is unfinished") {
    writer_gate gate;
    gate.block_writer(*db);
    std::promise<void> flusher_started;
    auto flusher_running = flusher_started.get_future();
    outcome later;
    // The gated write holds the writer; `later` commits only after the gate opens.
    db->submit(inserts({make_request("later")}), record(later));
    std::atomic<int> calls_when_flush_returned{-1};
    std::thread flusher([&] {
      flusher_started.set_value();
      db->flush();
      calls_when_flush_returned = later.calls;
    });
    flusher_running.wait();
    // Nothing can complete `later` while the gate is shut, so flush cannot have returned.
    CHECK(calls_when_flush_returned == -1);
    gate.release();
    flusher.join();
    CHECK(calls_when_flush_returned == 1);
    CHECK(db->count_active_requests() == 1);
  }
  SECTION("flush and submit from inside a callback do not deadlock") {
    outcome inner;
    bool flushed_inside = false;
    db->submit(inserts({make_request("outer")}), [&](bool, const std::string&) {
      db->flush();
      flushed_inside = true;
      db->submit(inserts({make_request("inner")}), record(inner));
    });
    db->flush();
    CHECK(flushed_inside);
    db->flush();
    CHECK(inner.calls == 1);
    CHECK(inner.ok);
    CHECK(db->count_active_requests() == 2);
  }
}

TEST_CASE("store open fails cleanly on impossible paths", "[store][sqlite]") {
  temp_dir dir;
  fs::create_directories(dir.path());
  std::string error;

  SECTION("data_dir is a regular file") {
    fs::path file = dir.path() / "plain-file";
    std::ofstream(file) << "not a directory";
    auto options = options_for(dir);
    options.data_dir = file.string();
    CHECK(lps::store::open(options, error) == nullptr);
    CHECK_THAT(error, Catch::Contains(file.string()));
    CHECK(error.find('\n') == std::string::npos);
  }
  SECTION("data_dir lies below a regular file") {
    fs::path file = dir.path() / "plain-file";
    std::ofstream(file) << "x";
    auto options = options_for(dir);
    options.data_dir = (file / "sub").string();
    CHECK(lps::store::open(options, error) == nullptr);
    CHECK_THAT(error, Catch::Contains("sub"));
  }
  SECTION("lps.db is a directory") {
    fs::create_directories(dir.path() / "lps.db");
    CHECK(lps::store::open(options_for(dir), error) == nullptr);
    CHECK_THAT(error, Catch::Contains((dir.path() / "lps.db").string()));
  }
  SECTION("lps.db is not a database") {
    std::ofstream(dir.path() / "lps.db") << std::string(8192, 'g');
    CHECK(lps::store::open(options_for(dir), error) == nullptr);
    CHECK_THAT(error, Catch::Contains("lps.db") && Catch::Contains("not a database"));
  }
  SECTION("schema from a newer version") {
    REQUIRE(exec_raw(dir.path() / "lps.db", "PRAGMA user_version = 8"));
    CHECK(lps::store::open(options_for(dir), error) == nullptr);
    CHECK_THAT(error, Catch::Contains("schema version 8"));
  }
  CHECK_FALSE(error.empty());
}

TEST_CASE("store group commit folds many writes into few transactions", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir, true));

  SECTION("writes queued behind a busy writer share one commit") {
    constexpr int writes = 1000;
    std::atomic<int> ok_calls{0};
    {
      writer_gate gate;
      gate.block_writer(*db);
      for (int i = 0; i < writes; ++i)
        db->submit(inserts({make_request("g" + std::to_string(i))}),
                   [&](bool ok, const std::string&) { ok_calls += ok ? 1 : 0; });
    }
    db->flush();
    CHECK(ok_calls == writes);
    // One commit for the gate's batch, one for everything queued behind it.
    CHECK(db->stats().commits <= 2);
    CHECK(db->stats().ops_committed == writes);
  }
  SECTION("a burst of submits needs fewer commits than writes") {
    constexpr int writes = 3000;
    for (int i = 0; i < writes; ++i)
      db->submit(inserts({make_request("b" + std::to_string(i))}), nullptr);
    db->flush();
    CHECK(db->count_active_requests() == writes);
    CHECK(db->stats().commits < writes);
  }
}

TEST_CASE("store caps the operations in one transaction", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir, false, 10));
  {
    writer_gate gate;
    gate.block_writer(*db);
    for (int i = 0; i < 100; ++i)
      db->submit(inserts({make_request("c" + std::to_string(i))}), nullptr);
  }
  db->flush();
  CHECK(db->stats().commits >= 10);
  CHECK(db->count_active_requests() == 100);

  // A single write above the cap is still one all-or-nothing transaction.
  std::vector<lps::stored_request> big;
  for (int i = 0; i < 25; ++i)
    big.push_back(make_request("big" + std::to_string(i)));
  auto commits_before = db->stats().commits;
  require_ok(*db, inserts(big));
  CHECK(db->stats().commits == commits_before + 1);
  CHECK(db->count_active_requests() == 125);
}

TEST_CASE("store destructor commits pending writes and calls their callbacks", "[store]") {
  temp_dir dir;
  constexpr int writes = 1000;
  std::atomic<int> ok_calls{0};
  {
    auto db = open_store(options_for(dir, true));
    for (int i = 0; i < writes; ++i)
      db->submit(inserts({make_request("d" + std::to_string(i))}),
                 [&](bool ok, const std::string&) { ok_calls += ok ? 1 : 0; });
  }
  CHECK(ok_calls == writes);
  auto db = open_store(options_for(dir));
  CHECK(db->count_active_requests() == writes);
}

TEST_CASE("store stats count commits and operations", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  CHECK(db->stats().commits == 0);
  require_ok(*db, inserts({make_request("s1"), make_request("s2")}));
  require_ok(*db, finals({make_result("s1")}));
  require_ok(*db, {}); // an empty write succeeds and counts no operation
  auto stats = db->stats();
  CHECK(stats.commits == 3);
  CHECK(stats.ops_committed == 3);
  CHECK(stats.failed_commits == 0);
  CHECK(stats.pending_ops == 0);

  outcome bad = run(*db, inserts({make_request("s2")}));
  CHECK_FALSE(bad.ok);
  CHECK(db->stats().failed_commits == 1);
  CHECK(db->stats().ops_committed == 3);
}

TEST_CASE("store keeps writing after a callback throws", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  db->submit(inserts({make_request("thrower")}),
             [](bool, const std::string&) { throw std::runtime_error("callback failure"); });
  outcome after;
  db->submit(inserts({make_request("after")}), record(after));
  db->flush();
  CHECK(after.calls == 1);
  CHECK(after.ok);
  CHECK(db->count_active_requests() == 2);
}

TEST_CASE("store reads see a growing consistent state while writes commit", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  constexpr int requests = 2000;
  std::atomic<bool> writing{true};
  bool monotonic = true;
  bool consistent = true;
  std::atomic<uint64_t> reads{0};
  std::promise<void> first_read;
  std::thread reader([&] {
    uint64_t last = 0;
    while (writing) {
      uint64_t results = db->count_results();
      monotonic = monotonic && results >= last;
      last = results;
      // Results commit in order, so the newest counted one must be readable.
      if (auto found = db->find_result("r" + std::to_string(results ? results - 1 : 0)))
        consistent = consistent && found->status == "completed";
      if (++reads == 1)
        first_read.set_value();
    }
  });
  for (int i = 0; i < requests; ++i) {
    std::string id = "r" + std::to_string(i);
    db->submit(inserts({make_request(id)}), nullptr);
    db->submit(finals({make_result(id)}), nullptr);
  }
  db->flush();
  // On a busy machine the writes can finish before the reader ran once: let it read at
  // least once (it then also sees the final state).
  auto read_once =
      first_read.get_future().wait_for(std::chrono::seconds{30}) == std::future_status::ready;
  writing = false;
  reader.join();
  REQUIRE(read_once);
  CHECK(monotonic);
  CHECK(consistent);
  CHECK(reads > 0);
  CHECK(db->count_results() == requests);
  CHECK(db->count_active_requests() == 0);
}

TEST_CASE("store in manual-commit mode commits on flush on the calling thread", "[store]") {
  temp_dir dir;
  auto options = options_for(dir);
  options.manual_commits = true;
  auto db = open_store(options);
  REQUIRE(db);
  std::thread::id callback_thread;
  bool called = false;
  lps::store_write write;
  write.inserts.push_back({"m1", 5, 1, 10, 0, "payload", "texts", "mock"});
  db->submit(std::move(write), [&](bool ok, const std::string&) {
    called = ok;
    callback_thread = std::this_thread::get_id();
  });
  CHECK_FALSE(called); // nothing happens before flush
  CHECK(db->count_active_requests() == 0);
  db->flush();
  CHECK(called);
  CHECK(callback_thread == std::this_thread::get_id());
  CHECK(db->count_active_requests() == 1);
}

TEST_CASE("store keeps texts apart and loads them on demand", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  REQUIRE(db);
  lps::store_write write;
  write.inserts.push_back({"t1", 5, 1, 10, 0, "meta-1", "texts-1", "mock"});
  write.inserts.push_back({"t2", 5, 2, 10, 0, "meta-2", std::string(6000, 'x'), "openai"});
  db->submit(std::move(write), [](bool, const std::string&) {});
  db->flush();
  auto active = active_index(*db);
  REQUIRE(active.size() == 2);
  CHECK(active[0].queue_id == "t1");
  CHECK(active[0].payload.empty()); // start-up reads stay small
  CHECK(active[0].texts.empty());
  auto rows = db->load_rows({"t2", "gone", "t1"});
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].queue_id == "t2");
  CHECK(rows[0].texts == std::string(6000, 'x'));
  CHECK(rows[1].queue_id == "t1");
  CHECK(rows[1].texts == "texts-1");
}

TEST_CASE("store migrates a version 1 database and keeps its rows", "[store][sqlite]") {
  temp_dir dir;
  std::filesystem::create_directories(dir.path());
  auto path = (dir.path() / "lps.db").string();
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &raw) == SQLITE_OK);
  REQUIRE(sqlite3_exec(raw,
                       "CREATE TABLE requests(queue_id TEXT PRIMARY KEY NOT NULL, priority "
                       "INTEGER NOT NULL, queued_at_ms INTEGER NOT NULL, size_bytes INTEGER NOT "
                       "NULL, attempts INTEGER NOT NULL, payload BLOB NOT NULL);"
                       "INSERT INTO requests VALUES('old', 5, 1, 3, 0, x'01020304');"
                       "PRAGMA user_version = 1;",
                       nullptr, nullptr, nullptr)
          == SQLITE_OK);
  sqlite3_close(raw);
  auto db = open_store(options_for(dir));
  REQUIRE(db);
  auto active = active_rows(*db);
  REQUIRE(active.size() == 1);
  CHECK(active[0].queue_id == "old");
  CHECK(active[0].payload == std::string("\x01\x02\x03\x04", 4));
  auto rows = db->load_rows({"old"});
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].texts.empty());
  CHECK(rows[0].provider.empty()); // version 1 rows carry it in the payload
}

TEST_CASE("store streams the scheduling index and loads whole rows by id", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  REQUIRE(db);
  lps::store_write write;
  write.inserts.push_back({"i1", 3, 5, 10, 2, "meta-1", "texts-1", "openai"});
  write.inserts.push_back({"i2", 9, 6, 20, 0, "meta-2", "texts-2", "mock"});
  db->submit(std::move(write), [](bool, const std::string&) {});
  db->flush();
  std::vector<lps::stored_request> index;
  db->load_active_index([&](lps::stored_request&& row) { index.push_back(std::move(row)); });
  REQUIRE(index.size() == 2);
  CHECK(index[0].queue_id == "i2"); // priority 9 first
  CHECK(index[0].provider == "mock");
  CHECK(index[1].provider == "openai");
  CHECK(index[1].attempts == 2);
  CHECK(index[1].payload.empty()); // no payloads at start-up
  auto rows = db->load_rows({"i1", "gone"});
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].payload == "meta-1");
  CHECK(rows[0].texts == "texts-1");
  CHECK(rows[0].provider == "openai");
}

// The statement load_active_index runs (runtime/store.cpp, load_index_sql).
constexpr const char* load_index_sql =
    "SELECT queue_id, priority, queued_at_ms, size_bytes, attempts, provider FROM requests "
    "ORDER BY priority DESC, queued_at_ms ASC, rowid ASC";

TEST_CASE("store recovery reads the covering scheduling index, not the table", "[store][sqlite]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  // Without the index SQLite scans the table (every payload and text) and sorts it all.
  auto plan = query_plan(db->path(), load_index_sql);
  CHECK_THAT(plan, Catch::Contains("SCAN requests USING COVERING INDEX requests_schedule"));
  // Only the rowid tie-break is sorted, within equal (priority, queued_at_ms).
  CHECK_THAT(plan, Catch::Contains("TEMP B-TREE FOR RIGHT PART OF ORDER BY"));
}

TEST_CASE("store streams the scheduling index in priority, then FIFO order", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  // Inserted in an order that the index's own order (its queue_id column) would not keep.
  require_ok(*db, inserts({make_request("tie-z", 5, 100)}));
  require_ok(*db, inserts({make_request("tie-a", 5, 100)}));
  require_ok(*db, inserts({make_request("early", 5, 50), make_request("high", 9, 900)}));
  std::vector<std::string> ids;
  db->load_active_index([&](lps::stored_request&& row) { ids.push_back(row.queue_id); });
  CHECK(ids == std::vector<std::string>{"high", "early", "tie-z", "tie-a"});
}

TEST_CASE("store adds the scheduling index to a version 4 database", "[store][sqlite]") {
  temp_dir dir;
  fs::path file;
  {
    auto db = open_store(options_for(dir));
    require_ok(*db, inserts({make_request("kept", 5, 100)}));
    file = db->path();
  }
  REQUIRE(exec_raw(file, "DROP INDEX requests_schedule; PRAGMA user_version = 4;"));
  auto db = open_store(options_for(dir));
  CHECK(query_text(file, "PRAGMA user_version") == schema_version);
  CHECK_THAT(query_plan(file, load_index_sql), Catch::Contains("COVERING INDEX requests_schedule"));
  std::vector<std::string> ids;
  db->load_active_index([&](lps::stored_request&& row) { ids.push_back(row.queue_id); });
  CHECK(ids == std::vector<std::string>{"kept"});
}

// -- WAL checkpoints: off the writer thread, and the WAL stays short --

namespace {

// 2,000 requests of ~8 KiB, committed one by one (each write waits for the one before),
// as light traffic commits them: without checkpoints the WAL would exceed 32 MB.
constexpr int one_by_one_count = 2000;
void write_one_by_one(lps::store& db) {
  std::string texts(8000, 't');
  for (int i = 0; i < one_by_one_count; ++i) {
    auto row = make_request("wal-" + std::to_string(i));
    row.texts = texts;
    require_ok(db, inserts({row}));
  }
}

uintmax_t wal_bytes(const temp_dir& dir) {
  std::error_code ec;
  auto size = fs::file_size(dir.path() / "lps.db-wal", ec);
  return ec ? 0 : size;
}

} // namespace

TEST_CASE("the WAL is checkpointed by a background thread and stays short", "[store][sqlite]") {
  temp_dir dir;
  auto options = options_for(dir);
  options.wal_checkpoint_frames = 64; // 512 KiB
  auto db = open_store(options);
  write_one_by_one(*db);
  auto stats = db->stats();
  CHECK(stats.background_checkpoints > 0);
  // 8 x 64 frames (4 MiB) start the writer's own RESTART checkpoint; without any, the WAL
  // would exceed 32 MB.
  CHECK(wal_bytes(dir) < 12u << 20);
  CHECK(db->count_active_requests() == one_by_one_count);
}

TEST_CASE("without the background thread the writer checkpoints a long WAL between commits",
          "[store][sqlite]") {
  temp_dir dir;
  auto options = options_for(dir);
  options.wal_checkpoint_frames = 64;
  options.manual_commits = true; // no threads at all: only the writer's backstop
  auto db = open_store(options);
  write_one_by_one(*db);
  auto stats = db->stats();
  CHECK(stats.background_checkpoints == 0);
  CHECK(stats.writer_checkpoints > 0);
  CHECK(wal_bytes(dir) < 12u << 20);
  CHECK(db->count_active_requests() == one_by_one_count);
}

TEST_CASE("with fsync at every commit SQLite's own checkpoint stays in the writer",
          "[store][sqlite]") {
  temp_dir dir;
  auto options = options_for(dir, true);
  options.wal_checkpoint_frames = 64;
  auto db = open_store(options);
  write_one_by_one(*db);
  auto stats = db->stats();
  CHECK(stats.background_checkpoints == 0);
  CHECK(stats.writer_checkpoints == 0);
  // Its threshold is 8192 frames (64 MiB), so the 32 MB of this test stay in the WAL.
  CHECK(wal_bytes(dir) > 16u << 20);
  CHECK(db->count_active_requests() == one_by_one_count);
}

TEST_CASE("with the background thread a WAL past 8 times the threshold is restarted while the "
          "writer waits",
          "[store][sqlite]") {
  temp_dir dir;
  auto options = options_for(dir);
  options.wal_checkpoint_frames = 8; // 64 KiB: every commit below passes 8 x 8 frames
  auto db = open_store(options);
  std::string texts(8000, 't');
  for (int batch = 0; batch < 100; ++batch) {
    std::vector<lps::stored_request> rows;
    for (int i = 0; i < 20; ++i) {
      rows.push_back(make_request("restart-" + std::to_string(batch) + "-" + std::to_string(i)));
      rows.back().texts = texts;
    }
    require_ok(*db, inserts(rows));
  }
  auto stats = db->stats();
  CHECK(stats.writer_checkpoints > 0);
  CHECK(stats.background_checkpoints >= stats.writer_checkpoints); // the thread ran them
  // 2,000 rows of 8 KB: without restarts the WAL would pass 16 MB; one commit is ~330 KB.
  CHECK(wal_bytes(dir) < 2u << 20);
  CHECK(db->count_active_requests() == 2000);
}

// -- retention --

namespace {

constexpr int64_t day_ms = 86'400'000;

int64_t unix_now_ms() {
  return lps::to_unix_ms(caf::make_timestamp());
}

lps::store_options retention_options(const temp_dir& dir, bool manual = false) {
  auto options = options_for(dir);
  options.result_retention = std::chrono::hours(24 * 30);
  options.manual_commits = manual;
  return options;
}

// `n` results completed `age_ms` ago, ids "<prefix>0".."<prefix>n-1".
lps::store_write aged_results(const std::string& prefix, int n, int64_t age_ms,
                              const std::string& callback_url = "") {
  lps::store_write write;
  for (int i = 0; i < n; ++i)
    write.finals.push_back(
        make_result(prefix + std::to_string(i), "completed", callback_url, unix_now_ms() - age_ms));
  return write;
}

} // namespace

TEST_CASE("store purges delivered results past the retention and keeps the rest", "[store]") {
  temp_dir dir;
  auto manual = GENERATE(false, true);
  INFO("manual commits: " << manual);
  auto db = open_store(retention_options(dir, manual));
  require_ok(*db, aged_results("old-plain-", 1, 31 * day_ms));
  require_ok(*db, aged_results("old-delivered-", 1, 31 * day_ms, "http://127.0.0.1:9/cb"));
  require_ok(*db, aged_results("old-waiting-", 1, 31 * day_ms, "http://127.0.0.1:9/cb"));
  require_ok(*db, aged_results("recent-", 1, 29 * day_ms));
  lps::store_write mark;
  mark.delivered = {"old-delivered-0"};
  require_ok(*db, std::move(mark));

  db->purge_expired_results();

  CHECK_FALSE(db->find_result("old-plain-0"));
  CHECK_FALSE(db->find_result("old-delivered-0"));
  // A callback still to deliver keeps its result however old (the outbox).
  CHECK(db->find_result("old-waiting-0"));
  CHECK(db->find_result("recent-0"));
  CHECK(db->count_results() == 2);
  CHECK(db->stats().results_purged == 2);
  CHECK(ids_of(db->load_undelivered_results()) == std::vector<std::string>{"old-waiting-0"});

  // A callback given up has nothing left to deliver: its result goes like a delivered one.
  lps::store_write give_up;
  give_up.delivery_give_ups = {{"old-waiting-0", unix_now_ms(), 8, "HTTP 500"}};
  require_ok(*db, std::move(give_up));
  db->purge_expired_results();
  CHECK_FALSE(db->find_result("old-waiting-0"));
  CHECK(db->count_results() == 1);
}

TEST_CASE("store purges in steps of rows_per_step and gives the pages back", "[store][sqlite]") {
  temp_dir dir;
  // Manual commits: no background pass, so every step counted is this test's.
  auto db = open_store(retention_options(dir, true));
  auto path = fs::path(db->path());
  // A new file uses incremental auto-vacuum (2), so purged pages leave the file.
  CHECK(query_text(path, "PRAGMA auto_vacuum") == "2");
  constexpr int64_t n = 2 * lps::sqlite::result_purger::rows_per_step + 34;
  require_ok(*db, aged_results("old-", static_cast<int>(n), 40 * day_ms));
  require_ok(*db, aged_results("recent-", 3, day_ms));
  auto pages_before = std::stoll(query_text(path, "PRAGMA page_count"));

  db->purge_expired_results();

  CHECK(db->count_results() == 3);
  CHECK(db->stats().results_purged == static_cast<uint64_t>(n));
  // Two full steps, then one that deletes the remaining 34 and ends the pass.
  CHECK(db->stats().purge_steps == 3);
  auto pages_after = std::stoll(query_text(path, "PRAGMA page_count"));
  CHECK(pages_after < pages_before);
  CHECK(query_text(path, "PRAGMA freelist_count") == "0");
  // Writes go on as before.
  require_ok(*db, aged_results("later-", 1, 0));
  CHECK(db->count_results() == 4);
}

TEST_CASE("store keeps every result when the retention is 0", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  require_ok(*db, aged_results("ancient-", 3, 3650 * day_ms));
  db->purge_expired_results();
  CHECK(db->count_results() == 3);
  CHECK(db->stats().purge_steps == 0);
}

TEST_CASE("store purges results left by an earlier run once opened with a retention", "[store]") {
  temp_dir dir;
  {
    auto db = open_store(options_for(dir));
    require_ok(*db, aged_results("old-", 5, 31 * day_ms));
    require_ok(*db, aged_results("recent-", 2, day_ms));
  }
  auto db = open_store(retention_options(dir));
  db->purge_expired_results();
  CHECK(db->count_results() == 2);
  CHECK(db->find_result("recent-1"));
}

TEST_CASE("store keeps idempotency keys across reopen, first one wins, dropped with the result",
          "[store]") {
  temp_dir dir;
  {
    auto db = open_store(options_for(dir));
    CHECK_FALSE(db->find_idempotency_key("k1"));
    lps::store_write keys;
    keys.idempotency_keys = {{"k1", "q1"}, {"k2", "q2"}};
    require_ok(*db, keys);
    lps::store_write again;
    again.idempotency_keys = {{"k1", "other"}};
    require_ok(*db, again);
    CHECK(db->find_idempotency_key("k1") == std::optional<std::string>{"q1"});
    require_ok(*db, inserts({make_request("q1")}));
    require_ok(*db, finals({make_result("q1")}));
  }
  auto db = open_store(options_for(dir));
  CHECK(db->find_idempotency_key("k1") == std::optional<std::string>{"q1"});
  CHECK(db->find_idempotency_key("k2") == std::optional<std::string>{"q2"});
  // Whatever purges results purges their keys.
  const char* delete_q1 = "DELETE FROM results WHERE queue_id = 'q1'";
  bool deleted = lps::test::store_backend_is_postgres()
                     ? lps::test::exec_in_postgres(dir.str(), delete_q1)
                     : exec_raw(db->path(), delete_q1);
  REQUIRE(deleted);
  CHECK_FALSE(db->find_idempotency_key("k1"));
  CHECK(db->find_idempotency_key("k2") == std::optional<std::string>{"q2"});
}

TEST_CASE("store adds the idempotency table to a store made without it", "[store][sqlite]") {
  temp_dir dir;
  {
    auto db = open_store(options_for(dir));
    require_ok(*db, inserts({make_request("a")}));
  }
  REQUIRE(exec_raw(dir.path() / "lps.db", "DROP TABLE idempotency_keys"));
  auto db = open_store(options_for(dir));
  lps::store_write keys;
  keys.idempotency_keys = {{"k", "a"}};
  require_ok(*db, keys);
  CHECK(db->find_idempotency_key("k") == std::optional<std::string>{"a"});
  CHECK(active_index(*db).size() == 1);
}

TEST_CASE("store records a callback given up, keeps it across reopen, and no longer lists it",
          "[store]") {
  temp_dir dir;
  {
    auto db = open_store(options_for(dir, true));
    require_ok(*db, finals({make_result("gave-up", "completed", "http://cb/g", 100),
                            make_result("waiting", "completed", "http://cb/w", 200)}));
    lps::store_write give_up;
    give_up.delivery_give_ups = {{"gave-up", 12345, 3, "HTTP 500"}};
    require_ok(*db, std::move(give_up));
  }
  auto db = open_store(options_for(dir, true));
  CHECK(ids_of(db->load_undelivered_results()) == std::vector<std::string>{"waiting"});
  auto found = db->find_result("gave-up");
  REQUIRE(found);
  CHECK_FALSE(found->delivered);
  CHECK(found->delivery_failed_at_ms == 12345);
  CHECK(found->delivery_attempts == 3);
  CHECK(found->last_delivery_error == "HTTP 500");
  auto waiting = db->find_result("waiting");
  REQUIRE(waiting);
  CHECK(waiting->delivery_failed_at_ms == 0);
  CHECK(waiting->delivery_attempts == 0);
  CHECK(waiting->last_delivery_error.empty());
}

TEST_CASE("store migrates a version 2 database: its results count as not given up",
          "[store][sqlite]") {
  temp_dir dir;
  std::filesystem::create_directories(dir.path());
  REQUIRE(exec_raw(dir.path() / "lps.db",
                   "CREATE TABLE results(queue_id TEXT PRIMARY KEY NOT NULL, status TEXT NOT "
                   "NULL, event_json TEXT NOT NULL, callback_url TEXT NOT NULL, delivered "
                   "INTEGER NOT NULL, completed_at_ms INTEGER NOT NULL);"
                   "INSERT INTO results VALUES('old', 'completed', '{}', 'http://cb/o', 0, 7);"
                   "PRAGMA user_version = 2;"));
  auto db = open_store(options_for(dir));
  REQUIRE(db);
  CHECK(query_text(db->path(), "PRAGMA user_version") == schema_version);
  CHECK(ids_of(db->load_undelivered_results()) == std::vector<std::string>{"old"});
  lps::store_write give_up;
  give_up.delivery_give_ups = {{"old", 9, 2, "refused"}};
  require_ok(*db, std::move(give_up));
  CHECK(db->load_undelivered_results().empty());
  CHECK(db->find_result("old")->last_delivery_error == "refused");
}

namespace {

lps::stored_request request_in_run(const std::string& id, const std::string& run) {
  auto row = make_request(id);
  row.bos_batch_id = run;
  return row;
}

lps::stored_result result_in_run(const std::string& id, const std::string& run) {
  auto row = make_result(id);
  row.bos_batch_id = run;
  return row;
}

} // namespace

TEST_CASE("store finds a run's active requests and counts its final results", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  require_ok(*db, inserts({request_in_run("a", "r1"), request_in_run("b", "r1"),
                           request_in_run("c", "r2"), make_request("d")}));
  lps::store_write final_a;
  final_a.finals = {result_in_run("a", "r1")};
  require_ok(*db, std::move(final_a));
  auto r1 = db->load_run("r1");
  CHECK(r1.active == std::vector<std::string>{"b"});
  CHECK(r1.finals == 1);
  auto r2 = db->load_run("r2");
  CHECK(r2.active == std::vector<std::string>{"c"});
  CHECK(r2.finals == 0);
  // A request without a run belongs to none, not to a run named "".
  auto none = db->load_run("");
  CHECK(none.active.empty());
  CHECK(none.finals == 0);
  if (!lps::test::store_backend_is_postgres())
    CHECK(query_text(db->path(), "SELECT count(*) FROM requests WHERE bos_batch_id IS NULL")
          == "1");
}

TEST_CASE("store migrates a version 3 database: old rows have no run, new rows do",
          "[store][sqlite]") {
  temp_dir dir;
  std::filesystem::create_directories(dir.path());
  // The version 3 schema as it was, with one request and one result.
  REQUIRE(exec_raw(dir.path() / "lps.db",
                   "CREATE TABLE requests(queue_id TEXT PRIMARY KEY NOT NULL, priority INTEGER NOT "
                   "NULL, queued_at_ms INTEGER NOT NULL, size_bytes INTEGER NOT NULL, attempts "
                   "INTEGER NOT NULL, payload BLOB NOT NULL, texts BLOB NOT NULL DEFAULT x'', "
                   "provider TEXT NOT NULL DEFAULT '');"
                   "CREATE TABLE results(queue_id TEXT PRIMARY KEY NOT NULL, status TEXT NOT NULL, "
                   "event_json TEXT NOT NULL, callback_url TEXT NOT NULL, delivered INTEGER NOT "
                   "NULL, completed_at_ms INTEGER NOT NULL, delivery_failed_at_ms INTEGER NOT "
                   "NULL DEFAULT 0, delivery_attempts INTEGER NOT NULL DEFAULT 0, "
                   "last_delivery_error TEXT NOT NULL DEFAULT '');"
                   "INSERT INTO requests VALUES('old', 5, 1, 3, 0, x'01', x'02', 'mock');"
                   "INSERT INTO results VALUES('old-final', 'completed', '{}', '', 1, 7, 0, 0, '');"
                   "PRAGMA user_version = 3;"));
  auto db = open_store(options_for(dir));
  CHECK(query_text(db->path(), "PRAGMA user_version") == schema_version);
  CHECK(query_text(db->path(), "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name "
                               "IN ('requests_bos_batch_dispatched', "
                               "'results_bos_batch_completed')")
        == "2");
  CHECK_THAT(query_plan(db->path(), load_index_sql),
             Catch::Contains("COVERING INDEX requests_schedule"));
  // The old rows stay as they were, without a run (NULL, not filled from the payload).
  CHECK(ids_of(active_index(*db)) == std::vector<std::string>{"old"});
  CHECK(db->find_result("old-final"));
  CHECK(query_text(db->path(), "SELECT count(*) FROM requests WHERE bos_batch_id IS NULL") == "1");
  CHECK(query_text(db->path(), "SELECT count(*) FROM results WHERE bos_batch_id IS NULL") == "1");
  // New rows record their run.
  require_ok(*db, inserts({request_in_run("new", "r")}));
  lps::store_write final_new;
  final_new.finals = {result_in_run("new-final", "r")};
  require_ok(*db, std::move(final_new));
  auto run = db->load_run("r");
  CHECK(run.active == std::vector<std::string>{"new"});
  CHECK(run.finals == 1);
}

namespace {

// A final result of run `run` whose event carries an error code ("" none) and a cost (< 0
// none), as the result mapper writes them.
lps::stored_result final_in_run(const std::string& id, const std::string& run,
                                const std::string& status, int64_t completed_at_ms,
                                const std::string& error_code = "", double cost = -1) {
  auto row = result_in_run(id, run);
  row.status = status;
  row.completed_at_ms = completed_at_ms;
  auto error =
      error_code.empty() ? std::string{"null"} : R"({"error_code":")" + error_code + R"("})";
  auto cost_json = cost < 0 ? std::string{"null"} : std::to_string(cost);
  row.event_json = R"({"data":{"request_id":")" + id + R"(","error_detail":)" + error
                   + R"(,"cost_estimate":)" + cost_json + "}}";
  return row;
}

lps::stored_request request_in_run_at(const std::string& id, const std::string& run,
                                      int64_t queued_at_ms) {
  auto row = request_in_run(id, run);
  row.queued_at_ms = queued_at_ms;
  return row;
}

} // namespace

TEST_CASE("store summarises runs: counts by outcome, errors by code, cost and times", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  require_ok(*db, inserts({request_in_run_at("a", "r1", 1000), request_in_run_at("b", "r1", 1100),
                           request_in_run_at("c", "r1", 1150), request_in_run_at("g", "r1", 1200),
                           request_in_run_at("d", "r2", 3000), make_request("e")}));
  require_ok(*db, finals({final_in_run("a", "r1", "completed", 2000, "", 0.5),
                          final_in_run("b", "r1", "failed", 2500, "RATE_LIMIT"),
                          final_in_run("c", "r1", "failed", 2600, "CANCELLED"),
                          final_in_run("f", "r1", "expired", 4000, "EXPIRED", 0.25)}));

  auto runs = db->summarize_runs(2500, 10);
  REQUIRE(runs.size() == 2);
  // Newest first: r1's last completion (4000) is later than r2's last queue time (3000).
  CHECK(runs[0].bos_batch_id == "r1");
  CHECK(runs[1].bos_batch_id == "r2");
  const auto& r1 = runs[0];
  CHECK(r1.active == 1);
  CHECK(r1.completed == 1);
  CHECK(r1.failed == 1);
  CHECK(r1.expired == 1);
  CHECK(r1.cancelled == 1);
  CHECK(r1.finals_since == 3);
  CHECK(r1.first_queued_at_ms == 1200);
  CHECK(r1.last_completed_at_ms == 4000);
  CHECK(r1.cost_estimate == Approx(0.75));
  CHECK(r1.errors_by_code.empty()); // the list leaves errors out
  CHECK(runs[1].active == 1);
  CHECK(runs[1].completed + runs[1].failed + runs[1].expired + runs[1].cancelled == 0);
  CHECK(runs[1].last_completed_at_ms == 0);
  CHECK(runs[1].first_queued_at_ms == 3000);

  CHECK(db->summarize_runs(2500, 1).size() == 1);

  auto one = db->summarize_run("r1", 0);
  REQUIRE(one);
  CHECK(one->finals_since == 4);
  CHECK(one->completed == 1);
  CHECK(one->errors_by_code
        == std::map<std::string, uint64_t>{{"CANCELLED", 1}, {"EXPIRED", 1}, {"RATE_LIMIT", 1}});
  CHECK_FALSE(db->summarize_run("unknown", 0));
  CHECK_FALSE(db->summarize_run("", 0)); // a request without a run is in none
}

TEST_CASE("store pages a run's results by completion time then queue id", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  require_ok(
      *db,
      finals({final_in_run("p1", "r", "completed", 100), final_in_run("p3", "r", "completed", 100),
              final_in_run("p2", "r", "failed", 100, "TIMEOUT"),
              final_in_run("p4", "r", "completed", 50), final_in_run("p5", "r", "completed", 200),
              final_in_run("q", "other", "completed", 100)}));
  auto first = db->load_run_results("r", std::nullopt, 2);
  CHECK(ids_of(first) == std::vector<std::string>{"p4", "p1"});
  CHECK(first[1].completed_at_ms == 100);
  CHECK(first[1].event_json.find("\"p1\"") != std::string::npos);
  auto second = db->load_run_results("r", lps::result_cursor{100, "p1"}, 2);
  CHECK(ids_of(second) == std::vector<std::string>{"p2", "p3"});
  CHECK(ids_of(db->load_run_results("r", lps::result_cursor{100, "p3"}, 10))
        == std::vector<std::string>{"p5"});
  CHECK(db->load_run_results("r", lps::result_cursor{200, "p5"}, 10).empty());
  CHECK(db->load_run_results("unknown", std::nullopt, 10).empty());
}

// -- queryable columns (schema version 6): what operators' SQL reads --

namespace {

// The first column of the first row of `sql`, read past the store as an operator would: on
// the SQLite file or in the PostgreSQL database standing for `dir` ("" when none or NULL).
std::string query_column(const lps::store& db, const temp_dir& dir, const std::string& sql) {
  if (!lps::test::store_backend_is_postgres())
    return query_text(db.path(), sql);
  std::string error;
  auto url = lps::test::database_url_for(dir.str(), error);
  auto conn =
      url.empty() ? nullptr : lps::pg::connection::open(url, std::chrono::seconds{5}, error);
  INFO("connection error: " << error);
  REQUIRE(conn);
  auto r = conn->exec(sql);
  INFO("query error: " << r.error);
  REQUIRE(r.ok);
  return r.rows.empty() || !r.rows[0][0] ? "" : *r.rows[0][0];
}

// A request as the queue manager writes one of run `run` and CJ batch `cj` ("": none).
lps::stored_request request_with_ids(const std::string& id, const std::string& run,
                                     const std::string& cj) {
  auto row = request_in_run(id, run);
  row.provider = "anthropic";
  row.model = "claude-x";
  row.correlation_id = "corr-" + id;
  row.cj_batch_id = cj;
  return row;
}

// The columns of request `id` joined by '|', NULL shown as "-".
std::string request_columns(const lps::store& db, const temp_dir& dir, const std::string& id) {
  return query_column(db, dir,
                      "SELECT provider || '|' || model || '|' || correlation_id || '|' || "
                      "coalesce(bos_batch_id, '-') || '|' || coalesce(cj_batch_id, '-') || '|' || "
                          + lps::test::request_status_sql()
                          + " || '|' || attempts FROM requests WHERE queue_id = '" + id + "'");
}

std::string result_columns(const lps::store& db, const temp_dir& dir, const std::string& id) {
  return query_column(db, dir,
                      "SELECT status || '|' || provider || '|' || model || '|' || "
                      "coalesce(error_code, '-') || '|' || correlation_id || '|' || "
                      "coalesce(bos_batch_id, '-') || '|' || coalesce(cj_batch_id, '-') || '|' || "
                      "coalesce(CAST(priority AS TEXT), '-') FROM results WHERE queue_id = '"
                          + id + "'");
}

std::string count_of(const lps::store& db, const temp_dir& dir, const std::string& table,
                     const std::string& where) {
  return query_column(db, dir, "SELECT count(*) FROM " + table + " WHERE " + where);
}

} // namespace

TEST_CASE("store writes a request's ids, model and status as columns", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  require_ok(*db, inserts({request_with_ids("a", "run-1", "17"), request_with_ids("b", "", "")}));
  CHECK(request_columns(*db, dir, "a") == "anthropic|claude-x|corr-a|run-1|17|queued|0");
  // Without a run or a CJ batch the columns are NULL, so the partial indexes leave it out.
  CHECK(request_columns(*db, dir, "b") == "anthropic|claude-x|corr-b|-|-|queued|0");

  SECTION("a dispatched request is processing") {
    auto ops_before = db->stats().ops_committed;
    lps::store_write write;
    write.dispatched = {"a", "gone"}; // a request no longer stored is no error
    require_ok(*db, std::move(write));
    CHECK(db->stats().ops_committed == ops_before + 2); // group commit counts both
    CHECK(request_columns(*db, dir, "a") == "anthropic|claude-x|corr-a|run-1|17|processing|0");
    CHECK(request_columns(*db, dir, "b") == "anthropic|claude-x|corr-b|-|-|queued|0");

    SECTION("and queued again, with its attempts, once put back") {
      lps::store_write put_back;
      put_back.attempts = {{"a", 1}};
      require_ok(*db, std::move(put_back));
      CHECK(request_columns(*db, dir, "a") == "anthropic|claude-x|corr-a|run-1|17|queued|1");
    }
    SECTION("and queued again by the start-up recovery after a reopen") {
      db.reset();
      db = open_store(options_for(dir));
      active_index(*db); // the recovery scan (PostgreSQL resets the rows there, SQLite at open)
      CHECK(request_columns(*db, dir, "a") == "anthropic|claude-x|corr-a|run-1|17|queued|0");
    }
  }
}

TEST_CASE("store start-up recovery puts processing requests back to queued, except those an "
          "unfinished provider batch job holds",
          "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  require_ok(*db,
             inserts({request_with_ids("lost", "", ""), request_with_ids("queued", "", ""),
                      request_with_ids("in-job", "", ""), request_with_ids("job-done", "", "")}));
  lps::store_write dispatch;
  dispatch.dispatched = {"lost", "in-job", "job-done"};
  require_ok(*db, std::move(dispatch));
  std::string error;
  auto jobs = lps::test::open_backend_batch_job_store({dir.str(), false}, error);
  INFO("batch job store: " << error);
  REQUIRE(jobs);
  auto job = [](const std::string& id) {
    lps::batch_job_record rec;
    rec.job_id = id;
    rec.provider = "openai";
    rec.model = "m";
    rec.state = "submitted";
    return rec;
  };
  auto running = job("bj-running");
  auto collected = job("bj-collected");
  REQUIRE(jobs->create(running, {"in-job"}, error));
  REQUIRE(jobs->create(collected, {"job-done"}, error));
  collected.state = "collected"; // final, but its items were never released (finish())
  REQUIRE(jobs->update(collected, error));
  jobs.reset();
  db.reset();

  db = open_store(options_for(dir));
  auto index = active_index(*db);
  CHECK(index.size() == 4);
  CHECK(request_columns(*db, dir, "lost") == "anthropic|claude-x|corr-lost|-|-|queued|0");
  CHECK(request_columns(*db, dir, "queued") == "anthropic|claude-x|corr-queued|-|-|queued|0");
  CHECK(request_columns(*db, dir, "job-done") == "anthropic|claude-x|corr-job-done|-|-|queued|0");
  CHECK(request_columns(*db, dir, "in-job") == "anthropic|claude-x|corr-in-job|-|-|processing|0");
}

TEST_CASE("store finds the processing requests at open through an index of them alone",
          "[store][sqlite]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  CHECK_THAT(query_plan(db->path(), "UPDATE requests SET dispatched = 0 WHERE dispatched = 1"),
             Catch::Contains("INDEX requests_processing"));
  CHECK(query_text(db->path(), "SELECT sql FROM sqlite_master WHERE name = 'requests_processing'")
        == "CREATE INDEX requests_processing ON requests(queue_id) WHERE dispatched = 1");
}

TEST_CASE("store writes a result's provider, model, error code, ids and its request's priority",
          "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  require_ok(*db, inserts({request_with_ids("a", "run-1", "cj-9"), make_request("b", 8)}));
  auto failed = result_in_run("a", "run-1");
  failed.status = "failed";
  failed.provider = "openai";
  failed.model = "gpt-x";
  failed.error_code = "TIMEOUT";
  failed.correlation_id = "corr-a";
  failed.cj_batch_id = "cj-9";
  auto completed = make_result("b");
  completed.provider = "mock";
  completed.model = "mock-1";
  require_ok(*db, finals({failed, completed}));
  // The priority comes from the request's row (make_request's default 5, and 8).
  CHECK(result_columns(*db, dir, "a") == "failed|openai|gpt-x|TIMEOUT|corr-a|run-1|cj-9|5");
  CHECK(result_columns(*db, dir, "b") == "completed|mock|mock-1|-||-|-|8");
}

TEST_CASE("store answers how far a batch is from the columns alone", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  require_ok(*db,
             inserts({request_with_ids("q1", "run-1", "7"), request_with_ids("q2", "run-1", "7"),
                      request_with_ids("q3", "run-1", "7"), request_with_ids("q4", "run-1", "7"),
                      request_with_ids("other", "run-2", "8")}));
  lps::store_write dispatch;
  dispatch.dispatched = {"q2", "q3", "q4", "other"};
  require_ok(*db, std::move(dispatch));
  auto done = result_in_run("q3", "run-1");
  done.cj_batch_id = "7";
  auto failed = result_in_run("q4", "run-1");
  failed.status = "failed";
  failed.cj_batch_id = "7";
  require_ok(*db, finals({done, failed}));
  // One request queued, one processing, one completed, one failed; run-2's are not counted.
  for (auto column : {"bos_batch_id = 'run-1'", "cj_batch_id = '7'"}) {
    INFO(column);
    auto where = std::string{column};
    auto status = " AND " + lps::test::request_status_sql();
    CHECK(count_of(*db, dir, "requests", where + status + " = 'queued'") == "1");
    CHECK(count_of(*db, dir, "requests", where + status + " = 'processing'") == "1");
    CHECK(count_of(*db, dir, "results", where + " AND status = 'completed'") == "1");
    CHECK(count_of(*db, dir, "results", where + " AND status = 'failed'") == "1");
  }
}

TEST_CASE("store serves the batch queries and result pages from indexes", "[store][sqlite]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  auto plan = [&](const std::string& sql) { return query_plan(db->path(), sql); };
  // docs/operations.md's query: by `dispatched`, which the index holds (not `status`, which
  // SQLite computes from the row).
  for (auto [column, index] : {std::pair{"bos_batch_id", "requests_bos_batch_dispatched"},
                               {"cj_batch_id", "requests_cj_batch_dispatched"}}) {
    auto sql = std::string{"SELECT CASE dispatched WHEN 0 THEN 'queued' ELSE 'processing' END, "
                           "count(*) FROM requests WHERE "}
               + column + " = 'x' GROUP BY dispatched";
    CHECK_THAT(plan(sql), Catch::Contains(std::string{"USING COVERING INDEX "} + index));
  }
  CHECK_THAT(plan("SELECT status, count(*) FROM results WHERE cj_batch_id = 'x' GROUP BY status"),
             Catch::Contains("USING COVERING INDEX results_cj_batch_status"));
  // The run result pages (GET /api/v1/results?bos_batch_id=) read in the index's order.
  auto pages = plan("SELECT queue_id FROM results WHERE bos_batch_id = 'x' AND "
                    "(completed_at_ms, queue_id) > (0, '') ORDER BY completed_at_ms, queue_id "
                    "LIMIT 10");
  CHECK_THAT(pages, Catch::Contains("USING INDEX results_bos_batch_completed"));
}

TEST_CASE("store migrates a version 5 database: old rows get defaults, new rows their columns",
          "[store][sqlite]") {
  temp_dir dir;
  fs::path file;
  {
    auto db = open_store(options_for(dir));
    file = db->path();
  }
  // The version 5 tables as they were (version 4's columns and indexes), one row in each.
  REQUIRE(exec_raw(file,
                   "DROP TABLE requests; DROP TABLE results;"
                   "CREATE TABLE requests(queue_id TEXT PRIMARY KEY NOT NULL, priority INTEGER NOT "
                   "NULL, queued_at_ms INTEGER NOT NULL, size_bytes INTEGER NOT NULL, attempts "
                   "INTEGER NOT NULL, payload BLOB NOT NULL, texts BLOB NOT NULL DEFAULT x'', "
                   "provider TEXT NOT NULL DEFAULT '', bos_batch_id TEXT);"
                   "CREATE TABLE results(queue_id TEXT PRIMARY KEY NOT NULL, status TEXT NOT NULL, "
                   "event_json TEXT NOT NULL, callback_url TEXT NOT NULL, delivered INTEGER NOT "
                   "NULL, completed_at_ms INTEGER NOT NULL, delivery_failed_at_ms INTEGER NOT "
                   "NULL DEFAULT 0, delivery_attempts INTEGER NOT NULL DEFAULT 0, "
                   "last_delivery_error TEXT NOT NULL DEFAULT '', bos_batch_id TEXT);"
                   "CREATE INDEX requests_bos_batch ON requests(bos_batch_id) "
                   "WHERE bos_batch_id IS NOT NULL;"
                   "CREATE INDEX results_bos_batch ON results(bos_batch_id) "
                   "WHERE bos_batch_id IS NOT NULL;"
                   "CREATE INDEX requests_schedule ON requests(priority DESC, queued_at_ms, "
                   "queue_id, size_bytes, attempts, provider);"
                   "INSERT INTO requests VALUES('old', 5, 1, 3, 2, x'01', x'02', 'mock', 'run-1');"
                   "INSERT INTO results VALUES('old-final', 'completed', '{}', '', 1, 7, 0, 0, '', "
                   "'run-1');"
                   "PRAGMA user_version = 5;"));
  auto db = open_store(options_for(dir));
  CHECK(query_text(file, "PRAGMA user_version") == schema_version);
  CHECK(query_text(file, "SELECT group_concat(name) FROM (SELECT name FROM sqlite_master WHERE "
                         "type = 'index' AND name LIKE '%batch%' ORDER BY name)")
        == "requests_bos_batch_dispatched,requests_cj_batch_dispatched,"
           "results_bos_batch_completed,results_cj_batch_status");
  // The old rows keep their data; what only their payload held is left empty.
  CHECK(request_columns(*db, dir, "old") == "mock|||run-1|-|queued|2");
  CHECK(result_columns(*db, dir, "old-final") == "completed|||-||run-1|-|-");
  CHECK(ids_of(active_index(*db)) == std::vector<std::string>{"old"});
  CHECK(db->load_run("run-1").finals == 1);
  // New rows fill every column.
  require_ok(*db, inserts({request_with_ids("new", "run-1", "3")}));
  CHECK(request_columns(*db, dir, "new") == "anthropic|claude-x|corr-new|run-1|3|queued|0");
}

TEST_CASE("store opens reader connections of their own that see every commit", "[store]") {
  temp_dir dir;
  auto db = open_store(options_for(dir));
  std::string error;
  auto first = db->open_reader(error);
  auto second = db->open_reader(error);
  INFO("open_reader error: " << error);
  REQUIRE(first != nullptr);
  REQUIRE(second != nullptr);
  // Opened before the writes: a reader is a connection, not a snapshot taken at open.
  auto texts = make_request("held");
  texts.texts = "the texts";
  texts.bos_batch_id = "run-1";
  require_ok(*db, inserts({texts, make_request("done")}));
  auto result = make_result("done");
  result.bos_batch_id = "run-1";
  require_ok(*db, finals({result}));
  lps::store_write keys;
  keys.idempotency_keys = {{"key-1", "held"}};
  require_ok(*db, keys);

  // Both connections answer alone, one after the other, from a thread each.
  std::optional<lps::stored_result> found;
  std::optional<std::string> key;
  std::vector<lps::stored_request> rows;
  lps::run_rows run;
  std::thread([&] {
    found = first->find_result("done");
    key = first->find_idempotency_key("key-1");
  }).join();
  std::thread([&] {
    rows = second->load_rows({"held", "gone"});
    run = second->load_run("run-1");
  }).join();
  REQUIRE(found);
  CHECK(found->status == "completed");
  CHECK(key == std::optional<std::string>{"held"});
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].texts == "the texts");
  CHECK(run.active == std::vector<std::string>{"held"});
  CHECK(run.finals == 1);
  CHECK(first->summarize_run("run-1", 0).has_value());
  CHECK(second->summarize_runs(0, 10).size() == 1);
  CHECK(ids_of(first->load_run_results("run-1", std::nullopt, 10))
        == std::vector<std::string>{"done"});
}
