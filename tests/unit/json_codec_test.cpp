#include "runtime/json_codec.hpp"

#include "runtime/ids.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

using namespace lps;
namespace json = boost::json;

namespace {

constexpr auto uuid_upper = "3F2504E0-4F89-41D3-9A0C-0305E82C3301";
constexpr auto uuid_lower = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";

comparison_request parse_ok(std::string_view body, request_limits limits = {}) {
  comparison_request result;
  field_error error;
  INFO("body: " << body.substr(0, 300));
  auto ok = parse_comparison_request(body, limits, result, error);
  INFO("error: " << error.field << ": " << error.message);
  REQUIRE(ok);
  return result;
}

field_error parse_error(std::string_view body, request_limits limits = {}) {
  comparison_request result;
  field_error error;
  INFO("body: " << body.substr(0, 300));
  REQUIRE_FALSE(parse_comparison_request(body, limits, result, error));
  CHECK(error.code == ec::validation_error);
  return error;
}

/// What a body holding only `user_prompt` parses to.
comparison_request prompt_only(std::string prompt) {
  comparison_request result;
  result.user_prompt = std::move(prompt);
  return result;
}

/// A body with a valid prompt plus the given extra members (text like `"priority": 3`).
std::string with_prompt(std::string_view extra) {
  std::string result = R"({"user_prompt": "Compare A and B")";
  if (!extra.empty()) {
    result += ", ";
    result += extra;
  }
  result += "}";
  return result;
}

/// The error for a body that is valid except for `extra`; checks the field path.
std::string error_message_for(std::string_view extra, std::string_view field) {
  auto error = parse_error(with_prompt(extra));
  CHECK(error.field == field);
  CHECK_FALSE(error.message.empty());
  return error.message;
}

/// Nested objects via metadata so the whole body is `depth` levels deep.
std::string nested_body(int depth) {
  std::string result = R"({"user_prompt":"x","metadata":)";
  for (int i = 0; i < depth - 2; ++i)
    result += R"({"a":)";
  result += "{}";
  for (int i = 0; i < depth - 2; ++i)
    result += "}";
  result += "}";
  return result;
}

json::value reparse(const std::string& text) {
  INFO("rendered: " << text);
  json::error_code ec;
  auto result = json::parse(text, ec); // also rejects invalid UTF-8
  REQUIRE_FALSE(ec);
  return result;
}

std::string str(const json::value& v) {
  REQUIRE(v.is_string());
  return std::string{v.get_string().data(), v.get_string().size()};
}

/// Unicode code points in valid UTF-8 text (continuation bytes are not counted).
size_t code_points(std::string_view text) {
  size_t result = 0;
  for (auto c : text)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80)
      ++result;
  return result;
}

// 2023-11-14T22:13:20.123Z (date -u -d @1700000000).
const auto t_requested = from_unix_ms(1'700'000'000'123);
const auto t_completed = from_unix_ms(1'700'000'005'000);

result_event success_event() {
  result_event event;
  event.event_id = "11111111-2222-5333-8444-555555555555";
  event.event_timestamp = t_completed;
  event.correlation_id = uuid_lower;
  event.request_id = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
  event.final_status = "completed";
  event.requested_at = t_requested;
  event.completed_at = t_completed;
  event.caller_metadata_json = R"({"essay_a_id":"e1","essay_b_id":"e2","bos_batch_id":7})";
  auto& o = event.outcome;
  o.queue_id = event.request_id;
  o.success = true;
  o.winner = "Essay A";
  o.justification = "A argues more clearly.";
  o.confidence = 4.5;
  o.provider = "mock";
  o.model = "mock-model-1";
  o.response_time = std::chrono::microseconds{1234567}; // the event shows whole ms
  o.usage = {100, 20, 120, 0, 0};
  o.cost_estimate = 0.00125;
  o.prompt_sha256 = "abc123";
  o.enrichment = {"mock", "mock-model-1", "serial_bundle", "bundle-9", 4, {}};
  return event;
}

result_event failure_event() {
  auto event = success_event();
  event.final_status = "failed";
  auto& o = event.outcome;
  o.success = false;
  o.winner.clear();
  o.justification.clear();
  o.confidence = 0;
  o.error_code = "RATE_LIMIT";
  o.error_message = "provider said \"slow down\"";
  o.http_status = 429;
  o.retryable = true;
  o.provider.clear(); // falls back to the enrichment
  o.model.clear();
  return event;
}

} // namespace

// -- a valid request -------------------------------------------------------------------------

TEST_CASE("a full valid request fills every field") {
  auto body = R"({
    "user_prompt": "Compare essay A with essay B",
    "prompt_blocks": [
      {"target": "system", "content": "ctx", "cacheable": true, "ttl": "1h",
       "content_hash": "ffee"},
      {"target": "user_content", "content": "Essay A", "cacheable": false},
      {"target": "user_content", "content": "inst", "cacheable": true, "ttl": "5m"}
    ],
    "callback_url": "https://cj.example.org:8443/callbacks/llm?x=1",
    "callback_topic": "huleedu.llm_provider.comparison_result.v1",
    "llm_config_overrides": {
      "provider_override": "anthropic", "model_override": "claude-x",
      "temperature_override": 0.3, "system_prompt_override": "Be fair.",
      "max_tokens_override": 2048, "reasoning_effort": "low", "output_verbosity": "high",
      "judge_rubric_override": "ignored"
    },
    "correlation_id": "3F2504E0-4F89-41D3-9A0C-0305E82C3301",
    "user_id": "teacher-17",
    "metadata": {"essay_a_id": "e1", "essay_b_id": "e2", "bos_batch_id": 7,
                 "cj_llm_batching_mode": "serial_bundle", "weight": 1.0},
    "priority": 8,
    "unknown_top_level": {"deep": [1, 2, 3]}
  })";
  auto r = parse_ok(body);
  CHECK(r.queue_id.empty());
  CHECK(r.user_prompt == "Compare essay A with essay B");
  REQUIRE(r.prompt_blocks.size() == 3);
  CHECK(r.prompt_blocks[0] == prompt_block{"system", "ctx", true, "1h"});
  CHECK(r.prompt_blocks[1] == prompt_block{"user_content", "Essay A", false, ""});
  CHECK(r.prompt_blocks[2] == prompt_block{"user_content", "inst", true, "5m"});
  CHECK(r.callback_url == "https://cj.example.org:8443/callbacks/llm?x=1");
  CHECK(r.callback_topic == "huleedu.llm_provider.comparison_result.v1");
  CHECK(r.overrides.provider == "anthropic");
  CHECK(r.overrides.model == "claude-x");
  CHECK(r.overrides.has_temperature);
  CHECK(r.overrides.temperature == 0.3);
  CHECK(r.overrides.has_system_prompt);
  CHECK(r.overrides.system_prompt == "Be fair.");
  CHECK(r.overrides.max_tokens == 2048u);
  CHECK(r.overrides.reasoning_effort == "low");
  CHECK(r.overrides.output_verbosity == "high");
  CHECK(r.correlation_id == uuid_lower);
  CHECK(r.user_id == "teacher-17");
  CHECK(r.metadata_json
        == R"({"essay_a_id":"e1","essay_b_id":"e2","bos_batch_id":7,)"
           R"("cj_llm_batching_mode":"serial_bundle","weight":1.0})");
  CHECK(r.has_cj_batching_mode);
  CHECK(r.cj_batching_mode == "serial_bundle");
  CHECK(r.priority == 8);
  CHECK(r.trace_id.empty());
}

