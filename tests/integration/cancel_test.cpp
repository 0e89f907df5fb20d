// Cancels through the binary: a run of 500 behind a slow mock provider is cancelled and
// every request still ends with exactly one result event (CANCELLED, or the provider's for
// those already at it); a single request is cancelled, and what cannot be is refused.
// Everything binds 127.0.0.1.

#include "fixtures/temp_dir.hpp"
#include "integration/lps_process.hpp"
#include "integration/service_clients.hpp"
#include "runtime/http_client.hpp"
#include "runtime/http_server.hpp"
#include "runtime/json_codec.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

using namespace lps;
namespace json = boost::json;

namespace {

using answer = test::json_answer;
using client = test::json_client;
using test::receiver;

// A comparison of run `run`; without a callback when `callback_url` is empty.
std::string request_body(int i, const std::string& run, const std::string& callback_url) {
  auto callback = callback_url.empty() ? "" : ",\"callback_url\":" + json_quote(callback_url);
  return "{\"user_prompt\":" + json_quote("Which essay is better? " + std::to_string(i)) + callback
         + ",\"metadata\":{\"essay_a_id\":\"a\",\"essay_b_id\":\"b\",\"bos_batch_id\":"
         + json_quote(run) + "}}";
}

std::string error_code_of(const json::object& event) {
  const auto& detail = event.at("data").as_object().at("error_detail");
  return detail.is_null() ? "" : std::string{detail.as_object().at("error_code").as_string()};
}

uint64_t count_of(const json::object& body, const char* key) {
  return static_cast<uint64_t>(body.at(key).as_int64());
}

/// Polls the status until it is `want` (bounded).
bool wait_for_status(client& c, const test::lps_process& lps, const std::string& id,
                     const std::string& want) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  while (std::chrono::steady_clock::now() < deadline) {
    auto st = c.call("GET", lps.url("/api/v1/status/" + id));
    if (st.body.contains("status") && st.body.at("status").as_string() == want)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return false;
}

} // namespace

TEST_CASE("a run of 500 is cancelled: one result event each, the counts add up") {
  test::temp_dir dir;
  receiver rx;
  // Two bundles of at most 4 at the mock at a time, each taking 300 ms: the run is still
  // mostly queued when the cancel comes.
  test::lps_process lps{dir.path().string(),
                        {"--mock-latency-ms=300", "--mock-max-concurrent-calls=2"}};
  REQUIRE(lps.port() != 0);
  client c;
  constexpr int run_size = 500;
  std::string bulk = "{\"requests\":[";
  for (int i = 0; i < run_size; ++i)
    bulk += (i > 0 ? "," : "") + request_body(i, "run-500", rx.url());
  bulk += "]}";
  auto accepted = c.call("POST", lps.url("/api/v1/comparisons"), bulk);
  REQUIRE(accepted.status == 202);
  REQUIRE(accepted.body.at("results").as_array().size() == run_size);
  // Another run and a request without one: the cancel must leave them alone.
  auto other = c.call("POST", lps.url("/api/v1/comparison"), request_body(0, "other", rx.url()));
  REQUIRE(other.status == 202);

  auto cancel = c.call("POST", lps.url("/api/v1/runs/run-500/cancel"));
  REQUIRE(cancel.status == 200);
  CHECK(cancel.body.at("bos_batch_id") == "run-500");
  auto cancelled = count_of(cancel.body, "cancelled");
  auto processing = count_of(cancel.body, "already_processing");
  auto final = count_of(cancel.body, "already_final");
  CHECK(cancelled + processing + final == run_size);
  CHECK(cancelled > run_size / 2); // 8 at the mock per 300 ms: most were still queued

  // Every request of the run, and the other one, ends with exactly one event.
  REQUIRE(rx.wait_for(run_size + 1, std::chrono::seconds{60}));
  std::this_thread::sleep_for(std::chrono::milliseconds{500}); // room for a wrong second one
  std::lock_guard<std::mutex> guard{rx.mtx};
  CHECK(rx.total == run_size + 1);
  uint64_t cancelled_events = 0;
  uint64_t successes = 0;
  for (const auto& item : accepted.body.at("results").as_array()) {
    auto id = std::string{item.as_object().at("queue_id").as_string()};
    REQUIRE(rx.events[id].size() == 1);
    auto code = error_code_of(rx.events[id].front());
    cancelled_events += code == "CANCELLED" ? 1 : 0;
    successes += code.empty() ? 1 : 0;
  }
  CHECK(cancelled_events == cancelled);
  CHECK(successes == processing + final); // the mock never fails here
  auto other_id = std::string{other.body.at("queue_id").as_string()};
  REQUIRE(rx.events[other_id].size() == 1);
  CHECK(error_code_of(rx.events[other_id].front()).empty());

  // The results say the same; cancelling again finds all 500 final.
  auto again = c.call("POST", lps.url("/api/v1/runs/run-500/cancel"));
  REQUIRE(again.status == 200);
  CHECK(count_of(again.body, "cancelled") == 0);
  CHECK(count_of(again.body, "already_final") == run_size);
  CHECK(c.call("POST", lps.url("/api/v1/runs/no-such-run/cancel")).status == 404);
  CHECK(lps.stop() == 0);
}

