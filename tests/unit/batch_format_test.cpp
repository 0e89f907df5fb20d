// The OpenAI Batch API and Anthropic Message Batches wire formats as pure functions: every
// request (parsed back and checked field by field), and the strict reading of every answer,
// with a fixed clock.

#include "actors/providers/anthropic_batch_format.hpp"
#include "actors/providers/anthropic_format.hpp"
#include "actors/providers/openai_batch_format.hpp"
#include "actors/providers/openai_format.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

using namespace lps;
namespace json = boost::json;
using namespace std::chrono_literals;
using kind = batch_item_result::kind;

namespace {

const auto fixed_now = std::chrono::system_clock::from_time_t(1714564800);

constexpr const char* openai_key = "sk-proj-SECRETsecret0123456789abcdef";
constexpr const char* anthropic_key = "sk-ant-api03-SECRETsecret0123456789";

comparison_request make_request(std::string prompt = "Compare essay A with essay B.") {
  comparison_request req;
  req.queue_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
  req.correlation_id = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
  req.user_prompt = std::move(prompt);
  return req;
}

wire_target openai_target() {
  wire_target t;
  t.base_url = "http://127.0.0.1:8080/v1";
  t.api_key = openai_key;
  t.timeout = 12345ms;
  return t;
}

wire_target anthropic_target() {
  wire_target t;
  t.base_url = "http://127.0.0.1:9090";
  t.api_key = anthropic_key;
  t.timeout = 23456ms;
  return t;
}

const std::string* header(const http_client_request& request, std::string_view name) {
  for (const auto& [key, value] : request.headers)
    if (key == name)
      return &value;
  return nullptr;
}

json::object parse(std::string_view text) {
  return json::parse(text).as_object();
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

/// Neither key appears anywhere in `r`'s message.
void check_no_key(const wire_response& r) {
  CHECK_FALSE(contains(r.error_message, "SECRET"));
  CHECK_FALSE(contains(r.error_message, openai_key));
  CHECK_FALSE(contains(r.error_message, anthropic_key));
}

json::object verdict(json::value winner, json::value confidence = 4) {
  return json::object{
      {"winner", winner}, {"justification", "A argues better."}, {"confidence", confidence}};
}

// -- OpenAI fixtures --

json::object chat_completion(const json::object& answer) {
  json::object message{{"role", "assistant"}, {"content", json::serialize(answer)}};
  json::object choice{{"index", 0}, {"message", std::move(message)}, {"finish_reason", "stop"}};
  return json::object{
      {"id", "chatcmpl-1"},
      {"object", "chat.completion"},
      {"model", "gpt-4o-mini"},
      {"choices", json::array{std::move(choice)}},
      {"usage", {{"prompt_tokens", 120}, {"completion_tokens", 30}, {"total_tokens", 150}}}};
}

std::string openai_line(std::string custom_id, unsigned status, json::value body) {
  json::object response{{"status_code", status}, {"request_id", "req_1"}, {"body", body}};
  return json::serialize(json::object{{"id", "batch_req_1"},
                                      {"custom_id", std::move(custom_id)},
                                      {"response", std::move(response)},
                                      {"error", nullptr}});
}

std::string openai_error_line(std::string custom_id, std::string code, std::string message) {
  return json::serialize(
      json::object{{"id", "batch_req_2"},
                   {"custom_id", std::move(custom_id)},
                   {"response", nullptr},
                   {"error", {{"code", std::move(code)}, {"message", std::move(message)}}}});
}

std::string openai_http_error(std::string type, std::string message, std::string code = "") {
  json::object err{{"message", std::move(message)}, {"type", std::move(type)}, {"param", nullptr}};
  err["code"] = code.empty() ? json::value(nullptr) : json::value(code);
  return json::serialize(json::object{{"error", std::move(err)}});
}

json::object openai_batch(std::string status) {
  return json::object{{"id", "batch_abc123"},
                      {"object", "batch"},
                      {"endpoint", "/v1/chat/completions"},
                      {"errors", nullptr},
                      {"input_file_id", "file-in"},
                      {"completion_window", "24h"},
                      {"status", std::move(status)},
                      {"output_file_id", nullptr},
                      {"error_file_id", nullptr},
                      {"created_at", 1711471533},
                      {"request_counts", {{"total", 0}, {"completed", 0}, {"failed", 0}}},
                      {"metadata", {{"lps_job_id", "job-1"}}}};
}

// -- Anthropic fixtures --

json::object anthropic_message(const json::object& input) {
  json::object tool{
      {"type", "tool_use"}, {"id", "toolu_1"}, {"name", "comparison_result"}, {"input", input}};
  return json::object{{"id", "msg_1"},
                      {"type", "message"},
                      {"role", "assistant"},
                      {"model", "claude-test"},
                      {"content", json::array{std::move(tool)}},
                      {"stop_reason", "tool_use"},
                      {"stop_sequence", nullptr},
                      {"usage", {{"input_tokens", 100}, {"output_tokens", 20}}}};
}

std::string anthropic_line(std::string custom_id, json::object result) {
  return json::serialize(
      json::object{{"custom_id", std::move(custom_id)}, {"result", std::move(result)}});
}

std::string anthropic_succeeded(std::string custom_id, const json::object& input) {
  return anthropic_line(std::move(custom_id),
                        {{"type", "succeeded"}, {"message", anthropic_message(input)}});
}

std::string anthropic_errored(std::string custom_id, std::string type, std::string message) {
  json::object error{{"type", "error"},
                     {"error", {{"type", std::move(type)}, {"message", std::move(message)}}},
                     {"request_id", "req_1"}};
  return anthropic_line(std::move(custom_id), {{"type", "errored"}, {"error", std::move(error)}});
}

std::string anthropic_error_body(std::string type, std::string message) {
  return json::serialize(json::object{
      {"type", "error"}, {"error", {{"type", std::move(type)}, {"message", std::move(message)}}}});
}

json::object anthropic_batch(std::string status) {
  return json::object{
      {"id", "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF"},
      {"type", "message_batch"},
      {"processing_status", std::move(status)},
      {"request_counts",
       {{"processing", 0}, {"succeeded", 0}, {"errored", 0}, {"canceled", 0}, {"expired", 0}}},
      {"ended_at", nullptr},
      {"created_at", "2024-09-24T18:37:24.100435Z"},
      {"expires_at", "2024-09-25T18:37:24.100435Z"},
      {"archived_at", nullptr},
      {"cancel_initiated_at", nullptr},
      {"results_url", nullptr}};
}

/// The items of `results` by custom_id (each id must appear once).
std::map<std::string, batch_item_result> by_id(const batch_results& results) {
  std::map<std::string, batch_item_result> out;
  for (const auto& item : results.items)
    REQUIRE(out.emplace(item.custom_id, item).second);
  return out;
}

/// One part of a multipart/form-data body: its header lines and content.
struct part {
  std::string headers;
  std::string content;
};

/// Splits `body` at "--boundary" delimiters as RFC 7578 / 2046 define them; also checks the
/// closing delimiter.
std::vector<part> multipart_parts(const std::string& body, const std::string& boundary) {
  std::vector<part> parts;
  const std::string first = "--" + boundary + "\r\n";
  const std::string next = "\r\n--" + boundary;
  REQUIRE(body.starts_with(first));
  size_t pos = first.size();
  while (true) {
    auto end = body.find(next, pos);
    REQUIRE(end != std::string::npos);
    auto text = body.substr(pos, end - pos);
    auto split = text.find("\r\n\r\n");
    REQUIRE(split != std::string::npos);
    parts.push_back({text.substr(0, split), text.substr(split + 4)});
    pos = end + next.size();
    if (body.compare(pos, 4, "--\r\n") == 0) {
      CHECK(pos + 4 == body.size());
      break;
    }
    REQUIRE(body.compare(pos, 2, "\r\n") == 0);
    pos += 2;
  }
  return parts;
}

std::string boundary_of(const http_client_request& req) {
  auto* type = header(req, "Content-Type");
  REQUIRE(type != nullptr);
  constexpr std::string_view prefix = "multipart/form-data; boundary=";
  REQUIRE(type->starts_with(prefix));
  return type->substr(prefix.size());
}

const openai_batch_wire openai;
const anthropic_batch_wire anthropic;

} // namespace

// == common ====================================================================================

TEST_CASE("batch_job_state names") {
  CHECK(std::string{to_string(batch_job_state::validating)} == "validating");
  CHECK(std::string{to_string(batch_job_state::in_progress)} == "in_progress");
  CHECK(std::string{to_string(batch_job_state::cancelling)} == "cancelling");
  CHECK(std::string{to_string(batch_job_state::ended)} == "ended");
  CHECK(std::string{to_string(batch_job_state::failed)} == "failed");
}

TEST_CASE("batch wires: names, limits, upload need") {
  CHECK(openai.display_name() == "OpenAI");
  CHECK(openai.max_items_per_job() == 50'000);
  CHECK(openai.max_bytes_per_job() == 200'000'000);
  CHECK(openai.needs_upload());
  CHECK(anthropic.display_name() == "Anthropic");
  CHECK(anthropic.max_items_per_job() == 100'000);
  CHECK(anthropic.max_bytes_per_job() == 256'000'000);
  CHECK_FALSE(anthropic.needs_upload());
  // Overrides may lower the limits, never raise them past the provider's.
  openai_batch_wire small{10, 1000};
  CHECK(small.max_items_per_job() == 10);
  CHECK(small.max_bytes_per_job() == 1000);
  openai_batch_wire big{1'000'000, 0};
  CHECK(big.max_items_per_job() == 50'000);
  CHECK(big.max_bytes_per_job() == 1);
  anthropic_batch_wire a{"2023-06-01", 200'000, 5};
  CHECK(a.max_items_per_job() == 100'000);
  CHECK(a.max_bytes_per_job() == 5);
}

// == OpenAI requests ===========================================================================

TEST_CASE("openai item_entry: a JSONL line around the chat/completions body") {
  auto req = make_request();
  auto entry = openai.item_entry(req, req.queue_id, "gpt-4o-mini");
  CHECK_FALSE(contains(entry, "\n"));
  auto line = parse(entry);
  CHECK(line.size() == 4);
  CHECK(line.at("custom_id").as_string() == req.queue_id);
  CHECK(line.at("method") == "POST");
  CHECK(line.at("url") == "/v1/chat/completions");
  const auto& body = line.at("body").as_object();
  CHECK(body == parse(build_openai_request(req, "gpt-4o-mini", openai_model_flags_for("gpt-4o"))));
  CHECK(body.at("model") == "gpt-4o-mini");
  const auto& messages = body.at("messages").as_array();
  REQUIRE(messages.size() == 2);
  CHECK(messages[0].at("role") == "system");
  CHECK(messages[1].at("role") == "user");
  CHECK(messages[1].at("content") == "Compare essay A with essay B.");
  CHECK(body.at("response_format").at("type") == "json_schema");
  CHECK(body.at("response_format").at("json_schema").at("strict") == true);
  CHECK(body.contains("max_tokens"));
}

TEST_CASE("openai item_entry: GPT-5 settings and awkward ids and prompts") {
  auto req = make_request("Line one\nline \"two\" \xC3\xA9");
  auto entry = openai.item_entry(req, "id \"quoted\"\n", "gpt-5-mini");
  CHECK_FALSE(contains(entry, "\n"));
  auto line = parse(entry);
  CHECK(line.at("custom_id") == "id \"quoted\"\n");
  const auto& body = line.at("body").as_object();
  CHECK(body.contains("max_completion_tokens"));
  CHECK_FALSE(body.contains("temperature"));
  CHECK(body.at("messages").as_array()[1].at("content") == "Line one\nline \"two\" \xC3\xA9");
}

TEST_CASE("openai upload: multipart with purpose and the JSONL file") {
  auto target = openai_target();
  target.extra_headers = {{"X-Extra", "1"}};
  std::vector<std::string> entries;
  for (int i = 0; i < 3; ++i)
    entries.push_back(openai.item_entry(make_request("prompt " + std::to_string(i)),
                                        "id-" + std::to_string(i), "gpt-4o-mini"));
  auto req = openai.upload(target, entries, "job-42");
  CHECK(req.method == "POST");
  CHECK(req.url == "http://127.0.0.1:8080/v1/files");
  CHECK(req.timeout == 12345ms);
  REQUIRE(header(req, "Authorization"));
  CHECK(*header(req, "Authorization") == std::string{"Bearer "} + openai_key);
  REQUIRE(header(req, "X-Extra"));
  auto boundary = boundary_of(req);
  CHECK(boundary == openai_upload_boundary(entries));
  CHECK(boundary.size() <= 70);
  auto parts = multipart_parts(req.body, boundary);
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].headers == "Content-Disposition: form-data; name=\"purpose\"");
  CHECK(parts[0].content == "batch");
  CHECK(contains(parts[1].headers, "Content-Disposition: form-data; name=\"file\"; "
                                   "filename=\"job-42.jsonl\""));
  CHECK(contains(parts[1].headers, "Content-Type: application/octet-stream"));
  CHECK(parts[1].content == entries[0] + "\n" + entries[1] + "\n" + entries[2] + "\n");
  // The key is in the Authorization header only.
  CHECK_FALSE(contains(req.body, "SECRET"));
}

TEST_CASE("openai upload: odd job ids cannot break the part headers") {
  auto req = openai.upload(openai_target(), {"{}"}, "job\"1\r\nX: y");
  auto parts = multipart_parts(req.body, boundary_of(req));
  REQUIRE(parts.size() == 2);
  CHECK(contains(parts[1].headers, "filename=\"job_1__X__y.jsonl\""));
  auto empty = openai.upload(openai_target(), {"{}"}, "");
  CHECK(contains(empty.body, "filename=\"batch.jsonl\""));
}

TEST_CASE("openai upload: the boundary never occurs in the entries") {
  auto plain = openai_upload_boundary({"{}"});
  std::vector<std::string> entries{"{\"x\":\"" + plain + "\"}", "{\"y\":\"" + plain + "-1\"}"};
  auto boundary = openai_upload_boundary(entries);
  CHECK(boundary != plain);
  for (const auto& e : entries)
    CHECK_FALSE(contains(e, boundary));
  auto req = openai.upload(openai_target(), entries, "job");
  CHECK(boundary_of(req) == boundary);
  auto parts = multipart_parts(req.body, boundary);
  REQUIRE(parts.size() == 2);
  CHECK(parts[1].content == entries[0] + "\n" + entries[1] + "\n");
}

TEST_CASE("openai read_upload: the file id, or a classified error") {
  wire_response error;
  auto id = openai.read_upload(
      200,
      R"({"id":"file-abc123","object":"file","bytes":120,"filename":"job.jsonl","purpose":"batch","status":"processed"})",
      {}, fixed_now, error);
  CHECK(id == "file-abc123");
  CHECK(error.success);
  CHECK(error.http_status == 200);

  SECTION("401") {
    id = openai.read_upload(401,
                            openai_http_error("invalid_request_error",
                                              "Incorrect API key provided: sk-proj-****cdef.",
                                              "invalid_api_key"),
                            {}, fixed_now, error);
    CHECK(id.empty());
    CHECK_FALSE(error.success);
    CHECK(error.error_code == "AUTHENTICATION_ERROR");
    CHECK_FALSE(error.retryable);
    CHECK(error.http_status == 401);
    CHECK(error.error_message.starts_with("OpenAI HTTP 401: "));
    check_no_key(error);
  }
  SECTION("429 with retry-after") {
    id = openai.read_upload(429, openai_http_error("requests", "Rate limit reached"),
                            {{"retry-after", "7"}}, fixed_now, error);
    CHECK(id.empty());
    CHECK(error.error_code == "RATE_LIMIT");
    CHECK(error.retryable);
    CHECK(error.retry_after == 7000ms);
  }
  SECTION("500 HTML") {
    id = openai.read_upload(500, "<html><body>Internal Server Error</body></html>", {}, fixed_now,
                            error);
    CHECK(id.empty());
    CHECK(error.error_code == "EXTERNAL_SERVICE_ERROR");
    CHECK(error.retryable);
    CHECK(error.http_status == 500);
  }
  SECTION("200 that is no file object") {
    id = openai.read_upload(200, "<html>proxy</html>", {}, fixed_now, error);
    CHECK(id.empty());
    CHECK(error.error_code == "PARSING_ERROR");
    id = openai.read_upload(200, R"({"object":"file"})", {}, fixed_now, error);
    CHECK(id.empty());
    CHECK(error.error_code == "PARSING_ERROR");
    CHECK(contains(error.error_message, "no id"));
  }
  SECTION("file rejected") {
    id =
        openai.read_upload(200, R"({"id":"file-1","status":"error","status_details":"bad line 3"})",
                           {}, fixed_now, error);
    CHECK(id.empty());
    CHECK(error.error_code == "INVALID_REQUEST");
    CHECK_FALSE(error.retryable);
    CHECK(contains(error.error_message, "bad line 3"));
  }
}

TEST_CASE("openai create, poll, cancel, downloads: URLs, headers, bodies") {
  auto target = openai_target();
  target.base_url += "/"; // a trailing slash must not double
  auto req = openai.create(target, "file-abc123", {"ignored"}, "job-42");
  CHECK(req.method == "POST");
  CHECK(req.url == "http://127.0.0.1:8080/v1/batches");
  CHECK(req.timeout == 12345ms);
  CHECK(*header(req, "Authorization") == std::string{"Bearer "} + openai_key);
  CHECK(*header(req, "Content-Type") == "application/json");
  auto body = parse(req.body);
  CHECK(body.size() == 4);
  CHECK(body.at("input_file_id") == "file-abc123");
  CHECK(body.at("endpoint") == "/v1/chat/completions");
  CHECK(body.at("completion_window") == "24h");
  CHECK(body.at("metadata") == json::object{{"lps_job_id", "job-42"}});
  CHECK_FALSE(contains(req.body, "SECRET"));

  auto p = openai.poll(target, "batch_abc123");
  CHECK(p.method == "GET");
  CHECK(p.url == "http://127.0.0.1:8080/v1/batches/batch_abc123");
  CHECK(p.body.empty());
  CHECK(*header(p, "Authorization") == std::string{"Bearer "} + openai_key);
  auto c = openai.cancel(target, "batch_abc123");
  CHECK(c.method == "POST");
  CHECK(c.url == "http://127.0.0.1:8080/v1/batches/batch_abc123/cancel");
  // An odd id stays one path segment.
  CHECK(openai.poll(target, "a/b?c").url == "http://127.0.0.1:8080/v1/batches/a%2Fb%3Fc");

  batch_job_status job;
  job.result_locations = {"file-out", "file-err"};
  auto ds = openai.downloads(target, job);
  REQUIRE(ds.size() == 2);
  CHECK(ds[0].method == "GET");
  CHECK(ds[0].url == "http://127.0.0.1:8080/v1/files/file-out/content");
  CHECK(ds[1].url == "http://127.0.0.1:8080/v1/files/file-err/content");
  CHECK(*header(ds[1], "Authorization") == std::string{"Bearer "} + openai_key);
  CHECK(openai.downloads(target, batch_job_status{}).empty());
}

// == OpenAI answers ============================================================================

TEST_CASE("openai read_job: every status") {
  struct expectation {
    std::string status;
    batch_job_state state;
  };
  std::vector<expectation> cases{
      {"validating", batch_job_state::validating},  {"in_progress", batch_job_state::in_progress},
      {"finalizing", batch_job_state::in_progress}, {"cancelling", batch_job_state::cancelling},
      {"completed", batch_job_state::ended},        {"expired", batch_job_state::ended},
      {"cancelled", batch_job_state::ended},        {"failed", batch_job_state::failed},
  };
  for (const auto& x : cases) {
    CAPTURE(x.status);
    auto job = openai.read_job(200, json::serialize(openai_batch(x.status)), {}, fixed_now);
    CHECK(job.ok);
    CHECK(job.error.success);
    CHECK(job.provider_job_id == "batch_abc123");
    CHECK(job.state == x.state);
    CHECK(job.provider_status == x.status);
    CHECK(job.total == 0);
    CHECK(job.result_locations.empty());
    CHECK(job.job_error.empty());
  }
}

TEST_CASE("openai read_job: counts, result files, job errors") {
  auto batch = openai_batch("completed");
  batch["request_counts"] = {{"total", 100}, {"completed", 95}, {"failed", 5}};
  batch["output_file_id"] = "file-out";
  batch["error_file_id"] = "file-err";
  auto job = openai.read_job(200, json::serialize(batch), {}, fixed_now);
  REQUIRE(job.ok);
  CHECK(job.total == 100);
  CHECK(job.succeeded == 95);
  CHECK(job.failed == 5);
  CHECK(job.result_locations == std::vector<std::string>{"file-out", "file-err"});

  batch["output_file_id"] = nullptr;
  job = openai.read_job(200, json::serialize(batch), {}, fixed_now);
  CHECK(job.result_locations == std::vector<std::string>{"file-err"});

  auto failed = openai_batch("failed");
  failed["errors"] = {
      {"object", "list"},
      {"data",
       {{{"code", "invalid_json_line"}, {"line", 3}, {"message", "Line is not JSON."}},
        {{"code", "invalid_json_line"}, {"line", 9}, {"message", "Line is not JSON."}}}}};
  job = openai.read_job(200, json::serialize(failed), {}, fixed_now);
  REQUIRE(job.ok);
  CHECK(job.state == batch_job_state::failed);
  CHECK(job.job_error == "line 3: Line is not JSON. (and 1 more)");
}

TEST_CASE("openai read_job: errors of the step") {
  SECTION("401") {
    auto job =
        openai.read_job(401, openai_http_error("invalid_request_error", "bad key"), {}, fixed_now);
    CHECK_FALSE(job.ok);
    CHECK(job.error.error_code == "AUTHENTICATION_ERROR");
    CHECK_FALSE(job.error.retryable);
    CHECK(job.error.error_message.starts_with("OpenAI HTTP 401: "));
    check_no_key(job.error);
  }
  SECTION("429 with retry-after and quota") {
    auto job = openai.read_job(429, openai_http_error("requests", "slow down"),
                               {{"retry-after", "12"}}, fixed_now);
    CHECK_FALSE(job.ok);
    CHECK(job.error.error_code == "RATE_LIMIT");
    CHECK(job.error.retryable);
    CHECK(job.error.retry_after == 12000ms);
    job = openai.read_job(429, openai_http_error("insufficient_quota", "no money"), {}, fixed_now);
    CHECK(job.error.error_code == "QUOTA_EXCEEDED");
    CHECK_FALSE(job.error.retryable);
  }
  SECTION("500 and HTML 502") {
    auto job = openai.read_job(500, openai_http_error("server_error", "oops"), {}, fixed_now);
    CHECK_FALSE(job.ok);
    CHECK(job.error.error_code == "EXTERNAL_SERVICE_ERROR");
    CHECK(job.error.retryable);
    job = openai.read_job(502, "<html>Bad Gateway</html>", {{"retry-after", "3"}}, fixed_now);
    CHECK_FALSE(job.ok);
    CHECK(job.error.retryable);
    CHECK(job.error.http_status == 502);
    CHECK(job.error.retry_after == 3000ms);
  }
  SECTION("404 unknown batch") {
    auto job =
        openai.read_job(404, openai_http_error("invalid_request_error", "No batch"), {}, fixed_now);
    CHECK(job.error.error_code == "INVALID_REQUEST");
    CHECK_FALSE(job.error.retryable);
  }
  SECTION("2xx that is no batch") {
    auto job = openai.read_job(200, "<html>captive portal</html>", {}, fixed_now);
    CHECK_FALSE(job.ok);
    CHECK(job.error.error_code == "PARSING_ERROR");
    CHECK(job.error.retryable);
    auto no_id = openai_batch("completed");
    no_id.erase("id");
    job = openai.read_job(200, json::serialize(no_id), {}, fixed_now);
    CHECK_FALSE(job.ok);
    CHECK(contains(job.error.error_message, "no id"));
  }
  SECTION("unknown status word") {
    auto job = openai.read_job(200, json::serialize(openai_batch("paused")), {}, fixed_now);
    CHECK_FALSE(job.ok);
    CHECK(job.error.error_code == "PARSING_ERROR");
    CHECK(job.provider_status == "paused");
    CHECK(job.provider_job_id == "batch_abc123");
    CHECK(contains(job.error.error_message, "paused"));
  }
}

TEST_CASE("openai read_results: every kind of line, in any order") {
  std::vector<std::string> lines{
      openai_line("q-ok", 200, chat_completion(verdict("Essay B", 4.5))),
      openai_error_line("q-expired", "batch_expired",
                        "This request could not be executed before the completion window "
                        "expired."),
      openai_line("q-bad-winner", 200, chat_completion(verdict("Essay C"))),
      openai_error_line("q-cancelled", "batch_cancelled", "cancelled"),
      openai_line("q-400", 400,
                  parse(openai_http_error("invalid_request_error", "Invalid model", "bad_model"))),
      openai_error_line("q-timeout", "request_timeout", "took too long"),
      openai_line("q-500", 500, parse(openai_http_error("server_error", "oops"))),
      openai_line("q-ok2", 200, chat_completion(verdict("Essay A", 1))),
  };
  std::string body;
  for (const auto& l : lines)
    body += l + "\n";
  wire_response error;
  auto results = openai.read_results(200, body, {}, fixed_now, error);
  CHECK(error.success);
  CHECK(results.unreadable_lines == 0);
  REQUIRE(results.items.size() == lines.size());
  // The order of the file is kept.
  CHECK(results.items.front().custom_id == "q-ok");
  CHECK(results.items.back().custom_id == "q-ok2");
  auto items = by_id(results);

  const auto& ok = items.at("q-ok");
  CHECK(ok.outcome == kind::succeeded);
  CHECK(ok.response.success);
  CHECK(ok.response.verdict.winner == "Essay B");
  CHECK(ok.response.verdict.confidence == 4.5);
  CHECK(ok.response.usage.prompt_tokens == 120);
  CHECK(ok.response.usage.completion_tokens == 30);
  CHECK(ok.response.http_status == 200);
  CHECK(items.at("q-ok2").response.verdict.winner == "Essay A");

  const auto& bad = items.at("q-bad-winner");
  CHECK(bad.outcome == kind::errored);
  CHECK_FALSE(bad.response.success);
  CHECK(bad.response.error_code == "INVALID_RESPONSE");
  CHECK(bad.response.usage.total_tokens == 150);

  CHECK(items.at("q-expired").outcome == kind::expired);
  CHECK(items.at("q-expired").response.retryable);
  CHECK_FALSE(items.at("q-expired").response.success);
  CHECK(contains(items.at("q-expired").response.error_message, "batch_expired"));
  CHECK(items.at("q-cancelled").outcome == kind::cancelled);
  CHECK(items.at("q-cancelled").response.retryable);

  const auto& e400 = items.at("q-400");
  CHECK(e400.outcome == kind::errored);
  CHECK(e400.response.error_code == "INVALID_REQUEST");
  CHECK_FALSE(e400.response.retryable);
  CHECK(e400.response.http_status == 400);
  CHECK(contains(e400.response.error_message, "Invalid model"));

  const auto& timeout = items.at("q-timeout");
  CHECK(timeout.outcome == kind::errored);
  CHECK(timeout.response.error_code == "TIMEOUT");
  CHECK(timeout.response.retryable);
  CHECK(contains(timeout.response.error_message, "request_timeout"));

  CHECK(items.at("q-500").outcome == kind::errored);
  CHECK(items.at("q-500").response.error_code == "EXTERNAL_SERVICE_ERROR");
  CHECK(items.at("q-500").response.retryable);

  // Shuffled lines give the same items.
  std::vector<std::string> shuffled{lines[5], lines[0], lines[7], lines[2],
                                    lines[4], lines[1], lines[6], lines[3]};
  std::string body2;
  for (const auto& l : shuffled)
    body2 += l + "\n";
  auto again = by_id(openai.read_results(200, body2, {}, fixed_now, error));
  REQUIRE(again.size() == items.size());
  for (const auto& [id, item] : items) {
    CAPTURE(id);
    CHECK(again.at(id).outcome == item.outcome);
    CHECK(again.at(id).response.error_code == item.response.error_code);
    CHECK(again.at(id).response.verdict.winner == item.response.verdict.winner);
  }
}

TEST_CASE("openai read_results: blank, CRLF and unreadable lines") {
  std::string good = openai_line("q-1", 200, chat_completion(verdict("Essay A")));
  std::string body = "\n   \n" + good + "\r\n\r\n" + "not json at all\n" + "[1,2,3]\n"
                     + R"({"id":"batch_req_9","response":null,"error":null})" + "\n"
                     + R"({"custom_id":17,"response":null})" + "\n" + R"({"custom_id":"")" + "\n"
                     + R"({"custom_id":"q-2","response":null,"error":null})" + "\n"
                     + R"({"custom_id":"q-3","response":{"body":{}}})" + "\n" + "{\"custom_id\"";
  wire_response error;
  auto results = openai.read_results(200, body, {}, fixed_now, error);
  CHECK(error.success);
  CHECK(results.unreadable_lines == 6);
  REQUIRE(results.items.size() == 3);
  CHECK(results.items[0].custom_id == "q-1");
  CHECK(results.items[0].outcome == kind::succeeded);
  CHECK(results.items[1].custom_id == "q-2");
  CHECK(results.items[1].outcome == kind::errored);
  CHECK(results.items[1].response.error_code == "PARSING_ERROR");
  CHECK(results.items[2].custom_id == "q-3");
  CHECK(results.items[2].outcome == kind::errored);
  CHECK(results.items[2].response.error_code == "PARSING_ERROR");

  auto empty = openai.read_results(200, "", {}, fixed_now, error);
  CHECK(error.success);
  CHECK(empty.items.empty());
  CHECK(empty.unreadable_lines == 0);
}

TEST_CASE("openai read_results: a failed download gives no items") {
  wire_response error;
  auto results = openai.read_results(
      404, openai_http_error("invalid_request_error", "No such File object: file-out"), {},
      fixed_now, error);
  CHECK(results.items.empty());
  CHECK_FALSE(error.success);
  CHECK(error.error_code == "INVALID_REQUEST");
  CHECK(error.http_status == 404);
  results =
      openai.read_results(503, "<html>busy</html>", {{"retry-after", "30"}}, fixed_now, error);
  CHECK(results.items.empty());
  CHECK(error.retryable);
  CHECK(error.retry_after == 30000ms);
}

TEST_CASE("openai: 50,000 entries and their upload build") {
  auto req = make_request(std::string(2000, 'x'));
  std::vector<std::string> entries;
  entries.reserve(50'000);
  size_t bytes = 0;
  for (int i = 0; i < 50'000; ++i) {
    req.queue_id = "0f8fad5b-d9cb-469f-a165-" + std::to_string(100000000000 + i);
    entries.push_back(openai.item_entry(req, req.queue_id, "gpt-4o-mini"));
    bytes += entries.back().size() + 1;
  }
  CHECK(entries.size() == openai.max_items_per_job());
  CHECK(bytes < openai.max_bytes_per_job());
  auto upload = openai.upload(openai_target(), entries, "job-big");
  CHECK(upload.body.size() > bytes);
  CHECK(upload.body.size() < bytes + 1000);
  auto boundary = boundary_of(upload);
  auto parts = multipart_parts(upload.body, boundary);
  REQUIRE(parts.size() == 2);
  CHECK(std::count(parts[1].content.begin(), parts[1].content.end(), '\n') == 50'000);
  CHECK(parts[1].content.size() == bytes);
  CHECK(parse(entries.back()).at("custom_id").as_string() == req.queue_id);
}

// == Anthropic requests ========================================================================

TEST_CASE("anthropic custom ids") {
  CHECK(anthropic_custom_id_ok("0f8fad5b-d9cb-469f-a165-70867728950e"));
  CHECK(anthropic_custom_id_ok("pair_000123"));
  CHECK(anthropic_custom_id_ok(std::string(64, 'a')));
  CHECK_FALSE(anthropic_custom_id_ok(std::string(65, 'a')));
  CHECK_FALSE(anthropic_custom_id_ok(""));
  CHECK_FALSE(anthropic_custom_id_ok("a.b"));
  CHECK_FALSE(anthropic_custom_id_ok("a b"));
}

TEST_CASE("anthropic item_entry: custom_id and a Messages request with forced tool use") {
  auto req = make_request();
  req.overrides.max_tokens = 512;
  auto entry = anthropic.item_entry(req, req.queue_id, "claude-sonnet-4-5");
  auto item = parse(entry);
  CHECK(item.size() == 2);
  CHECK(item.at("custom_id").as_string() == req.queue_id);
  const auto& params = item.at("params").as_object();
  CHECK(params == parse(build_anthropic_body(req, "claude-sonnet-4-5")));
  CHECK(params.at("model") == "claude-sonnet-4-5");
  CHECK(params.at("max_tokens") == 512);
  CHECK(params.at("tool_choice") == json::object{{"type", "tool"}, {"name", "comparison_result"}});
  const auto& messages = params.at("messages").as_array();
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].at("role") == "user");
  CHECK(messages[0].at("content").as_array()[0].at("text") == "Compare essay A with essay B.");
  CHECK(params.at("tools").as_array()[0].at("name") == "comparison_result");
  // An id the API would refuse is still emitted as given (and escaped).
  CHECK(parse(anthropic.item_entry(req, "a \"b\"", "m")).at("custom_id") == "a \"b\"");
}

TEST_CASE("anthropic create: the entries inline, unchanged") {
  auto target = anthropic_target();
  target.base_url += "/";
  target.extra_headers = {{"X-Extra", "1"}};
  std::vector<std::string> entries;
  for (int i = 0; i < 3; ++i)
    entries.push_back(anthropic.item_entry(make_request("p" + std::to_string(i)),
                                           "id-" + std::to_string(i), "m"));
  auto req = anthropic.create(target, "", entries, "job-1");
  CHECK(req.method == "POST");
  CHECK(req.url == "http://127.0.0.1:9090/v1/messages/batches");
  CHECK(req.timeout == 23456ms);
  CHECK(*header(req, "x-api-key") == anthropic_key);
  CHECK(*header(req, "anthropic-version") == "2023-06-01");
  CHECK(*header(req, "content-type") == "application/json");
  REQUIRE(header(req, "X-Extra"));
  CHECK(req.body == R"({"requests":[)" + entries[0] + "," + entries[1] + "," + entries[2] + "]}");
  auto body = parse(req.body);
  CHECK(body.size() == 1);
  const auto& requests = body.at("requests").as_array();
  REQUIRE(requests.size() == 3);
  for (size_t i = 0; i < 3; ++i)
    CHECK(requests[i] == json::parse(entries[i]));
  CHECK(parse(anthropic.create(target, "", {}, "j").body).at("requests").as_array().empty());

  anthropic_batch_wire other{"2024-01-01"};
  CHECK(*header(other.create(target, "", entries, "j"), "anthropic-version") == "2024-01-01");
}

TEST_CASE("anthropic upload is not a step") {
  auto req = anthropic.upload(anthropic_target(), {"x"}, "job");
  CHECK(req.url.empty());
  CHECK(req.body.empty());
  wire_response error;
  CHECK(anthropic.read_upload(200, "{}", {}, fixed_now, error).empty());
  CHECK_FALSE(error.success);
  CHECK(error.error_code == "CONFIGURATION_ERROR");
}

TEST_CASE("anthropic poll, cancel, downloads") {
  auto target = anthropic_target();
  auto p = anthropic.poll(target, "msgbatch_01");
  CHECK(p.method == "GET");
  CHECK(p.url == "http://127.0.0.1:9090/v1/messages/batches/msgbatch_01");
  CHECK(p.body.empty());
  CHECK(*header(p, "x-api-key") == anthropic_key);
  CHECK(*header(p, "anthropic-version") == "2023-06-01");
  auto c = anthropic.cancel(target, "msgbatch_01");
  CHECK(c.method == "POST");
  CHECK(c.url == "http://127.0.0.1:9090/v1/messages/batches/msgbatch_01/cancel");
  CHECK(anthropic.poll(target, "x/../y").url
        == "http://127.0.0.1:9090/v1/messages/batches/x%2F..%2Fy");

  batch_job_status job;
  job.provider_job_id = "msgbatch_01";
  SECTION("results_url on the base URL's origin is used as is") {
    job.result_locations = {"http://127.0.0.1:9090/v1/messages/batches/msgbatch_01/results?x=1"};
    auto ds = anthropic.downloads(target, job);
    REQUIRE(ds.size() == 1);
    CHECK(ds[0].method == "GET");
    CHECK(ds[0].url == job.result_locations[0]);
    CHECK(*header(ds[0], "x-api-key") == anthropic_key);
    CHECK(*header(ds[0], "anthropic-version") == "2023-06-01");
    CHECK(ds[0].timeout == 23456ms);
  }
  SECTION("same origin, spelled differently") {
    target.base_url = "https://API.anthropic.com";
    job.result_locations = {"https://api.anthropic.com:443/v1/messages/batches/b/results"};
    auto ds = anthropic.downloads(target, job);
    REQUIRE(ds.size() == 1);
    CHECK(ds[0].url == job.result_locations[0]);
  }
  SECTION("another origin: the key stays home") {
    job.result_locations = {"https://api.anthropic.com/v1/messages/batches/msgbatch_01/results"};
    auto ds = anthropic.downloads(target, job);
    REQUIRE(ds.size() == 1);
    CHECK(ds[0].url == "http://127.0.0.1:9090/v1/messages/batches/msgbatch_01/results");
    job.result_locations = {"http://127.0.0.1:9091/r", "http://user@127.0.0.1:9090/r"};
    ds = anthropic.downloads(target, job);
    REQUIRE(ds.size() == 2);
    CHECK(ds[0].url == "http://127.0.0.1:9090/v1/messages/batches/msgbatch_01/results");
    CHECK(ds[1].url == "http://127.0.0.1:9090/v1/messages/batches/msgbatch_01/results");
  }
  SECTION("a path") {
    job.result_locations = {"/v1/messages/batches/msgbatch_01/results"};
    auto ds = anthropic.downloads(target, job);
    REQUIRE(ds.size() == 1);
    CHECK(ds[0].url == "http://127.0.0.1:9090/v1/messages/batches/msgbatch_01/results");
  }
  SECTION("nothing to fetch") {
    job.result_locations.clear();
    CHECK(anthropic.downloads(target, job).empty());
  }
}

// == Anthropic answers =========================================================================

TEST_CASE("anthropic read_job: every status, counts, results_url") {
  auto batch = anthropic_batch("in_progress");
  batch["request_counts"] = {
      {"processing", 100}, {"succeeded", 0}, {"errored", 0}, {"canceled", 0}, {"expired", 0}};
  auto job = anthropic.read_job(200, json::serialize(batch), {}, fixed_now);
  REQUIRE(job.ok);
  CHECK(job.error.success);
  CHECK(job.provider_job_id == "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF");
  CHECK(job.state == batch_job_state::in_progress);
  CHECK(job.provider_status == "in_progress");
  CHECK(job.total == 100);
  CHECK(job.succeeded == 0);
  CHECK(job.result_locations.empty());

  batch = anthropic_batch("canceling");
  job = anthropic.read_job(200, json::serialize(batch), {}, fixed_now);
  REQUIRE(job.ok);
  CHECK(job.state == batch_job_state::cancelling);
  CHECK(job.provider_status == "canceling");

  batch = anthropic_batch("ended");
  batch["request_counts"] = {
      {"processing", 0}, {"succeeded", 50}, {"errored", 30}, {"canceled", 10}, {"expired", 10}};
  batch["results_url"] =
      "https://api.anthropic.com/v1/messages/batches/msgbatch_013Zva2CMHLNnXjNJJKqJ2EF/results";
  batch["ended_at"] = "2024-09-24T19:37:24.100435Z";
  job = anthropic.read_job(200, json::serialize(batch), {}, fixed_now);
  REQUIRE(job.ok);
  CHECK(job.state == batch_job_state::ended);
  CHECK(job.total == 100);
  CHECK(job.succeeded == 50);
  CHECK(job.failed == 30);
  CHECK(job.result_locations
        == std::vector<std::string>{"https://api.anthropic.com/v1/messages/batches/"
                                    "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF/results"});
  CHECK(job.job_error.empty());

  batch["archived_at"] = "2024-10-23T18:37:24Z";
  job = anthropic.read_job(200, json::serialize(batch), {}, fixed_now);
  CHECK(job.ok);
  CHECK(contains(job.job_error, "archived"));
}

TEST_CASE("anthropic read_job: errors of the step") {
  SECTION("401") {
    auto job =
        anthropic.read_job(401,
                           anthropic_error_body("authentication_error",
                                                std::string{"invalid x-api-key "} + anthropic_key),
                           {}, fixed_now);
    CHECK_FALSE(job.ok);
    CHECK(job.error.error_code == "AUTHENTICATION_ERROR");
    CHECK_FALSE(job.error.retryable);
    CHECK(job.error.error_message.starts_with("Anthropic HTTP 401: "));
    check_no_key(job.error);
  }
  SECTION("429 with retry-after") {
    auto job = anthropic.read_job(429, anthropic_error_body("rate_limit_error", "slow"),
                                  {{"retry-after", "20"}}, fixed_now);
    CHECK(job.error.error_code == "RATE_LIMIT");
    CHECK(job.error.retryable);
    CHECK(job.error.retry_after == 20000ms);
  }
  SECTION("500, 529, HTML 502") {
    auto job = anthropic.read_job(500, anthropic_error_body("api_error", "oops"), {}, fixed_now);
    CHECK(job.error.error_code == "EXTERNAL_SERVICE_ERROR");
    CHECK(job.error.retryable);
    job = anthropic.read_job(529, anthropic_error_body("overloaded_error", "busy"), {}, fixed_now);
    CHECK(job.error.retryable);
    job = anthropic.read_job(502, "<html>Bad Gateway</html>", {}, fixed_now);
    CHECK_FALSE(job.ok);
    CHECK(job.error.retryable);
    CHECK(job.error.http_status == 502);
  }
  SECTION("400 on create") {
    auto job = anthropic.read_job(
        400, anthropic_error_body("invalid_request_error", "requests.0.custom_id: invalid"), {},
        fixed_now);
    CHECK(job.error.error_code == "INVALID_REQUEST");
    CHECK_FALSE(job.error.retryable);
    CHECK(contains(job.error.error_message, "custom_id"));
  }
  SECTION("2xx that is no batch, unknown status") {
    auto job = anthropic.read_job(200, "<html/>", {}, fixed_now);
    CHECK_FALSE(job.ok);
    CHECK(job.error.error_code == "PARSING_ERROR");
    job = anthropic.read_job(200, json::serialize(anthropic_batch("validating")), {}, fixed_now);
    CHECK_FALSE(job.ok);
    CHECK(job.error.error_code == "PARSING_ERROR");
    CHECK(job.provider_status == "validating");
    auto no_id = anthropic_batch("ended");
    no_id.erase("id");
    job = anthropic.read_job(200, json::serialize(no_id), {}, fixed_now);
    CHECK_FALSE(job.ok);
  }
}

TEST_CASE("anthropic read_results: every kind of result, in any order") {
  std::vector<std::string> lines{
      anthropic_errored("q-invalid", "invalid_request_error", "max_tokens: too large"),
      anthropic_succeeded("q-ok", verdict("Essay A", 3)),
      anthropic_line("q-canceled", {{"type", "canceled"}}),
      anthropic_succeeded("q-bad-winner", verdict("essay a")),
      anthropic_errored("q-rate", "rate_limit_error", "slow"),
      anthropic_line("q-expired", {{"type", "expired"}}),
      anthropic_errored("q-overloaded", "overloaded_error", "busy"),
      anthropic_errored("q-api", "api_error", "oops"),
      anthropic_errored("q-odd", "weird_error", "?"),
      anthropic_line("q-unknown", {{"type", "sideways"}}),
  };
  std::string body;
  for (const auto& l : lines)
    body += l + "\n";
  wire_response error;
  auto results = anthropic.read_results(200, body, {}, fixed_now, error);
  CHECK(error.success);
  CHECK(results.unreadable_lines == 0);
  REQUIRE(results.items.size() == lines.size());
  CHECK(results.items.front().custom_id == "q-invalid");
  auto items = by_id(results);

  const auto& ok = items.at("q-ok");
  CHECK(ok.outcome == kind::succeeded);
  CHECK(ok.response.success);
  CHECK(ok.response.verdict.winner == "Essay A");
  CHECK(ok.response.verdict.confidence == 3);
  CHECK(ok.response.usage.prompt_tokens == 100);
  CHECK(ok.response.usage.completion_tokens == 20);

  const auto& bad = items.at("q-bad-winner");
  CHECK(bad.outcome == kind::errored);
  CHECK(bad.response.error_code == "INVALID_RESPONSE");
  CHECK(bad.response.usage.completion_tokens == 20);

  const auto& invalid = items.at("q-invalid");
  CHECK(invalid.outcome == kind::errored);
  CHECK(invalid.response.error_code == "INVALID_REQUEST");
  CHECK_FALSE(invalid.response.retryable);
  CHECK(invalid.response.http_status == 400);
  CHECK(contains(invalid.response.error_message, "max_tokens: too large"));
  CHECK(contains(invalid.response.error_message, "invalid_request_error"));

  CHECK(items.at("q-rate").response.error_code == "RATE_LIMIT");
  CHECK(items.at("q-rate").response.retryable);
  CHECK(items.at("q-overloaded").response.retryable);
  CHECK(items.at("q-overloaded").response.error_code == "EXTERNAL_SERVICE_ERROR");
  CHECK(items.at("q-api").response.retryable);
  CHECK(items.at("q-api").response.http_status == 500);
  CHECK(items.at("q-odd").outcome == kind::errored);
  CHECK(items.at("q-odd").response.http_status == 0);
  CHECK(items.at("q-odd").response.retryable);

  CHECK(items.at("q-canceled").outcome == kind::cancelled);
  CHECK(items.at("q-canceled").response.retryable);
  CHECK(items.at("q-expired").outcome == kind::expired);
  CHECK(items.at("q-expired").response.retryable);
  CHECK(items.at("q-unknown").outcome == kind::errored);
  CHECK(items.at("q-unknown").response.error_code == "PARSING_ERROR");

  std::vector<std::string> shuffled(lines.rbegin(), lines.rend());
  std::string body2;
  for (const auto& l : shuffled)
    body2 += l + "\n";
  auto again = by_id(anthropic.read_results(200, body2, {}, fixed_now, error));
  REQUIRE(again.size() == items.size());
  for (const auto& [id, item] : items) {
    CAPTURE(id);
    CHECK(again.at(id).outcome == item.outcome);
    CHECK(again.at(id).response.error_code == item.response.error_code);
  }
}

TEST_CASE("anthropic read_results: blank, CRLF and unreadable lines, keys masked") {
  std::string good = anthropic_succeeded("q-1", verdict("Essay B"));
  std::string body =
      "\r\n" + good + "\r\n\n  \n" + "<html>\n" + R"({"result":{"type":"expired"}})" + "\n"
      + R"({"custom_id":null,"result":{"type":"expired"}})" + "\n"
      + R"({"custom_id":"q-2","result":{"type":"succeeded"}})" + "\n"
      + anthropic_errored("q-3", "authentication_error", std::string{"bad key "} + anthropic_key)
      + "\n" + R"({"custom_id":"q-4"})";
  wire_response error;
  auto results = anthropic.read_results(200, body, {}, fixed_now, error);
  CHECK(results.unreadable_lines == 3);
  REQUIRE(results.items.size() == 4);
  CHECK(results.items[0].outcome == kind::succeeded);
  CHECK(results.items[0].response.verdict.winner == "Essay B");
  CHECK(results.items[1].custom_id == "q-2");
  CHECK(results.items[1].response.error_code == "PARSING_ERROR");
  CHECK(results.items[2].response.error_code == "AUTHENTICATION_ERROR");
  check_no_key(results.items[2].response);
  CHECK(results.items[3].custom_id == "q-4");
  CHECK(results.items[3].outcome == kind::errored);
  CHECK(results.items[3].response.error_code == "PARSING_ERROR");
}

TEST_CASE("anthropic read_results: a failed download gives no items") {
  wire_response error;
  auto results = anthropic.read_results(
      404, anthropic_error_body("not_found_error", "results not found"), {}, fixed_now, error);
  CHECK(results.items.empty());
  CHECK_FALSE(error.success);
  CHECK(error.error_code == "INVALID_REQUEST");
  results = anthropic.read_results(429, anthropic_error_body("rate_limit_error", "slow"),
                                   {{"retry-after", "5"}}, fixed_now, error);
  CHECK(results.items.empty());
  CHECK(error.retryable);
  CHECK(error.retry_after == 5000ms);
}

TEST_CASE("anthropic: 50,000 entries and their create body build") {
  auto req = make_request(std::string(2000, 'x'));
  std::vector<std::string> entries;
  entries.reserve(50'000);
  size_t bytes = 0;
  for (int i = 0; i < 50'000; ++i) {
    req.queue_id = "0f8fad5b-d9cb-469f-a165-" + std::to_string(100000000000 + i);
    entries.push_back(anthropic.item_entry(req, req.queue_id, "claude-sonnet-4-5"));
    bytes += entries.back().size() + 1;
  }
  auto create = anthropic.create(anthropic_target(), "", entries, "job-big");
  CHECK(create.body.size() == bytes - 1 + 15);
  CHECK(create.body.size() < anthropic.max_bytes_per_job());
  CHECK(create.body.starts_with(R"({"requests":[{"custom_id":"0f8fad5b-)"));
  CHECK(create.body.ends_with("}]}"));
}
