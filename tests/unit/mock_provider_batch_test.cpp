// The mock provider's batch APIs in-process on 127.0.0.1:0, driven the way lps drives them:
// requests built and answers read by lps's own batch wire formats (openai_batch_wire,
// anthropic_batch_wire) and sent through lps::http_client, plus raw checks of the objects the
// real APIs define. Covers the OpenAI Files + Batch flow, validation failures, item errors,
// expiry, cancel, listing by metadata, Anthropic Message Batches likewise, key checks, stats,
// reset and the settings API.

#include "actors/providers/anthropic_batch_format.hpp"
#include "actors/providers/anthropic_format.hpp"
#include "actors/providers/openai_batch_format.hpp"
#include "actors/providers/openai_format.hpp"
#include "runtime/http_client.hpp"
#include "tools/mock_provider/mock_provider_server.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

namespace json = boost::json;
using clock_type = std::chrono::steady_clock;
using lps::batch_item_result;
using lps::batch_job_state;
using lps::http_client_request;
using lps::http_client_response;
using kind = batch_item_result::kind;

constexpr const char* openai_model = "gpt-4o-mini";
constexpr const char* anthropic_model = "claude-sonnet-4-5-20250929";

json::object parse_object(const std::string& text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  INFO(text.substr(0, 2000));
  REQUIRE(!ec);
  REQUIRE(v.is_object());
  return v.get_object();
}

std::string str(const json::value& v) {
  REQUIRE(v.is_string());
  return std::string(v.get_string());
}

std::vector<std::string> lines_of(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    auto end = body.find('\n', pos);
    if (end == std::string::npos)
      end = body.size();
    if (end > pos)
      out.push_back(body.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

std::optional<std::string> header_of(const http_client_response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name)
      return v;
  return std::nullopt;
}

/// A comparison lps would send; `i` makes each prompt (and so each verdict) its own.
lps::comparison_request comparison(int i) {
  lps::comparison_request req;
  req.queue_id = "queue-" + std::to_string(i);
  req.correlation_id = "corr-" + std::to_string(i);
  req.user_prompt = "Compare essay A (number " + std::to_string(i) + ") with essay B (number "
                    + std::to_string(i * 7 + 3) + ").";
  return req;
}

std::string custom_id(int i) {
  return "item-" + std::to_string(i);
}

lps::mock_batch_options fast_batches() {
  lps::mock_batch_options b;
  b.validating = 30ms;
  b.processing = 120ms;
  b.cancel = 60ms;
  return b;
}

/// Virtual time for the mock's batches: it moves only when the test advances it.
class manual_clock {
public:
  std::chrono::steady_clock::time_point now() const {
    return start_ + std::chrono::nanoseconds(offset_ns_.load());
  }
  void advance(std::chrono::nanoseconds d) {
    offset_ns_ += d.count();
  }
  std::chrono::nanoseconds elapsed() const {
    return std::chrono::nanoseconds(offset_ns_.load());
  }

private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::atomic<int64_t> offset_ns_{0};
};

/// One mock server (on virtual time) and one client, both stopped at the end of the test.
class fixture {
public:
  explicit fixture(lps::mock_batch_options batch = fast_batches(), uint64_t seed = 42) {
    lps::mock_provider_options options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.seed = seed;
    options.batch = batch;
    options.batch_clock = [this] { return clock.now(); };
    std::string error;
    REQUIRE(server.start(options, error));
    REQUIRE(server.port() != 0);
  }

  ~fixture() {
    client.stop();
    server.stop();
  }

  std::string origin() const {
    return "http://127.0.0.1:" + std::to_string(server.port());
  }

  lps::wire_target openai_target(const std::string& key = "test-key") const {
    lps::wire_target t;
    t.base_url = origin() + "/v1";
    t.api_key = key;
    t.timeout = 30000ms;
    return t;
  }

  lps::wire_target anthropic_target(const std::string& key = "test-key") const {
    lps::wire_target t;
    t.base_url = origin();
    t.api_key = key;
    t.timeout = 30000ms;
    return t;
  }

  http_client_response call(http_client_request r) {
    auto promise = std::make_shared<std::promise<http_client_response>>();
    auto future = promise->get_future();
    client.send(std::move(r), [promise](http_client_response x) { promise->set_value(x); });
    REQUIRE(future.wait_for(60s) == std::future_status::ready);
    auto out = future.get();
    INFO(out.error_message);
    REQUIRE(out.error == lps::transport_error::none);
    return out;
  }

  /// A raw call with an OpenAI key (or none when `key` is empty).
  http_client_response openai(const std::string& method, const std::string& path,
                              const std::string& body = "", const std::string& key = "test-key") {
    http_client_request r;
    r.method = method;
    r.url = origin() + path;
    r.body = body;
    r.timeout = 30000ms;
    if (!body.empty())
      r.headers.emplace_back("content-type", "application/json");
    if (!key.empty())
      r.headers.emplace_back("authorization", "Bearer " + key);
    return call(std::move(r));
  }

  /// A raw call with Anthropic headers (key "" sends none; version false leaves it out).
  http_client_response anthropic(const std::string& method, const std::string& path,
                                 const std::string& body = "", const std::string& key = "test-key",
                                 bool version = true) {
    http_client_request r;
    r.method = method;
    r.url = origin() + path;
    r.body = body;
    r.timeout = 30000ms;
    if (!body.empty())
      r.headers.emplace_back("content-type", "application/json");
    if (!key.empty())
      r.headers.emplace_back("x-api-key", key);
    if (version)
      r.headers.emplace_back("anthropic-version", "2023-06-01");
    return call(std::move(r));
  }

  http_client_response control(const std::string& method, const std::string& path,
                               const std::string& body = "") {
    http_client_request r;
    r.method = method;
    r.url = origin() + path;
    r.body = body;
    r.timeout = 5000ms;
    return call(std::move(r));
  }

  // The clock is declared first: the server's I/O threads read it until the server stops.
  manual_clock clock;
  lps::mock_provider_server server;
  lps::http_client client{lps::http_client_options{}};
};

/// A job's status read by the wire format, checked to be readable.
lps::batch_job_status read_job(const lps::batch_wire& wire, const http_client_response& r) {
  auto s = wire.read_job(r.status, r.body, r.headers, std::chrono::system_clock::now());
  INFO(r.status << " " << r.body << " " << s.error.error_message);
  REQUIRE(s.ok);
  return s;
}

/// Polls until `done` holds for the job, advancing virtual time by 3 ms between polls (at
/// most 10 s of it); returns every status word seen, in order, without repeats.
std::vector<std::string> poll_until(fixture& fx, const lps::batch_wire& wire,
                                    const lps::wire_target& target, const std::string& id,
                                    const std::function<bool(const lps::batch_job_status&)>& done,
                                    lps::batch_job_status& last) {
  std::vector<std::string> seen;
  auto deadline = fx.clock.elapsed() + 10s;
  for (;;) {
    last = read_job(wire, fx.call(wire.poll(target, id)));
    if (seen.empty() || seen.back() != last.provider_status)
      seen.push_back(last.provider_status);
    if (done(last))
      return seen;
    REQUIRE(fx.clock.elapsed() < deadline);
    fx.clock.advance(3ms);
  }
}

bool has_ended(const lps::batch_job_status& s) {
  return s.state == batch_job_state::ended || s.state == batch_job_state::failed;
}

/// Every result item of an ended job, by custom_id, read by the wire format.
std::map<std::string, batch_item_result> download(fixture& fx, const lps::batch_wire& wire,
                                                  const lps::wire_target& target,
                                                  const lps::batch_job_status& job) {
  std::map<std::string, batch_item_result> out;
  for (auto& request : wire.downloads(target, job)) {
    auto r = fx.call(std::move(request));
    lps::wire_response error;
    auto results =
        wire.read_results(r.status, r.body, r.headers, std::chrono::system_clock::now(), error);
    INFO(r.status << " " << r.body.substr(0, 2000));
    REQUIRE(error.success);
    CHECK(results.unreadable_lines == 0);
    for (auto& item : results.items) {
      INFO(item.custom_id);
      CHECK(!out.contains(item.custom_id));
      out[item.custom_id] = std::move(item);
    }
  }
  return out;
}

/// The answer the sync endpoint gives for the same comparison.
lps::wire_response sync_answer(fixture& fx, const lps::provider_wire& wire,
                               const lps::wire_target& target, int i, const std::string& model) {
  auto r = fx.call(wire.single_call(target, comparison(i), model));
  auto answer = wire.read_single(r.status, r.body, r.headers, std::chrono::system_clock::now());
  INFO(r.body);
  REQUIRE(answer.success);
  return answer;
}

void check_same_verdict(const lps::wire_response& batch, const lps::wire_response& sync) {
  REQUIRE(batch.success);
  CHECK(batch.verdict.winner == sync.verdict.winner);
  CHECK(batch.verdict.justification == sync.verdict.justification);
  CHECK(batch.verdict.confidence == sync.verdict.confidence);
  CHECK(batch.usage == sync.usage);
}

// -- OpenAI helpers --

std::vector<std::string> openai_entries(const lps::openai_batch_wire& wire, int n,
                                        const std::string& model = openai_model) {
  std::vector<std::string> entries;
  for (int i = 0; i < n; ++i)
    entries.push_back(wire.item_entry(comparison(i), custom_id(i), model));
  return entries;
}

std::string upload(fixture& fx, const lps::openai_batch_wire& wire,
                   const std::vector<std::string>& entries, const std::string& job) {
  auto r = fx.call(wire.upload(fx.openai_target(), entries, job));
  lps::wire_response error;
  auto id = wire.read_upload(r.status, r.body, r.headers, std::chrono::system_clock::now(), error);
  INFO(r.status << " " << r.body << " " << error.error_message);
  REQUIRE(error.success);
  REQUIRE(id.rfind("file-", 0) == 0);
  return id;
}

/// Uploads `entries` and creates a batch on them; returns the create answer's status.
lps::batch_job_status start_openai(fixture& fx, const lps::openai_batch_wire& wire,
                                   const std::vector<std::string>& entries,
                                   const std::string& job) {
  auto file = upload(fx, wire, entries, job);
  return read_job(wire, fx.call(wire.create(fx.openai_target(), file, entries, job)));
}

json::object openai_batch_object(fixture& fx, const std::string& id) {
  auto r = fx.openai("GET", "/v1/batches/" + id);
  REQUIRE(r.status == 200);
  return parse_object(r.body);
}

// -- Anthropic helpers --

std::vector<std::string> anthropic_entries(const lps::anthropic_batch_wire& wire, int n) {
  std::vector<std::string> entries;
  for (int i = 0; i < n; ++i)
    entries.push_back(wire.item_entry(comparison(i), custom_id(i), anthropic_model));
  return entries;
}

json::object anthropic_error(const http_client_response& r, unsigned status) {
  INFO(r.body);
  CHECK(r.status == status);
  auto body = parse_object(r.body);
  CHECK(str(body.at("type")) == "error");
  CHECK(str(body.at("request_id")).rfind("req_01", 0) == 0);
  return body.at("error").as_object();
}

json::object openai_error(const http_client_response& r, unsigned status) {
  INFO(r.body);
  CHECK(r.status == status);
  auto body = parse_object(r.body);
  const auto& e = body.at("error").as_object();
  CHECK(e.at("message").is_string());
  CHECK(e.contains("type"));
  CHECK(e.contains("param"));
  CHECK(e.contains("code"));
  return e;
}

} // namespace

