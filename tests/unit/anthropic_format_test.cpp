// The Anthropic Messages wire format as pure functions: the request bodies (parsed back and
// checked field by field, and against the rules the API and our mock enforce), and the strict
// reading of every kind of answer, with a fixed clock.

#include "actors/providers/anthropic_format.hpp"
#include "actors/providers/wire_common.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

using namespace lps;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

/// 2024-05-01T12:00:00Z: every reset header below is relative to it.
const auto fixed_now = std::chrono::system_clock::from_time_t(1714564800);

constexpr const char* secret_key = "sk-ant-api03-SECRETsecret0123456789";

comparison_request make_request(std::string prompt = "Compare essay A with essay B.") {
  comparison_request req;
  req.queue_id = "q-1";
  req.correlation_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
  req.user_prompt = std::move(prompt);
  return req;
}

prompt_block block(std::string target, std::string content, bool cacheable = false,
                   std::string ttl = "") {
  return prompt_block{std::move(target), std::move(content), cacheable, std::move(ttl)};
}

wire_target make_target() {
  wire_target target;
  target.base_url = "http://127.0.0.1:8080";
  target.api_key = secret_key;
  target.timeout = 12345ms;
  return target;
}

json::object body_of(const http_client_request& request) {
  return json::parse(request.body).as_object();
}

json::object parse(const std::string& text) {
  return json::parse(text).as_object();
}

const std::string* header(const http_client_request& request, std::string_view name) {
  for (const auto& [key, value] : request.headers)
    if (key == name)
      return &value;
  return nullptr;
}

/// The cache_control of `x` as JSON text, "" when it has none.
std::string cache_of(const json::value& x) {
  auto* cc = x.as_object().if_contains("cache_control");
  return cc ? json::serialize(*cc) : std::string{};
}

const std::string ephemeral_5m = R"({"type":"ephemeral"})";
const std::string ephemeral_1h = R"({"type":"ephemeral","ttl":"1h"})";

/// Every cache_control in `body`, in the API's prefix order: tools, system, messages.
std::vector<std::string> breakpoints(const json::object& body) {
  std::vector<std::string> result;
  auto collect = [&result](const json::array& xs) {
    for (const auto& x : xs)
      if (auto cc = cache_of(x); !cc.empty())
        result.push_back(cc);
  };
  if (auto* tools = body.if_contains("tools"))
    collect(tools->as_array());
  if (auto* system = body.if_contains("system"))
    collect(system->as_array());
  for (const auto& m : body.at("messages").as_array())
    collect(m.at("content").as_array());
  return result;
}

bool blank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos;
}

/// Why the Messages API (as tools/mock_provider/mock_provider_dialects.hpp validate_anthropic
/// models it, plus its non-blank text rule) would reject `body`, or "" when it would not.
std::string api_objection(const json::object& body) {
  auto* model = body.if_contains("model");
  if (!model || !model->is_string() || model->get_string().empty())
    return "model";
  auto* max_tokens = body.if_contains("max_tokens");
  if (!max_tokens || !(max_tokens->is_uint64() || max_tokens->is_int64())
      || max_tokens->to_number<int64_t>() < 1)
    return "max_tokens";
  auto* temperature = body.if_contains("temperature");
  if (temperature
      && !(temperature->is_number() && temperature->to_number<double>() >= 0.0
           && temperature->to_number<double>() <= 1.0))
    return "temperature";
  auto text_ok = [](const json::value& x) {
    auto* o = x.if_object();
    auto* type = o ? o->if_contains("type") : nullptr;
    auto* text = o ? o->if_contains("text") : nullptr;
    return type && *type == "text" && text && text->is_string() && !blank(text->get_string());
  };
  if (auto* system = body.if_contains("system"))
    for (const auto& x : system->as_array())
      if (!text_ok(x))
        return "system block";
  auto* messages = body.if_contains("messages");
  if (!messages || !messages->is_array() || messages->get_array().empty())
    return "messages";
  for (const auto& m : messages->get_array()) {
    if (m.at("role") != "user" && m.at("role") != "assistant")
      return "role";
    for (const auto& x : m.at("content").as_array())
      if (!text_ok(x))
        return "content block";
  }
  std::vector<std::string> names;
  for (const auto& t : body.at("tools").as_array()) {
    if (!t.as_object().if_contains("input_schema") || !t.at("input_schema").is_object())
      return "input_schema";
    names.emplace_back(t.at("name").as_string());
  }
  const auto& choice = body.at("tool_choice").as_object();
  if (choice.at("type") != "tool"
      || std::find(names.begin(), names.end(), choice.at("name").as_string()) == names.end())
    return "tool_choice";
  auto xs = breakpoints(body);
  if (xs.size() > 4)
    return "more than 4 breakpoints";
  bool five_minutes = false;
  for (const auto& cc : xs) {
    if (cc != ephemeral_5m && cc != ephemeral_1h && cc != R"({"type":"ephemeral","ttl":"5m"})")
      return "cache_control " + cc;
    if (cc == ephemeral_1h && five_minutes)
      return "1h breakpoint after a 5m one";
    five_minutes = five_minutes || cc != ephemeral_1h;
  }
  return {};
}

