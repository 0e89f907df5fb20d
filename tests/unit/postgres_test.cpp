// PostgreSQL connections and schema migrations against a real PostgreSQL 15 server, started
// for the test run by tools/pg.sh (the ctest fixture "postgres"). Each case works in a
// database of its own, so cases never see each other's tables.

#include "fixtures/shell_output.hpp"
#include "runtime/pg_schema.hpp"
#include "runtime/pg_store.hpp"
#include "runtime/postgres.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <cstdio>
#include <functional>
#include <future>
#include <memory>
#include <stdexcept>
#include <thread>

using namespace lps;

namespace {

using lps::test::output_of;

/// The URL of the test server's `lps` database.
std::string server_url() {
  static const std::string url =
      output_of("bash " LPS_SOURCE_DIR "/tools/pg.sh url " LPS_PG_DIR " 2>&1");
  return url;
}

/// `url` pointing at database `name` instead of `lps`.
std::string url_of_database(const std::string& name) {
  auto url = server_url();
  return url.substr(0, url.rfind('/') + 1) + name;
}

std::unique_ptr<pg::connection> connect(const std::string& url) {
  std::string error;
  auto db = pg::connection::open(url, std::chrono::seconds{5}, error);
  INFO(error);
  REQUIRE(db != nullptr);
  return db;
}

/// A fresh, empty database for one test case, dropped at the end.
struct scratch_database {
  std::string name;
  std::string url;

  scratch_database() {
    static std::atomic<int> counter{0};
    name = "lps_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    auto admin = connect(server_url());
    admin->exec("DROP DATABASE IF EXISTS " + name);
    auto r = admin->exec("CREATE DATABASE " + name);
    INFO(r.error);
    REQUIRE(r.ok);
    url = url_of_database(name);
  }
  ~scratch_database() {
    std::string error;
    if (auto admin = pg::connection::open(server_url(), std::chrono::seconds{5}, error))
      admin->exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  }
};

std::string password_of(const std::string& url) {
  auto colon = url.find(':', url.find("://") + 3);
  return url.substr(colon + 1, url.find('@') - colon - 1);
}

int64_t count_of(pg::connection& db, const std::string& sql) {
  auto r = db.exec(sql);
  INFO(r.error);
  REQUIRE(r.ok);
  return std::stoll(*r.rows.at(0).at(0));
}

} // namespace

TEST_CASE("POSTGRES_URL: the password is masked and bad URLs are named without it") {
  CHECK(pg::masked_url("postgresql://lps:s3cret@db.example:5432/lps")
        == "postgresql://lps:***@db.example:5432/lps");
  CHECK(pg::masked_url("postgres://lps:s3cret@h/lps?sslmode=require&password=other")
        == "postgres://lps:***@h/lps?sslmode=require&password=***");
  CHECK(pg::masked_url("postgresql://lps@h/lps") == "postgresql://lps@h/lps");
  CHECK(pg::masked_url("host=h password=s3cret") == "***");
  CHECK(pg::check_url("postgresql://lps:s3cret@127.0.0.1:5432/lps").empty());
  CHECK(pg::check_url("").find("is empty") != std::string::npos);
  CHECK(pg::check_url("mysql://lps:s3cret@h/db").find("postgresql://") != std::string::npos);
  auto bad = pg::check_url("postgresql://lps:s3cret@h/lps?nosuchoption=1");
  CHECK(!bad.empty());
  CHECK(bad.find("s3cret") == std::string::npos);
}

TEST_CASE("a connection runs statements with parameters and NULLs against the server") {
  auto db = connect(server_url());
  CHECK(db->healthy());
  CHECK(db->server_version() >= 150000);
  auto r = db->exec("SELECT $1::int + 1, $2::text IS NULL", {std::string{"41"}, std::nullopt});
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(*r.rows.at(0).at(0) == "42");
  CHECK(*r.rows.at(0).at(1) == "t");
  auto bad = db->exec("SELECT * FROM no_such_table");
  CHECK(!bad.ok);
  CHECK(bad.sqlstate == "42P01"); // undefined_table
}