TEST_CASE("a minimal request gets the defaults") {
  auto r = parse_ok(R"({"user_prompt":"x"})");
  CHECK(r == prompt_only("x"));
  CHECK(r.priority == 5);
  CHECK(r.metadata_json == "{}");
  CHECK(r.correlation_id.empty());
  CHECK_FALSE(r.has_cj_batching_mode);
}

TEST_CASE("null means not given for every optional field") {
  auto r = parse_ok(R"({"user_prompt":"x","prompt_blocks":null,"callback_url":null,
    "callback_topic":null,"llm_config_overrides":{"provider_override":null,
    "model_override":null,"temperature_override":null,"system_prompt_override":null,
    "max_tokens_override":null,"reasoning_effort":null,"output_verbosity":null},
    "correlation_id":null,"user_id":null,"metadata":null,"priority":null})");
  CHECK(r == prompt_only("x"));
  auto blocks = parse_ok(with_prompt(R"("prompt_blocks":[{"target":"system","content":"c",
    "cacheable":null,"ttl":null}])"));
  REQUIRE(blocks.prompt_blocks.size() == 1);
  CHECK(blocks.prompt_blocks[0] == prompt_block{"system", "c", false, ""});
}

TEST_CASE("the parse replaces whatever the output struct held") {
  comparison_request r;
  r.user_id = "stale";
  r.prompt_blocks.push_back({"system", "stale", true, "5m"});
  field_error error;
  REQUIRE(parse_comparison_request(R"({"user_prompt":"x"})", {}, r, error));
  CHECK(r == prompt_only("x"));
}

// -- user_prompt -----------------------------------------------------------------------------

TEST_CASE("user_prompt is required and must be a non-blank string") {
  auto missing = parse_error(R"({"priority": 1})");
  CHECK(missing.field == "user_prompt");
  CHECK(missing.message == "is required");
  CHECK(parse_error(R"({"user_prompt": null})").message == "is required");
  auto number = parse_error(R"({"user_prompt": 42})");
  CHECK(number.field == "user_prompt");
  CHECK(number.message == "must be a string");
  CHECK(parse_error(R"({"user_prompt": ["a"]})").message == "must be a string");
  auto empty = parse_error(R"({"user_prompt": ""})");
  CHECK(empty.field == "user_prompt");
  CHECK(empty.message == "must not be empty");
  CHECK(parse_error(R"({"user_prompt": " \n\t\r "})").message == "must not be empty");
  // Surrounding whitespace is the caller's: kept as sent.
  CHECK(parse_ok(R"({"user_prompt": "  x\n"})").user_prompt == "  x\n");
}

TEST_CASE("a 1 MB prompt parses") {
  std::string prompt(1 << 20, 'a');
  for (size_t i = 0; i < prompt.size(); i += 1000)
    prompt[i] = ' ';
  auto r = parse_ok(R"({"user_prompt":")" + prompt + R"("})");
  CHECK(r.user_prompt.size() == size_t{1} << 20);
  CHECK(r.user_prompt == prompt);
}

// -- prompt_blocks ---------------------------------------------------------------------------

TEST_CASE("prompt_blocks must be an array of well-formed blocks") {
  CHECK(error_message_for(R"("prompt_blocks": {})", "prompt_blocks") == "must be an array");
  CHECK(error_message_for(R"("prompt_blocks": "x")", "prompt_blocks") == "must be an array");
  CHECK(error_message_for(R"("prompt_blocks": [{"target":"system","content":"c"}, 3])",
                          "prompt_blocks[1]")
        == "must be an object");
  CHECK(error_message_for(R"("prompt_blocks": [{"content":"c"}])", "prompt_blocks[0].target")
        == "is required");
  CHECK(error_message_for(R"("prompt_blocks": [{"target":"assistant","content":"c"}])",
                          "prompt_blocks[0].target")
        == R"(must be "system" or "user_content")");
  CHECK(error_message_for(R"("prompt_blocks": [{"target":1,"content":"c"}])",
                          "prompt_blocks[0].target")
        == R"(must be "system" or "user_content")");
  CHECK(error_message_for(R"("prompt_blocks": [{"target":"system"}])", "prompt_blocks[0].content")
        == "is required");
  CHECK(error_message_for(R"("prompt_blocks": [{"target":"system","content":5}])",
                          "prompt_blocks[0].content")
        == "must be a string");
  CHECK(error_message_for(R"("prompt_blocks": [{"target":"system","content":"c",
                                               "cacheable":"yes"}])",
                          "prompt_blocks[0].cacheable")
        == "must be true or false");
  CHECK(error_message_for(R"("prompt_blocks": [{"target":"system","content":"c","ttl":"2h"}])",
                          "prompt_blocks[0].ttl")
        == R"(must be "5m" or "1h")");
  CHECK(error_message_for(R"("prompt_blocks": [{"target":"system","content":"c","ttl":300}])",
                          "prompt_blocks[0].ttl")
        == R"(must be "5m" or "1h")");
}

TEST_CASE("prompt_blocks accepts an empty array and an empty content") {
  CHECK(parse_ok(with_prompt(R"("prompt_blocks": [])")).prompt_blocks.empty());
  auto r = parse_ok(with_prompt(R"("prompt_blocks": [{"target":"user_content","content":""}])"));
  REQUIRE(r.prompt_blocks.size() == 1);
  CHECK(r.prompt_blocks[0].content.empty());
}