// -- OpenAI ----------------------------------------------------------------------------------

TEST_CASE("openai batch: upload, create, poll to completed, download equals sync answers") {
  fixture fx;
  lps::openai_batch_wire wire;
  constexpr int n = 24;
  auto entries = openai_entries(wire, n);

  auto upload_answer = fx.call(wire.upload(fx.openai_target(), entries, "job-1"));
  REQUIRE(upload_answer.status == 200);
  auto file = parse_object(upload_answer.body);
  CHECK(str(file.at("id")).rfind("file-", 0) == 0);
  CHECK(str(file.at("object")) == "file");
  CHECK(str(file.at("purpose")) == "batch");
  CHECK(str(file.at("status")) == "processed");
  CHECK(str(file.at("filename")) == "job-1.jsonl");
  CHECK(file.at("created_at").to_number<int64_t>() > 1700000000);
  size_t bytes = 0;
  for (const auto& e : entries)
    bytes += e.size() + 1;
  CHECK(file.at("bytes").to_number<uint64_t>() == bytes);
  auto file_id = str(file.at("id"));

  // The input file comes back byte for byte.
  auto content = fx.openai("GET", "/v1/files/" + file_id + "/content");
  REQUIRE(content.status == 200);
  CHECK(content.body.size() == bytes);
  CHECK(lines_of(content.body) == entries);

  auto created = fx.call(wire.create(fx.openai_target(), file_id, entries, "job-1"));
  auto job = read_job(wire, created);
  CHECK(job.state == batch_job_state::validating);
  auto raw = parse_object(created.body);
  for (const char* key : {"id",
                          "object",
                          "endpoint",
                          "errors",
                          "input_file_id",
                          "completion_window",
                          "status",
                          "output_file_id",
                          "error_file_id",
                          "created_at",
                          "in_progress_at",
                          "expires_at",
                          "finalizing_at",
                          "completed_at",
                          "failed_at",
                          "expired_at",
                          "cancelling_at",
                          "cancelled_at",
                          "request_counts",
                          "metadata",
                          "model",
                          "usage"})
    CHECK(raw.contains(key));
  CHECK(str(raw.at("id")).rfind("batch_", 0) == 0);
  CHECK(str(raw.at("object")) == "batch");
  CHECK(str(raw.at("endpoint")) == "/v1/chat/completions");
  CHECK(str(raw.at("status")) == "validating");
  CHECK(str(raw.at("input_file_id")) == file_id);
  CHECK(str(raw.at("completion_window")) == "24h");
  CHECK(str(raw.at("metadata").at("lps_job_id")) == "job-1");
  CHECK(raw.at("expires_at").to_number<int64_t>() - raw.at("created_at").to_number<int64_t>()
        == 86400);
  CHECK(raw.at("output_file_id").is_null());
  CHECK(raw.at("in_progress_at").is_null());

  lps::batch_job_status last;
  auto seen = poll_until(fx, wire, fx.openai_target(), job.provider_job_id, has_ended, last);
  INFO(json::serialize(json::value_from(seen)));
  // validating -> in_progress -> (finalizing) -> completed, never backwards.
  REQUIRE(seen.size() >= 3);
  CHECK(seen.front() == "validating");
  CHECK(seen[1] == "in_progress");
  CHECK(seen.back() == "completed");
  CHECK(last.state == batch_job_state::ended);
  CHECK(last.total == n);
  CHECK(last.succeeded == n);
  CHECK(last.failed == 0);
  REQUIRE(last.result_locations.size() == 1); // no error file when nothing failed

  auto done = openai_batch_object(fx, job.provider_job_id);
  CHECK(str(done.at("output_file_id")) == last.result_locations[0]);
  CHECK(done.at("error_file_id").is_null());
  CHECK(str(done.at("model")) == openai_model);
  for (const char* key : {"in_progress_at", "finalizing_at", "completed_at"})
    CHECK(done.at(key).is_int64());
  CHECK(done.at("failed_at").is_null());
  CHECK(done.at("usage").at("input_tokens").to_number<int64_t>() > 0);
  CHECK(done.at("errors").is_null());

  auto results = download(fx, wire, fx.openai_target(), last);
  REQUIRE(results.size() == n);
  lps::openai_wire sync;
  for (int i = 0; i < n; ++i) {
    INFO(i);
    const auto& item = results.at(custom_id(i));
    CHECK(item.outcome == kind::succeeded);
    check_same_verdict(item.response, sync_answer(fx, sync, fx.openai_target(), i, openai_model));
  }

  // The raw lines: BatchRequestOutput, in an order other than the input's, and the same
  // bytes on every download.
  auto output = fx.openai("GET", "/v1/files/" + last.result_locations[0] + "/content");
  REQUIRE(output.status == 200);
  auto lines = lines_of(output.body);
  REQUIRE(lines.size() == n);
  std::vector<std::string> order;
  for (const auto& line : lines) {
    auto o = parse_object(line);
    CHECK(str(o.at("id")).rfind("batch_req_", 0) == 0);
    CHECK(o.at("error").is_null());
    const auto& response = o.at("response").as_object();
    CHECK(response.at("status_code").to_number<int>() == 200);
    CHECK(str(response.at("request_id")).rfind("req_", 0) == 0);
    CHECK(str(response.at("body").at("object")) == "chat.completion");
    CHECK(str(response.at("body").at("model")) == openai_model);
    order.push_back(str(o.at("custom_id")));
  }
  std::vector<std::string> input_order;
  for (int i = 0; i < n; ++i)
    input_order.push_back(custom_id(i));
  CHECK(order != input_order);
  CHECK(fx.openai("GET", "/v1/files/" + last.result_locations[0] + "/content").body == output.body);

  auto meta = fx.openai("GET", "/v1/files/" + last.result_locations[0]);
  REQUIRE(meta.status == 200);
  auto meta_object = parse_object(meta.body);
  CHECK(str(meta_object.at("purpose")) == "batch_output");
  CHECK(meta_object.at("bytes").to_number<uint64_t>() == output.body.size());

  // The error file id the batch never showed does not exist.
  CHECK(fx.openai("GET", "/v1/files/file-doesnotexist/content").status == 404);
}

