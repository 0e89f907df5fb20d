// Runs and their results through the binary: two runs submitted in bulk end final, GET
// /api/v1/runs and /api/v1/runs/{id} count them, and GET /api/v1/results pages through a
// run's results (limit 7) giving each exactly once, in the order one big page gives them.
// Everything binds 127.0.0.1.

#include "fixtures/temp_dir.hpp"
#include "integration/lps_process.hpp"
#include "integration/service_clients.hpp"
#include "runtime/http_client.hpp"
#include "runtime/json_codec.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <set>
#include <thread>

using namespace lps;
namespace json = boost::json;

namespace {

using answer = test::json_answer;
using client = test::json_client;

// `size` comparisons of run `run`, as one bulk body.
std::string bulk_body(const std::string& run, int size) {
  std::string body = "{\"requests\":[";
  for (int i = 0; i < size; ++i)
    body += std::string{i > 0 ? "," : ""}
            + "{\"user_prompt\":" + json_quote("Which essay is better? " + std::to_string(i))
            + ",\"metadata\":{\"essay_a_id\":\"a\",\"essay_b_id\":\"b\",\"bos_batch_id\":"
            + json_quote(run) + "}}";
  return body + "]}";
}

std::set<std::string> accepted_ids(const answer& accepted) {
  std::set<std::string> ids;
  for (const auto& item : accepted.body.at("results").as_array())
    ids.insert(std::string{item.as_object().at("queue_id").as_string()});
  return ids;
}

/// Polls GET /api/v1/runs/{run} until none of its requests is active (bounded).
json::object wait_until_final(client& c, const test::lps_process& lps, const std::string& run) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
  json::object body;
  while (std::chrono::steady_clock::now() < deadline) {
    auto res = c.call("GET", lps.url("/api/v1/runs/" + run));
    body = res.body;
    if (res.status == 200 && body.at("active").as_int64() == 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  return body;
}

std::string request_id_of(const json::value& event) {
  return std::string{event.as_object().at("data").as_object().at("request_id").as_string()};
}

std::string error_field_of(const answer& res) {
  return std::string{
      res.body.at("error").as_object().at("details").as_object().at("field").as_string()};
}

} // namespace

TEST_CASE("two runs end final, are counted, and page through their results once each") {
  test::temp_dir dir;
  test::lps_process lps{dir.path().string()};
  REQUIRE(lps.port() != 0);
  client c;
  auto run_a = c.call("POST", lps.url("/api/v1/comparisons"), bulk_body("run-a", 23));
  REQUIRE(run_a.status == 202);
  auto run_b = c.call("POST", lps.url("/api/v1/comparisons"), bulk_body("run b/2", 5));
  REQUIRE(run_b.status == 202);

  auto a = wait_until_final(c, lps, "run-a");
  REQUIRE(a.at("active").as_int64() == 0);
  CHECK(a.at("completed").as_int64() == 23);
  CHECK(a.at("failed").as_int64() + a.at("expired").as_int64() + a.at("cancelled").as_int64() == 0);
  CHECK(a.at("errors_by_code").as_object().empty());
  CHECK(a.at("last_completed_at_ms").as_int64() > 0);
  CHECK(a.at("rate_per_second").as_double() > 0); // all 23 ended within the last minute
  CHECK(a.at("eta_seconds").as_double() == 0);    // nothing left
  // A run id with a slash and a space travels percent-encoded.
  auto b = wait_until_final(c, lps, "run%20b%2F2");
  CHECK(b.at("bos_batch_id") == "run b/2");
  CHECK(b.at("completed").as_int64() == 5);

  auto runs = c.call("GET", lps.url("/api/v1/runs"));
  REQUIRE(runs.status == 200);
  std::set<std::string> listed;
  for (const auto& run : runs.body.at("runs").as_array())
    listed.insert(std::string{run.as_object().at("bos_batch_id").as_string()});
  CHECK(listed == std::set<std::string>{"run-a", "run b/2"});
  CHECK(c.call("GET", lps.url("/api/v1/runs/no-such-run")).status == 404);

  // Pages of 7: 7, 7, 7, 2; the last names no cursor.
  std::vector<std::string> paged;
  std::string after;
  std::vector<size_t> page_sizes;
  for (int page = 0; page < 10; ++page) {
    auto res = c.call("GET", lps.url("/api/v1/results?bos_batch_id=run-a&limit=7"
                                     + (after.empty() ? "" : "&after=" + after)));
    REQUIRE(res.status == 200);
    const auto& results = res.body.at("results").as_array();
    page_sizes.push_back(results.size());
    for (const auto& event : results)
      paged.push_back(request_id_of(event));
    if (res.body.at("next").is_null())
      break;
    after = std::string{res.body.at("next").as_string()};
  }
  CHECK(page_sizes == std::vector<size_t>{7, 7, 7, 2});
  CHECK(std::set<std::string>(paged.begin(), paged.end()) == accepted_ids(run_a));
  CHECK(paged.size() == 23);
  // The same order as one page of all of them.
  auto whole = c.call("GET", lps.url("/api/v1/results?bos_batch_id=run-a&limit=1000"));
  REQUIRE(whole.status == 200);
  std::vector<std::string> in_one;
  for (const auto& event : whole.body.at("results").as_array())
    in_one.push_back(request_id_of(event));
  CHECK(in_one == paged);
  CHECK(whole.body.at("next").is_null());

  auto b_page = c.call("GET", lps.url("/api/v1/results?bos_batch_id=run+b%2F2"));
  REQUIRE(b_page.status == 200);
  CHECK(b_page.body.at("results").as_array().size() == 5);
  auto unknown = c.call("GET", lps.url("/api/v1/results?bos_batch_id=no-such-run"));
  REQUIRE(unknown.status == 200);
  CHECK(unknown.body.at("results").as_array().empty());
  CHECK(lps.stop() == 0);
}

TEST_CASE("a results page refuses a bad cursor, limit or missing run, naming the parameter") {
  test::temp_dir dir;
  test::lps_process lps{dir.path().string()};
  REQUIRE(lps.port() != 0);
  client c;
  auto missing = c.call("GET", lps.url("/api/v1/results?limit=5"));
  CHECK(missing.status == 400);
  CHECK(error_field_of(missing) == "bos_batch_id");
  auto bad_cursor = c.call("GET", lps.url("/api/v1/results?bos_batch_id=r&after=%21%21"));
  CHECK(bad_cursor.status == 400);
  CHECK(error_field_of(bad_cursor) == "after");
  for (const char* limit : {"0", "1001", "ten", "-1"}) {
    auto bad_limit =
        c.call("GET", lps.url(std::string{"/api/v1/results?bos_batch_id=r&limit="} + limit));
    CHECK(bad_limit.status == 400);
    CHECK(error_field_of(bad_limit) == "limit");
  }
  CHECK(c.call("GET", lps.url("/api/v1/results?bos_batch_id=r&limit=1000")).status == 200);
  CHECK(lps.stop() == 0);
}