TEST_CASE("a 1h block after a 5m block is refused") {
  auto message = error_message_for(R"("prompt_blocks": [
      {"target":"system","content":"a","cacheable":true,"ttl":"1h"},
      {"target":"system","content":"b","cacheable":true,"ttl":"5m"},
      {"target":"user_content","content":"c"},
      {"target":"user_content","content":"d","cacheable":true,"ttl":"1h"}])",
                                   "prompt_blocks[3].ttl");
  CHECK(message.find("1h") != std::string::npos);
  CHECK(message.find("before") != std::string::npos);
  CHECK(message.find("prompt_blocks[1]") != std::string::npos);
  // 1h, 1h, none, 5m, 5m is the allowed order.
  auto r = parse_ok(with_prompt(R"("prompt_blocks": [
      {"target":"system","content":"a","ttl":"1h"}, {"target":"system","content":"b","ttl":"1h"},
      {"target":"user_content","content":"c"}, {"target":"user_content","content":"d","ttl":"5m"},
      {"target":"user_content","content":"e","ttl":"5m"}])"));
  CHECK(r.prompt_blocks.size() == 5);
}

// -- callback --------------------------------------------------------------------------------

TEST_CASE("callback_url accepts absolute http and https URLs") {
  for (auto url : {"http://localhost/cb", "https://example.com", "http://127.0.0.1:8080/a/b?c=d#e",
                   "https://cj.example.org:65535/x", "http://[::1]:9000/cb", "http://[::1]",
                   "http://host:1", "http://my_host.internal/p"}) {
    INFO(url);
    auto r = parse_ok(with_prompt(std::string{R"("callback_url": ")"} + url + "\""));
    CHECK(r.callback_url == url);
  }
}

