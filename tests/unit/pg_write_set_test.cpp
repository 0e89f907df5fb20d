// The PostgreSQL store's set-based statements (runtime/pg_write_set.hpp): binary array
// parameters read back by a real PostgreSQL 15 server (started for the test run by
// tools/pg.sh, the ctest fixture "postgres"), and which statements a transaction's writes
// become, in which order. What they do to the tables is store_batch_test's part.

#include "fixtures/store_backend.hpp"
#include "runtime/pg_schema.hpp"
#include "runtime/pg_store.hpp"
#include "runtime/pg_write_set.hpp"
#include "runtime/postgres.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdint>
#include <limits>
#include <regex>
#include <optional>
#include <string>
#include <vector>

using namespace lps;
using element = pg::array_param::element;

namespace {

std::unique_ptr<pg::connection> connect() {
  std::string error;
  auto db = pg::connection::open(test::test_server_url(), std::chrono::seconds{5}, error);
  INFO(error);
  REQUIRE(db != nullptr);
  return db;
}

// The elements of `array` as the server reads them, cast to text (nullopt: NULL), in order.
std::vector<std::optional<std::string>> read_back(pg::connection& db, pg::array_param& array,
                                                  const std::string& type) {
  static int statements = 0;
  auto name = "read_back_" + std::to_string(statements++);
  auto why = db.prepare(name, "SELECT e::text FROM unnest($1::" + type
                                  + "[]) WITH ORDINALITY AS u(e, n) ORDER BY n");
  INFO(why);
  REQUIRE(why.empty());
  auto r = db.exec_prepared(name, {array.take()});
  INFO(r.error);
  REQUIRE(r.ok);
  std::vector<std::optional<std::string>> out;
  for (const auto& row : r.rows)
    out.push_back(row[0]);
  return out;
}

// An empty database of its own with the lps schema, dropped at the end.
struct scratch_database {
  std::string name = "lps_write_set_" + std::to_string(::getpid());
  std::unique_ptr<pg::connection> db;

  scratch_database() {
    auto admin = connect();
    admin->exec("DROP DATABASE IF EXISTS " + name);
    REQUIRE(admin->exec("CREATE DATABASE " + name).ok);
    const auto& url = test::test_server_url();
    std::string error;
    db = pg::connection::open(url.substr(0, url.rfind('/') + 1) + name, std::chrono::seconds{5},
                              error);
    INFO(error);
    REQUIRE(db);
    REQUIRE(pg::migrate(*db).error.empty());
  }
  ~scratch_database() {
    db.reset();
    std::string error;
    if (auto admin = pg::connection::open(test::test_server_url(), std::chrono::seconds{5}, error))
      admin->exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  }
};

// The highest $N in `sql`.
int parameters_of(const std::string& sql) {
  int most = 0;
  std::regex placeholder{R"(\$([0-9]+))"};
  for (auto it = std::sregex_iterator(sql.begin(), sql.end(), placeholder);
       it != std::sregex_iterator(); ++it)
    most = std::max(most, std::stoi((*it)[1]));
  return most;
}

std::vector<std::string> names_of(const std::vector<pg::labelled_call>& calls) {
  std::vector<std::string> names;
  for (const auto& c : calls)
    names.push_back(c.call.name);
  return names;
}

stored_request request(const std::string& id) {
  stored_request row;
  row.queue_id = id;
  return row;
}

stored_result result(const std::string& id) {
  stored_result row;
  row.queue_id = id;
  row.status = "completed";
  return row;
}

} // namespace