TEST_CASE("openai batch: invalid lines fail the batch with errors.data") {
  fixture fx;
  lps::openai_batch_wire wire;
  auto good = wire.item_entry(comparison(0), "dup", openai_model);
  auto body_of = [&](int i) { return lps::build_openai_request(comparison(i), openai_model, {}); };
  std::vector<std::string> lines{
      good,
      "this is not json",
      R"({"method":"POST","url":"/v1/chat/completions","body":)" + body_of(1) + "}",
      R"({"custom_id":"m","method":"GET","url":"/v1/chat/completions","body":)" + body_of(2) + "}",
      R"({"custom_id":"u","method":"POST","url":"/v1/embeddings","body":)" + body_of(3) + "}",
      R"({"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[]}})",
      R"({"custom_id":"dup","method":"POST","url":"/v1/chat/completions","body":)" + body_of(4)
          + "}",
      wire.item_entry(comparison(5), "other-model", "gpt-4.1"),
  };
  auto job = start_openai(fx, wire, lines, "job-bad");
  CHECK(job.state == batch_job_state::validating);

  lps::batch_job_status last;
  auto seen = poll_until(fx, wire, fx.openai_target(), job.provider_job_id, has_ended, last);
  CHECK(seen == std::vector<std::string>{"validating", "failed"});
  CHECK(last.state == batch_job_state::failed);
  CHECK(last.result_locations.empty());
  CHECK(last.job_error.rfind("line 2: This line is not parseable as valid JSON.", 0) == 0);
  CHECK(last.job_error.find("(and 6 more)") != std::string::npos);

  auto raw = openai_batch_object(fx, job.provider_job_id);
  CHECK(raw.at("failed_at").is_int64());
  CHECK(raw.at("in_progress_at").is_null());
  CHECK(raw.at("output_file_id").is_null());
  CHECK(raw.at("error_file_id").is_null());
  CHECK(raw.at("request_counts").at("total").to_number<int>() == 0);
  CHECK(str(raw.at("errors").at("object")) == "list");
  const auto& data = raw.at("errors").at("data").as_array();
  struct expected {
    int line;
    const char* code;
    const char* param;
  };
  const expected want[] = {
      {2, "invalid_json_line", nullptr},   {3, "missing_required_parameter", "custom_id"},
      {4, "invalid_value", "method"},      {5, "url_mismatch", "url"},
      {6, "empty_array", "body.messages"}, {7, "duplicate_custom_id", "custom_id"},
      {8, "model_mismatch", "body.model"},
  };
  REQUIRE(data.size() == std::size(want));
  for (size_t i = 0; i < data.size(); ++i) {
    INFO(json::serialize(data[i]));
    const auto& e = data[i].as_object();
    CHECK(e.at("line").to_number<int>() == want[i].line);
    CHECK(str(e.at("code")) == want[i].code);
    CHECK(!str(e.at("message")).empty());
    if (want[i].param)
      CHECK(str(e.at("param")) == want[i].param);
    else
      CHECK(e.at("param").is_null());
  }

  SECTION("an empty file fails as empty_file") {
    auto empty = start_openai(fx, wire, {}, "job-empty");
    lps::batch_job_status end;
    poll_until(fx, wire, fx.openai_target(), empty.provider_job_id, has_ended, end);
    CHECK(end.state == batch_job_state::failed);
    auto o = openai_batch_object(fx, empty.provider_job_id);
    CHECK(str(o.at("errors").at("data").at(0).at("code")) == "empty_file");
    CHECK(o.at("errors").at("data").at(0).at("line").is_null());
  }
}