TEST_CASE("callback_url refuses anything that is not an http or https URL") {
  for (auto url : {"",
                   "ftp://example.com/x",
                   "example.com/cb",
                   "//example.com",
                   "http://",
                   "https:///path",
                   "http://:80/x",
                   "http://host:0/",
                   "http://host:65536/",
                   "http://host:/x",
                   "http://host:8o/x",
                   "http://ho st/x",
                   "http://host/a b",
                   "http://host/\\t",
                   "https://user:pw@hooks.example.com/p",
                   "HTTP://EXAMPLE.COM",
                   "http://[::1/x",
                   "http://[]/x",
                   "http://[::1]x/",
                   "http://[::1]:/x",
                   "http://[g::1]/",
                   "http://h\\u00e9st/",
                   "mailto:a@b.c",
                   "http:/x.com"}) {
    INFO(url);
    CHECK(error_message_for(std::string{R"("callback_url": ")"} + url + "\"", "callback_url")
          == "must be an http or https URL");
  }
  CHECK(error_message_for(R"("callback_url": 42)", "callback_url")
        == "must be an http or https URL");
  CHECK(error_message_for(R"("callback_url": {"url":"http://x"})", "callback_url")
        == "must be an http or https URL");
}

TEST_CASE("callback_topic and user_id must be strings") {
  CHECK(error_message_for(R"("callback_topic": 1)", "callback_topic") == "must be a string");
  CHECK(error_message_for(R"("user_id": false)", "user_id") == "must be a string");
  auto r = parse_ok(with_prompt(R"("callback_topic": "t", "user_id": "")"));
  CHECK(r.callback_topic == "t");
  CHECK(r.user_id.empty());
}

// -- llm_config_overrides --------------------------------------------------------------------

TEST_CASE("llm_config_overrides must be an object") {
  CHECK(error_message_for(R"("llm_config_overrides": "openai")", "llm_config_overrides")
        == "must be an object");
  CHECK(error_message_for(R"("llm_config_overrides": [])", "llm_config_overrides")
        == "must be an object");
  CHECK(parse_ok(with_prompt(R"("llm_config_overrides": {})")).overrides == llm_overrides{});
}

TEST_CASE("provider_override must name a known provider") {
  for (auto name : {"anthropic", "openai", "google", "openrouter", "mock"}) {
    auto r = parse_ok(with_prompt(std::string{R"("llm_config_overrides": {"provider_override": ")"}
                                  + name + "\"}"));
    CHECK(r.overrides.provider == name);
  }
  auto message = error_message_for(R"("llm_config_overrides": {"provider_override": "azure"})",
                                   "llm_config_overrides.provider_override");
  CHECK(message == "must be one of anthropic, openai, google, openrouter, mock");
  CHECK(error_message_for(R"("llm_config_overrides": {"provider_override": "OpenAI"})",
                          "llm_config_overrides.provider_override")
        == message);
  CHECK(error_message_for(R"("llm_config_overrides": {"provider_override": 1})",
                          "llm_config_overrides.provider_override")
        == message);
}

TEST_CASE("model_override must be a non-empty string") {
  CHECK(error_message_for(R"("llm_config_overrides": {"model_override": ""})",
                          "llm_config_overrides.model_override")
        == "must not be empty");
  CHECK(error_message_for(R"("llm_config_overrides": {"model_override": 4})",
                          "llm_config_overrides.model_override")
        == "must be a string");
}

TEST_CASE("temperature_override must be a number between 0 and 2") {
  constexpr auto path = "llm_config_overrides.temperature_override";
  for (auto bad : {"-0.1", "2.0001", "3", "\"1.0\"", "true", "1e400", "[1]"}) {
    INFO(bad);
    CHECK(error_message_for(
              std::string{R"("llm_config_overrides": {"temperature_override": )"} + bad + "}", path)
          == "must be a number between 0 and 2");
  }
  auto at = [](const std::string& value) {
    auto r = parse_ok(with_prompt(
        std::string{R"("llm_config_overrides": {"temperature_override": )"} + value + "}"));
    CHECK(r.overrides.has_temperature);
    return r.overrides.temperature;
  };
  CHECK(at("0") == 0.0);
  CHECK(at("2") == 2.0);
  CHECK(at("0.7") == 0.7);
  CHECK(at("1.5e0") == 1.5);
}

TEST_CASE("system_prompt_override must be a string") {
  CHECK(error_message_for(R"("llm_config_overrides": {"system_prompt_override": 1})",
                          "llm_config_overrides.system_prompt_override")
        == "must be a string");
  auto r = parse_ok(with_prompt(R"("llm_config_overrides": {"system_prompt_override": ""})"));
  CHECK(r.overrides.has_system_prompt);
  CHECK(r.overrides.system_prompt.empty());
}

TEST_CASE("max_tokens_override must be an integer from 1 to one million") {
  constexpr auto path = "llm_config_overrides.max_tokens_override";
  for (auto bad :
       {"0", "-1", "1000001", "10.5", "\"10\"", "true", "1e300", "18446744073709551615"}) {
    INFO(bad);
    CHECK(error_message_for(
              std::string{R"("llm_config_overrides": {"max_tokens_override": )"} + bad + "}", path)
          == "must be an integer between 1 and 1000000");
  }
  auto at = [](std::string_view value) {
    return parse_ok(with_prompt(std::string{R"("llm_config_overrides": {"max_tokens_override": )"}
                                + std::string{value} + "}"))
        .overrides.max_tokens;
  };
  CHECK(at("1") == 1u);
  CHECK(at("1000000") == 1'000'000u);
  CHECK(at("4096.0") == 4096u);
}

TEST_CASE("reasoning_effort and output_verbosity take their listed words") {
  for (auto word : {"none", "low", "medium", "high"}) {
    auto r = parse_ok(with_prompt(std::string{R"("llm_config_overrides": {"reasoning_effort": ")"}
                                  + word + "\"}"));
    CHECK(r.overrides.reasoning_effort == word);
  }
  for (auto word : {"low", "medium", "high"}) {
    auto r = parse_ok(with_prompt(std::string{R"("llm_config_overrides": {"output_verbosity": ")"}
                                  + word + "\"}"));
    CHECK(r.overrides.output_verbosity == word);
  }
  CHECK(error_message_for(R"("llm_config_overrides": {"reasoning_effort": "max"})",
                          "llm_config_overrides.reasoning_effort")
        == "must be one of none, low, medium, high");
  CHECK(error_message_for(R"("llm_config_overrides": {"output_verbosity": "none"})",
                          "llm_config_overrides.output_verbosity")
        == "must be one of low, medium, high");
  CHECK(error_message_for(R"("llm_config_overrides": {"output_verbosity": 2})",
                          "llm_config_overrides.output_verbosity")
        == "must be one of low, medium, high");
}

// -- correlation_id, metadata, priority ------------------------------------------------------

TEST_CASE("correlation_id must be a UUID and is stored lower-case") {
  auto r = parse_ok(with_prompt(std::string{R"("correlation_id": ")"} + uuid_upper + "\""));
  CHECK(r.correlation_id == uuid_lower);
  for (auto bad : {R"("abc")", R"("")", "123", R"("3f2504e0-4f89-41d3-9a0c-0305e82c330")",
                   R"("3f2504e0x4f89-41d3-9a0c-0305e82c3301")", "{}"}) {
    INFO(bad);
    auto message = error_message_for(std::string{R"("correlation_id": )"} + bad, "correlation_id");
    CHECK(message.find("UUID") != std::string::npos);
  }
}

TEST_CASE("metadata must be an object and is stored as written without whitespace") {
  CHECK(error_message_for(R"("metadata": [1])", "metadata") == "must be an object");
  CHECK(error_message_for(R"("metadata": "x")", "metadata") == "must be an object");
  auto r = parse_ok(with_prompt(R"("metadata": { "s" : "line\nbreak \"q\" \u00e9",
    "i": -3, "u": 18446744073709551615, "d": 1.5, "f": 2.0, "e": 1e-7,
    "b": [true, false, null], "o": {"x": {}} })"));
  CHECK(r.metadata_json
        == "{\"s\":\"line\\nbreak \\\"q\\\" \\u00e9\",\"i\":-3,\"u\":18446744073709551615,"
           "\"d\":1.5,\"f\":2.0,\"e\":1e-7,\"b\":[true,false,null],\"o\":{\"x\":{}}}");
  CHECK_FALSE(r.has_cj_batching_mode);
  // The stored text parses back to the same value.
  CHECK(json::parse(r.metadata_json) == json::parse(R"({ "s" : "line\nbreak \"q\" \u00e9",
    "i": -3, "u": 18446744073709551615, "d": 1.5, "f": 2.0, "e": 1e-7,
    "b": [true, false, null], "o": {"x": {}} })"));
}

TEST_CASE("metadata numbers are echoed exactly as the caller wrote them") {
  // Boost.JSON 1.81 reads some numbers an ulp off (and 1e400 as infinity); metadata is
  // opaque and echoed, so its original text is kept (found by the fuzzer).
  auto r = parse_ok(with_prompt(R"("metadata": {"x": [1e400], "h": 21e300,
    "c": 123456789.123456789})"));
  CHECK(r.metadata_json == R"({"x":[1e400],"h":21e300,"c":123456789.123456789})");
  comparison_request in_bulk;
  std::vector<bulk_item> items;
  field_error error;
  REQUIRE(parse_comparison_batch(
      R"({"requests": [{"user_prompt": "p", "metadata": {"c": 123456789.123456789 }}]})",
      request_limits{}, items, error));
  REQUIRE(items.size() == 1);
  CHECK(items[0].request.metadata_json == R"({"c":123456789.123456789})");
  result_event event;
  event.caller_metadata_json = r.metadata_json;
  event.outcome.enrichment.resolved_provider = "mock";
  auto rendered = render_result_event(event);
  CHECK(rendered.find(R"("request_metadata":{"x":[1e400],"h":21e300,"c":123456789.123456789,)"
                      R"("resolved_provider":"mock")")
        != std::string::npos);
}

TEST_CASE("metadata with a duplicated key falls back to the parsed value") {
  auto r = parse_ok(with_prompt(R"("metadata": {"a": 1}, "metadata": {"b": 2})"));
  CHECK(json::parse(r.metadata_json).is_object());
}

TEST_CASE("metadata.cj_llm_batching_mode is read when it is a string") {
  auto r = parse_ok(with_prompt(R"("metadata": {"cj_llm_batching_mode": "per_request"})"));
  CHECK(r.has_cj_batching_mode);
  CHECK(r.cj_batching_mode == "per_request");
  auto other = parse_ok(with_prompt(R"("metadata": {"cj_llm_batching_mode": 3})"));
  CHECK_FALSE(other.has_cj_batching_mode);
  CHECK(other.cj_batching_mode.empty());
  CHECK(other.metadata_json == R"({"cj_llm_batching_mode":3})");
}

TEST_CASE("priority must be an integer from 0 to 10") {
  for (auto bad : {"11", "-1", "3.5", "\"5\"", "true", "1e2", "9223372036854775808"}) {
    INFO(bad);
    CHECK(error_message_for(std::string{R"("priority": )"} + bad, "priority")
          == "must be an integer between 0 and 10");
  }
  CHECK(parse_ok(with_prompt(R"("priority": 0)")).priority == 0);
  CHECK(parse_ok(with_prompt(R"("priority": 10)")).priority == 10);
  CHECK(parse_ok(with_prompt(R"("priority": 3.0)")).priority == 3);
}

TEST_CASE("errors are reported in a fixed field order") {
  // metadata is checked before priority whatever the order in the body.
  auto error = parse_error(R"({"user_prompt": "x", "priority": 99, "metadata": 1})");
  CHECK(error.field == "metadata");
}

// -- whole-body failures ---------------------------------------------------------------------

TEST_CASE("an empty body is refused") {
  for (auto body : {"", "   ", "\r\n\t "}) {
    auto error = parse_error(body);
    CHECK(error.field.empty());
    CHECK(error.message == "request body is empty");
  }
}

TEST_CASE("malformed JSON is refused with the parser's reason") {
  for (auto body : {R"({"user_prompt": })", R"({"user_prompt": "x",})", R"({"user_prompt": "x")",
                    R"({"user_prompt": "x"} trailing)", R"({'user_prompt': 'x'})",
                    R"({"user_prompt": "x" /* c */})", "{\"user_prompt\": \"a\x01b\"}",
                    R"({"user_prompt": NaN})"}) {
    INFO(body);
    auto error = parse_error(body);
    CHECK(error.field.empty());
    CHECK(error.message.starts_with("malformed JSON: "));
    CHECK(error.message.size() > std::string_view{"malformed JSON: "}.size());
  }
  CHECK(parse_error(R"({"user_prompt": "x")").message
        == "malformed JSON: incomplete JSON at byte 19"); // the body's length
  CHECK(parse_error(R"({"a":1} x)").message == "malformed JSON: extra data at byte 8");
}

TEST_CASE("a body that is not an object is refused") {
  for (auto body : {"[]", R"("user_prompt")", "42", "null", "true", R"([{"user_prompt":"x"}])"}) {
    INFO(body);
    auto error = parse_error(body);
    CHECK(error.field.empty());
    CHECK(error.message == "request body must be a JSON object");
  }
}

TEST_CASE("nesting deeper than the limit is refused") {
  parse_ok(nested_body(63));
  parse_ok(nested_body(64));
  auto error = parse_error(nested_body(65));
  CHECK(error.field.empty());
  CHECK(error.message == "malformed JSON: nesting is deeper than the limit of 64 levels");
  request_limits tight;
  tight.max_depth = 8;
  parse_ok(nested_body(8), tight);
  CHECK(parse_error(nested_body(9), tight).message.find("8 levels") != std::string::npos);
  // Arrays count too.
  CHECK(parse_error(with_prompt(R"("metadata": {"a": [[[[[[[[]]]]]]]]})"), tight)
            .message.find("deeper")
        != std::string::npos);
}

TEST_CASE("invalid UTF-8 is refused") {
  for (std::string bad : {"\xC3\x28", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF",
                          "abc\xE2\x82", "\x80"}) {
    INFO(json_quote(bad));
    auto error = parse_error(R"({"user_prompt": "x)" + bad + R"(y"})");
    CHECK(error.field.empty());
    CHECK(error.message == "malformed JSON: text is not valid UTF-8");
  }
  // In a key too.
  CHECK(parse_error("{\"user_prompt\": \"x\", \"k\xC3\x28\": 1}").message.find("UTF-8")
        != std::string::npos);
  // Well-formed multi-byte text passes through unchanged.
  auto prompt = std::string{"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE4\xB8\xAD"};
  CHECK(parse_ok(R"({"user_prompt": ")" + prompt + "\"}").user_prompt == prompt);
  CHECK(parse_ok(R"({"user_prompt": "\u00e9\ud83d\ude00"})").user_prompt
        == "\xC3\xA9\xF0\x9F\x98\x80");
}