/// A 200 message body with `content` and usage.
std::string message(json::array content, std::string stop = "tool_use",
                    json::object usage = {{"input_tokens", 100}, {"output_tokens", 20}}) {
  json::object body{{"id", "msg_1"},
                    {"type", "message"},
                    {"role", "assistant"},
                    {"model", "claude-test"},
                    {"content", std::move(content)},
                    {"stop_reason", std::move(stop)},
                    {"stop_sequence", nullptr},
                    {"usage", std::move(usage)}};
  return json::serialize(body);
}

json::object tool_use(std::string name, json::value input) {
  return json::object{
      {"type", "tool_use"}, {"id", "toolu_1"}, {"name", std::move(name)}, {"input", input}};
}

json::object verdict(json::value winner, json::value justification, json::value confidence) {
  return json::object{
      {"winner", winner}, {"justification", justification}, {"confidence", confidence}};
}

/// A 200 answer to single_call whose tool input is `input`.
std::string single_answer(json::object input) {
  return message(json::array{tool_use("comparison_result", std::move(input))});
}

std::string error_body(std::string type, std::string text, std::string error_code = "") {
  json::object err{{"type", std::move(type)}, {"message", std::move(text)}};
  if (!error_code.empty())
    err["details"] = json::object{{"error_code", std::move(error_code)}};
  return json::serialize(
      json::object{{"type", "error"}, {"error", std::move(err)}, {"request_id", "req_1"}});
}

const anthropic_wire wire_format;

wire_response read(unsigned status, const std::string& body, const wire_headers& headers = {}) {
  return wire_format.read_single(status, body, headers, fixed_now);
}

} // namespace

// -- requests ---------------------------------------------------------------------------------

TEST_CASE("anthropic single_call: URL, headers, timeout") {
  anthropic_wire custom{"2024-01-01"};
  auto target = make_target();
  target.extra_headers = {{"x-extra", "1"}};
  auto request = custom.single_call(target, make_request(), "claude-sonnet-4-5");
  CHECK(request.method == "POST");
  CHECK(request.url == "http://127.0.0.1:8080/v1/messages");
  CHECK(request.timeout == 12345ms);
  REQUIRE(header(request, "x-api-key"));
  CHECK(*header(request, "x-api-key") == secret_key);
  REQUIRE(header(request, "anthropic-version"));
  CHECK(*header(request, "anthropic-version") == "2024-01-01");
  REQUIRE(header(request, "content-type"));
  CHECK(*header(request, "content-type") == "application/json");
  REQUIRE(header(request, "x-extra"));
  CHECK(*header(request, "x-extra") == "1");
  CHECK(request.body.find(secret_key) == std::string::npos);
  CHECK(request.body.find("sk-ant") == std::string::npos);

  SECTION("the default version, and a base URL given with a trailing slash") {
    target.base_url = "https://api.anthropic.com/";
    auto x = wire_format.single_call(target, make_request(), "claude");
    CHECK(x.url == "https://api.anthropic.com/v1/messages");
    REQUIRE(header(x, "anthropic-version"));
    CHECK(*header(x, "anthropic-version") == "2023-06-01");
  }
  CHECK(wire_format.display_name() == "Anthropic");
  CHECK(wire_format.endpoint() == "/v1/messages");
}

TEST_CASE("anthropic body without prompt blocks") {
  auto req = make_request("Essay A: ... Essay B: ...");
  auto body = parse(build_anthropic_body(req, "claude-haiku"));
  CHECK(api_objection(body).empty());
  CHECK(body.at("model") == "claude-haiku");
  CHECK(body.at("max_tokens") == wire::default_max_tokens);
  CHECK(body.at("temperature").as_double() == Approx(wire::default_temperature));
  auto& system = body.at("system").as_array();
  REQUIRE(system.size() == 1);
  CHECK(system[0] == json::object{{"type", "text"}, {"text", wire::default_system_prompt}});
  auto& messages = body.at("messages").as_array();
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].at("role") == "user");
  CHECK(messages[0].at("content")
        == json::array{json::object{{"type", "text"}, {"text", "Essay A: ... Essay B: ..."}}});
  auto& tools = body.at("tools").as_array();
  REQUIRE(tools.size() == 1);
  CHECK(tools[0].at("name") == "comparison_result");
  CHECK(tools[0].at("input_schema") == wire::verdict_schema());
  CHECK(tools[0].at("description").as_string().size() > 10);
  CHECK(body.at("tool_choice") == json::object{{"type", "tool"}, {"name", "comparison_result"}});
  CHECK(body.at("metadata") == json::object{{"user_id", req.correlation_id}});
  CHECK(breakpoints(body).empty());

  // The single_call body is the same text.
  CHECK(wire_format.single_call(make_target(), req, "claude-haiku").body
        == build_anthropic_body(req, "claude-haiku"));
}

