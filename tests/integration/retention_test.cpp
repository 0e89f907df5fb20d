// Retention through the binary: lps started on a DATA_DIR holding old results purges the
// delivered ones in the background and keeps recent and undelivered ones.

#include "fixtures/sqlite_probe.hpp"
#include "fixtures/temp_dir.hpp"
#include "integration/lps_process.hpp"
#include "runtime/store.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

namespace {

constexpr int64_t day_ms = 86'400'000;

int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

lps::stored_result result_aged(const std::string& id, int64_t age_ms,
                               const std::string& callback_url = "") {
  return {id, "completed", R"({"event_type":"LLMComparisonResultV1"})", callback_url, false,
          unix_now_ms() - age_ms};
}

// Writes the rows an earlier run would have left behind.
void seed_store(const std::string& data_dir) {
  std::string error;
  auto db = lps::store::open({.data_dir = data_dir, .fsync_every_commit = false}, error);
  REQUIRE(db);
  lps::store_write write;
  for (int i = 0; i < 1200; ++i) // more than two purge steps
    write.finals.push_back(result_aged("old-" + std::to_string(i), 31 * day_ms));
  write.finals.push_back(result_aged("old-waiting", 31 * day_ms, "http://127.0.0.1:9/cb"));
  write.finals.push_back(result_aged("recent", day_ms));
  bool ok = false;
  db->submit(std::move(write), [&](bool committed, const std::string&) { ok = committed; });
  db->flush();
  REQUIRE(ok);
}

std::string count_results(const std::filesystem::path& db) {
  return lps::test::query_text(db, "SELECT count(*) FROM results");
}

} // namespace

TEST_CASE("lps purges delivered results older than RESULT_RETENTION_DAYS at start") {
  lps::test::temp_dir dir;
  auto data_dir = (dir.path() / "var").string();
  seed_store(data_dir);
  auto db_path = dir.path() / "var" / "lps.db";
  REQUIRE(count_results(db_path) == "1202");

  // The callback receiver on port 9 refuses: "old-waiting" stays undelivered.
  lps::test::lps_process lps(data_dir, {"--result-retention-days=30", "--callback-max-attempts=1"});
  REQUIRE(lps.port() != 0);
  // The first pass runs right after start, in the background: wait for it (bounded).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (count_results(db_path) != "2" && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(count_results(db_path) == "2");
  CHECK(lps.stop() == 0);
  CHECK(lps::test::query_text(db_path, "SELECT group_concat(queue_id) FROM "
                                       "(SELECT queue_id FROM results ORDER BY queue_id)")
        == "old-waiting,recent");
}