// -- bulk ------------------------------------------------------------------------------------

TEST_CASE("a bulk body gives each item its own verdict") {
  auto body = R"({"requests": [
    {"user_prompt": "one", "priority": 2},
    {"user_prompt": ""},
    42,
    {"user_prompt": "x", "prompt_blocks": [{"target":"system","content":"a","ttl":"5m"},
                                           {"target":"system","content":"b","ttl":"1h"}]},
    {"user_prompt": "x", "llm_config_overrides": {"temperature_override": 9}},
    {"user_prompt": "five", "correlation_id": "3F2504E0-4F89-41D3-9A0C-0305E82C3301"}
  ], "ignored": true})";
  std::vector<bulk_item> items;
  field_error error;
  REQUIRE(parse_comparison_batch(body, {}, items, error));
  REQUIRE(items.size() == 6);
  CHECK(items[0].ok);
  CHECK(items[0].request.user_prompt == "one");
  CHECK(items[0].request.priority == 2);
  CHECK_FALSE(items[1].ok);
  CHECK(items[1].error.code == ec::validation_error);
  CHECK(items[1].error.field == "requests[1].user_prompt");
  CHECK(items[1].error.message == "must not be empty");
  CHECK_FALSE(items[2].ok);
  CHECK(items[2].error.field == "requests[2]");
  CHECK(items[2].error.message == "must be a JSON object");
  CHECK_FALSE(items[3].ok);
  CHECK(items[3].error.field == "requests[3].prompt_blocks[1].ttl");
  CHECK_FALSE(items[4].ok);
  CHECK(items[4].error.field == "requests[4].llm_config_overrides.temperature_override");
  CHECK(items[4].error.message == "must be a number between 0 and 2");
  CHECK(items[5].ok);
  CHECK(items[5].request.correlation_id == uuid_lower);
  CHECK(items[5].error.message.empty());
}

TEST_CASE("a bulk body with a broken envelope is refused whole") {
  auto refuse = [](std::string_view body, request_limits limits = {},
                   ec code = ec::validation_error) {
    std::vector<bulk_item> items{bulk_item{}};
    field_error error;
    INFO(body);
    CHECK_FALSE(parse_comparison_batch(body, limits, items, error));
    CHECK(items.empty());
    CHECK(error.code == code);
    return error;
  };
  auto missing = refuse(R"({"request": []})");
  CHECK(missing.field == "requests");
  CHECK(missing.message == "is required");
  CHECK(refuse(R"({"requests": null})").message == "is required");
  auto not_array = refuse(R"({"requests": {"user_prompt": "x"}})");
  CHECK(not_array.field == "requests");
  CHECK(not_array.message == "must be an array of request objects");
  auto empty = refuse(R"({"requests": []})");
  CHECK(empty.field == "requests");
  CHECK(empty.message == "must contain at least one request");
  request_limits small;
  small.max_batch_items = 2;
  auto too_many = refuse(R"({"requests": [{"user_prompt":"a"},{"user_prompt":"b"},
                                          {"user_prompt":"c"}]})",
                         small, ec::payload_too_large); // a limit: 413, not a malformed body
  CHECK(too_many.field == "requests");
  CHECK(too_many.message == "must contain at most 2 requests");
  auto not_object = refuse(R"([{"user_prompt":"a"}])");
  CHECK(not_object.field.empty());
  CHECK(not_object.message == "request body must be a JSON object");
  CHECK(refuse("").message == "request body is empty");
  CHECK(refuse(R"({"requests": [)").message.starts_with("malformed JSON: "));
  CHECK(refuse("{\"requests\": [{\"user_prompt\": \"\xC3\x28\"}]}").message
        == "malformed JSON: text is not valid UTF-8");
  // Exactly at the limit is fine.
  std::vector<bulk_item> items;
  field_error error;
  CHECK(parse_comparison_batch(R"({"requests": [{"user_prompt":"a"},{"user_prompt":"b"}]})", small,
                               items, error));
  CHECK(items.size() == 2);
}