TEST_CASE("anthropic body takes the overrides") {
  auto req = make_request();
  req.overrides.max_tokens = 1000;
  req.overrides.has_temperature = true;
  req.overrides.temperature = 0.7;
  req.overrides.has_system_prompt = true;
  req.overrides.system_prompt = "Judge strictly.";
  auto body = parse(build_anthropic_body(req, "claude"));
  CHECK(body.at("max_tokens") == 1000);
  CHECK(body.at("temperature").as_double() == Approx(0.7));
  CHECK(body.at("system")
        == json::array{json::object{{"type", "text"}, {"text", "Judge strictly."}}});
  CHECK(api_objection(body).empty());

  SECTION("a temperature above the API's 1.0 (intake allows 2) is cut to 1") {
    req.overrides.temperature = 1.6;
    CHECK(parse(build_anthropic_body(req, "claude")).at("temperature").as_double() == 1.0);
  }
  SECTION("an empty system prompt override leaves no system at all") {
    req.overrides.system_prompt = "";
    CHECK_FALSE(parse(build_anthropic_body(req, "claude")).contains("system"));
  }
}

TEST_CASE("anthropic body from CJ-style prompt blocks") {
  auto req = make_request("rendered prompt (not sent when blocks exist)");
  req.prompt_blocks = {block("system", "Rubric and assignment.", true, "1h"),
                       block("user_content", "**Essay A (ID: 1):**\nText A"),
                       block("user_content", "**Essay B (ID: 2):**\nText B"),
                       block("user_content", "Respond with JSON.", true, "1h")};
  auto body = parse(build_anthropic_body(req, "claude"));
  CHECK(api_objection(body).empty());
  auto& system = body.at("system").as_array();
  REQUIRE(system.size() == 2);
  CHECK(system[0].at("text") == wire::default_system_prompt);
  CHECK(cache_of(system[0]).empty());
  CHECK(system[1].at("text") == "Rubric and assignment.");
  CHECK(cache_of(system[1]) == ephemeral_1h);
  auto& content = body.at("messages").as_array()[0].at("content").as_array();
  REQUIRE(content.size() == 3);
  CHECK(content[0].at("text") == "**Essay A (ID: 1):**\nText A");
  CHECK(content[1].at("text") == "**Essay B (ID: 2):**\nText B");
  CHECK(content[2].at("text") == "Respond with JSON.");
  CHECK(cache_of(content[0]).empty());
  CHECK(cache_of(content[1]).empty());
  CHECK(cache_of(content[2]) == ephemeral_1h);
  // Any 1h block makes the shared head (tool, last system block) 1h too.
  CHECK(cache_of(body.at("tools").as_array()[0]) == ephemeral_1h);
}