TEST_CASE("a session left idle inside a transaction is ended by the server, releasing its locks") {
  auto db = connect(server_url());
  auto shown = db->exec("SHOW idle_in_transaction_session_timeout");
  REQUIRE(shown.ok);
  CHECK(*shown.rows.at(0).at(0) == "2s");
  REQUIRE(db->exec("BEGIN").ok);
  REQUIRE(db->exec("SELECT 1").ok);
  std::this_thread::sleep_for(std::chrono::milliseconds{2500});
  CHECK(!db->exec("SELECT 1").ok); // the server ended the session
}

TEST_CASE("prepared statements take binary parameters and bytea reads back byte for byte") {
  auto db = connect(server_url());
  const char raw[] = "\0\x01\xff\\x payload \0 end";
  std::string bytes(raw, sizeof raw - 1);
  REQUIRE(db->prepare("echo", "SELECT $1::bytea, $2::text || '!', $3::text IS NULL").empty());
  auto r = db->exec_prepared("echo", {{bytes, true}, {std::string{"text"}}, {std::nullopt}});
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(pg::decode_bytea(*r.rows.at(0).at(0)) == bytes);
  CHECK(*r.rows.at(0).at(1) == "text!");
  CHECK(*r.rows.at(0).at(2) == "t");
  CHECK(pg::decode_bytea("\\x") == "");
  CHECK_FALSE(db->prepare("broken", "SELECT FROM WHERE").empty());
}

TEST_CASE("pipelined statements answer in order and stop at the first failure") {
  auto db = connect(server_url());
  REQUIRE(db->prepare("div", "SELECT 12 / $1::int").empty());
  auto ok = db->exec_pipelined({{"div", {{"1"}}}, {"div", {{"3"}}}, {"div", {{"4"}}}});
  REQUIRE(ok.size() == 3);
  for (const auto& r : ok)
    REQUIRE(r.ok);
  CHECK(*ok[0].rows.at(0).at(0) == "12");
  CHECK(*ok[1].rows.at(0).at(0) == "4");
  CHECK(*ok[2].rows.at(0).at(0) == "3");

  auto failed = db->exec_pipelined({{"div", {{"2"}}}, {"div", {{"0"}}}, {"div", {{"6"}}}});
  REQUIRE(failed.size() == 3);
  CHECK(failed[0].ok);
  CHECK_FALSE(failed[1].ok);
  CHECK(failed[1].sqlstate == "22012"); // division_by_zero
  CHECK_FALSE(failed[2].ok);
  CHECK(failed[2].error == "not run: an earlier statement failed");
  auto next = db->exec("SELECT 7");
  REQUIRE(next.ok);
  CHECK(*next.rows.at(0).at(0) == "7");
}

