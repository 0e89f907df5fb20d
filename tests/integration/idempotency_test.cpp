// Idempotency on the bulk route through the binary: an Idempotency-Key names the whole bulk
// submission, so a repeat answers each item with its first queue id and calls the provider
// for no item twice, across a restart too; a repeat retries the items refused the first time;
// identical bulk posts at the same moment create each item once; DEDUPE_BY_CORRELATION_ID
// dedupes bulk items by correlation_id. Everything binds 127.0.0.1.

#include "fixtures/temp_dir.hpp"
#include "integration/lps_process.hpp"
#include "integration/service_clients.hpp"
#include "runtime/http_client.hpp"
#include "runtime/http_server.hpp"
#include "runtime/ids.hpp"
#include "runtime/json_codec.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

using namespace lps;
namespace json = boost::json;

namespace {

using lps::test::client;
using lps::test::receiver;
using lps::test::temp_dir;

http_client_response bulk(client& c, const test::lps_process& lps, const std::string& body,
                          const std::string& key) {
  return c.call_with("POST", lps.url("/api/v1/comparisons"), body, {{"Idempotency-Key", key}});
}

/// One item of a bulk answer: its queue id ("" when refused), status and error code.
struct item_answer {
  std::string queue_id;
  std::string status;
  std::string error_code;
};

std::vector<item_answer> items_of(const http_client_response& res) {
  std::vector<item_answer> items;
  auto doc = json::parse(res.body);
  for (const auto& x : doc.as_object().at("results").as_array()) {
    const auto& item = x.as_object();
    item_answer answer;
    if (const auto* error = item.if_contains("error"))
      answer.error_code = std::string{error->as_object().at("code").as_string()};
    else {
      answer.queue_id = std::string{item.at("queue_id").as_string()};
      answer.status = std::string{item.at("status").as_string()};
    }
    items.push_back(std::move(answer));
  }
  return items;
}

std::vector<std::string> queue_ids_of(const http_client_response& res) {
  std::vector<std::string> ids;
  for (const auto& item : items_of(res))
    ids.push_back(item.queue_id);
  return ids;
}

/// A bulk body of `prompts`, each item calling back to `callback_url` (when not empty).
std::string bulk_body(const std::vector<std::string>& prompts, const std::string& callback_url = {},
                      const std::vector<std::string>& correlation_ids = {}) {
  std::string body = "{\"requests\":[";
  for (size_t i = 0; i < prompts.size(); ++i) {
    body += std::string{i ? "," : ""} + "{\"user_prompt\":" + json_quote(prompts[i]);
    if (!callback_url.empty())
      body += ",\"callback_url\":" + json_quote(callback_url);
    if (i < correlation_ids.size())
      body += ",\"correlation_id\":" + json_quote(correlation_ids[i]);
    body += "}";
  }
  return body + "]}";
}

/// The value of one series in lps' /metrics (-1 when it is absent).
double metric_value(client& c, const test::lps_process& lps, const std::string& series) {
  auto text = c.call("GET", lps.url("/metrics")).body;
  auto at = text.find("\n" + series + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 2));
}

/// True once `series` shows `value` (metrics are recorded asynchronously; polled for 2 s).
bool metric_shows(client& c, const test::lps_process& lps, const std::string& series,
                  double value) {
  for (int i = 0; i < 80; ++i) {
    if (metric_value(c, lps, series) == value)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{25});
  }
  return false;
}

const std::string accepted = "llm_provider_requests_accepted_total";
/// Items sent to the mock provider, over all its calls.
const std::string items_called =
    "llm_provider_serial_bundle_items_per_call_sum{provider=\"mock\",model=\"mock-model-v1\"}";

} // namespace

