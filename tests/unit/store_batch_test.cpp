// Many writes in one transaction, run against each backend (fixtures/store_backend.hpp). The
// PostgreSQL store sends a transaction's rows as one statement per kind of operation
// (runtime/pg_write_set.hpp); these cases pin that the end state is what running every
// write's operations one by one gives (which the SQLite store does), with many rows, mixed
// and repeated operations on one id, a bad row among good ones, and texts that would need
// escaping in an array literal.

#include "fixtures/sqlite_probe.hpp"
#include "fixtures/store_backend.hpp"
#include "fixtures/temp_dir.hpp"
#include "runtime/store.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

using lps::test::temp_dir;

// Manual commits: every write submitted before flush() goes into one transaction.
std::unique_ptr<lps::store> open_store(const temp_dir& dir) {
  lps::store_options options;
  options.data_dir = dir.str();
  options.manual_commits = true;
  options.max_ops_per_commit = 100000;
  std::string error;
  auto db = lps::test::open_backend_store(options, error);
  INFO("open error: " << error);
  REQUIRE(db != nullptr);
  return db;
}

lps::stored_request make_request(const std::string& id, std::string payload = "{}") {
  lps::stored_request row;
  row.queue_id = id;
  row.queued_at_ms = 1000;
  row.size_bytes = payload.size();
  row.payload = std::move(payload);
  row.provider = "mock";
  return row;
}

lps::stored_result make_result(const std::string& id, const std::string& status = "completed") {
  lps::stored_result row;
  row.queue_id = id;
  row.status = status;
  row.event_json = R"({"queue_id":")" + id + R"(","status":")" + status + R"("})";
  row.callback_url = "http://cb/" + id;
  row.completed_at_ms = 2000;
  return row;
}

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

// Submits the writes, commits them in one transaction and checks that each succeeded.
void commit_all_ok(lps::store& db, std::vector<lps::store_write> writes) {
  std::vector<outcome> outcomes(writes.size());
  for (size_t i = 0; i < writes.size(); ++i)
    db.submit(std::move(writes[i]), record(outcomes[i]));
  auto commits_before = db.stats().commits;
  db.flush();
  CHECK(db.stats().commits == commits_before + 1);
  for (const auto& out : outcomes) {
    INFO("write error: " << out.error);
    REQUIRE(out.calls == 1);
    REQUIRE(out.ok);
  }
}

std::vector<std::string> active_ids(lps::store& db) {
  std::vector<std::string> ids;
  db.load_active_index([&](lps::stored_request&& row) { ids.push_back(row.queue_id); });
  return ids;
}

// The first column of the first row of `sql`, read past the store ("" when none or NULL).
std::string query_column(const lps::store& db, const temp_dir& dir, const std::string& sql) {
  if (!lps::test::store_backend_is_postgres())
    return lps::test::query_text(db.path(), sql);
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

std::string status_and_attempts(const lps::store& db, const temp_dir& dir, const std::string& id) {
  return query_column(db, dir,
                      "SELECT " + lps::test::request_status_sql()
                          + " || '|' || attempts FROM requests WHERE "
                            "queue_id = '"
                          + id + "'");
}

} // namespace

TEST_CASE("store commits thousands of rows of each kind in one transaction", "[store]") {
  temp_dir dir;
  auto db = open_store(dir);
  std::vector<lps::store_write> writes(3);
  std::vector<std::string> ids;
  for (size_t w = 0; w < writes.size(); ++w) {
    for (int i = 0; i < 1500; ++i) {
      auto id = "r" + std::to_string(w) + "-" + std::to_string(i);
      ids.push_back(id);
      writes[w].inserts.push_back(make_request(id, "payload of " + id));
      writes[w].idempotency_keys.emplace_back("key-" + id, id);
    }
  }
  commit_all_ok(*db, std::move(writes));
  // Same priority and time: the order of submission, across statements and writes.
  CHECK(active_ids(*db) == ids);
  auto rows = db->load_rows({"r0-0", "r1-777", "r2-1499"});
  REQUIRE(rows.size() == 3);
  CHECK(rows[1].payload == "payload of r1-777");
  CHECK(db->find_idempotency_key("key-r2-1499") == std::optional<std::string>{"r2-1499"});

  // Every request dispatched, then finished, then its callback delivered, in one commit each.
  lps::store_write dispatch, finish, deliver;
  for (const auto& id : ids) {
    dispatch.dispatched.push_back(id);
    finish.finals.push_back(make_result(id));
    deliver.delivered.push_back(id);
  }
  commit_all_ok(*db, {dispatch});
  CHECK(query_column(*db, dir,
                     "SELECT count(*) FROM requests WHERE " + lps::test::request_status_sql()
                         + " = 'processing'")
        == "4500");
  commit_all_ok(*db, {finish, deliver});
  CHECK(db->count_active_requests() == 0);
  CHECK(db->count_results() == 4500);
  CHECK(db->load_undelivered_results().empty());
  auto result = db->find_result("r1-777");
  REQUIRE(result);
  CHECK(result->event_json == make_result("r1-777").event_json);
  CHECK(result->delivered);
}