// -- response bodies -------------------------------------------------------------------------

TEST_CASE("the error body has the agreed envelope") {
  CHECK(render_error_body(ec::validation_error, "must not be empty", "", "user_prompt")
        == R"({"error":{"code":"VALIDATION_ERROR","message":"must not be empty",)"
           R"("correlation_id":null,"details":{"field":"user_prompt"}}})");
  CHECK(render_error_body(ec::queue_full, "queue is full", uuid_lower)
        == R"({"error":{"code":"QUEUE_FULL","message":"queue is full",)"
           R"("correlation_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301","details":{}}})");
  // Messages with quotes, newlines and bad bytes still give valid JSON.
  auto text = render_error_body(ec::internal_error, "bad \"thing\"\nhappened \xFF", "", "a\\b");
  auto v = reparse(text);
  CHECK(str(v.at("error").at("message")) == "bad \"thing\"\nhappened \xEF\xBF\xBD");
  CHECK(str(v.at("error").at("details").at("field")) == "a\\b");
}

TEST_CASE("the accepted body names the queue id and correlation id") {
  enqueue_outcome outcome{true, "q-1", uuid_lower, "", "", 0};
  CHECK(render_accepted(outcome)
        == R"({"queue_id":"q-1","status":"queued",)"
           R"("correlation_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301",)"
           R"("message":"Request queued for processing"})");
}

TEST_CASE("the bulk body lists accepted and refused entries in order") {
  std::vector<bulk_entry> entries(3);
  entries[0].accepted = true;
  entries[0].outcome = {true, "q-1", "c-1", "", "", 0};
  entries[1].error = {ec::validation_error, "requests[1].user_prompt", "must not be empty"};
  entries[2].outcome = {false, "", "c-3", "QUEUE_FULL", "queue is full", 30};
  CHECK(render_bulk_accepted(entries)
        == R"({"results":[{"queue_id":"q-1","status":"queued","correlation_id":"c-1"},)"
           R"({"error":{"code":"VALIDATION_ERROR","message":"must not be empty",)"
           R"("correlation_id":null,"details":{"field":"requests[1].user_prompt"}}},)"
           R"({"error":{"code":"QUEUE_FULL","message":"queue is full","correlation_id":"c-3",)"
           R"("details":{}}}]})");
  CHECK(render_bulk_accepted({}) == R"({"results":[]})");
}

TEST_CASE("the status body reports the queue entry") {
  request_status status;
  status.found = true;
  status.queue_id = "q-9";
  status.correlation_id = uuid_lower;
  status.status = queue_status::processing;
  status.queued_at = t_requested;
  status.attempts = 2;
  status.priority = 7;
  status.model = "gpt-x";
  CHECK(render_status(status)
        == R"({"queue_id":"q-9","status":"processing","queued_at":"2023-11-14T22:13:20.123Z",)"
           R"("attempts":2,"priority":7,"provider":null,"model":"gpt-x",)"
           R"("correlation_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301",)"
           R"("last_error":null,"next_attempt_at":null})");
  status.last_error_code = "RATE_LIMIT";
  status.last_error_message = "slow \"down\"";
  status.next_attempt_at = t_requested;
  CHECK(render_status(status).ends_with(
      R"("last_error":{"code":"RATE_LIMIT","message":"slow \"down\""},)"
      R"("next_attempt_at":"2023-11-14T22:13:20.123Z"})"));
}

TEST_CASE("a status with its submission window ends with the window's times") {
  request_status status;
  status.found = true;
  status.queue_id = "q-9";
  status.status = queue_status::queued;
  status.queued_at = t_requested;
  CHECK(render_status(status, submission_window{t_requested, t_requested + std::chrono::hours{2}})
        == R"({"queue_id":"q-9","status":"queued","queued_at":"2023-11-14T22:13:20.123Z",)"
           R"("attempts":0,"priority":5,"provider":null,"model":null,"correlation_id":null,)"
           R"("last_error":null,"next_attempt_at":null,)"
           R"("window_opens_at":"2023-11-14T22:13:20.123Z",)"
           R"("window_closes_at":"2023-11-15T00:13:20.123Z"})");
}

TEST_CASE("the inspection body lists every actor") {
  actor_status a;
  a.name = "queue-manager";
  a.kind = "queue_manager";
  a.mailbox_size = 3;
  a.messages_handled = 12345678901;
  a.figures = {
      {"depth", 4.0}, {"ratio", 0.25}, {"broken", std::numeric_limits<double>::infinity()}};
  a.facts = {{"mode", "serial_bundle"}};
  actor_status b;
  b.name = "metrics";
  b.kind = "metrics";
  CHECK(render_inspection({a, b})
        == R"({"actors":[{"name":"queue-manager","kind":"queue_manager","mailbox_size":3,)"
           R"("messages_handled":12345678901,"figures":{"broken":null,"depth":4.0,"ratio":0.25},)"
           R"("facts":{"mode":"serial_bundle"}},{"name":"metrics","kind":"metrics",)"
           R"("mailbox_size":0,"messages_handled":0,"figures":{},"facts":{}}]})");
  CHECK(render_inspection({}) == R"({"actors":[]})");
}

// -- result events ---------------------------------------------------------------------------