TEST_CASE("anthropic body caching rules") {
  auto req = make_request();

  SECTION("no cacheable block: no cache_control anywhere") {
    req.prompt_blocks = {block("system", "Rubric."), block("user_content", "Essays.", false, "1h")};
    auto body = parse(build_anthropic_body(req, "claude"));
    CHECK(breakpoints(body).empty());
    CHECK(api_objection(body).empty());
  }
  SECTION("5m blocks: the head gets 5m, sent as the API's default (no ttl)") {
    req.prompt_blocks = {block("user_content", "Context.", true, "5m"),
                         block("user_content", "Essays."),
                         block("user_content", "Instructions.", true)};
    auto body = parse(build_anthropic_body(req, "claude"));
    CHECK(api_objection(body).empty());
    // tool, the system prompt (last system block), Context., Instructions.
    CHECK(breakpoints(body) == std::vector<std::string>(4, ephemeral_5m));
    CHECK(cache_of(body.at("system").as_array().back()) == ephemeral_5m);
    auto& content = body.at("messages").as_array()[0].at("content").as_array();
    CHECK(cache_of(content[0]) == ephemeral_5m);
    CHECK(cache_of(content[1]).empty());
    CHECK(cache_of(content[2]) == ephemeral_5m);
  }
  SECTION("1h blocks before 5m blocks: the head is 1h") {
    req.prompt_blocks = {block("user_content", "Context.", true, "1h"),
                         block("user_content", "Essays.", true, "5m")};
    auto body = parse(build_anthropic_body(req, "claude"));
    CHECK(api_objection(body).empty());
    CHECK(breakpoints(body)
          == std::vector<std::string>{ephemeral_1h, ephemeral_1h, ephemeral_1h, ephemeral_5m});
  }
  SECTION("a 1h user block behind a 5m system block loses its cache_control") {
    // Intake accepts this order (the 1h block is first in the list), but system blocks come
    // before messages in the API's prefix, so the 1h breakpoint would follow a 5m one.
    req.prompt_blocks = {block("user_content", "Context.", true, "1h"),
                         block("system", "Rubric.", true, "5m")};
    auto body = parse(build_anthropic_body(req, "claude"));
    CHECK(api_objection(body).empty());
    CHECK(cache_of(body.at("tools").as_array()[0]) == ephemeral_1h);
    CHECK(cache_of(body.at("system").as_array().back()) == ephemeral_5m);
    auto& content = body.at("messages").as_array()[0].at("content").as_array();
    REQUIRE(content.size() == 1);
    CHECK(content[0].at("text") == "Context.");
    CHECK(cache_of(content[0]).empty());
  }
  SECTION("at most 4 breakpoints: the tool's goes first, then the last ones") {
    for (int i = 1; i <= 5; ++i)
      req.prompt_blocks.push_back(block("user_content", "Block " + std::to_string(i), true));
    auto body = parse(build_anthropic_body(req, "claude"));
    CHECK(api_objection(body).empty());
    CHECK(breakpoints(body).size() == 4);
    CHECK(cache_of(body.at("tools").as_array()[0]).empty());
    CHECK(cache_of(body.at("system").as_array()[0]) == ephemeral_5m);
    auto& content = body.at("messages").as_array()[0].at("content").as_array();
    REQUIRE(content.size() == 5);
    CHECK(cache_of(content[0]) == ephemeral_5m);
    CHECK(cache_of(content[1]) == ephemeral_5m);
    CHECK(cache_of(content[2]) == ephemeral_5m);
    CHECK(cache_of(content[3]).empty());
    CHECK(cache_of(content[4]).empty());
  }
  SECTION("many cacheable system blocks: still at most 4, earliest kept") {
    for (int i = 1; i <= 6; ++i)
      req.prompt_blocks.push_back(block("system", "System " + std::to_string(i), true, "1h"));
    req.prompt_blocks.push_back(block("user_content", "Essays.", true, "1h"));
    auto body = parse(build_anthropic_body(req, "claude"));
    CHECK(api_objection(body).empty());
    auto& system = body.at("system").as_array();
    REQUIRE(system.size() == 7);
    CHECK(cache_of(system[0]).empty()); // the default prompt is not the last system block
    for (size_t i = 1; i <= 4; ++i)
      CHECK(cache_of(system[i]) == ephemeral_1h);
    CHECK(cache_of(system[5]).empty());
    CHECK(cache_of(system[6]).empty());
  }
  SECTION("only system blocks: the user message is user_prompt") {
    req.prompt_blocks = {block("system", "Rubric.", true, "1h")};
    auto body = parse(build_anthropic_body(req, "claude"));
    CHECK(api_objection(body).empty());
    auto& content = body.at("messages").as_array()[0].at("content").as_array();
    REQUIRE(content.size() == 1);
    CHECK(content[0].at("text").as_string() == req.user_prompt);
    CHECK(cache_of(content[0]).empty());
  }
  SECTION("blank blocks are left out (the API rejects blank text blocks)") {
    req.prompt_blocks = {block("system", "  \n", true, "1h"), block("user_content", ""),
                         block("user_content", "Essays.")};
    auto body = parse(build_anthropic_body(req, "claude"));
    CHECK(api_objection(body).empty());
    CHECK(body.at("system").as_array().size() == 1);
    CHECK(breakpoints(body).empty()); // the only cacheable block was blank
    auto& content = body.at("messages").as_array()[0].at("content").as_array();
    REQUIRE(content.size() == 1);
    CHECK(content[0].at("text") == "Essays.");
  }
  SECTION("no body contains the key") {
    req.prompt_blocks = {block("system", "Rubric.", true, "1h")};
    auto request = wire_format.single_call(make_target(), req, "claude");
    CHECK(request.body.find(secret_key) == std::string::npos);
  }
}

// -- single answers ---------------------------------------------------------------------------