TEST_CASE("array parameters reach the server unchanged: hostile texts, empty and NULL") {
  auto db = connect();
  const std::vector<std::string> texts{"plain",
                                       R"(a "quoted" word)",
                                       R"(back\slash)",
                                       R"(\")",
                                       "{braces}",
                                       "a,b,c",
                                       "",
                                       "NULL",
                                       "'single'",
                                       "new\nline",
                                       "é ü ✓",
                                       R"({"json":["a","b\"c"]})"};
  pg::array_param array{element::text};
  for (const auto& t : texts)
    array.add(t);
  array.add_null();
  array.add("after the null");
  auto back = read_back(*db, array, "text");
  REQUIRE(back.size() == texts.size() + 2);
  for (size_t i = 0; i < texts.size(); ++i)
    CHECK(back[i] == std::optional<std::string>{texts[i]});
  CHECK_FALSE(back[texts.size()].has_value()); // NULL, not "" and not "NULL"
  CHECK(back.back() == std::optional<std::string>{"after the null"});
  // The builder starts again after take().
  array.add("again");
  CHECK(read_back(*db, array, "text") == std::vector<std::optional<std::string>>{"again"});
}

TEST_CASE("array parameters carry bytes with NULs, 64-bit integers and booleans") {
  auto db = connect();
  constexpr char raw[] = "a\0b\xff\x01\\";
  pg::array_param bytes{element::bytea};
  bytes.add(std::string_view{raw, sizeof raw - 1});
  bytes.add("");
  CHECK(bytes.size() == 2);
  CHECK(read_back(*db, bytes, "bytea")
        == std::vector<std::optional<std::string>>{"\\x610062ff015c", "\\x"});

  pg::array_param numbers{element::int8};
  numbers.add(int64_t{0});
  numbers.add(int64_t{-1});
  numbers.add(std::numeric_limits<int64_t>::max());
  numbers.add(std::numeric_limits<int64_t>::min());
  numbers.add(int64_t{1765123456789});
  CHECK(read_back(*db, numbers, "bigint")
        == std::vector<std::optional<std::string>>{"0", "-1", "9223372036854775807",
                                                   "-9223372036854775808", "1765123456789"});

  pg::array_param flags{element::boolean};
  flags.add_bool(true);
  flags.add_bool(false);
  flags.add_null();
  CHECK(read_back(*db, flags, "boolean")
        == std::vector<std::optional<std::string>>{"true", "false", std::nullopt});

  pg::array_param none{element::text};
  CHECK(read_back(*db, none, "text").empty());
}

TEST_CASE("an array of another element type than the statement's is refused, not misread") {
  auto db = connect();
  REQUIRE(db->prepare("texts", "SELECT cardinality($1::text[])").empty());
  pg::array_param numbers{element::int8};
  numbers.add(int64_t{42});
  auto r = db->exec_prepared("texts", {numbers.take()});
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.error, Catch::Contains("instead of expected"));
}

TEST_CASE("the writes of a transaction become one statement per kind, in a fixed order") {
  pg::write_set set{1500}; // 300 writes of 5 rows: one segment, 300 rows of each kind
  std::vector<store_write> writes(300);
  for (size_t i = 0; i < writes.size(); ++i) {
    auto id = "q" + std::to_string(i);
    writes[i].inserts = {request(id)};
    writes[i].dispatched = {id};
    writes[i].delivered = {"old" + std::to_string(i)};
    writes[i].finals = {result("done" + std::to_string(i))};
    writes[i].idempotency_keys = {{"k" + std::to_string(i), id}};
    set.add(writes[i]);
  }
  CHECK(set.ready() == 0); // one segment, still open
  auto calls = set.take();
  CHECK(names_of(calls)
        == std::vector<std::string>{"copy_requests", "insert_idempotency_keys", "update_status",
                                    "record_finals", "delete_finished", "mark_delivered"});
  CHECK(calls[0].label == "insert request 'q0' and 299 more");
  CHECK(calls[0].copy_sql != nullptr); // the inserts as one COPY, its data the one parameter
  CHECK(calls[0].call.params.size() == 1);
  CHECK(calls[1].copy_sql == nullptr);
  CHECK(calls[3].call.params.size() == 13);
  CHECK(set.take().empty());
}