TEST_CASE("openai batch: fail_next_openai_batch fails exactly the next batch") {
  fixture fx;
  lps::openai_batch_wire wire;
  auto set = fx.control("POST", "/_mock/batches", R"({"fail_next_openai_batch": true})");
  REQUIRE(set.status == 200);
  CHECK(parse_object(set.body).at("fail_next_openai_batch").to_number<int>() == 1);
  auto entries = openai_entries(wire, 3);
  auto first = start_openai(fx, wire, entries, "job-f1");
  auto second = start_openai(fx, wire, entries, "job-f2");
  lps::batch_job_status a, b;
  poll_until(fx, wire, fx.openai_target(), first.provider_job_id, has_ended, a);
  poll_until(fx, wire, fx.openai_target(), second.provider_job_id, has_ended, b);
  CHECK(a.state == batch_job_state::failed);
  CHECK(a.job_error.find("Enqueued token limit reached") != std::string::npos);
  auto raw = openai_batch_object(fx, first.provider_job_id);
  CHECK(str(raw.at("errors").at("data").at(0).at("code")) == "token_limit_exceeded");
  CHECK(b.state == batch_job_state::ended);
  CHECK(b.provider_status == "completed");
  CHECK(b.succeeded == 3);
}

TEST_CASE("openai batch: item errors and expiry land in the error file, deterministically") {
  auto options = fast_batches();
  options.item_error_rate = 0.3;
  options.item_expire_rate = 0.2;
  constexpr int n = 60;

  auto run = [&](uint64_t seed) {
    fixture fx{options, seed};
    lps::openai_batch_wire wire;
    auto entries = openai_entries(wire, n);
    auto job = start_openai(fx, wire, entries, "job-err");
    lps::batch_job_status last;
    poll_until(fx, wire, fx.openai_target(), job.provider_job_id, has_ended, last);
    // Items that expired make the batch as a whole `expired` (partial results in the files).
    CHECK(last.provider_status == "expired");
    CHECK(last.state == batch_job_state::ended);
    CHECK(last.total == n);
    CHECK(last.succeeded + last.failed == n);
    REQUIRE(last.result_locations.size() == 2);
    auto raw = openai_batch_object(fx, job.provider_job_id);
    CHECK(raw.at("expired_at").is_int64());
    CHECK(raw.at("completed_at").is_null());

    auto errors = fx.openai("GET", "/v1/files/" + last.result_locations[1] + "/content");
    REQUIRE(errors.status == 200);
    for (const auto& line : lines_of(errors.body)) {
      auto o = parse_object(line);
      CHECK(str(o.at("id")).rfind("batch_req_", 0) == 0);
      if (o.at("response").is_null()) {
        CHECK(str(o.at("error").at("code")) == "batch_expired");
        CHECK(!str(o.at("error").at("message")).empty());
      } else {
        CHECK(o.at("error").is_null());
        CHECK(o.at("response").at("status_code").to_number<int>() == 500);
        CHECK(str(o.at("response").at("body").at("error").at("type")) == "server_error");
      }
    }

    std::map<std::string, kind> outcomes;
    auto results = download(fx, wire, fx.openai_target(), last);
    REQUIRE(results.size() == n);
    size_t succeeded = 0, errored = 0, expired = 0;
    for (const auto& [id, item] : results) {
      outcomes[id] = item.outcome;
      if (item.outcome == kind::succeeded)
        ++succeeded;
      if (item.outcome == kind::errored) {
        ++errored;
        CHECK(item.response.http_status == 500);
        CHECK(item.response.retryable);
      }
      if (item.outcome == kind::expired) {
        ++expired;
        CHECK(item.response.retryable);
      }
    }
    CHECK(succeeded == last.succeeded);
    CHECK(errored > 0);
    CHECK(expired > 0);
    CHECK(succeeded > 0);
    CHECK(errored + expired == last.failed);
    return outcomes;
  };

  auto first = run(42);
  CHECK(run(42) == first);
  CHECK(run(7) != first);
}

TEST_CASE("openai batch: cancel goes cancelling then cancelled with partial results") {
  auto options = fast_batches();
  options.validating = 0ms;
  options.processing = 600ms;
  options.cancel = 80ms;
  fixture fx{options};
  lps::openai_batch_wire wire;
  constexpr int n = 40;
  auto entries = openai_entries(wire, n);
  auto job = start_openai(fx, wire, entries, "job-cancel");
  lps::batch_job_status progress;
  poll_until(
      fx, wire, fx.openai_target(), job.provider_job_id,
      [](const lps::batch_job_status& s) { return s.succeeded >= 5; }, progress);
  CHECK(progress.provider_status == "in_progress");
  CHECK(progress.succeeded < n);

  auto cancelled = read_job(wire, fx.call(wire.cancel(fx.openai_target(), job.provider_job_id)));
  CHECK(cancelled.state == batch_job_state::cancelling);
  CHECK(cancelled.provider_status == "cancelling");
  CHECK(cancelled.result_locations.empty());

  lps::batch_job_status last;
  auto seen = poll_until(fx, wire, fx.openai_target(), job.provider_job_id, has_ended, last);
  CHECK(seen.back() == "cancelled");
  CHECK(last.state == batch_job_state::ended);
  REQUIRE(last.result_locations.size() == 2);
  auto raw = openai_batch_object(fx, job.provider_job_id);
  CHECK(raw.at("cancelling_at").is_int64());
  CHECK(raw.at("cancelled_at").is_int64());
  CHECK(raw.at("completed_at").is_null());

  auto results = download(fx, wire, fx.openai_target(), last);
  REQUIRE(results.size() == n);
  size_t succeeded = 0, not_run = 0;
  for (const auto& [id, item] : results) {
    succeeded += item.outcome == kind::succeeded ? 1 : 0;
    not_run += item.outcome == kind::cancelled ? 1 : 0;
  }
  CHECK(succeeded == last.succeeded);
  CHECK(succeeded >= 5);
  CHECK(succeeded < n);
  CHECK(succeeded + not_run == n);

  // Cancelling again is harmless; a finished batch cannot be cancelled.
  auto again = fx.call(wire.cancel(fx.openai_target(), job.provider_job_id));
  CHECK(again.status == 200);
  CHECK(str(parse_object(again.body).at("status")) == "cancelled");

  std::string error;
  REQUIRE(fx.server.set_batch_options(fast_batches(), error));
  auto other = start_openai(fx, wire, openai_entries(wire, 2), "job-done");
  lps::batch_job_status other_end;
  poll_until(fx, wire, fx.openai_target(), other.provider_job_id, has_ended, other_end);
  auto refused = fx.call(wire.cancel(fx.openai_target(), other.provider_job_id));
  auto e = openai_error(refused, 409);
  CHECK(str(e.at("message")).find("completed") != std::string::npos);
}