TEST_CASE("fetch_in_chunks hands over every row across chunks and leaves the connection usable") {
  auto db = connect(server_url());
  auto open_cursors = [&] {
    return count_of(*db, "SELECT count(*) FROM pg_cursors WHERE name = 'lps_chunks'");
  };
  for (size_t chunk : {size_t{2}, size_t{5}, size_t{1000}}) {
    std::vector<std::string> seen;
    auto r = db->fetch_in_chunks("SELECT g::text, NULL::text FROM generate_series(1, 5) AS g",
                                 chunk, [&](const pg::row_ref& row) {
                                   CHECK(row.is_null(1));
                                   CHECK_FALSE(row.is_null(0));
                                   seen.emplace_back(row.text(0));
                                 });
    INFO("rows per chunk " << chunk << ": " << r.error);
    REQUIRE(r.ok);
    CHECK(r.rows.empty());
    CHECK(seen == std::vector<std::string>{"1", "2", "3", "4", "5"});
    CHECK(open_cursors() == 0); // committed: the transaction and its cursor are gone
  }

  // Row 3 fails in the second chunk: the first chunk's rows were handed over.
  std::vector<std::string> before_failure;
  auto failing = db->fetch_in_chunks(
      "SELECT (1 / (3 - g))::text FROM generate_series(1, 5) AS g", 2,
      [&](const pg::row_ref& row) { before_failure.emplace_back(row.text(0)); });
  CHECK_FALSE(failing.ok);
  CHECK(failing.sqlstate == "22012"); // division_by_zero
  CHECK(before_failure == std::vector<std::string>{"0", "1"});
  CHECK(open_cursors() == 0);

  int visits = 0;
  CHECK_THROWS_WITH(db->fetch_in_chunks("SELECT generate_series(1, 100)", 10,
                                        [&](const pg::row_ref&) {
                                          ++visits;
                                          throw std::runtime_error("stop here");
                                        }),
                    "stop here");
  CHECK(visits == 1);
  // The transaction was rolled back, so the next statement works outside it.
  CHECK(open_cursors() == 0);
  auto next = db->exec("SELECT 7");
  REQUIRE(next.ok);
  CHECK(*next.rows.at(0).at(0) == "7");
}

TEST_CASE("a wrong password or an unreachable server refuses with a reason, never the password") {
  auto url = server_url();
  auto password = password_of(url);
  REQUIRE(password.size() >= 16);
  auto wrong = url;
  wrong.replace(wrong.find(password), password.size(), "not-the-password-x9");
  std::string error;
  CHECK(pg::connection::open(wrong, std::chrono::seconds{5}, error) == nullptr);
  CHECK(error.find("password authentication failed") != std::string::npos);
  CHECK(error.find("not-the-password-x9") == std::string::npos);
  // Port 9 (discard) on loopback: nothing listens there.
  error.clear();
  auto start = std::chrono::steady_clock::now();
  CHECK(pg::connection::open("postgresql://lps:s3cret-y7@127.0.0.1:9/lps", std::chrono::seconds{2},
                             error)
        == nullptr);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds{10});
  CHECK(error.find("cannot connect to postgresql://lps:***@127.0.0.1:9/lps") != std::string::npos);
  CHECK(error.find("s3cret-y7") == std::string::npos);
}

TEST_CASE("migrate creates the schema on an empty database once and then changes nothing") {
  scratch_database scratch;
  auto db = connect(scratch.url);
  auto before = pg::read_schema_version(*db);
  INFO(before.error);
  CHECK(before.error.empty());
  CHECK(before.before == 0);
  auto first = pg::migrate(*db);
  INFO(first.error);
  REQUIRE(first.error.empty());
  CHECK(first.before == 0);
  CHECK(first.after == pg::binary_schema_version());
  for (const auto* table :
       {"requests", "results", "idempotency_keys", "batch_jobs", "batch_job_items"})
    CHECK(count_of(*db, std::string{"SELECT count(*) FROM information_schema.tables WHERE "
                                    "table_name = '"}
                            + table + "'")
          == 1);
  auto second = pg::migrate(*db);
  CHECK(second.error.empty());
  CHECK(second.before == pg::binary_schema_version());
  CHECK(second.after == pg::binary_schema_version());
  CHECK(count_of(*db, "SELECT count(*) FROM lps_schema_migrations")
        == static_cast<int64_t>(pg::migrations().size()));
}

TEST_CASE("nodes migrating at the same moment apply every migration exactly once") {
  scratch_database scratch;
  constexpr int nodes = 4;
  std::vector<pg::schema_report> reports(nodes);
  std::vector<std::thread> threads;
  for (int i = 0; i < nodes; ++i)
    threads.emplace_back([&, i] {
      std::string error;
      auto db = pg::connection::open(scratch.url, std::chrono::seconds{5}, error);
      reports[i].error = error;
      if (db)
        reports[i] = pg::migrate(*db);
    });
  for (auto& t : threads)
    t.join();
  int applied = 0;
  for (const auto& r : reports) {
    INFO(r.error);
    CHECK(r.error.empty());
    CHECK(r.after == pg::binary_schema_version());
    applied += r.before == 0 ? 1 : 0;
  }
  CHECK(applied == 1); // the others waited on the lock and found the schema in place
  auto db = connect(scratch.url);
  CHECK(count_of(*db, "SELECT count(*) FROM lps_schema_migrations")
        == static_cast<int64_t>(pg::migrations().size()));
}