TEST_CASE("one request is cancelled, and processing, final and unknown ones are refused") {
  test::temp_dir dir;
  receiver rx;
  // One call at a time, each 5 s (room for a loaded machine): the first request holds the
  // mock, the second waits.
  test::lps_process lps{dir.path().string(),
                        {"--mock-latency-ms=5000", "--mock-max-concurrent-calls=1",
                         "--serial-bundle-max-requests-per-call=1", "--admin-token=op-secret"}};
  REQUIRE(lps.port() != 0);
  client c;
  auto busy = c.call("POST", lps.url("/api/v1/comparison"), request_body(1, "r", rx.url()));
  REQUIRE(busy.status == 202);
  auto busy_id = std::string{busy.body.at("queue_id").as_string()};
  REQUIRE(wait_for_status(c, lps, busy_id, "processing"));
  auto waiting = c.call("POST", lps.url("/api/v1/comparison"), request_body(2, "r", rx.url()));
  REQUIRE(waiting.status == 202);
  auto waiting_id = std::string{waiting.body.at("queue_id").as_string()};

  // A client route: no admin token needed.
  auto cancel = c.call("POST", lps.url("/api/v1/requests/" + waiting_id + "/cancel"));
  REQUIRE(cancel.status == 200);
  CHECK(cancel.body.at("queue_id").as_string() == waiting_id);
  CHECK(cancel.body.at("status") == "cancelled");
  auto result = c.call("GET", lps.url("/api/v1/results/" + waiting_id));
  REQUIRE(result.status == 200);
  CHECK(error_code_of(result.body) == "CANCELLED");

  auto twice = c.call("POST", lps.url("/api/v1/requests/" + waiting_id + "/cancel"));
  CHECK(twice.status == 409);
  CHECK(twice.body.at("error").as_object().at("message").as_string().find("already final")
        != json::string::npos);
  auto at_provider = c.call("POST", lps.url("/api/v1/requests/" + busy_id + "/cancel"));
  CHECK(at_provider.status == 409);
  CHECK(
      at_provider.body.at("error").as_object().at("message").as_string().find("already processing")
      != json::string::npos);
  CHECK(c.call("POST", lps.url("/api/v1/requests/no-such-id/cancel")).status == 404);

  // The run route is an operator route: ADMIN_TOKEN.
  CHECK(c.call("POST", lps.url("/api/v1/runs/r/cancel")).status == 401);
  auto run = c.call("POST", lps.url("/api/v1/runs/r/cancel"), "", "op-secret");
  REQUIRE(run.status == 200);
  CHECK(count_of(run.body, "cancelled") == 0);
  CHECK(count_of(run.body, "already_processing") + count_of(run.body, "already_final") == 2);

  // The busy one finishes with the provider's result; each has exactly one event.
  REQUIRE(rx.wait_for(2, std::chrono::seconds{30}));
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  std::lock_guard<std::mutex> guard{rx.mtx};
  CHECK(rx.total == 2);
  REQUIRE(rx.events[busy_id].size() == 1);
  CHECK(error_code_of(rx.events[busy_id].front()).empty());
  REQUIRE(rx.events[waiting_id].size() == 1);
  CHECK(error_code_of(rx.events[waiting_id].front()) == "CANCELLED");
}