TEST_CASE("openai batch: list newest first with metadata and pagination") {
  fixture fx;
  lps::openai_batch_wire wire;
  auto entries = openai_entries(wire, 2);
  std::vector<std::string> ids;
  for (const char* job : {"job-a", "job-b", "job-c"})
    ids.push_back(start_openai(fx, wire, entries, job).provider_job_id);

  auto page = fx.openai("GET", "/v1/batches?limit=2");
  REQUIRE(page.status == 200);
  auto list = parse_object(page.body);
  CHECK(str(list.at("object")) == "list");
  CHECK(list.at("has_more").as_bool());
  const auto& data = list.at("data").as_array();
  REQUIRE(data.size() == 2);
  CHECK(str(data[0].at("id")) == ids[2]);
  CHECK(str(data[1].at("id")) == ids[1]);
  CHECK(str(data[0].at("metadata").at("lps_job_id")) == "job-c");
  CHECK(str(data[1].at("metadata").at("lps_job_id")) == "job-b");
  CHECK(str(list.at("first_id")) == ids[2]);
  CHECK(str(list.at("last_id")) == ids[1]);

  auto rest = parse_object(fx.openai("GET", "/v1/batches?limit=2&after=" + ids[1]).body);
  REQUIRE(rest.at("data").as_array().size() == 1);
  CHECK(str(rest.at("data").at(0).at("id")) == ids[0]);
  CHECK(str(rest.at("data").at(0).at("metadata").at("lps_job_id")) == "job-a");
  CHECK(!rest.at("has_more").as_bool());

  auto all = parse_object(fx.openai("GET", "/v1/batches").body);
  CHECK(all.at("data").as_array().size() == 3);
  CHECK(!all.at("has_more").as_bool());

  openai_error(fx.openai("GET", "/v1/batches?limit=0"), 400);
  openai_error(fx.openai("GET", "/v1/batches?limit=101"), 400);
}

TEST_CASE("openai batch: keys, unknown ids and bad create requests") {
  fixture fx;
  lps::openai_batch_wire wire;
  auto entries = openai_entries(wire, 1);

  SECTION("a missing or wrong key is refused on every endpoint") {
    auto missing = fx.openai("POST", "/v1/files", "", "");
    auto e = openai_error(missing, 401);
    CHECK(e.at("code").is_null());
    CHECK(str(e.at("message")).find("You didn't provide an API key") != std::string::npos);
    auto empty = fx.call(wire.upload(fx.openai_target(""), entries, "j"));
    openai_error(empty, 401);
    auto wrong = fx.call(wire.upload(fx.openai_target("nope-key"), entries, "j"));
    CHECK(str(openai_error(wrong, 401).at("code")) == "invalid_api_key");
    auto file = upload(fx, wire, entries, "j");
    openai_error(fx.call(wire.create(fx.openai_target("bad"), file, entries, "j")), 401);
    auto job = read_job(wire, fx.call(wire.create(fx.openai_target(), file, entries, "j")));
    openai_error(fx.call(wire.poll(fx.openai_target("bad"), job.provider_job_id)), 401);
    openai_error(fx.call(wire.cancel(fx.openai_target(""), job.provider_job_id)), 401);
    openai_error(fx.openai("GET", "/v1/batches", "", "bad"), 401);
    openai_error(fx.openai("GET", "/v1/files/" + file + "/content", "", ""), 401);
    CHECK(fx.server.stats().batch.by_outcome.at("unauthorized") == 8);
  }

  SECTION("unknown ids are 404") {
    openai_error(fx.call(wire.poll(fx.openai_target(), "batch_nope")), 404);
    openai_error(fx.call(wire.cancel(fx.openai_target(), "batch_nope")), 404);
    openai_error(fx.call(wire.create(fx.openai_target(), "file-nope", entries, "j")), 404);
    openai_error(fx.openai("GET", "/v1/files/file-nope/content"), 404);
    openai_error(fx.openai("DELETE", "/v1/batches/batch_nope"), 404);
  }

  SECTION("create checks its own fields") {
    auto file = upload(fx, wire, entries, "j");
    auto create = [&](json::object body) {
      return fx.openai("POST", "/v1/batches", json::serialize(body));
    };
    json::object good{{"input_file_id", file},
                      {"endpoint", "/v1/chat/completions"},
                      {"completion_window", "24h"}};
    CHECK(create(good).status == 200);
    auto no_file = good;
    no_file.erase("input_file_id");
    CHECK(str(openai_error(create(no_file), 400).at("param")) == "input_file_id");
    auto endpoint = good;
    endpoint["endpoint"] = "/v1/embeddings";
    CHECK(str(openai_error(create(endpoint), 400).at("param")) == "endpoint");
    auto window = good;
    window["completion_window"] = "48h";
    CHECK(str(openai_error(create(window), 400).at("param")) == "completion_window");
    auto metadata = good;
    json::object many;
    for (int i = 0; i < 17; ++i)
      many["k" + std::to_string(i)] = "v";
    metadata["metadata"] = many;
    CHECK(str(openai_error(create(metadata), 400).at("param")) == "metadata");
    openai_error(fx.openai("POST", "/v1/batches", "not json"), 400);
  }

  SECTION("uploads need purpose batch, a file and a .jsonl name") {
    auto request = wire.upload(fx.openai_target(), entries, "j");
    auto with = [&](std::string from, std::string to) {
      auto r = request;
      auto pos = r.body.find(from);
      REQUIRE(pos != std::string::npos);
      r.body.replace(pos, from.size(), to);
      return fx.call(std::move(r));
    };
    CHECK(str(openai_error(with("\r\n\r\nbatch\r\n", "\r\n\r\nbatches\r\n"), 400).at("param"))
          == "purpose");
    CHECK(str(openai_error(with("name=\"purpose\"", "name=\"porpoise\""), 400).at("param"))
          == "purpose");
    openai_error(with("j.jsonl", "j.txt"), 400);
    auto r = request;
    r.headers.clear();
    r.headers.emplace_back("authorization", "Bearer test-key");
    r.headers.emplace_back("content-type", "application/json");
    openai_error(fx.call(std::move(r)), 400);
  }
}

// -- Anthropic -------------------------------------------------------------------------------