TEST_CASE("a database with a newer schema than the binary is refused and left alone") {
  scratch_database scratch;
  auto db = connect(scratch.url);
  REQUIRE(pg::migrate(*db).error.empty());
  auto newer = pg::binary_schema_version() + 1;
  REQUIRE(db->exec("INSERT INTO lps_schema_migrations(version, description) VALUES($1, 'future')",
                   {std::to_string(newer)})
              .ok);
  auto check = pg::read_schema_version(*db);
  CHECK(check.before == newer);
  CHECK(check.error.find("newer than this lps knows") != std::string::npos);
  auto refused = pg::migrate(*db);
  CHECK(refused.error.find("newer than this lps knows") != std::string::npos);
  CHECK(refused.after == newer);
  CHECK(count_of(*db, "SELECT max(version) FROM lps_schema_migrations") == newer);
}

TEST_CASE("a second final result for a request is a no-op, never a second row") {
  scratch_database scratch;
  auto db = connect(scratch.url);
  REQUIRE(pg::migrate(*db).error.empty());
  auto insert = [&](const std::string& status) {
    return db->exec("INSERT INTO results(queue_id, status, provider, model, correlation_id, "
                    "priority, queued_at, completed_at, event_json) VALUES('q1', $1, 'mock', "
                    "'m', 'c1', 5, now(), now(), '{}') ON CONFLICT (queue_id) DO NOTHING",
                    {status});
  };
  auto first = insert("completed");
  REQUIRE(first.ok);
  CHECK(first.affected == 1);
  auto second = insert("failed");
  REQUIRE(second.ok);
  CHECK(second.affected == 0);
  auto r = db->exec("SELECT status FROM results WHERE queue_id = 'q1'");
  REQUIRE(r.rows.size() == 1);
  CHECK(*r.rows[0][0] == "completed");
  auto bad_status = db->exec("INSERT INTO results(queue_id, status, provider, model, "
                             "correlation_id, priority, queued_at, completed_at, event_json) "
                             "VALUES('q2', 'queued', 'mock', 'm', 'c', 5, now(), now(), '{}')");
  CHECK(!bad_status.ok);
  CHECK(bad_status.sqlstate == "23514"); // check_violation: a result is always final
}

// The store's writes and reads after the server dropped its sessions (a restart, an
// operator's pg_terminate_backend): the submission caught by it fails (no 202 was given), a
// write of an accepted request waits for the reconnect, nothing after it fails.
TEST_CASE("the PostgreSQL store reconnects after the server dropped its connections") {
  scratch_database scratch;
  std::string error;
  auto db = open_postgres_store(scratch.url, {}, error);
  INFO(error);
  REQUIRE(db != nullptr);
  auto write_one = [&](const std::string& id) {
    store_write write;
    write.inserts.push_back({id, 5, 1, 2, 0, "payload", "texts", "mock"});
    std::atomic<int> oks{0};
    db->submit(std::move(write), [&](bool ok, const std::string&) { oks += ok ? 1 : 0; });
    db->flush();
    return oks.load() == 1;
  };
  REQUIRE(write_one("before"));
  REQUIRE(db->count_active_requests() == 1);

  auto admin = connect(server_url());
  auto killed = admin->exec("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = $1 AND application_name = 'lps'",
                            {scratch.name});
  REQUIRE(killed.ok);
  REQUIRE(*killed.rows.at(0).at(0) == "2"); // the writer's and the reader's

  CHECK_FALSE(write_one("caught")); // its connection was gone when it ran
  std::promise<bool> delivered;
  store_write mark;
  mark.delivered = {"before"};
  db->submit(std::move(mark), [&](bool ok, const std::string&) { delivered.set_value(ok); });
  CHECK(delivered.get_future().get());
  auto health = db->health();
  CHECK(health.available);
  CHECK(health.reconnects == 1);
  CHECK(health.last_error.find(scratch.name) != std::string::npos);
  CHECK(health.last_error.find(password_of(server_url())) == std::string::npos);
  CHECK(write_one("after"));
  db->count_active_requests(); // may fail likewise, and reconnect
  auto rows = db->load_rows({"before", "after"});
  REQUIRE(rows.size() == 2);
  CHECK(rows[1].texts == "texts");
  CHECK(db->stats().failed_commits <= 1);
}