TEST_CASE("an operation on an id after a later kind on it starts a new segment") {
  pg::write_set set{1000, 1}; // set-based however few rows
  store_write finish, insert_again, mark, finish_marked;
  finish.finals = {result("a")};
  insert_again.inserts = {request("a")}; // must run after the final that removed a
  mark.delivered = {"b"};
  finish_marked.finals = {result("b")}; // must run after the mark (which found no result)
  set.add(finish);
  set.add(insert_again);
  CHECK(set.ready() == 2); // the final's statements, before the insert's
  set.add(mark);
  set.add(finish_marked);
  CHECK(names_of(set.take())
        == std::vector<std::string>{"record_finals", "delete_finished", "insert_requests",
                                    "mark_delivered", "record_finals", "delete_finished"});
}

TEST_CASE("repeated operations on one id fold into one row as running them in turn would") {
  pg::write_set set{1000, 1};
  store_write first, second, third;
  first.dispatched = {"a"};
  first.finals = {result("f")};
  second.attempts = {{"a", 3}};
  second.finals = {result("f")};
  second.finals[0].status = "failed"; // a second final: the first wins
  second.delivered = {"f"};
  third.dispatched = {"a"};
  third.delivered = {"f"};
  for (auto* w : {&first, &second, &third})
    set.add(*w);
  auto calls = set.take();
  REQUIRE(names_of(calls)
          == std::vector<std::string>{"update_status", "record_finals", "delete_finished",
                                      "mark_delivered"});
  CHECK(calls[0].label == "update status 'a'");
  CHECK(calls[1].label == "insert result 'f'");
  CHECK(calls[2].label == "remove finished request 'f'");
  CHECK(calls[3].label == "mark delivered 'f'");
  auto db = connect();
  // Status: processing (the last), attempts 3 (the last given).
  REQUIRE(db->prepare("status_rows", "SELECT s, n::text FROM unnest($1::text[], $2::text[], "
                                     "$3::bigint[]) AS u(id, s, n)")
              .empty());
  auto status = db->exec_prepared("status_rows", calls[0].call.params);
  INFO(status.error);
  REQUIRE(status.rows.size() == 1);
  CHECK(status.rows[0][0] == std::optional<std::string>{"processing"});
  CHECK(status.rows[0][1] == std::optional<std::string>{"3"});
  REQUIRE(db->prepare("final_rows", "SELECT s FROM unnest($1::text[], $2::text[]) AS u(id, s)")
              .empty());
  auto finals =
      db->exec_prepared("final_rows", {calls[1].call.params.at(0), calls[1].call.params.at(1)});
  INFO(finals.error);
  REQUIRE(finals.rows.size() == 1);
  CHECK(finals.rows[0][0] == std::optional<std::string>{"completed"});
}

TEST_CASE("a final drops the status update of its id earlier in the segment, no other") {
  pg::write_set set{1000, 1};
  store_write dispatch, finish, requeue_other;
  dispatch.dispatched = {"a", "b"};
  finish.finals = {result("a")};
  requeue_other.attempts = {{"c", 2}};
  for (auto* w : {&dispatch, &finish, &requeue_other})
    set.add(*w);
  auto calls = set.take();
  REQUIRE(names_of(calls)
          == std::vector<std::string>{"update_status", "record_finals", "delete_finished"});
  CHECK(calls[0].label == "update status 'b' and 1 more"); // b and c, not a

  pg::write_set only_dropped; // every update dropped: no status statement at all
  only_dropped.add(dispatch);
  store_write finish_both;
  finish_both.finals = {result("a"), result("b")};
  only_dropped.add(finish_both);
  CHECK(names_of(only_dropped.take())
        == std::vector<std::string>{"record_finals", "delete_finished"});
}