TEST_CASE("anthropic batch: create, poll to ended, results equal sync answers") {
  fixture fx;
  lps::anthropic_batch_wire wire;
  constexpr int n = 24;
  auto entries = anthropic_entries(wire, n);
  auto created = fx.call(wire.create(fx.anthropic_target(), "", entries, "job-1"));
  REQUIRE(created.status == 200);
  CHECK(header_of(created, "request-id").value_or("").rfind("req_01", 0) == 0);
  auto job = read_job(wire, created);
  CHECK(job.state == batch_job_state::in_progress);
  CHECK(job.total == n);
  CHECK(job.result_locations.empty());
  auto raw = parse_object(created.body);
  CHECK(str(raw.at("id")).rfind("msgbatch_01", 0) == 0);
  CHECK(str(raw.at("type")) == "message_batch");
  CHECK(str(raw.at("processing_status")) == "in_progress");
  const auto& counts = raw.at("request_counts").as_object();
  CHECK(counts.at("processing").to_number<int>() == n);
  for (const char* key : {"succeeded", "errored", "canceled", "expired"})
    CHECK(counts.at(key).to_number<int>() == 0);
  for (const char* key : {"ended_at", "archived_at", "cancel_initiated_at", "results_url"})
    CHECK(raw.at(key).is_null());
  auto created_at = str(raw.at("created_at"));
  CHECK(created_at.size() == 27);
  CHECK(created_at.back() == 'Z');
  CHECK(str(raw.at("expires_at")) > created_at);

  // Results before the end are refused.
  auto early = fx.anthropic("GET", "/v1/messages/batches/" + job.provider_job_id + "/results");
  CHECK(str(anthropic_error(early, 404).at("type")) == "not_found_error");

  lps::batch_job_status last;
  auto seen = poll_until(fx, wire, fx.anthropic_target(), job.provider_job_id, has_ended, last);
  CHECK(seen == std::vector<std::string>{"in_progress", "ended"});
  CHECK(last.succeeded == n);
  CHECK(last.total == n);
  REQUIRE(last.result_locations.size() == 1);
  CHECK(last.result_locations[0]
        == fx.origin() + "/v1/messages/batches/" + job.provider_job_id + "/results");
  auto ended =
      parse_object(fx.anthropic("GET", "/v1/messages/batches/" + job.provider_job_id).body);
  CHECK(ended.at("ended_at").is_string());
  CHECK(ended.at("request_counts").at("processing").to_number<int>() == 0);

  auto results = download(fx, wire, fx.anthropic_target(), last);
  REQUIRE(results.size() == n);
  lps::anthropic_wire sync;
  for (int i = 0; i < n; ++i) {
    INFO(i);
    const auto& item = results.at(custom_id(i));
    CHECK(item.outcome == kind::succeeded);
    check_same_verdict(item.response,
                       sync_answer(fx, sync, fx.anthropic_target(), i, anthropic_model));
  }

  auto file = fx.anthropic("GET", "/v1/messages/batches/" + job.provider_job_id + "/results");
  REQUIRE(file.status == 200);
  CHECK(header_of(file, "content-type").value_or("") == "application/x-jsonl");
  std::vector<std::string> order;
  for (const auto& line : lines_of(file.body)) {
    auto o = parse_object(line);
    order.push_back(str(o.at("custom_id")));
    const auto& message = o.at("result").at("message").as_object();
    CHECK(str(o.at("result").at("type")) == "succeeded");
    CHECK(str(message.at("type")) == "message");
    CHECK(str(message.at("id")).rfind("msg_01", 0) == 0);
    CHECK(str(message.at("model")) == anthropic_model);
    CHECK(str(message.at("stop_reason")) == "tool_use");
  }
  std::vector<std::string> input_order;
  for (int i = 0; i < n; ++i)
    input_order.push_back(custom_id(i));
  CHECK(order != input_order);
}

TEST_CASE("anthropic batch: invalid requests are refused with a 400 naming the request") {
  fixture fx;
  lps::anthropic_batch_wire wire;
  auto entries = anthropic_entries(wire, 3);
  auto create = [&](const std::vector<std::string>& e) {
    return fx.call(wire.create(fx.anthropic_target(), "", e, "j"));
  };
  auto message = [&](const http_client_response& r) {
    auto e = anthropic_error(r, 400);
    CHECK(str(e.at("type")) == "invalid_request_error");
    return str(e.at("message"));
  };

  auto no_max_tokens = entries;
  auto params = parse_object(lps::build_anthropic_body(comparison(1), anthropic_model));
  params.erase("max_tokens");
  no_max_tokens[1] = json::serialize(json::object{{"custom_id", "x1"}, {"params", params}});
  CHECK(message(create(no_max_tokens)) == "requests.1.params.max_tokens: Field required");

  auto bad_role = entries;
  params = parse_object(lps::build_anthropic_body(comparison(2), anthropic_model));
  params["messages"].as_array()[0].as_object()["role"] = "system";
  bad_role[2] = json::serialize(json::object{{"custom_id", "x2"}, {"params", params}});
  CHECK(message(create(bad_role)).rfind("requests.2.params.messages.0.role:", 0) == 0);

  auto bad_id = entries;
  bad_id[0] = wire.item_entry(comparison(0), "not ok!", anthropic_model);
  CHECK(message(create(bad_id)).rfind("requests.0.custom_id: String should match pattern", 0) == 0);
  auto long_id = entries;
  long_id[0] = wire.item_entry(comparison(0), std::string(65, 'a'), anthropic_model);
  CHECK(message(create(long_id)).rfind("requests.0.custom_id:", 0) == 0);

  auto duplicate = entries;
  duplicate[2] = wire.item_entry(comparison(2), custom_id(0), anthropic_model);
  CHECK(message(create(duplicate)).rfind("requests.2.custom_id:", 0) == 0);

  CHECK(message(create({})).rfind("requests:", 0) == 0);
  message(fx.anthropic("POST", "/v1/messages/batches", "[1,2]"));
  message(fx.anthropic("POST", "/v1/messages/batches", R"({"requests":[{"params":{}}]})"));

  // Keys and the version header.
  auto e = anthropic_error(fx.call(wire.create(fx.anthropic_target(""), "", entries, "j")), 401);
  CHECK(str(e.at("type")) == "authentication_error");
  anthropic_error(fx.call(wire.create(fx.anthropic_target("bad"), "", entries, "j")), 401);
  auto no_version = fx.anthropic("POST", "/v1/messages/batches", "{}", "test-key", false);
  CHECK(str(anthropic_error(no_version, 400).at("message")).find("anthropic-version")
        != std::string::npos);
  anthropic_error(fx.call(wire.poll(fx.anthropic_target("bad"), "msgbatch_x")), 401);
  anthropic_error(fx.call(wire.poll(fx.anthropic_target(), "msgbatch_x")), 404);
  anthropic_error(fx.anthropic("GET", "/v1/messages/batches/msgbatch_x/results"), 404);

  auto stats = fx.server.stats().batch;
  CHECK(!stats.batches_created.contains("anthropic"));
  CHECK(stats.by_endpoint.at("batch_create") == 11);
}