namespace {

/// Polls `sql` (one boolean) on `admin` every 10 ms for up to 10 s.
bool becomes_true(pg::connection& admin, const std::string& sql,
                  const std::vector<std::optional<std::string>>& params) {
  for (int i = 0; i < 1000; ++i) {
    auto r = admin.exec(sql, params);
    if (r.ok && !r.rows.empty() && r.rows[0][0] == std::optional<std::string>{"t"})
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return false;
}

} // namespace

// A server that goes away after the first connect (here: the store's session is terminated
// while its migration waits for the lock another node holds) is waited for, not a refusal.
TEST_CASE("the PostgreSQL store retries its migrations when the connection is lost at start") {
  scratch_database scratch;
  auto admin = connect(scratch.url);
  REQUIRE(admin->exec("BEGIN").ok);
  REQUIRE(admin->exec("SELECT pg_advisory_xact_lock(7081835, 1)").ok); // pg_schema.cpp's lock
  std::string error;
  std::unique_ptr<store> db;
  std::thread opener([&] { db = open_postgres_store(scratch.url, {}, error); });
  auto observer = connect(server_url());
  const std::string waiting = "SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = $1 AND "
                              "application_name = 'lps' AND wait_event_type = 'Lock'";
  auto kill_waiting = "SELECT count(pg_terminate_backend(pid)) = 1 FROM pg_stat_activity WHERE "
                      "datname = $1 AND application_name = 'lps' AND wait_event_type = 'Lock'";
  bool first_wait = becomes_true(*observer, waiting, {scratch.name});
  bool killed = first_wait && becomes_true(*observer, kill_waiting, {scratch.name});
  bool second_wait = killed && becomes_true(*observer, waiting, {scratch.name}); // the retry
  admin->exec("COMMIT");
  opener.join();
  CHECK(first_wait);
  CHECK(killed);
  CHECK(second_wait);
  INFO(error);
  REQUIRE(db != nullptr);
  store_write write;
  write.inserts.push_back({"q1", 5, 1, 2, 0, "payload", "texts", "mock"});
  std::promise<bool> committed;
  db->submit(std::move(write), [&](bool ok, const std::string&) { committed.set_value(ok); });
  CHECK(committed.get_future().get());
}

// The scan of active requests at start goes on after its connection was lost, from the row
// it had reached: every request once, in order.
TEST_CASE("the recovery scan of active requests resumes after its connection was lost") {
  scratch_database scratch;
  std::string error;
  auto db = open_postgres_store(scratch.url, {}, error);
  INFO(error);
  REQUIRE(db != nullptr);
  constexpr int requests = 20000; // more rows than the socket holds at once
  store_write write;
  for (int i = 0; i < requests; ++i)
    write.inserts.push_back({"q" + std::to_string(100000 + i), 5, i, 2, 0, "p", "t", "mock"});
  db->submit(std::move(write), [](bool, const std::string&) {});
  db->flush();
  REQUIRE(db->count_active_requests() == requests);

  auto admin = connect(server_url());
  std::vector<std::string> ids;
  bool killed = false;
  db->load_active_index([&](stored_request&& row) {
    ids.push_back(row.queue_id);
    if (ids.size() == 100) // the reader: the session of this database running the scan
      killed = *admin
                    ->exec("SELECT count(pg_terminate_backend(pid)) = 1 FROM pg_stat_activity "
                           "WHERE datname = $1 AND query LIKE 'FETCH FORWARD % FROM lps_chunks'",
                           {scratch.name})
                    .rows.at(0)
                    .at(0)
               == "t";
  });
  CHECK(killed);
  REQUIRE(ids.size() == static_cast<size_t>(requests));
  for (int i = 0; i < requests; ++i)
    if (ids[i] != "q" + std::to_string(100000 + i))
      FAIL("row " << i << " is " << ids[i]);
}

// Schema version 6: the recovery scan reads the index in its order, without a sort, and once
// VACUUM has marked the pages all-visible, without reading the table (whose rows hold the
// payloads). Planned as the store runs it: through a cursor.
TEST_CASE("the recovery scan is an index-only scan of requests_recovery without a sort") {
  scratch_database scratch;
  std::string error;
  auto db = open_postgres_store(scratch.url, {}, error);
  INFO(error);
  REQUIRE(db != nullptr);
  store_write write;
  for (int i = 0; i < 5000; ++i)
    write.inserts.push_back(
        {"q" + std::to_string(i), i % 7, 1000 - i % 100, 2, 0, "p", "t", "mock"});
  db->submit(std::move(write), [](bool, const std::string&) {});
  db->flush();
  auto admin = connect(scratch.url);
  REQUIRE(admin->exec("VACUUM (ANALYZE) requests").ok);
  REQUIRE(admin->exec("BEGIN").ok);
  auto plan = admin->exec("EXPLAIN DECLARE c NO SCROLL CURSOR FOR " + pg_recovery_scan_sql());
  admin->exec("ROLLBACK");
  INFO(plan.error);
  REQUIRE(plan.ok);
  std::string text;
  for (const auto& row : plan.rows)
    text += row.at(0).value_or("") + "\n";
  INFO(text);
  CHECK(text.find("Index Only Scan using requests_recovery") != std::string::npos);
  CHECK(text.find("Sort") == std::string::npos);

  // The order is the scan's: priority high first, then oldest, then insertion order.
  std::vector<stored_request> rows;
  db->load_active_index([&](stored_request&& row) { rows.push_back(std::move(row)); });
  REQUIRE(rows.size() == 5000);
  for (size_t i = 1; i < rows.size(); ++i) {
    const auto& a = rows[i - 1];
    const auto& b = rows[i];
    auto in_order =
        a.priority > b.priority || (a.priority == b.priority && a.queued_at_ms <= b.queued_at_ms);
    if (!in_order)
      FAIL("row " << i << " (" << b.queue_id << ") comes after " << a.queue_id);
  }
  CHECK(rows.front().provider == "mock");
  CHECK(rows.front().size_bytes == 2);
}

namespace {

// `column` (an expression) of each row of `table`, in queue id order.
std::vector<std::string> column_of(pg::connection& db, const std::string& column,
                                   const std::string& table) {
  auto r = db.exec("SELECT " + column + " FROM " + table + " ORDER BY queue_id");
  INFO(r.error);
  REQUIRE(r.ok);
  std::vector<std::string> out;
  for (const auto& row : r.rows)
    out.push_back(row.at(0).value_or(""));
  return out;
}

// Each row of `table` as "queue_id xmin ctid": a row written again (an update, HOT or not)
// gets a new version with another xmin.
std::vector<std::string> row_versions(pg::connection& db, const std::string& table) {
  return column_of(db, "queue_id || ' ' || xmin::text || ' ' || ctid::text", table);
}

std::vector<std::string> ids_in(pg::connection& db, const std::string& table) {
  return column_of(db, "queue_id", table);
}

void write_and_flush(store& db, store_write write) {
  bool ok = false;
  std::string error;
  db.submit(std::move(write), [&](bool done, const std::string& why) {
    ok = done;
    error = why;
  });
  db.flush();
  INFO(error);
  REQUIRE(ok);
}

// Writes a mark for "a" alone (a per-row statement), then for "b" and "c" (set-based).
void mark_one_then_two(
    store& db, const std::function<void(store_write&, const std::vector<std::string>&)>& mark) {
  for (const auto& ids : {std::vector<std::string>{"a"}, std::vector<std::string>{"b", "c"}}) {
    store_write write;
    mark(write, ids);
    write_and_flush(db, std::move(write));
  }
}

stored_result result_with_callback(const std::string& id) {
  stored_result row;
  row.queue_id = id;
  row.status = "completed";
  row.event_json = "{}";
  row.callback_url = "http://127.0.0.1:9/cb";
  return row;
}

} // namespace

// Schema version 8: the dispatch mark and the delivered mark are rows of requests_processing
// and results_undelivered; neither writes the request's or the result's row again (before,
// each wrote a new version of it with an entry in every index of its table), one row at a
// time (per-row statements) or many (set-based).
TEST_CASE("the dispatch and delivered marks never write the request or result row again") {
  scratch_database scratch;
  std::string error;
  auto db = open_postgres_store(scratch.url, {}, error);
  INFO(error);
  REQUIRE(db != nullptr);
  store_write insert;
  for (auto id : {"a", "b", "c"})
    insert.inserts.push_back({id, 5, 1, 2, 0, "p", "t", "mock"});
  write_and_flush(*db, std::move(insert));
  auto admin = connect(scratch.url);
  auto requests_before = row_versions(*admin, "requests");

  mark_one_then_two(*db, [](store_write& w, const auto& ids) { w.dispatched = ids; });
  CHECK(row_versions(*admin, "requests") == requests_before);
  CHECK(ids_in(*admin, "requests_processing") == std::vector<std::string>{"a", "b", "c"});
  auto rows = db->load_rows({"a", "b"});
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].processing);

  store_write requeue;
  requeue.attempts = {{"c", 1}};
  write_and_flush(*db, std::move(requeue));
  CHECK(ids_in(*admin, "requests_processing") == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(db->load_rows({"c"}).at(0).processing);
  CHECK(db->load_rows({"c"}).at(0).attempts == 1);

  mark_one_then_two(*db, [](store_write& w, const auto& ids) {
    for (const auto& id : ids)
      w.finals.push_back(result_with_callback(id));
  });
  CHECK(ids_in(*admin, "requests_processing").empty());
  CHECK(ids_in(*admin, "results_undelivered") == std::vector<std::string>{"a", "b", "c"});
  auto results_before = row_versions(*admin, "results");

  mark_one_then_two(*db, [](store_write& w, const auto& ids) { w.delivered = ids; });
  CHECK(row_versions(*admin, "results") == results_before);
  CHECK(ids_in(*admin, "results_undelivered").empty());
  CHECK(db->find_result("b")->delivered);
  CHECK(db->load_undelivered_results().empty());
}