TEST_CASE("store ends a commit of mixed operations on the same ids as if run one by one",
          "[store]") {
  temp_dir dir;
  auto db = open_store(dir);
  std::vector<lps::store_write> writes(8);
  writes[0].inserts = {make_request("a"), make_request("b"), make_request("c")};
  writes[0].idempotency_keys = {{"k1", "a"}};
  writes[1].dispatched = {"a", "c"};
  writes[1].idempotency_keys = {{"k1", "c"}, {"k2", "c"}}; // k1 keeps a
  writes[2].attempts = {{"a", 2}};                         // a queued again after a try
  writes[2].finals = {make_result("b", "completed")};
  writes[3].dispatched = {"a"};                    // and processing again, its attempts kept
  writes[3].finals = {make_result("b", "failed")}; // the first final wins
  writes[3].delivered = {"x"};                     // no result x yet: nothing to mark
  // A final, then the same id inserted again: the request is back, beside its result.
  writes[4].finals = {make_result("c", "expired"), make_result("x")};
  writes[5].inserts = {make_request("c")};
  writes[5].delivery_give_ups = {{"b", 100, 1, "first"}};
  writes[6].delivery_give_ups = {{"b", 200, 2, "second"}}; // the last give-up holds
  writes[7].attempts = {{"c", 5}};
  commit_all_ok(*db, std::move(writes));

  CHECK(status_and_attempts(*db, dir, "a") == "processing|2");
  CHECK(status_and_attempts(*db, dir, "c") == "queued|5");
  // (After the status: on PostgreSQL this scan is the start-up recovery, which requeues.)
  CHECK(active_ids(*db) == std::vector<std::string>{"a", "c"});
  CHECK(db->find_idempotency_key("k1") == std::optional<std::string>{"a"});
  CHECK(db->find_idempotency_key("k2") == std::optional<std::string>{"c"});
  auto b = db->find_result("b");
  REQUIRE(b);
  CHECK(b->status == "completed");
  CHECK(b->delivery_failed_at_ms == 200);
  CHECK(b->delivery_attempts == 2);
  CHECK(b->last_delivery_error == "second");
  auto c = db->find_result("c");
  REQUIRE(c);
  CHECK(c->status == "expired");
  auto x = db->find_result("x");
  REQUIRE(x);
  CHECK_FALSE(x->delivered);
  CHECK(db->count_results() == 3);
}

TEST_CASE("store fails a bad row's write alone among hundreds in one transaction", "[store]") {
  temp_dir dir;
  auto db = open_store(dir);
  commit_all_ok(*db, {[] {
    lps::store_write w;
    w.inserts = {make_request("taken")};
    return w;
  }()});
  std::vector<outcome> outcomes(301);
  for (size_t i = 0; i < outcomes.size(); ++i) {
    lps::store_write w;
    w.inserts = {make_request("ok-" + std::to_string(i) + "-a"),
                 make_request(i == 150 ? "taken" : "ok-" + std::to_string(i) + "-b")};
    w.dispatched = {"ok-" + std::to_string(i) + "-a"};
    db->submit(std::move(w), record(outcomes[i]));
  }
  db->flush();
  for (size_t i = 0; i < outcomes.size(); ++i) {
    INFO("write " << i << ": " << outcomes[i].error);
    REQUIRE(outcomes[i].calls == 1);
    CHECK(outcomes[i].ok == (i != 150));
  }
  CHECK_THAT(outcomes[150].error,
             Catch::Contains("unique", Catch::CaseSensitive::No) && Catch::Contains("taken"));
  // All or nothing: the bad write's good row is not there either.
  CHECK(db->count_active_requests() == 1 + 300 * 2);
  CHECK(db->load_rows({"ok-150-a"}).empty());
  CHECK(status_and_attempts(*db, dir, "ok-149-a") == "processing|0");
}

TEST_CASE("store keeps ids, events and payloads with quotes, backslashes, braces and commas "
          "byte for byte",
          "[store]") {
  temp_dir dir;
  auto db = open_store(dir);
  const std::vector<std::string> ids{R"(q"1)", R"(back\slash)", "{braces}", "a,b",  "sp ace",
                                     "NULL",   "é-ünï",         "'quote'",  R"(\")"};
  constexpr char raw_payload[] = "bytes\0with\xff nul\\ and \"quotes\"";
  const std::string payload{raw_payload, sizeof raw_payload - 1};
  const std::string event =
      R"({"text":"a \"quoted\" \\ back\\slash, {brace} and\nnewline","empty":""})";
  lps::store_write insert;
  for (const auto& id : ids)
    insert.inserts.push_back(make_request(id, payload));
  commit_all_ok(*db, {insert});
  auto rows = db->load_rows(ids);
  REQUIRE(rows.size() == ids.size());
  for (const auto& row : rows)
    CHECK(row.payload == payload);

  lps::store_write dispatch, finish, give_up;
  for (const auto& id : ids) {
    dispatch.dispatched.push_back(id);
    auto result = make_result(id);
    result.event_json = event;
    result.callback_url = id == "NULL" ? "" : "http://cb/{" + id + "}";
    finish.finals.push_back(result);
    give_up.delivery_give_ups.push_back({id, 300, 4, R"(HTTP 500: {"error":"a,b\"c"})"});
  }
  commit_all_ok(*db, {dispatch, finish, give_up});
  CHECK(db->count_active_requests() == 0);
  for (const auto& id : ids) {
    auto result = db->find_result(id);
    INFO(id);
    REQUIRE(result);
    CHECK(result->event_json == event);
    CHECK(result->callback_url == (id == "NULL" ? "" : "http://cb/{" + id + "}"));
    CHECK(result->last_delivery_error == R"(HTTP 500: {"error":"a,b\"c"})");
    CHECK(result->delivery_attempts == 4);
  }
}