TEST_CASE("a successful result event has the contract shape") {
  auto v = reparse(render_result_event(success_event()));
  const auto& envelope = v.as_object();
  std::vector<std::string> keys;
  for (const auto& m : envelope)
    keys.emplace_back(m.key());
  CHECK(keys
        == std::vector<std::string>{"event_id", "event_type", "event_timestamp", "source_service",
                                    "schema_version", "correlation_id", "data"});
  CHECK(str(envelope.at("event_id")) == "11111111-2222-5333-8444-555555555555");
  CHECK(str(envelope.at("event_type")) == "LLMComparisonResultV1");
  CHECK(str(envelope.at("event_timestamp")) == "2023-11-14T22:13:25.000Z");
  CHECK(str(envelope.at("source_service")) == "llm_provider_service");
  CHECK(envelope.at("schema_version") == 1);
  CHECK(str(envelope.at("correlation_id")) == uuid_lower);
  const auto& data = envelope.at("data").as_object();
  keys.clear();
  for (const auto& m : data)
    keys.emplace_back(m.key());
  CHECK(keys
        == std::vector<std::string>{
            "request_id", "correlation_id", "winner", "justification", "confidence", "error_detail",
            "provider", "model", "response_time_ms", "token_usage", "cost_estimate", "requested_at",
            "completed_at", "trace_id", "request_metadata"});
  CHECK(str(data.at("request_id")) == "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee");
  CHECK(str(data.at("correlation_id")) == uuid_lower);
  CHECK(str(data.at("winner")) == "Essay A");
  CHECK(str(data.at("justification")) == "A argues more clearly.");
  CHECK(data.at("confidence").as_double() == 4.5);
  CHECK(data.at("error_detail").is_null());
  CHECK(str(data.at("provider")) == "mock");
  CHECK(str(data.at("model")) == "mock-model-1");
  CHECK(data.at("response_time_ms") == 1234);
  CHECK(data.at("token_usage")
        == json::parse(R"({"prompt_tokens":100,"completion_tokens":20,"total_tokens":120})"));
  CHECK(data.at("cost_estimate").as_double() == 0.00125);
  CHECK(str(data.at("requested_at")) == "2023-11-14T22:13:20.123Z");
  CHECK(str(data.at("completed_at")) == "2023-11-14T22:13:25.000Z");
  CHECK(data.at("trace_id").is_null());
  CHECK(data.at("request_metadata")
        == json::parse(R"({"essay_a_id":"e1","essay_b_id":"e2","bos_batch_id":7,
             "resolved_provider":"mock","resolved_model":"mock-model-1",
             "queue_processing_mode":"serial_bundle","prompt_sha256":"abc123",
             "bundle_id":"bundle-9","bundle_size":4})"));
}

TEST_CASE("a failed result event carries error_detail and no judgement") {
  auto event = failure_event();
  event.trace_id = "trace-7";
  auto v = reparse(render_result_event(event));
  const auto& data = v.at("data").as_object();
  CHECK(data.at("winner").is_null());
  CHECK(data.at("justification").is_null());
  CHECK(data.at("confidence").is_null());
  CHECK(str(data.at("provider")) == "mock");      // from the enrichment
  CHECK(str(data.at("model")) == "mock-model-1"); // from the enrichment
  CHECK(str(data.at("trace_id")) == "trace-7");
  CHECK(data.at("error_detail")
        == json::parse(R"({"error_code":"RATE_LIMIT","message":"provider said \"slow down\"",
             "correlation_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301",
             "timestamp":"2023-11-14T22:13:25.000Z","service":"llm_provider_service",
             "operation":"process_comparison","details":{"http_status":429,"retryable":true,
             "provider":"mock","final_status":"failed","attempts":0}})"));
  // Key order inside error_detail follows the contract too.
  std::vector<std::string> keys;
  for (const auto& m : data.at("error_detail").as_object())
    keys.emplace_back(m.key());
  CHECK(keys
        == std::vector<std::string>{"error_code", "message", "correlation_id", "timestamp",
                                    "service", "operation", "details"});
}

TEST_CASE("a failure without http status or provider renders nulls") {
  auto event = failure_event();
  event.final_status = "expired";
  event.outcome.error_code = "EXPIRED";
  event.outcome.http_status = 0;
  event.outcome.retryable = false;
  event.outcome.enrichment = {};
  event.outcome.prompt_sha256.clear();
  auto v = reparse(render_result_event(event));
  const auto& data = v.at("data").as_object();
  CHECK(data.at("provider").is_null());
  CHECK(data.at("model").is_null());
  CHECK(data.at("error_detail").at("details")
        == json::parse(
            R"({"retryable":false,"provider":null,"final_status":"expired","attempts":0})"));
  CHECK(data.at("request_metadata")
        == json::parse(R"({"essay_a_id":"e1","essay_b_id":"e2","bos_batch_id":7})"));
}

TEST_CASE("outcome provider and model win over the enrichment") {
  auto event = success_event();
  event.outcome.provider = "openai";
  event.outcome.model = "gpt-4o";
  event.outcome.enrichment.resolved_model.clear();
  auto v = reparse(render_result_event(event));
  CHECK(str(v.at("data").at("provider")) == "openai");
  CHECK(str(v.at("data").at("model")) == "gpt-4o");
  CHECK_FALSE(v.at("data").at("request_metadata").as_object().contains("resolved_model"));
}

TEST_CASE("request_metadata never overwrites caller keys") {
  auto event = success_event();
  event.caller_metadata_json = R"({"resolved_provider":"caller","bundle_size":"caller",
    "prompt_sha256":null,"cache_read_input_tokens":[1],"queue_processing_mode":{"x":1}})";
  event.outcome.usage.cache_read_input_tokens = 50;
  event.outcome.usage.cache_creation_input_tokens = 7;
  auto v = reparse(render_result_event(event));
  CHECK(v.at("data").at("request_metadata")
        == json::parse(R"({"resolved_provider":"caller","bundle_size":"caller",
             "prompt_sha256":null,"cache_read_input_tokens":[1],"queue_processing_mode":{"x":1},
             "resolved_model":"mock-model-1","bundle_id":"bundle-9",
             "cache_creation_input_tokens":7})"));
  // The caller's keys come first, in the caller's order.
  const auto& metadata = v.at("data").at("request_metadata").as_object();
  CHECK(metadata.begin()->key() == "resolved_provider");
}

TEST_CASE("unusable caller metadata becomes an empty object before enrichment") {
  for (auto bad : {"not json", "[1,2]", "\"x\"", "", "{\"a\":"}) {
    INFO(bad);
    auto event = success_event();
    event.caller_metadata_json = bad;
    event.outcome.enrichment = {};
    event.outcome.prompt_sha256.clear();
    auto v = reparse(render_result_event(event));
    CHECK(v.at("data").at("request_metadata") == json::object{});
  }
}

