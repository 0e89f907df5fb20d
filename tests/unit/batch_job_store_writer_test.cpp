// The batch job store writer: writes run off the caller's thread, one at a time in the order
// given, and each callback runs once its write is in the store. Catch2 assertions are not
// thread-safe, so callbacks only record what they saw; the test thread checks it after
// flush(), which blocks until the writes queued so far are done (no sleeps).

#include "fixtures/temp_dir.hpp"
#include "runtime/batch_job_store.hpp"
#include "runtime/batch_job_store_writer.hpp"

#include <catch2/catch.hpp>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace lps;

namespace {

batch_job_record job(const std::string& id, const std::string& state) {
  batch_job_record rec;
  rec.job_id = id;
  rec.provider = "openai";
  rec.model = "gpt-4o-mini";
  rec.state = state;
  rec.created_at_ms = 1;
  return rec;
}

/// What the callbacks saw, in the order they ran.
struct seen {
  std::mutex mtx;
  std::vector<std::string> events;
  std::vector<std::thread::id> threads;
  void add(std::string event) {
    std::lock_guard lock(mtx);
    events.push_back(std::move(event));
    threads.push_back(std::this_thread::get_id());
  }
};

} // namespace

TEST_CASE("the writer runs writes in order on its own thread, each callback after its write") {
  test::temp_dir dir;
  std::string error;
  auto db = batch_job_store::open({dir.str(), false}, error);
  REQUIRE(db);
  seen log;
  batch_job_store_writer writer{*db};
  // Each callback reads the store: what it sees must already include its own write.
  writer.create(job("bj-1", "created"), {"q1", "q2"}, [&](bool ok, const std::string&) {
    log.add(std::string{"create "} + (ok ? "ok " : "failed ") + db->find("bj-1")->state);
  });
  writer.update(job("bj-1", "submitted"), [&](bool ok, const std::string&) {
    log.add(std::string{"update "} + (ok ? "ok " : "failed ") + db->find("bj-1")->state);
  });
  writer.finish(job("bj-1", "collected"), [&](bool ok, const std::string&) {
    log.add(std::string{"finish "} + (ok ? "ok " : "failed ")
            + std::to_string(db->load_owned_items().size()));
  });
  writer.update(job("bj-unknown", "submitted"), [&](bool ok, const std::string& why) {
    log.add(std::string{"unknown "} + (ok ? "ok" : "failed: " + why));
  });
  writer.flush();
  std::lock_guard lock(log.mtx);
  CHECK(log.events
        == std::vector<std::string>{"create ok created", "update ok submitted", "finish ok 0",
                                    "unknown failed: unknown batch job 'bj-unknown'"});
  for (auto id : log.threads)
    CHECK(id != std::this_thread::get_id());
}

TEST_CASE("the writer finishes queued writes before it goes away") {
  test::temp_dir dir;
  std::string error;
  auto db = batch_job_store::open({dir.str(), false}, error);
  REQUIRE(db);
  int done = 0; // written by the writer's thread, read after its join
  {
    batch_job_store_writer writer{*db};
    for (int i = 0; i < 50; ++i)
      writer.create(job("bj-" + std::to_string(i), "created"), {"q" + std::to_string(i)},
                    [&](bool ok, const std::string&) { done += ok ? 1 : 0; });
  }
  CHECK(done == 50);
  CHECK(db->list(100).size() == 50);
}

TEST_CASE("on the caller's thread the writer writes and calls back at once") {
  test::temp_dir dir;
  std::string error;
  auto db = batch_job_store::open({dir.str(), false}, error);
  REQUIRE(db);
  seen log;
  batch_job_store_writer writer{*db, batch_job_store_writer::mode::caller_thread};
  writer.create(job("bj-1", "created"), {"q1"},
                [&](bool ok, const std::string&) { log.add(ok ? "ok" : "failed"); });
  std::lock_guard lock(log.mtx);
  REQUIRE(log.events == std::vector<std::string>{"ok"});
  CHECK(log.threads.front() == std::this_thread::get_id());
  CHECK(db->find("bj-1"));
}