TEST_CASE("anthropic read_single: a good answer with cache usage and rate-limit headers") {
  json::object usage{{"input_tokens", 100},
                     {"output_tokens", 20},
                     {"cache_read_input_tokens", 1000},
                     {"cache_creation_input_tokens", 500},
                     {"cache_creation", json::object{{"ephemeral_5m_input_tokens", 0},
                                                     {"ephemeral_1h_input_tokens", 500}}}};
  // A text block before the tool call and another tool are ignored.
  json::array content{json::object{{"type", "text"}, {"text", "Let me record that."}},
                      tool_use("other_tool", json::object{}),
                      tool_use("comparison_result", verdict("Essay B", "B argues better.", 4))};
  wire_headers headers{{"anthropic-ratelimit-requests-remaining", "99"},
                       {"anthropic-ratelimit-requests-reset", "2024-05-01T12:00:30Z"},
                       {"anthropic-ratelimit-tokens-remaining", "180000"},
                       {"anthropic-ratelimit-tokens-reset", "2024-05-01T12:01:00.5004Z"},
                       {"anthropic-ratelimit-input-tokens-remaining", "7"},
                       {"retry-after", "9"}};
  auto r = read(200, message(content, "tool_use", usage), headers);
  REQUIRE(r.success);
  CHECK(r.error_code.empty());
  CHECK(r.http_status == 200);
  CHECK(r.verdict.winner == "Essay B");
  CHECK(r.verdict.justification == "B argues better.");
  CHECK(r.verdict.confidence == 4.0);
  // prompt = input 100 + cache read 1000 + cache write 500.
  CHECK(r.usage.prompt_tokens == 1600);
  CHECK(r.usage.completion_tokens == 20);
  CHECK(r.usage.total_tokens == 1620);
  CHECK(r.usage.cache_read_input_tokens == 1000);
  CHECK(r.usage.cache_creation_input_tokens == 500);
  CHECK(r.limits.remaining_requests == 99);
  CHECK(r.limits.requests_reset == 30000ms);
  CHECK(r.limits.remaining_tokens == 180000);
  CHECK(r.limits.tokens_reset == 60501ms); // 60500.4 ms, rounded up
  CHECK(r.retry_after == 0ms);             // only failures carry one
}

TEST_CASE("anthropic read_single: rate-limit headers") {
  auto good = single_answer(verdict("Essay A", "ok", 3));
  SECTION("input-tokens figures stand in when the tokens ones are missing") {
    wire_headers headers{{"anthropic-ratelimit-input-tokens-remaining", "5000"},
                         {"anthropic-ratelimit-input-tokens-reset", "2024-05-01T12:00:10Z"}};
    auto r = read(200, good, headers);
    CHECK(r.limits.remaining_tokens == 5000);
    CHECK(r.limits.tokens_reset == 10000ms);
    CHECK(r.limits.remaining_requests == -1);
    CHECK(r.limits.requests_reset == -1ms);
  }
  SECTION("absent or malformed figures stay -1, a past reset is zero") {
    wire_headers headers{{"anthropic-ratelimit-requests-remaining", "many"},
                         {"anthropic-ratelimit-requests-reset", "soon"},
                         {"anthropic-ratelimit-tokens-remaining", "12"},
                         {"anthropic-ratelimit-tokens-reset", "2024-05-01T11:00:00Z"}};
    auto r = read(200, good, headers);
    CHECK(r.limits.remaining_requests == -1);
    CHECK(r.limits.requests_reset == -1ms);
    CHECK(r.limits.remaining_tokens == 12);
    CHECK(r.limits.tokens_reset == 0ms);
  }
  SECTION("no headers at all") {
    CHECK(read(200, good).limits.empty());
  }
}