TEST_CASE("a long justification is cut to 500 characters on a character boundary") {
  // 600 characters: a repeating mix of 1- 2- 3- and 4-byte characters, so byte 500 falls
  // inside a character.
  std::string text;
  const std::vector<std::string> pieces{"a", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80"};
  for (int i = 0; i < 600; ++i)
    text += pieces[i % 4];
  REQUIRE(code_points(text) == 600);
  auto event = success_event();
  event.outcome.justification = text;
  auto rendered = render_result_event(event);
  auto v = reparse(rendered); // Boost.JSON refuses invalid UTF-8
  auto cut = str(v.at("data").at("justification"));
  CHECK(code_points(cut) == 500);
  CHECK(text.starts_with(cut));
  CHECK(cut.size() == 125 * (1 + 2 + 3 + 4)); // 500 characters, 4 pieces each
  // Exactly 500 is left alone, and shorter text too.
  event.outcome.justification = std::string(500, 'x');
  CHECK(str(reparse(render_result_event(event)).at("data").at("justification")).size() == 500);
}

TEST_CASE("result events never contain NaN or invalid UTF-8") {
  auto event = success_event();
  event.outcome.confidence = std::numeric_limits<double>::quiet_NaN();
  event.outcome.cost_estimate = std::numeric_limits<double>::infinity();
  event.outcome.justification = "ok \xC3\x28 \xFF end";
  event.outcome.winner = "Essay\x01"
                         "A";
  auto text = render_result_event(event);
  CHECK(text.find("NaN") == std::string::npos);
  CHECK(text.find("Infinity") == std::string::npos);
  auto v = reparse(text);
  CHECK(v.at("data").at("confidence").is_null());
  CHECK(v.at("data").at("cost_estimate").as_double() == 0.0);
  CHECK(str(v.at("data").at("justification")) == "ok \xEF\xBF\xBD( \xEF\xBF\xBD end");
  CHECK(str(v.at("data").at("winner"))
        == "Essay\x01"
           "A");
  auto failed = failure_event();
  failed.outcome.error_message = "upstream body: \xE9t\xE9";
  auto w = reparse(render_result_event(failed));
  CHECK(str(w.at("data").at("error_detail").at("message"))
        == "upstream body: \xEF\xBF\xBDt\xEF\xBF\xBD");
}

TEST_CASE("a result event without correlation id falls back to the request id") {
  auto event = success_event();
  event.correlation_id.clear();
  auto v = reparse(render_result_event(event));
  CHECK(str(v.at("correlation_id")) == "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee");
  CHECK(str(v.at("data").at("correlation_id")) == "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee");
}

TEST_CASE("a rendered event can be read back by json_string_field") {
  auto text = render_result_event(success_event());
  CHECK(json_string_field(text, "event_id") == "11111111-2222-5333-8444-555555555555");
  CHECK(json_string_field(text, "correlation_id") == uuid_lower);
  CHECK(json_string_field(text, "schema_version").empty()); // a number, not a string
  CHECK(json_string_field(text, "request_id").empty());     // only top-level keys
  CHECK(json_string_field(text, "missing").empty());
}

TEST_CASE("json_error_code reads the code of a rendered error body, and nothing else") {
  CHECK(json_error_code(render_error_body(ec::queue_full, "full", "", "")) == "QUEUE_FULL");
  CHECK(json_error_code(render_error_body(ec::validation_error, "bad", uuid_lower, "priority"))
        == "VALIDATION_ERROR");
  CHECK(json_error_code(render_result_event(success_event())).empty());
  CHECK(json_error_code(R"({"error":"text"})").empty());
  CHECK(json_error_code(R"({"error":{"code":7}})").empty());
  CHECK(json_error_code("{not json").empty());
  CHECK(json_error_code("").empty());
}

// -- helpers ---------------------------------------------------------------------------------

TEST_CASE("json_quote escapes a JSON string literal") {
  CHECK(json_quote("") == R"("")");
  CHECK(json_quote("plain") == R"("plain")");
  CHECK(json_quote("a\"b\\c/d") == R"("a\"b\\c/d")");
  CHECK(json_quote("\n\r\t\b\f") == R"("\n\r\t\b\f")");
  CHECK(json_quote(std::string_view{"\x01\x1f\0", 3}) == R"("\u0001\u001f\u0000")");
  CHECK(json_quote("caf\xC3\xA9 \xF0\x9F\x98\x80") == "\"caf\xC3\xA9 \xF0\x9F\x98\x80\"");
  CHECK(json_quote("bad \xC3\x28 \xED\xA0\x80")
        == "\"bad \xEF\xBF\xBD( \xEF\xBF\xBD\xEF\xBF\xBD"
           "\xEF\xBF\xBD\"");
  CHECK(json_quote("\x7F") == "\"\x7F\"");
  auto all_bytes = std::string{};
  for (int c = 0; c < 256; ++c)
    all_bytes += static_cast<char>(c);
  reparse(json_quote(all_bytes));
}

TEST_CASE("json_string_field reads top-level strings and tolerates garbage") {
  CHECK(json_string_field(R"({"a":"x","b":2,"c":null,"d":{"a":"y"}})", "a") == "x");
  CHECK(json_string_field(R"({"a":"x\n\u00e9"})", "a") == "x\n\xC3\xA9");
  CHECK(json_string_field(R"({"a":"x"})", "b").empty());
  CHECK(json_string_field(R"({"b":2})", "b").empty());
  CHECK(json_string_field(R"({"c":null})", "c").empty());
  CHECK(json_string_field(R"({"d":{"a":"y"}})", "d").empty());
  CHECK(json_string_field(R"(["a","x"])", "a").empty());
  CHECK(json_string_field("", "a").empty());
  CHECK(json_string_field("garbage", "a").empty());
  CHECK(json_string_field(R"({"a":"x")", "a").empty());
  CHECK(json_string_field("{\"a\":\"\xFF\"}", "a").empty());
}

// -- performance -----------------------------------------------------------------------------

TEST_CASE("parse time of a request with two 3 KB essays", "[.bench]") {
  std::string essay;
  while (essay.size() < 3000)
    essay += "The author argues that renewable energy will reshape economies \u00e9. ";
  std::string body = R"({"user_prompt":"Compare these essays.\n**Essay A (ID: a1):**\n)" + essay
                     + R"(\n**Essay B (ID: b2):**\n)" + essay
                     + R"(","callback_url":"http://127.0.0.1:9000/cb",)"
                       R"("llm_config_overrides":{"provider_override":"mock",)"
                       R"("temperature_override":0.2},)"
                       R"("correlation_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301",)"
                       R"("metadata":{"essay_a_id":"a1","essay_b_id":"b2","bos_batch_id":"b-1",)"
                       R"("cj_llm_batching_mode":"serial_bundle"},"priority":5})";
  constexpr int rounds = 20000;
  comparison_request r;
  field_error error;
  REQUIRE(parse_comparison_request(body, {}, r, error));
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < rounds; ++i)
    parse_comparison_request(body, {}, r, error);
  auto elapsed = std::chrono::steady_clock::now() - start;
  auto us = std::chrono::duration<double, std::micro>(elapsed).count() / rounds;
  std::printf("parse_comparison_request: %zu-byte body, %.2f us per parse\n", body.size(), us);
  CHECK(us < 50.0);
}