TEST_CASE("anthropic batch: errored and expired results, deterministically") {
  auto options = fast_batches();
  options.item_error_rate = 0.25;
  options.item_expire_rate = 0.25;
  constexpr int n = 60;
  auto run = [&](uint64_t seed) {
    fixture fx{options, seed};
    lps::anthropic_batch_wire wire;
    auto job = read_job(
        wire, fx.call(wire.create(fx.anthropic_target(), "", anthropic_entries(wire, n), "j")));
    lps::batch_job_status last;
    poll_until(fx, wire, fx.anthropic_target(), job.provider_job_id, has_ended, last);
    auto raw =
        parse_object(fx.anthropic("GET", "/v1/messages/batches/" + job.provider_job_id).body);
    const auto& counts = raw.at("request_counts").as_object();
    auto results = download(fx, wire, fx.anthropic_target(), last);
    REQUIRE(results.size() == n);
    std::map<kind, int> by_kind;
    std::map<std::string, kind> outcomes;
    for (const auto& [id, item] : results) {
      by_kind[item.outcome] += 1;
      outcomes[id] = item.outcome;
      if (item.outcome == kind::errored) {
        CHECK(item.response.http_status == 500);
        CHECK(item.response.retryable);
      }
    }
    CHECK(by_kind[kind::succeeded] == counts.at("succeeded").to_number<int>());
    CHECK(by_kind[kind::errored] == counts.at("errored").to_number<int>());
    CHECK(by_kind[kind::expired] == counts.at("expired").to_number<int>());
    CHECK(counts.at("canceled").to_number<int>() == 0);
    CHECK(by_kind[kind::succeeded] > 0);
    CHECK(by_kind[kind::errored] > 0);
    CHECK(by_kind[kind::expired] > 0);

    auto file = fx.anthropic("GET", "/v1/messages/batches/" + job.provider_job_id + "/results");
    for (const auto& line : lines_of(file.body)) {
      auto o = parse_object(line);
      const auto& result = o.at("result").as_object();
      auto type = str(result.at("type"));
      if (type == "errored") {
        CHECK(str(result.at("error").at("type")) == "error");
        CHECK(str(result.at("error").at("error").at("type")) == "api_error");
        CHECK(!str(result.at("error").at("error").at("message")).empty());
      } else if (type == "expired") {
        CHECK(result.size() == 1);
      }
    }
    return outcomes;
  };
  auto first = run(42);
  CHECK(run(42) == first);
  CHECK(run(9) != first);
}

TEST_CASE("anthropic batch: cancel goes canceling then ended with canceled results") {
  auto options = fast_batches();
  options.validating = 0ms;
  options.processing = 600ms;
  options.cancel = 80ms;
  fixture fx{options};
  lps::anthropic_batch_wire wire;
  constexpr int n = 40;
  auto job = read_job(
      wire, fx.call(wire.create(fx.anthropic_target(), "", anthropic_entries(wire, n), "j")));
  fx.clock.advance(200ms);
  auto cancel = fx.call(wire.cancel(fx.anthropic_target(), job.provider_job_id));
  auto cancelling = read_job(wire, cancel);
  CHECK(cancelling.state == batch_job_state::cancelling);
  CHECK(cancelling.provider_status == "canceling");
  auto raw = parse_object(cancel.body);
  CHECK(raw.at("cancel_initiated_at").is_string());
  CHECK(raw.at("results_url").is_null());

  lps::batch_job_status last;
  auto seen = poll_until(fx, wire, fx.anthropic_target(), job.provider_job_id, has_ended, last);
  CHECK(seen.back() == "ended");
  auto ended =
      parse_object(fx.anthropic("GET", "/v1/messages/batches/" + job.provider_job_id).body);
  auto canceled = ended.at("request_counts").at("canceled").to_number<int>();
  CHECK(canceled > 0);
  CHECK(canceled < n);
  CHECK(static_cast<int>(last.succeeded) + canceled == n);

  auto results = download(fx, wire, fx.anthropic_target(), last);
  REQUIRE(results.size() == n);
  int not_run = 0;
  for (const auto& [id, item] : results)
    not_run += item.outcome == kind::cancelled ? 1 : 0;
  CHECK(not_run == canceled);

  auto again = fx.call(wire.cancel(fx.anthropic_target(), job.provider_job_id));
  CHECK(str(anthropic_error(again, 400).at("type")) == "invalid_request_error");
}

TEST_CASE("anthropic batch: list newest first with pagination") {
  fixture fx;
  lps::anthropic_batch_wire wire;
  auto entries = anthropic_entries(wire, 2);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(read_job(wire, fx.call(wire.create(fx.anthropic_target(), "", entries, "j")))
                      .provider_job_id);
  auto page = parse_object(fx.anthropic("GET", "/v1/messages/batches?limit=2").body);
  REQUIRE(page.at("data").as_array().size() == 2);
  CHECK(str(page.at("data").at(0).at("id")) == ids[2]);
  CHECK(str(page.at("data").at(1).at("id")) == ids[1]);
  CHECK(str(page.at("data").at(0).at("type")) == "message_batch");
  CHECK(str(page.at("first_id")) == ids[2]);
  CHECK(str(page.at("last_id")) == ids[1]);
  CHECK(page.at("has_more").as_bool());
  auto rest = parse_object(fx.anthropic("GET", "/v1/messages/batches?after_id=" + ids[1]).body);
  REQUIRE(rest.at("data").as_array().size() == 1);
  CHECK(str(rest.at("data").at(0).at("id")) == ids[0]);
  CHECK(!rest.at("has_more").as_bool());
  auto newer = parse_object(fx.anthropic("GET", "/v1/messages/batches?before_id=" + ids[0]).body);
  REQUIRE(newer.at("data").as_array().size() == 2);
  CHECK(str(newer.at("data").at(0).at("id")) == ids[2]);
  auto empty = parse_object(fx.anthropic("GET", "/v1/messages/batches?after_id=" + ids[0]).body);
  CHECK(empty.at("data").as_array().empty());
  CHECK(empty.at("first_id").is_null());
  anthropic_error(fx.anthropic("GET", "/v1/messages/batches?limit=0"), 400);
}

// -- stats, reset, settings ------------------------------------------------------------------