TEST_CASE("the same bulk Idempotency-Key twice creates each item once, also across a restart") {
  temp_dir dir;
  receiver sink;
  client c;
  auto body = bulk_body({"one", "two", "three"}, sink.url());
  std::vector<std::string> first_ids;
  {
    test::lps_process lps{dir.path().string()};
    REQUIRE(lps.port() != 0);
    auto first = bulk(c, lps, body, "run-7");
    REQUIRE(first.status == 202);
    first_ids = queue_ids_of(first);
    REQUIRE(first_ids.size() == 3);
    CHECK(std::set<std::string>(first_ids.begin(), first_ids.end()).size() == 3);
    auto second = bulk(c, lps, body, "run-7");
    CHECK(second.status == 200);
    CHECK(queue_ids_of(second) == first_ids);
    REQUIRE(sink.wait_for(3, std::chrono::seconds{20}));
    // Three requests, each sent to the provider once.
    CHECK(metric_shows(c, lps, accepted, 3));
    CHECK(metric_shows(c, lps, items_called, 3));
    // A repeat once they are done says so, item by item.
    auto done = bulk(c, lps, body, "run-7");
    CHECK(done.status == 200);
    for (const auto& item : items_of(done))
      CHECK(item.status == "completed");
    // A longer repeat: the items beyond the first submission are new ones.
    auto longer = bulk(c, lps, bulk_body({"one", "two", "three", "four"}, sink.url()), "run-7");
    CHECK(longer.status == 202);
    auto longer_ids = queue_ids_of(longer);
    REQUIRE(longer_ids.size() == 4);
    CHECK(std::vector<std::string>(longer_ids.begin(), longer_ids.begin() + 3) == first_ids);
    CHECK(!longer_ids[3].empty());
    REQUIRE(sink.wait_for(4, std::chrono::seconds{20}));
    CHECK(metric_shows(c, lps, accepted, 4));
    // The single route's keys are its own: the same key there is a new request.
    auto single = c.call_with("POST", lps.url("/api/v1/comparison"), R"({"user_prompt":"x"})",
                              {{"Idempotency-Key", "run-7"}});
    CHECK(single.status == 202);
  }
  test::lps_process again{dir.path().string()};
  REQUIRE(again.port() != 0);
  auto after_restart = bulk(c, again, body, "run-7");
  CHECK(after_restart.status == 200);
  CHECK(queue_ids_of(after_restart) == first_ids);
  for (const auto& item : items_of(after_restart))
    CHECK(item.status == "completed");
  CHECK(metric_value(c, again, accepted) <= 0);
  for (const auto& id : first_ids)
    CHECK(sink.count(id) >= 1); // a callback not yet marked delivered may come again
  std::lock_guard<std::mutex> guard{sink.mtx};
  CHECK(sink.events.size() == 4);
}

TEST_CASE("a bulk repeat after a partial refusal retries only the refused items") {
  temp_dir dir;
  client c;
  // Item 1 is invalid; the queue takes two of the three valid ones (the mock holds them).
  auto body = R"({"requests":[{"user_prompt":"a"},{"user_prompt":""},{"user_prompt":"b"},)"
              R"({"user_prompt":"c"}]})";
  std::vector<item_answer> first;
  {
    test::lps_process lps{dir.path().string(), {"--mock-latency-ms=60000", "--queue-max-size=2"}};
    REQUIRE(lps.port() != 0);
    auto res = bulk(c, lps, body, "partial");
    REQUIRE(res.status == 202);
    first = items_of(res);
    REQUIRE(first.size() == 4);
    CHECK(!first[0].queue_id.empty());
    CHECK(first[1].error_code == "VALIDATION_ERROR");
    CHECK(!first[2].queue_id.empty());
    CHECK(first[3].error_code == "QUEUE_FULL");
    CHECK(metric_shows(c, lps, accepted, 2));
  }
  test::lps_process roomy{dir.path().string(), {"--mock-latency-ms=60000", "--queue-max-size=10"}};
  REQUIRE(roomy.port() != 0);
  auto retry = bulk(c, roomy, body, "partial");
  CHECK(retry.status == 202); // item 3 was created now
  auto second = items_of(retry);
  REQUIRE(second.size() == 4);
  CHECK(second[0].queue_id == first[0].queue_id);
  CHECK(second[1].error_code == "VALIDATION_ERROR");
  CHECK(second[2].queue_id == first[2].queue_id);
  CHECK(!second[3].queue_id.empty());
  CHECK(metric_shows(c, roomy, accepted, 1));
  // Now every valid item is recorded: a third try creates nothing.
  auto third = bulk(c, roomy, body, "partial");
  CHECK(third.status == 200);
  auto ids = queue_ids_of(third);
  CHECK(ids == queue_ids_of(retry));
  CHECK(metric_shows(c, roomy, accepted, 1));
}