TEST_CASE("anthropic read_single: HTTP errors") {
  SECTION("429 rate limit: retryable, with Retry-After and the limits") {
    wire_headers headers{{"retry-after", "7"},
                         {"anthropic-ratelimit-requests-remaining", "0"},
                         {"anthropic-ratelimit-requests-reset", "2024-05-01T12:00:07Z"}};
    auto r = read(429, error_body("rate_limit_error", "Number of requests exceeded"), headers);
    CHECK_FALSE(r.success);
    CHECK(r.error_code == "RATE_LIMIT");
    CHECK(r.retryable);
    CHECK(r.http_status == 429);
    CHECK(r.retry_after == 7000ms);
    CHECK(r.error_message == "Anthropic HTTP 429: rate limited: Number of requests exceeded");
    CHECK(r.limits.remaining_requests == 0);
    CHECK(r.limits.requests_reset == 7000ms);
  }
  SECTION("429 spend limit: QUOTA_EXCEEDED, not retryable") {
    auto r = read(429, error_body("rate_limit_error", "You have reached your spend limit",
                                  "enforced_spend_limit_reached"));
    CHECK(r.error_code == "QUOTA_EXCEEDED");
    CHECK_FALSE(r.retryable);
    CHECK(r.retry_after == 0ms);
  }
  SECTION("529 overloaded: retryable") {
    auto r = read(529, error_body("overloaded_error", "Overloaded"));
    CHECK(r.error_code == "EXTERNAL_SERVICE_ERROR");
    CHECK(r.retryable);
    CHECK(r.http_status == 529);
    CHECK(r.error_message == "Anthropic HTTP 529: provider overloaded: Overloaded");
  }
  SECTION("500 api_error: retryable") {
    auto r = read(500, error_body("api_error", "Internal server error"));
    CHECK(r.error_code == "EXTERNAL_SERVICE_ERROR");
    CHECK(r.retryable);
  }
  SECTION("401: AUTHENTICATION_ERROR, and a quoted key is masked") {
    auto r = read(401, error_body("authentication_error",
                                  std::string{"invalid x-api-key "} + secret_key + " given"));
    CHECK(r.error_code == "AUTHENTICATION_ERROR");
    CHECK_FALSE(r.retryable);
    CHECK(r.error_message.find(secret_key) == std::string::npos);
    CHECK(r.error_message.find("SECRET") == std::string::npos);
    CHECK(r.error_message.find("invalid x-api-key sk-*** given") != std::string::npos);
  }
  SECTION("400: INVALID_REQUEST, not retryable") {
    auto r = read(400, error_body("invalid_request_error", "max_tokens: Field required"));
    CHECK(r.error_code == "INVALID_REQUEST");
    CHECK_FALSE(r.retryable);
    CHECK(r.error_message
          == "Anthropic HTTP 400: provider rejected the request: max_tokens: Field required");
  }
  SECTION("an HTML 502 from a proxy is classified by its status") {
    auto r = read(502, "<html><body><h1>502 Bad Gateway</h1></body></html>");
    CHECK(r.error_code == "EXTERNAL_SERVICE_ERROR");
    CHECK(r.retryable);
    CHECK(r.http_status == 502);
    CHECK(r.error_message == "Anthropic HTTP 502: provider server error");
  }
  SECTION("a long provider message is cut to 300 characters") {
    auto r = read(400, error_body("invalid_request_error", std::string(1000, 'x')));
    const std::string head = "Anthropic HTTP 400: provider rejected the request: ";
    CHECK(r.error_message == head + std::string(300, 'x'));
  }
  SECTION("a 200 carrying an error envelope is an error") {
    auto r = read(200, error_body("overloaded_error", "Overloaded"));
    CHECK_FALSE(r.success);
    CHECK(r.error_code == "EXTERNAL_SERVICE_ERROR");
    CHECK(r.retryable);
  }
}