TEST_CASE("batch stats count every batch call apart from the sync counters, reset clears") {
  fixture fx;
  lps::openai_batch_wire openai;
  lps::anthropic_batch_wire anthropic;
  auto job = start_openai(fx, openai, openai_entries(openai, 5), "job-s");
  lps::batch_job_status last;
  poll_until(fx, openai, fx.openai_target(), job.provider_job_id, has_ended, last);
  download(fx, openai, fx.openai_target(), last);
  auto a = read_job(anthropic, fx.call(anthropic.create(fx.anthropic_target(), "",
                                                        anthropic_entries(anthropic, 4), "j")));
  fx.call(anthropic.cancel(fx.anthropic_target(), a.provider_job_id));
  fx.anthropic("GET", "/v1/messages/batches");

  auto s = fx.server.stats();
  CHECK(s.calls == 0); // the sync counters see none of it
  CHECK(s.by_dialect.empty());
  const auto& b = s.batch;
  CHECK(b.by_endpoint.at("files_upload") == 1);
  CHECK(b.by_endpoint.at("batch_create") == 2);
  CHECK(b.by_endpoint.at("file_content") == 1);
  CHECK(b.by_endpoint.at("batch_cancel") == 1);
  CHECK(b.by_endpoint.at("batch_list") == 1);
  CHECK(b.by_dialect_endpoint.at("openai").at("batch_get") >= 3);
  CHECK(b.by_dialect_endpoint.at("anthropic").at("batch_create") == 1);
  CHECK(b.batches_created.at("openai") == 1);
  CHECK(b.batches_created.at("anthropic") == 1);
  CHECK(b.items_submitted.at("openai") == 5);
  CHECK(b.items_submitted.at("anthropic") == 4);
  uint64_t sum = 0;
  for (const auto& [endpoint, count] : b.by_endpoint)
    sum += count;
  CHECK(sum == b.calls);
  CHECK(b.by_outcome.at("ok") == b.calls);

  auto stats = parse_object(fx.control("GET", "/_mock/stats").body);
  CHECK(stats.at("batch").at("by_endpoint").at("files_upload").to_number<int>() == 1);
  CHECK(stats.at("batch").at("items_submitted").at("openai").to_number<int>() == 5);

  // A sync call counts where it always did, and not as a batch call.
  lps::openai_wire sync;
  sync_answer(fx, sync, fx.openai_target(), 1, openai_model);
  CHECK(fx.server.stats().calls == 1);
  CHECK(fx.server.stats().batch.calls == b.calls);

  std::string error;
  REQUIRE(fx.server.configure_batches(R"({"processing_ms": 5})", error));
  CHECK(fx.server.batch_options().processing == 5ms);
  REQUIRE(fx.control("POST", "/_mock/reset").status == 200);
  auto after = fx.server.stats();
  CHECK(after.batch.calls == 0);
  CHECK(after.batch.by_endpoint.empty());
  CHECK(after.calls == 0);
  CHECK(fx.server.batch_options().processing == fast_batches().processing);
  openai_error(fx.call(openai.poll(fx.openai_target(), job.provider_job_id)), 404);
  openai_error(fx.openai("GET", "/v1/files/" + last.result_locations[0] + "/content"), 404);
  anthropic_error(fx.call(anthropic.poll(fx.anthropic_target(), a.provider_job_id)), 404);
}

TEST_CASE("batch settings: control endpoint, in-process setter and start options") {
  fixture fx;
  auto get = parse_object(fx.control("GET", "/_mock/batches").body);
  CHECK(get.at("validating_ms").to_number<int>() == 30);
  CHECK(get.at("processing_ms").to_number<int>() == 120);
  CHECK(get.at("cancel_ms").to_number<int>() == 60);
  CHECK(get.at("item_error_rate").to_number<double>() == 0.0);

  auto set = fx.control("POST", "/_mock/batches",
                        R"({"validating_ms": 1, "item_error_rate": 0.5, "item_expire_rate": 0.25,
                            "fail_next_openai_batch": 3})");
  REQUIRE(set.status == 200);
  auto o = fx.server.batch_options();
  CHECK(o.validating == 1ms);
  CHECK(o.processing == 120ms);
  CHECK(o.item_error_rate == 0.5);
  CHECK(o.item_expire_rate == 0.25);
  CHECK(o.fail_next_openai_batches == 3);

  for (const char* bad :
       {R"({"item_error_rate": 1.5})", R"({"item_expire_rate": 0.6})", R"({"processing_ms": -1})",
        R"({"cancel_ms": 1.5})", R"({"nonsense": 1})", R"([1])", "not json"}) {
    INFO(bad);
    auto r = fx.control("POST", "/_mock/batches", bad);
    CHECK(r.status == 400);
    CHECK(parse_object(r.body).at("error").at("message").is_string());
  }
  CHECK(fx.server.batch_options().item_error_rate == 0.5); // unchanged by refused bodies

  std::string error;
  lps::mock_batch_options bad;
  bad.item_error_rate = 0.7;
  bad.item_expire_rate = 0.7;
  CHECK(!fx.server.set_batch_options(bad, error));
  CHECK(!error.empty());
  CHECK(fx.server.set_batch_options(fast_batches(), error));
  CHECK(fx.server.batch_options().fail_next_openai_batches == 0);

  lps::mock_provider_server other;
  lps::mock_provider_options options;
  options.batch.item_expire_rate = -0.1;
  CHECK(!other.start(options, error));
  CHECK(error.find("batch") != std::string::npos);
}

// -- scale -----------------------------------------------------------------------------------

TEST_CASE("anthropic batch of 100,000 requests", "[large]") {
  auto options = fast_batches();
  options.processing = 50ms;
  options.item_error_rate = 0.1;
  options.item_expire_rate = 0.1;
  fixture fx{options};
  lps::anthropic_batch_wire wire;
  constexpr int n = 100000;
  std::vector<std::string> entries;
  entries.reserve(n);
  for (int i = 0; i < n; ++i) {
    lps::comparison_request req;
    req.user_prompt = "Essays " + std::to_string(i);
    entries.push_back(wire.item_entry(req, "i" + std::to_string(i), "m"));
  }
  auto t0 = clock_type::now();
  auto job = read_job(wire, fx.call(wire.create(fx.anthropic_target(), "", entries, "j")));
  entries = {};
  CHECK(job.total == n);
  lps::batch_job_status last;
  poll_until(fx, wire, fx.anthropic_target(), job.provider_job_id, has_ended, last);
  auto results = download(fx, wire, fx.anthropic_target(), last);
  CHECK(results.size() == n);
  size_t succeeded = 0;
  for (const auto& [id, item] : results)
    succeeded += item.outcome == kind::succeeded ? 1 : 0;
  CHECK(succeeded == last.succeeded);
  CHECK(succeeded > n * 7 / 10);
  WARN("100,000-request Anthropic batch: "
       << std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count()
       << " ms");
}

TEST_CASE("openai batch of 50,000 requests", "[large]") {
  auto options = fast_batches();
  options.processing = 50ms;
  fixture fx{options};
  lps::openai_batch_wire wire;
  constexpr int n = 50000;
  std::vector<std::string> entries;
  entries.reserve(n);
  for (int i = 0; i < n; ++i) {
    lps::comparison_request req;
    req.user_prompt = "Essays " + std::to_string(i);
    entries.push_back(wire.item_entry(req, "i" + std::to_string(i), "m"));
  }
  auto t0 = clock_type::now();
  auto job = start_openai(fx, wire, entries, "big");
  entries = {};
  lps::batch_job_status last;
  poll_until(fx, wire, fx.openai_target(), job.provider_job_id, has_ended, last);
  CHECK(last.succeeded == n);
  auto results = download(fx, wire, fx.openai_target(), last);
  CHECK(results.size() == n);
  WARN("50,000-request OpenAI batch: "
       << std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count()
       << " ms");
}