TEST_CASE("identical bulk posts at the same moment create each item once") {
  temp_dir dir;
  client c;
  test::lps_process lps{dir.path().string(), {"--mock-latency-ms=60000"}};
  REQUIRE(lps.port() != 0);
  auto body = bulk_body({"p", "q", "r", "s", "t"});
  std::vector<std::future<http_client_response>> posts;
  for (int i = 0; i < 4; ++i)
    posts.push_back(std::async(std::launch::async, [&] { return bulk(c, lps, body, "same"); }));
  std::multiset<unsigned> statuses;
  std::set<std::vector<std::string>> id_lists;
  for (auto& post : posts) {
    auto res = post.get();
    statuses.insert(res.status);
    id_lists.insert(queue_ids_of(res));
  }
  CHECK(statuses == std::multiset<unsigned>{200, 200, 200, 202});
  REQUIRE(id_lists.size() == 1);
  CHECK(id_lists.begin()->size() == 5);
  CHECK(metric_shows(c, lps, accepted, 5));
}

TEST_CASE("DEDUPE_BY_CORRELATION_ID dedupes bulk items by correlation_id") {
  temp_dir dir;
  client c;
  test::lps_process lps{dir.path().string(),
                        {"--dedupe-by-correlation-id=true", "--mock-latency-ms=60000"}};
  REQUIRE(lps.port() != 0);
  // correlation_ids are UUIDs.
  auto a = new_uuid(), b = new_uuid(), c_id = new_uuid(), d = new_uuid();
  auto single_body = [](const std::string& id) {
    return "{\"user_prompt\":\"s\",\"correlation_id\":\"" + id + "\"}";
  };
  auto post_bulk = [&](const std::string& body) {
    return c.call("POST", lps.url("/api/v1/comparisons"), body);
  };
  // An id twice in one body is one request.
  auto first = post_bulk(bulk_body({"a", "b", "a again"}, {}, {a, b, a}));
  CHECK(first.status == 202);
  auto ids = queue_ids_of(first);
  REQUIRE(ids.size() == 3);
  CHECK(ids[0] != ids[1]);
  CHECK(ids[2] == ids[0]);
  CHECK(metric_shows(c, lps, accepted, 2));
  // A single submission with a bulk item's id repeats it, and the other way round.
  auto single = c.call("POST", lps.url("/api/v1/comparison"), single_body(b));
  CHECK(single.status == 200);
  CHECK(json::parse(single.body).as_object().at("queue_id").as_string() == ids[1].c_str());
  auto lone = c.call("POST", lps.url("/api/v1/comparison"), single_body(c_id));
  REQUIRE(lone.status == 202);
  auto mixed = post_bulk(bulk_body({"b", "c", "d"}, {}, {b, c_id, d}));
  CHECK(mixed.status == 202);
  auto mixed_ids = queue_ids_of(mixed);
  REQUIRE(mixed_ids.size() == 3);
  CHECK(mixed_ids[0] == ids[1]);
  CHECK(mixed_ids[1] == std::string{json::parse(lone.body).as_object().at("queue_id").as_string()});
  CHECK(metric_shows(c, lps, accepted, 4));
  // Without a correlation_id an item is never deduped.
  auto plain = post_bulk(bulk_body({"x", "x"}));
  auto plain_ids = queue_ids_of(plain);
  REQUIRE(plain_ids.size() == 2);
  CHECK(plain_ids[0] != plain_ids[1]);
  auto too_long = bulk(c, lps, bulk_body({"x"}), std::string(256, 'k'));
  CHECK(too_long.status == 400);
  CHECK(json::parse(too_long.body).at_pointer("/error/details/field") == "Idempotency-Key");
}