TEST_CASE("lpsctl cancels a request and a run whose id needs percent-encoding") {
  test::temp_dir dir;
  test::lps_process lps{dir.path().string(),
                        {"--mock-latency-ms=60000", "--mock-max-concurrent-calls=1",
                         "--serial-bundle-max-requests-per-call=1", "--admin-token=op-secret"}};
  REQUIRE(lps.port() != 0);
  client c;
  const std::string run = "run one/ü%";
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    auto accepted = c.call("POST", lps.url("/api/v1/comparison"), request_body(i, run, ""));
    REQUIRE(accepted.status == 202);
    ids.push_back(std::string{accepted.body.at("queue_id").as_string()});
  }
  REQUIRE(wait_for_status(c, lps, ids[0], "processing")); // the other three wait
  auto lpsctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {LPSCTL_BINARY, "--url=" + lps.url(""), "--token=op-secret"});
    return test::run_command(args);
  };
  auto one = lpsctl({"cancel", ids[3]});
  INFO(one.err);
  REQUIRE(one.exit_code == 0);
  CHECK(json::parse(one.out).as_object().at("status") == "cancelled");
  auto whole = lpsctl({"runs", "cancel", run});
  INFO(whole.err);
  REQUIRE(whole.exit_code == 0);
  auto counts = json::parse(whole.out).as_object();
  CHECK(counts.at("bos_batch_id").as_string() == run);
  CHECK(count_of(counts, "cancelled") == 2);
  CHECK(count_of(counts, "already_processing") == 1);
  CHECK(count_of(counts, "already_final") == 1);
  // Refusals exit 1 with lps' reason.
  auto refused = lpsctl({"cancel", ids[0]});
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("already processing") != std::string::npos);
  CHECK(lpsctl({"runs", "cancel", "no such run"}).exit_code == 1);
}

TEST_CASE("cancelled requests stay cancelled after a SIGKILL right after the answer") {
  test::temp_dir dir;
  auto data_dir = (dir.path() / "var").string();
  constexpr int run_size = 50;
  std::vector<std::string> ids;
  uint64_t cancelled = 0;
  {
    // One request at the mock at a time, each for 60 s: the rest stay queued.
    test::lps_process lps{data_dir,
                          {"--mock-latency-ms=60000", "--mock-max-concurrent-calls=1",
                           "--serial-bundle-max-requests-per-call=1"}};
    REQUIRE(lps.port() != 0);
    client c;
    std::string bulk = "{\"requests\":[";
    for (int i = 0; i < run_size; ++i)
      bulk += (i > 0 ? "," : "") + request_body(i, "doomed", "");
    auto accepted = c.call("POST", lps.url("/api/v1/comparisons"), bulk + "]}");
    REQUIRE(accepted.status == 202);
    for (const auto& item : accepted.body.at("results").as_array())
      ids.push_back(std::string{item.as_object().at("queue_id").as_string()});
    auto cancel = c.call("POST", lps.url("/api/v1/runs/doomed/cancel"));
    REQUIRE(cancel.status == 200);
    cancelled = count_of(cancel.body, "cancelled");
    CHECK(cancelled >= run_size - 1); // at most one was at the mock
    lps.stop(SIGKILL);
  }
  test::lps_process lps{data_dir, {"--mock-latency-ms=0"}};
  REQUIRE(lps.port() != 0);
  client c;
  uint64_t still_cancelled = 0;
  for (const auto& id : ids) {
    auto result = c.call("GET", lps.url("/api/v1/results/" + id));
    if (result.status == 200 && error_code_of(result.body) == "CANCELLED")
      ++still_cancelled;
  }
  CHECK(still_cancelled == cancelled);
  // The run holds nothing queued any more: a second cancel cancels nothing.
  auto again = c.call("POST", lps.url("/api/v1/runs/doomed/cancel"));
  REQUIRE(again.status == 200);
  CHECK(count_of(again.body, "cancelled") == 0);
}