TEST_CASE("a statement holds at most rows_per_statement rows, leases are checked first, once") {
  pg::write_set set{100, 1};
  store_write bulk;
  for (int i = 0; i < 250; ++i)
    bulk.inserts.push_back(request("r" + std::to_string(i)));
  bulk.fencing_epoch = 7;
  store_write fenced;
  fenced.finals = {result("r0")};
  fenced.fencing_epoch = 7;
  store_write later_epoch;
  later_epoch.delivered = {"r0"};
  later_epoch.fencing_epoch = 8;
  set.add(bulk);
  set.add(fenced);
  set.add(later_epoch);
  auto calls = set.take();
  CHECK(names_of(calls)
        == std::vector<std::string>{"require_lease", "copy_requests", "copy_requests",
                                    "require_lease", "copy_requests", "record_finals",
                                    "delete_finished", "mark_delivered"});
  CHECK(calls[0].call.params.at(0).value == std::optional<std::string>{"7"});
  CHECK(calls[3].call.params.at(0).value == std::optional<std::string>{"8"});
  CHECK(calls[4].label == "insert request 'r200' and 49 more");
}

// The generic plans of the writer's statements on `db` (prepared under a prefix, so a
// second call prepares them anew), joined.
std::string plans_of_write_statements(pg::connection& db, const std::string& prefix) {
  std::string plans;
  for (auto [name, sql] : pg::write_statements()) {
    auto prepared = prefix + name;
    auto why = db.prepare(prepared, sql);
    INFO(why);
    REQUIRE(why.empty());
    std::string args;
    for (int i = 0; i < parameters_of(sql); ++i)
      args += (i == 0 ? "NULL" : ", NULL");
    auto r = db.exec("EXPLAIN EXECUTE " + prepared + "(" + args + ")");
    INFO(r.error);
    REQUIRE(r.ok);
    plans += std::string{name} + ":\n";
    for (const auto& row : r.rows)
      plans += row[0].value_or("") + "\n";
  }
  return plans;
}

bool scans_a_whole_table(const std::string& plans) {
  return plans.find("Seq Scan") != std::string::npos || plans.find("Hash Join") != std::string::npos
         || plans.find("Merge Join") != std::string::npos;
}

TEST_CASE("the writer's statements look rows up by key even when planned on empty tables") {
  scratch_database scratch;
  auto& db = *scratch.db;
  // The planner's own choice on empty tables, for a plan kept past them: whole scans.
  REQUIRE(db.exec("SET plan_cache_mode = force_generic_plan").ok);
  auto unguarded = plans_of_write_statements(db, "unguarded_");
  INFO(unguarded);
  CHECK(scans_a_whole_table(unguarded));
  for (const auto* setting : pg::writer_session_settings())
    REQUIRE(db.exec(setting).ok);
  auto plans = plans_of_write_statements(db, "writer_");
  INFO(plans);
  CHECK_FALSE(scans_a_whole_table(plans));

  // And a request's texts are compressed with lz4 (cheaper for the server than pglz).
  store_write write;
  write.inserts = {request("big")};
  write.inserts[0].texts = std::string(6000, 'x');
  pg::write_set set;
  set.add(write);
  for (auto& statement : set.take()) {
    auto r = db.exec_prepared("writer_" + statement.call.name, statement.call.params);
    INFO(r.error);
    REQUIRE(r.ok);
  }
  auto compression = db.exec("SELECT pg_column_compression(texts) FROM requests");
  REQUIRE(compression.rows.size() == 1);
  CHECK(compression.rows[0][0] == std::optional<std::string>{"lz4"});
}

TEST_CASE("a kind with fewer rows than set_from_rows goes as one statement per row") {
  pg::write_set set{1000, 3};
  store_write write;
  write.inserts = {request("a"), request("b")};           // 2 < 3: per row
  write.finals = {result("x"), result("y"), result("z")}; // 3: set-based
  write.delivered = {"w"};
  write.idempotency_keys = {{"k", "a"}};
  write.dispatched = {"a"};
  set.add(write);
  auto calls = set.take();
  REQUIRE(names_of(calls)
          == std::vector<std::string>{"insert_request", "insert_request", "insert_idempotency_key",
                                      "update_status_row", "record_finals", "delete_finished",
                                      "mark_delivered_row"});
  CHECK(calls[0].label == "insert request 'a'");
  CHECK(calls[1].label == "insert request 'b'");
  CHECK(calls[0].call.params.size() == 12);
  CHECK(calls[0].call.params[5].binary); // the payload goes as its bytes
  CHECK(calls[4].label == "insert result 'x' and 2 more");

  // The default: one row per-row, two rows set-based.
  pg::write_set by_default;
  store_write one, two;
  one.finals = {result("p")};
  two.delivered = {"p", "q"};
  by_default.add(one);
  by_default.add(two);
  CHECK(names_of(by_default.take()) == std::vector<std::string>{"record_final", "mark_delivered"});
}