TEST_CASE("anthropic read_single: unusable 200 answers") {
  SECTION("truncated at max_tokens: PARSING_ERROR, usage still counted") {
    auto r = read(200, message(json::array{}, "max_tokens"), {{"retry-after", "3"}});
    CHECK_FALSE(r.success);
    CHECK(r.error_code == "PARSING_ERROR");
    CHECK_FALSE(r.retryable);
    CHECK(r.error_message.find("truncated") != std::string::npos);
    CHECK(r.usage.prompt_tokens == 100);
    CHECK(r.usage.completion_tokens == 20);
    CHECK(r.retry_after == 3000ms);
  }
  SECTION("a complete-looking tool call is still refused when truncated") {
    auto content = json::array{tool_use("comparison_result", verdict("Essay A", "x", 3))};
    CHECK(read(200, message(content, "max_tokens")).error_code == "PARSING_ERROR");
  }
  SECTION("no tool_use block") {
    auto content = json::array{json::object{{"type", "text"}, {"text", "Essay A wins."}}};
    auto r = read(200, message(content, "end_turn"));
    CHECK(r.error_code == "PARSING_ERROR");
    CHECK(r.error_message.find("no tool_use block") != std::string::npos);
  }
  SECTION("a tool_use block of another tool") {
    auto content = json::array{tool_use("something_else", verdict("Essay A", "x", 3))};
    CHECK(read(200, message(content)).error_code == "PARSING_ERROR");
  }
  SECTION("a tool input that is not an object") {
    auto content = json::array{tool_use("comparison_result", "Essay A")};
    CHECK(read(200, message(content)).error_code == "PARSING_ERROR");
  }
  SECTION("not JSON, or no content array") {
    CHECK(read(200, R"({"id":"msg_1","type":"mess)").error_code == "PARSING_ERROR");
    CHECK(read(200, R"({"id":"msg_1","type":"message"})").error_code == "PARSING_ERROR");
    CHECK(read(200, "").error_code == "PARSING_ERROR");
  }
  SECTION("a refusal: INVALID_REQUEST, not retryable") {
    auto r = read(200, message(json::array{}, "refusal"));
    CHECK(r.error_code == "INVALID_REQUEST");
    CHECK_FALSE(r.retryable);
  }
}

TEST_CASE("anthropic read_single: the verdict is checked") {
  SECTION("bad winner") {
    auto r = read(200, single_answer(verdict("Essay C", "x", 3)));
    CHECK_FALSE(r.success);
    CHECK(r.error_code == "INVALID_RESPONSE");
    CHECK(r.error_message.find("winner") != std::string::npos);
    CHECK(r.usage.prompt_tokens == 100);
  }
  SECTION("confidence outside 1..5 or not a number") {
    for (auto conf : {json::value(0), json::value(0.99), json::value(5.01), json::value(6),
                      json::value("3"), json::value(nullptr)}) {
      auto r = read(200, single_answer(verdict("Essay A", "x", conf)));
      INFO(json::serialize(conf));
      CHECK(r.error_code == "INVALID_RESPONSE");
      CHECK(r.error_message.find("confidence") != std::string::npos);
    }
  }
  SECTION("confidence at the bounds, integer or not") {
    CHECK(read(200, single_answer(verdict("Essay A", "x", 1))).verdict.confidence == 1.0);
    CHECK(read(200, single_answer(verdict("Essay A", "x", 5.0))).verdict.confidence == 5.0);
    CHECK(read(200, single_answer(verdict("Essay A", "x", 2.5))).verdict.confidence == 2.5);
  }
  SECTION("missing justification") {
    json::object input{{"winner", "Essay A"}, {"confidence", 3}};
    CHECK(read(200, single_answer(input)).error_code == "INVALID_RESPONSE");
  }
  SECTION("a justification over 500 characters is cut, never inside a character") {
    std::string text;
    for (int i = 0; i < 600; ++i)
      text += "\xC3\xA9"; // é, two bytes
    auto r = read(200, single_answer(verdict("Essay B", json::string{text}, 2)));
    REQUIRE(r.success);
    CHECK(r.verdict.justification.size() == 1000); // 500 characters of two bytes
    CHECK(r.verdict.justification == text.substr(0, 1000));
  }
}

// -- multi-prompt calls -----------------------------------------------------------------------

TEST_CASE("anthropic multi_call body") {
  auto a = make_request("First pair.");
  auto b = make_request("Second pair.");
  auto c = make_request("Third pair.");
  a.overrides.has_temperature = true;
  a.overrides.temperature = 0.3;
  a.overrides.max_tokens = 1000;
  b.overrides.max_tokens = 3000;
  // Blocks are not used by multi-prompt calls, so nothing is cached.
  b.prompt_blocks = {block("user_content", "Not sent.", true, "1h")};
  std::vector<multi_item> items{{"c1", &a}, {"c2", &b}, {"c3", &c}};
  auto request = wire_format.multi_call(make_target(), items, "claude-haiku");
  CHECK(request.url == "http://127.0.0.1:8080/v1/messages");
  REQUIRE(header(request, "x-api-key"));
  CHECK(*header(request, "x-api-key") == secret_key);
  REQUIRE(header(request, "anthropic-version"));
  CHECK(request.body.find(secret_key) == std::string::npos);
  CHECK(request.body.find("Not sent.") == std::string::npos);

  auto body = body_of(request);
  CHECK(api_objection(body).empty());
  CHECK(body.at("model") == "claude-haiku");
  // c3 has no override, so the default 4096 is the largest.
  CHECK(body.at("max_tokens") == wire::default_max_tokens);
  CHECK(body.at("temperature").as_double() == Approx(0.3));
  auto system = std::string{wire::default_system_prompt} + "\n\n" + wire::multi_prompt_instructions;
  CHECK(body.at("system") == json::array{json::object{{"type", "text"}, {"text", system}}});
  CHECK(body.at("messages")
        == json::array{json::object{
            {"role", "user"},
            {"content", json::array{json::object{{"type", "text"},
                                                 {"text", wire::pack_multi_prompt(items)}}}}}});
  auto& tools = body.at("tools").as_array();
  REQUIRE(tools.size() == 1);
  CHECK(tools[0].at("name") == "comparison_results");
  CHECK(tools[0].at("input_schema") == wire::multi_verdict_schema());
  CHECK(body.at("tool_choice") == json::object{{"type", "tool"}, {"name", "comparison_results"}});
  CHECK(breakpoints(body).empty());

  SECTION("max_tokens is the largest of the items' budgets") {
    c.overrides.max_tokens = 2000;
    CHECK(body_of(wire_format.multi_call(make_target(), items, "m")).at("max_tokens") == 3000);
  }
  SECTION("an empty system prompt leaves just the instructions") {
    a.overrides.has_system_prompt = true;
    auto x = body_of(wire_format.multi_call(make_target(), items, "m"));
    CHECK(x.at("system").as_array()[0].at("text") == wire::multi_prompt_instructions);
  }
}

namespace {

json::object entry(std::string id, json::value winner, json::value confidence) {
  auto result = verdict(winner, "because", confidence);
  result["comparison_id"] = std::move(id);
  return result;
}

std::string multi_answer(json::array results, std::string stop = "tool_use") {
  json::object input{{"results", std::move(results)}};
  return message(json::array{tool_use("comparison_results", std::move(input))}, std::move(stop));
}

wire_multi_response read_multi(unsigned status, const std::string& body,
                               const wire_headers& headers = {}) {
  return wire_format.read_multi(status, body, headers, fixed_now);
}

} // namespace

TEST_CASE("anthropic read_multi") {
  SECTION("every id answered") {
    wire_headers headers{{"anthropic-ratelimit-requests-remaining", "42"}};
    auto r =
        read_multi(200,
                   multi_answer(json::array{entry("c1", "Essay A", 4), entry("c2", "Essay B", 2),
                                            entry("c3", "Essay A", 5)}),
                   headers);
    REQUIRE(r.call.success);
    CHECK(r.call.http_status == 200);
    CHECK(r.call.usage.prompt_tokens == 100);
    CHECK(r.call.usage.total_tokens == 120);
    CHECK(r.call.limits.remaining_requests == 42);
    REQUIRE(r.answers.size() == 3);
    CHECK(r.answers.at("c1").winner == "Essay A");
    CHECK(r.answers.at("c1").confidence == 4.0);
    CHECK(r.answers.at("c2").winner == "Essay B");
    CHECK(r.answers.at("c3").confidence == 5.0);
  }
  SECTION("a missing id is absent, the call still succeeds") {
    auto r = read_multi(200, multi_answer(json::array{entry("c1", "Essay A", 4)}));
    CHECK(r.call.success);
    CHECK(r.answers.size() == 1);
    CHECK(r.answers.count("c1") == 1);
  }
  SECTION("a duplicated id is dropped altogether") {
    auto r = read_multi(
        200, multi_answer(json::array{entry("c1", "Essay A", 4), entry("c1", "Essay B", 4),
                                      entry("c2", "Essay B", 3)}));
    CHECK(r.call.success);
    CHECK(r.answers.count("c1") == 0);
    CHECK(r.answers.count("c2") == 1);
  }
  SECTION("an invalid entry is dropped") {
    auto r = read_multi(
        200, multi_answer(json::array{entry("c1", "Essay C", 4), entry("c2", "Essay B", 9),
                                      entry("c3", "Essay A", 1)}));
    CHECK(r.call.success);
    REQUIRE(r.answers.size() == 1);
    CHECK(r.answers.count("c3") == 1);
  }
  SECTION("HTTP errors are read as for single calls") {
    auto r = read_multi(429, error_body("rate_limit_error", "slow down"), {{"retry-after", "2"}});
    CHECK_FALSE(r.call.success);
    CHECK(r.call.error_code == "RATE_LIMIT");
    CHECK(r.call.retryable);
    CHECK(r.call.retry_after == 2000ms);
    CHECK(r.answers.empty());
    auto q =
        read_multi(429, error_body("rate_limit_error", "spent", "enforced_spend_limit_reached"));
    CHECK(q.call.error_code == "QUOTA_EXCEEDED");
    CHECK_FALSE(q.call.retryable);
    CHECK(read_multi(502, "<html>bad gateway</html>").call.error_code == "EXTERNAL_SERVICE_ERROR");
  }
  SECTION("truncated: the call fails") {
    auto r = read_multi(200, multi_answer(json::array{entry("c1", "Essay A", 4)}, "max_tokens"));
    CHECK_FALSE(r.call.success);
    CHECK(r.call.error_code == "PARSING_ERROR");
    CHECK(r.answers.empty());
  }
  SECTION("no comparison_results tool_use: the call fails") {
    auto single = single_answer(verdict("Essay A", "x", 3));
    auto r = read_multi(200, single);
    CHECK_FALSE(r.call.success);
    CHECK(r.call.error_code == "PARSING_ERROR");
    CHECK(r.call.error_message.find("comparison_results") != std::string::npos);
  }
}