// Schema version 7 with work in it, as a stopped lps left it (requests queued and
// processing, one of them held by an unfinished provider batch job; results delivered, owed,
// given up and without a callback), migrated to 8 by the next start: nothing lost, and the
// start-up recovery sees the same work as before.
TEST_CASE("migration 8 keeps a schema 7 database's work and its start-up recovery") {
  scratch_database scratch;
  auto admin = connect(scratch.url);
  auto to_seven = pg::migrate(*admin, 7);
  INFO(to_seven.error);
  REQUIRE(to_seven.error.empty());
  REQUIRE(to_seven.after == 7);
  REQUIRE(admin
              ->exec_script(R"sql(
INSERT INTO requests(queue_id, status, priority, provider, queued_at, size_bytes, payload)
  VALUES ('queued', 'queued', 5, 'mock', now(), 2, '\x01'),
         ('processing', 'processing', 7, 'mock', now(), 2, '\x02'),
         ('in-job', 'processing', 5, 'openai', now(), 2, '\x03');
INSERT INTO batch_jobs(job_id, provider, model, state, provider_job_id, file_id,
  result_locations, provider_status, last_error, cancel_requested, item_count, succeeded,
  failed, created_at_ms, submitted_at_ms, updated_at_ms, ended_at_ms)
  VALUES ('job', 'openai', 'm', 'submitted', 'pj', 'f', '', '', '', false, 1, 0, 0, 1, 1, 1, 0);
INSERT INTO batch_job_items(queue_id, job_id, seq) VALUES ('in-job', 'job', 0);
INSERT INTO results(queue_id, status, provider, priority, queued_at, completed_at, event_json,
  callback_url, delivered, delivery_failed_at)
  VALUES ('owed', 'completed', 'mock', 5, now(), now(), '{"a":1}', 'http://cb/1', false, NULL),
         ('delivered', 'completed', 'mock', 5, now(), now(), '{}', 'http://cb/2', true, NULL),
         ('given-up', 'failed', 'mock', 5, now(), now(), '{}', 'http://cb/3', false, now()),
         ('no-callback', 'completed', 'mock', 5, now(), now(), '{}', '', false, NULL);
)sql")
              .ok);
  // What schema 7's start-up would have recovered: its statements of that version.
  auto processing_before = count_of(*admin, "SELECT count(*) FROM requests WHERE status = "
                                            "'processing' AND queue_id <> 'in-job'");
  REQUIRE(processing_before == 1);

  std::string error;
  auto db = open_postgres_store(scratch.url, {}, error);
  INFO(error);
  REQUIRE(db != nullptr);
  CHECK(pg::read_schema_version(*admin).before == pg::binary_schema_version());
  CHECK(count_of(*admin, "SELECT count(*) FROM information_schema.columns WHERE "
                         "(table_name, column_name) IN (('requests', 'status'), "
                         "('results', 'delivered'))")
        == 0);
  CHECK(ids_in(*admin, "requests_processing") == std::vector<std::string>{"in-job", "processing"});
  CHECK(ids_in(*admin, "results_undelivered")
        == std::vector<std::string>{"given-up", "no-callback", "owed"});

  std::vector<std::string> active;
  db->load_active_index([&](stored_request&& row) { active.push_back(row.queue_id); });
  CHECK(active == std::vector<std::string>{"processing", "queued", "in-job"});
  // Put back to queued at start, except the batch job's item (the job resumes it).
  CHECK(ids_in(*admin, "requests_processing") == std::vector<std::string>{"in-job"});
  auto rows = db->load_rows({"processing", "in-job"});
  REQUIRE(rows.size() == 2);
  CHECK_FALSE(rows[0].processing);
  CHECK(rows[1].processing);
  CHECK(rows[1].payload == "\x03");

  auto owed = db->load_undelivered_results();
  REQUIRE(owed.size() == 1);
  CHECK(owed[0].queue_id == "owed");
  CHECK(owed[0].event_json == R"({"a":1})");
  CHECK(db->find_result("delivered")->delivered);
  CHECK_FALSE(db->find_result("owed")->delivered);
  CHECK_FALSE(db->find_result("no-callback")->delivered);
  auto given_up = db->find_result("given-up");
  CHECK_FALSE(given_up->delivered);
  CHECK(given_up->delivery_failed_at_ms > 0);
  CHECK(db->count_results() == 4);
  CHECK(db->count_active_requests() == 3);

  // A result's undelivered row goes with it (an operator's DELETE included).
  REQUIRE(admin->exec("DELETE FROM results WHERE queue_id = 'no-callback'").ok);
  CHECK(ids_in(*admin, "results_undelivered") == std::vector<std::string>{"given-up", "owed"});
}