namespace {

// Runs the statements of `set` on `db` (the writer's statements prepared on it), in one
// transaction; the first failure's label and error, or "".
std::string run_set(pg::connection& db, pg::write_set& set) {
  REQUIRE(db.exec("BEGIN").ok);
  for (auto& statement : set.take()) {
    auto r = statement.copy_sql != nullptr
                 ? db.copy_in(statement.copy_sql, *statement.call.params.at(0).value)
                 : db.exec_prepared(statement.call.name, statement.call.params);
    if (!r.ok) {
      db.exec("ROLLBACK");
      return statement.label + ": " + r.error;
    }
  }
  REQUIRE(db.exec("COMMIT").ok);
  return "";
}

// Every row of the store's tables as text, in insertion order (no generated columns).
std::vector<std::string> table_rows(pg::connection& db) {
  std::vector<std::string> out;
  for (const char* sql :
       {"SELECT r::text FROM (SELECT queue_id, priority, provider, model, correlation_id, "
        "bos_batch_id, cj_batch_id, queued_at, attempts, size_bytes, payload, texts FROM requests "
        "ORDER BY seq) AS r",
        "SELECT queue_id FROM requests_processing ORDER BY queue_id",
        "SELECT r::text FROM (SELECT queue_id, status, error_code, provider, model, "
        "correlation_id, bos_batch_id, cj_batch_id, priority, queued_at, completed_at, "
        "event_json, callback_url, delivery_attempts, last_delivery_error, "
        "delivery_failed_at, epoch FROM results ORDER BY seq) AS r",
        "SELECT queue_id FROM results_undelivered ORDER BY queue_id",
        "SELECT r::text FROM (SELECT key, queue_id FROM idempotency_keys ORDER BY key) AS r"}) {
    auto r = db.exec(sql);
    INFO(r.error);
    REQUIRE(r.ok);
    for (const auto& row : r.rows)
      out.push_back(row[0].value_or("NULL"));
    out.emplace_back("--");
  }
  return out;
}

// Writes touching every kind, with texts that need quoting, NULs in payloads, and repeats.
std::vector<store_write> writes_of_every_kind() {
  std::vector<store_write> writes(4);
  for (int i = 0; i < 3; ++i) {
    auto id = "q" + std::to_string(i);
    auto row = request(id);
    row.priority = i;
    row.queued_at_ms = 1000 + i;
    row.provider = "mock";
    row.model = "m'\\\"" + std::to_string(i);
    row.payload = std::string("{\"a\":1}\0tail", 12);
    row.texts = std::string(3000, 'x');
    row.bos_batch_id = i == 1 ? "" : "run,{1}";
    row.correlation_id = "c" + id;
    writes[0].inserts.push_back(row);
    writes[0].idempotency_keys.push_back({"key " + id, id});
  }
  writes[1].dispatched = {"q0", "q1"};
  writes[1].attempts = {{"q2", 4}};
  auto done = result("q0");
  done.event_json = R"({"text":"quote \" and \\ back"})";
  done.completed_at_ms = 5000;
  auto orphan = result("gone");
  orphan.provider = "other";
  orphan.error_code = "E1";
  orphan.completed_at_ms = 6000;
  writes[2].finals = {done, orphan};
  writes[2].fencing_epoch = 0;
  writes[3].delivered = {"q0"};
  writes[3].delivery_give_ups = {{"gone", 7000, 3, "refused"}};
  writes[3].attempts = {{"q1", 2}};
  return writes;
}

} // namespace

TEST_CASE("per-row statements and a COPY of the inserts leave the tables as the set-based "
          "statements do") {
  scratch_database scratch;
  auto& db = *scratch.db;
  for (const auto* setting : pg::writer_session_settings())
    REQUIRE(db.exec(setting).ok);
  for (auto [name, sql] : pg::write_statements())
    REQUIRE(db.prepare(name, sql).empty());
  auto writes = writes_of_every_kind();
  std::vector<std::vector<std::string>> states;
  // Set-based (inserts by unnest), per row, and set-based with the inserts as a COPY.
  for (auto [set_from_rows, copy_from_rows] :
       {std::pair<size_t, size_t>{1, 0}, {1000, 0}, {1, 1}}) {
    // A transaction per write (commits of one write each: nothing folds), then all writes
    // in one (the first's dispatch of q0 is dropped by its final in the third).
    for (bool one_transaction : {false, true}) {
      REQUIRE(db.exec("TRUNCATE requests, requests_processing, results, results_undelivered, "
                      "idempotency_keys")
                  .ok);
      pg::write_set set{1000, set_from_rows, copy_from_rows};
      for (const auto& w : writes) {
        set.add(w);
        if (one_transaction)
          continue;
        auto why = run_set(db, set);
        INFO(why);
        REQUIRE(why.empty());
      }
      auto why = run_set(db, set);
      INFO(why);
      REQUIRE(why.empty());
      states.push_back(table_rows(db));
    }
  }
  std::string set_based;
  for (const auto& row : states[1])
    set_based += row + "\n";
  INFO("set-based:\n" << set_based);
  for (size_t i = 0; i < states.size(); ++i) {
    INFO("run " << i);
    CHECK(states[i] == states[1]);
  }
  // 2 requests (none processing), 2 results (one undelivered), 3 keys, 5 ends of table.
  CHECK(states[1].size() == 2 + 2 + 1 + 3 + 5);
}

TEST_CASE("a COMMIT that fails fails the rest of the group, a failed write only itself") {
  scratch_database scratch;
  // A check the server runs at COMMIT (a deferred constraint trigger), for one queue id.
  REQUIRE(scratch.db
              ->exec_script(
                  "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                  "IF NEW.queue_id = 'poison' THEN RAISE EXCEPTION 'poison at commit'; END IF; "
                  "RETURN NULL; END $$; CREATE CONSTRAINT TRIGGER refuse_poison AFTER INSERT ON "
                  "requests DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "
                  "refuse_poison()")
              .ok);
  store_options options;
  options.manual_commits = true;
  const auto& url = test::test_server_url();
  std::string error;
  auto store = open_postgres_store(url.substr(0, url.rfind('/') + 1) + scratch.name, options, error,
                                   std::chrono::seconds{5});
  INFO(error);
  REQUIRE(store);

  // Each group fails whole, then its writes are retried one per transaction.
  auto commit = [&](const std::vector<std::string>& ids) {
    std::vector<std::pair<int, std::string>> outcomes(ids.size(), {-1, ""});
    for (size_t i = 0; i < ids.size(); ++i) {
      store_write write;
      write.inserts = {request(ids[i])};
      store->submit(std::move(write), [&outcomes, i](bool ok, const std::string& why) {
        outcomes[i] = {ok ? 1 : 0, why};
      });
    }
    store->flush();
    return outcomes;
  };
  // The COMMIT of poison fails: the environment's fault, so the writes after it fail too.
  auto after_commit = commit({"a", "poison", "b"});
  CHECK(after_commit[0].first == 1);
  CHECK(after_commit[1].first == 0);
  CHECK(after_commit[1].second.find("cannot commit on") != std::string::npos);
  CHECK(after_commit[1].second.find("poison at commit") != std::string::npos);
  CHECK(after_commit[2].first == 0);
  // A write that fails (a duplicate queue id) fails alone.
  auto after_write = commit({"c", "a", "d"});
  CHECK(after_write[0].first == 1);
  CHECK(after_write[1].first == 0);
  CHECK(after_write[1].second.find("insert request 'a'") != std::string::npos);
  CHECK(after_write[2].first == 1);
}
