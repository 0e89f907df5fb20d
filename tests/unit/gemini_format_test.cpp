// The Gemini generateContent wire format: request URL, headers and body (checked against the
// mock provider's own validator), and the strict reading of answers and Google error envelopes.
// Answer and error bodies come from the mock provider's renderers where it has one, so these
// tests read the same bytes the integration tests will.

#include "actors/providers/gemini_format.hpp"

#include "actors/providers/retry_policy.hpp"
#include "actors/providers/wire_common.hpp"

#include "tools/mock_provider/mock_provider_dialects.hpp"

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace json = boost::json;
namespace mock = lps::mock_wire;
using lps::gemini_wire;
using lps::wire_headers;
using lps::wire_target;
using std::chrono::milliseconds;

const auto now = std::chrono::sys_days{std::chrono::year{2025} / 1 / 15} + std::chrono::hours{12};

constexpr const char* api_key = "AIzaSy-test-key-0123456789";
constexpr const char* model = "gemini-2.5-flash";

wire_target target(std::string base = "https://generativelanguage.googleapis.com") {
  wire_target t;
  t.base_url = std::move(base);
  t.api_key = api_key;
  t.timeout = milliseconds{12345};
  return t;
}

lps::comparison_request request(std::string prompt = "Compare Essay A and Essay B.") {
  lps::comparison_request r;
  r.user_prompt = std::move(prompt);
  return r;
}

json::object parse_object(std::string_view text) {
  auto v = json::parse(text);
  REQUIRE(v.is_object());
  return v.get_object();
}

const std::string* header(const lps::http_client_request& req, std::string_view name) {
  for (const auto& [k, v] : req.headers)
    if (k == name)
      return &v;
  return nullptr;
}

/// True when `key` appears as an object key anywhere in `v`.
bool has_key_anywhere(const json::value& v, std::string_view key) {
  if (const auto* o = v.if_object()) {
    for (const auto& [k, child] : *o)
      if (k == key || has_key_anywhere(child, key))
        return true;
  } else if (const auto* a = v.if_array()) {
    for (const auto& child : *a)
      if (has_key_anywhere(child, key))
        return true;
  }
  return false;
}

/// The mock's own check of a generateContent body.
std::optional<mock::provider_error> mock_validate(const std::string& body) {
  mock::parsed_call call;
  return mock::validate_gemini(parse_object(body), model, call);
}

/// A 200 body as the mock renders it.
std::string mock_answer(std::string winner = "Essay B", std::string justification = "Clearer.",
                        int confidence = 4, mock::answer_kind kind = mock::answer_kind::normal) {
  mock::parsed_call call;
  call.model = model;
  mock::answer a;
  a.kind = kind;
  a.verdict = {std::move(winner), std::move(justification), confidence};
  a.tokens.input = 120;
  a.tokens.output = 30;
  a.id = "resp-1";
  return mock::render_gemini(call, a);
}

/// A 200 body whose single candidate says `text` and stops for `finish`.
std::string answer_with(const std::string& text, const std::string& finish = "STOP") {
  json::object candidate{
      {"content",
       json::object{{"parts", json::array{json::object{{"text", text}}}}, {"role", "model"}}},
      {"finishReason", finish},
      {"index", 0}};
  json::object usage{
      {"promptTokenCount", 10}, {"candidatesTokenCount", 5}, {"totalTokenCount", 15}};
  return json::serialize(json::object{{"candidates", json::array{std::move(candidate)}},
                                      {"usageMetadata", std::move(usage)}});
}

std::string verdict_text(const std::string& winner, const json::value& justification,
                         const json::value& confidence) {
  return json::serialize(json::object{
      {"winner", winner}, {"justification", justification}, {"confidence", confidence}});
}

std::string mock_error(const mock::provider_error& e) {
  return mock::render_error(mock::dialect::gemini, e, "req-1");
}

lps::wire_response read(unsigned status, const std::string& body, const wire_headers& h = {}) {
  return gemini_wire{}.read_single(status, body, h, now);
}

} // namespace

// -- requests --

TEST_CASE("gemini: names") {
  gemini_wire w;
  CHECK(w.display_name() == "Gemini");
  CHECK(w.endpoint() == ":generateContent");
}

TEST_CASE("gemini single_call: URL, headers and timeout, the key only in x-goog-api-key") {
  auto t = target();
  t.extra_headers.emplace_back("x-trace", "abc");
  auto req = gemini_wire{}.single_call(t, request(), model);
  CHECK(req.method == "POST");
  CHECK(req.url
        == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
           ":generateContent");
  REQUIRE(header(req, "x-goog-api-key") != nullptr);
  CHECK(*header(req, "x-goog-api-key") == api_key);
  REQUIRE(header(req, "content-type") != nullptr);
  CHECK(*header(req, "content-type") == "application/json");
  REQUIRE(header(req, "x-trace") != nullptr);
  CHECK(*header(req, "x-trace") == "abc");
  CHECK(req.timeout == milliseconds{12345});
  CHECK(req.url.find(api_key) == std::string::npos);
  CHECK(req.url.find("key=") == std::string::npos);
  CHECK(req.body.find(api_key) == std::string::npos);
  CHECK(header(req, "authorization") == nullptr);
}

TEST_CASE("gemini single_call: model path segment") {
  gemini_wire w;
  auto url = [&](const std::string& base, const std::string& m) {
    return w.single_call(target(base), request(), m).url;
  };
  // A resource name is accepted without doubling "models/".
  CHECK(url("http://127.0.0.1:8080", "models/gemini-2.5-pro")
        == "http://127.0.0.1:8080/v1beta/models/gemini-2.5-pro:generateContent");
  // A trailing slash on the base URL does not make "//".
  CHECK(url("http://127.0.0.1:8080/", "gemini-2.0-flash-001")
        == "http://127.0.0.1:8080/v1beta/models/gemini-2.0-flash-001:generateContent");
  // Characters that would change the path or the query are percent-encoded.
  CHECK(url("http://h", "my model/x:y?z")
        == "http://h/v1beta/models/my%20model%2Fx%3Ay%3Fz:generateContent");
  CHECK(url("http://h//", "m") == "http://h/v1beta/models/m:generateContent");
  CHECK(url("http://h", "a_b.c~d") == "http://h/v1beta/models/a_b.c~d:generateContent");
}

TEST_CASE("gemini single_call: body with defaults and the verdict schema") {
  auto req = gemini_wire{}.single_call(target(), request("Which essay is better?"), model);
  auto body = parse_object(req.body);

  auto& system = body.at("systemInstruction").as_object();
  CHECK(system.at("parts").as_array().size() == 1);
  CHECK(system.at("parts").at(0).at("text").as_string() == lps::wire::default_system_prompt);

  auto& contents = body.at("contents").as_array();
  REQUIRE(contents.size() == 1);
  CHECK(contents[0].at("role").as_string() == "user");
  CHECK(contents[0].at("parts").at(0).at("text").as_string() == "Which essay is better?");

  auto& config = body.at("generationConfig").as_object();
  CHECK(config.at("responseMimeType").as_string() == "application/json");
  CHECK(config.at("temperature").to_number<double>() == Approx(lps::wire::default_temperature));
  CHECK(config.at("maxOutputTokens").to_number<uint64_t>() == lps::wire::default_max_tokens);

  auto& schema = config.at("responseSchema").as_object();
  CHECK(schema.at("type").as_string() == "OBJECT");
  auto& props = schema.at("properties").as_object();
  CHECK(props.size() == 3);
  CHECK(props.at("winner").at("type").as_string() == "STRING");
  CHECK(props.at("winner").at("enum") == json::array{"Essay A", "Essay B"});
  CHECK(props.at("justification").at("type").as_string() == "STRING");
  CHECK(props.at("confidence").at("type").as_string() == "NUMBER");
  CHECK(props.at("confidence").at("minimum").to_number<double>() == 1.0);
  CHECK(props.at("confidence").at("maximum").to_number<double>() == 5.0);
  auto names = json::array{"winner", "justification", "confidence"};
  CHECK(schema.at("required") == names);
  CHECK(schema.at("propertyOrdering") == names);
  // Gemini's Schema has no additionalProperties (and no lower-case JSON Schema types).
  CHECK_FALSE(has_key_anywhere(body, "additionalProperties"));
  CHECK(req.body.find("\"object\"") == std::string::npos);
  CHECK(req.body.find("\"string\"") == std::string::npos);
  // Nothing else at the top level: the model goes in the URL, not the body.
  CHECK(body.size() == 3);
}

TEST_CASE("gemini single_call: overrides") {
  auto r = request();
  r.overrides.has_temperature = true;
  r.overrides.temperature = 0.7;
  r.overrides.max_tokens = 256;
  r.overrides.has_system_prompt = true;
  r.overrides.system_prompt = "Judge strictly.";
  auto body = parse_object(gemini_wire{}.single_call(target(), r, model).body);
  CHECK(body.at("systemInstruction").at("parts").at(0).at("text").as_string() == "Judge strictly.");
  CHECK(body.at("generationConfig").at("temperature").to_number<double>() == Approx(0.7));
  CHECK(body.at("generationConfig").at("maxOutputTokens").to_number<uint64_t>() == 256);

  SECTION("an explicitly empty system prompt sends no systemInstruction") {
    r.overrides.system_prompt.clear();
    auto b = parse_object(gemini_wire{}.single_call(target(), r, model).body);
    CHECK_FALSE(b.contains("systemInstruction"));
    CHECK(b.contains("contents"));
  }
  SECTION("build_gemini_body is the single_call body") {
    CHECK(lps::build_gemini_body(r, model) == gemini_wire{}.single_call(target(), r, model).body);
  }
}

TEST_CASE("gemini bodies pass the mock provider's validation") {
  auto body = gemini_wire{}.single_call(target(), request(), model).body;
  auto err = mock_validate(body);
  CHECK_FALSE(err.has_value());
  mock::parsed_call call;
  REQUIRE_FALSE(mock::validate_gemini(parse_object(body), model, call));
  CHECK(call.prompt == "Compare Essay A and Essay B.");

  // The validator is live: the same body without the MIME type is refused.
  auto broken = parse_object(body);
  broken.at("generationConfig").as_object().erase("responseMimeType");
  CHECK(mock_validate(json::serialize(broken)).has_value());

  auto a = request("first"), b = request("second");
  std::vector<lps::multi_item> items{{"c1", &a}, {"c2", &b}};
  CHECK_FALSE(mock_validate(gemini_wire{}.multi_call(target(), items, model).body).has_value());
}

// -- good answers --

TEST_CASE("gemini read_single: a good answer from the mock") {
  auto r = read(200, mock_answer("Essay B", "Essay B is better organised.", 4));
  REQUIRE(r.success);
  CHECK(r.error_code.empty());
  CHECK(r.http_status == 200);
  CHECK(r.verdict.winner == "Essay B");
  CHECK(r.verdict.justification == "Essay B is better organised.");
  CHECK(r.verdict.confidence == 4.0);
  // The mock's usage: 120 in, 30 out, total their sum.
  CHECK(r.usage.prompt_tokens == 120);
  CHECK(r.usage.completion_tokens == 30);
  CHECK(r.usage.total_tokens == 150);
  CHECK(r.usage.cache_read_input_tokens == 0);
  CHECK(r.limits.empty());
  CHECK(r.retry_after == milliseconds{0});
}

TEST_CASE("gemini read_single: usage counts thinking as output and reads cached tokens") {
  auto doc = parse_object(answer_with(verdict_text("Essay A", "ok", 2.5)));
  doc["usageMetadata"] = json::object{{"promptTokenCount", 1000},
                                      {"cachedContentTokenCount", 800},
                                      {"candidatesTokenCount", 40},
                                      {"thoughtsTokenCount", 200},
                                      {"totalTokenCount", 1240}};
  auto r = read(200, json::serialize(doc));
  REQUIRE(r.success);
  CHECK(r.verdict.confidence == 2.5);
  CHECK(r.usage.prompt_tokens == 1000);
  CHECK(r.usage.completion_tokens == 240); // 40 candidates + 200 thoughts
  CHECK(r.usage.total_tokens == 1240);
  CHECK(r.usage.cache_read_input_tokens == 800);

  SECTION("no totalTokenCount: the sum") {
    doc["usageMetadata"].as_object().erase("totalTokenCount");
    CHECK(read(200, json::serialize(doc)).usage.total_tokens == 1240);
  }
  SECTION("no usageMetadata at all: zeros, still a success") {
    doc.erase("usageMetadata");
    auto r2 = read(200, json::serialize(doc));
    CHECK(r2.success);
    CHECK(r2.usage == lps::token_usage{});
  }
}

TEST_CASE("gemini read_single: text parts are joined, thought parts skipped") {
  json::array parts{json::object{{"text", "thinking about it"}, {"thought", true}},
                    json::object{{"text", "{\"winner\":\"Essay A\","}},
                    json::object{{"text", "\"justification\":\"x\",\"confidence\":3}"}}};
  json::object candidate{{"content", json::object{{"parts", parts}, {"role", "model"}}},
                         {"finishReason", "STOP"}};
  auto r = read(200, json::serialize(json::object{{"candidates", json::array{candidate}}}));
  REQUIRE(r.success);
  CHECK(r.verdict.winner == "Essay A");
  CHECK(r.verdict.confidence == 3.0);
}

TEST_CASE("gemini read_single: a long justification is cut to 500 characters") {
  // 600 two-byte characters: the cut must count code points and not split a character.
  std::string long_text;
  for (int i = 0; i < 600; ++i)
    long_text += "\xC3\xA9"; // U+00E9
  auto r = read(200, answer_with(verdict_text("Essay A", json::value(long_text), 5)));
  REQUIRE(r.success);
  CHECK(r.verdict.justification.size() == 1000); // 500 characters of 2 bytes
  CHECK(r.verdict.justification == long_text.substr(0, 1000));
}

// -- bad answers --

TEST_CASE("gemini read_single: MAX_TOKENS is a truncated answer") {
  auto r = read(200, mock_answer("Essay A", "x", 3, mock::answer_kind::truncated));
  CHECK_FALSE(r.success);
  CHECK(r.error_code == "PARSING_ERROR");
  CHECK(r.error_message.find("MAX_TOKENS") != std::string::npos);
  CHECK_FALSE(r.retryable);
  CHECK(r.http_status == 200);
  // Tokens were spent all the same.
  CHECK(r.usage.prompt_tokens == 120);

  SECTION("even when the cut text happens to be valid JSON") {
    auto r2 = read(200, answer_with(verdict_text("Essay A", "x", 3), "MAX_TOKENS"));
    CHECK(r2.error_code == "PARSING_ERROR");
  }
}

TEST_CASE("gemini read_single: content-policy stops are refusals, not retried") {
  auto expected = lps::classify(200, "content_filter", "");
  for (std::string finish : {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"}) {
    CAPTURE(finish);
    auto r = read(200, answer_with("", finish));
    CHECK_FALSE(r.success);
    CHECK(r.error_code == lps::to_string(expected.error_code));
    CHECK(r.error_code == "INVALID_REQUEST");
    CHECK_FALSE(r.retryable);
    CHECK(r.error_message.find(finish) != std::string::npos);
  }

  SECTION("a blocked prompt has no candidates, only promptFeedback") {
    json::object doc{{"promptFeedback", json::object{{"blockReason", "PROHIBITED_CONTENT"}}},
                     {"usageMetadata", json::object{{"promptTokenCount", 12}}}};
    auto r = read(200, json::serialize(doc));
    CHECK(r.error_code == "INVALID_REQUEST");
    CHECK_FALSE(r.retryable);
    CHECK(r.error_message.find("blockReason PROHIBITED_CONTENT") != std::string::npos);
    CHECK(r.usage.prompt_tokens == 12);
  }
}

TEST_CASE("gemini read_single: answers that are not JSON") {
  SECTION("prose instead of JSON") {
    auto r = read(200, mock_answer("Essay A", "x", 3, mock::answer_kind::no_tool_use));
    CHECK(r.error_code == "PARSING_ERROR");
    CHECK_FALSE(r.retryable);
  }
  SECTION("a JSON array instead of an object") {
    CHECK(read(200, answer_with("[1,2]")).error_code == "PARSING_ERROR");
  }
  SECTION("an unusual finish is named") {
    auto r = read(200, answer_with("{\"winner\":", "OTHER"));
    CHECK(r.error_code == "PARSING_ERROR");
    CHECK(r.error_message.find("finishReason OTHER") != std::string::npos);
  }
  SECTION("empty text") {
    CHECK(read(200, answer_with("")).error_code == "PARSING_ERROR");
  }
  SECTION("the body itself") {
    CHECK(read(200, "<html>oops</html>").error_code == "PARSING_ERROR");
    CHECK(read(200, "").error_code == "PARSING_ERROR");
    CHECK(read(200, "{}").error_code == "PARSING_ERROR");
    CHECK(read(200, R"({"candidates":[]})").error_code == "PARSING_ERROR");
    CHECK(read(200, R"({"candidates":["x"]})").error_code == "PARSING_ERROR");
  }
}

TEST_CASE("gemini read_single: invalid verdict fields") {
  SECTION("a winner other than Essay A / Essay B") {
    auto r = read(200, mock_answer("Essay C"));
    CHECK_FALSE(r.success);
    CHECK(r.error_code == "INVALID_RESPONSE");
    CHECK(r.error_message.find("winner") != std::string::npos);
    CHECK_FALSE(r.retryable);
    CHECK(read(200, answer_with(verdict_text("essay a", "x", 3))).error_code == "INVALID_RESPONSE");
  }
  SECTION("confidence outside 1..5 or not a number") {
    CHECK(read(200, mock_answer("Essay A", "x", 0)).error_code == "INVALID_RESPONSE");
    CHECK(read(200, mock_answer("Essay A", "x", 6)).error_code == "INVALID_RESPONSE");
    CHECK(read(200, answer_with(verdict_text("Essay A", "x", 5.01))).error_code
          == "INVALID_RESPONSE");
    auto r = read(200, answer_with(verdict_text("Essay A", "x", "3")));
    CHECK(r.error_code == "INVALID_RESPONSE");
    CHECK(r.error_message.find("confidence") != std::string::npos);
    // The bounds themselves are fine.
    CHECK(read(200, mock_answer("Essay A", "x", 1)).success);
    CHECK(read(200, mock_answer("Essay A", "x", 5)).success);
  }
  SECTION("justification missing") {
    auto text = R"({"winner":"Essay A","confidence":3})";
    CHECK(read(200, answer_with(text)).error_code == "INVALID_RESPONSE");
  }
}

// -- errors --

TEST_CASE("gemini read_single: 429 rate limit with a Retry-After header") {
  auto e = mock::status_error(mock::dialect::gemini, 429, model);
  auto r = read(429, mock_error(e), {{"retry-after", "7"}});
  CHECK_FALSE(r.success);
  CHECK(r.error_code == "RATE_LIMIT");
  CHECK(r.retryable);
  CHECK(r.http_status == 429);
  CHECK(r.retry_after == milliseconds{7000});
  // "Resource has been exhausted (e.g. check quota)." mentions quota but is a rate limit.
  CHECK(r.error_message
        == "Gemini HTTP 429: rate limited: Resource has been exhausted (e.g. check quota).");
  CHECK(r.limits.empty());
}

TEST_CASE("gemini read_single: 429 rate limit with a RetryInfo delay") {
  auto e = mock::status_error(mock::dialect::gemini, 429, model);
  mock::add_retry_after(mock::dialect::gemini, e, "30");
  SECTION("RetryInfo alone") {
    auto r = read(429, mock_error(e));
    CHECK(r.error_code == "RATE_LIMIT");
    CHECK(r.retryable);
    CHECK(r.retry_after == milliseconds{30000});
  }
  SECTION("the header wins over RetryInfo") {
    CHECK(read(429, mock_error(e), {{"retry-after", "2"}}).retry_after == milliseconds{2000});
  }
  SECTION("fractional delays") {
    e.details = json::array{json::object{{"@type", "type.googleapis.com/google.rpc.RetryInfo"},
                                         {"retryDelay", "1.5s"}}};
    CHECK(read(429, mock_error(e)).retry_after == milliseconds{1500});
  }
  SECTION("a malformed delay is ignored") {
    e.details = json::array{json::object{{"@type", "type.googleapis.com/google.rpc.RetryInfo"},
                                         {"retryDelay", "soon"}}};
    CHECK(read(429, mock_error(e)).retry_after == milliseconds{0});
  }
}

TEST_CASE("gemini read_single: 429 with an exhausted quota is QUOTA_EXCEEDED, not retried") {
  auto e = mock::quota_error(mock::dialect::gemini, model);
  REQUIRE(e.status == 429);
  auto r = read(429, mock_error(e));
  CHECK_FALSE(r.success);
  CHECK(r.error_code == "QUOTA_EXCEEDED");
  CHECK_FALSE(r.retryable);
  CHECK(r.http_status == 429);
  CHECK(r.error_message.starts_with("Gemini HTTP 429: quota or credit exhausted: You exceeded"));

  SECTION("the quota text alone, without details") {
    e.details = json::array{};
    CHECK(read(429, mock_error(e)).error_code == "QUOTA_EXCEEDED");
  }
  SECTION("a QuotaFailure alone, with other wording") {
    e.message = "Resource has been exhausted (e.g. check quota).";
    CHECK(read(429, mock_error(e)).error_code == "QUOTA_EXCEEDED");
  }
}

TEST_CASE("gemini read_single: a per-minute QuotaFailure is a rate limit") {
  // What Google sends for a tokens-per-minute limit: the same quota wording as a spent daily
  // quota, a QuotaFailure naming a PerMinute quota, and a RetryInfo.
  json::object violation{
      {"quotaMetric",
       "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count"},
      {"quotaId", "GenerateContentInputTokensPerModelPerMinute-FreeTier"},
      {"quotaValue", "250000"}};
  mock::provider_error e;
  e.status = 429;
  e.type = "RESOURCE_EXHAUSTED";
  e.message = "You exceeded your current quota, please check your plan and billing details.";
  e.details = json::array{
      json::object{{"@type", "type.googleapis.com/google.rpc.QuotaFailure"},
                   {"violations", json::array{violation}}},
      json::object{{"@type", "type.googleapis.com/google.rpc.RetryInfo"}, {"retryDelay", "26s"}}};
  auto r = read(429, mock_error(e));
  CHECK(r.error_code == "RATE_LIMIT");
  CHECK(r.retryable);
  CHECK(r.retry_after == milliseconds{26000});

  SECTION("a per-day violation next to it makes it an exhausted quota") {
    violation["quotaId"] = "GenerateRequestsPerDayPerProjectPerModel-FreeTier";
    e.details.at(0).as_object()["violations"].as_array().push_back(violation);
    auto r2 = read(429, mock_error(e));
    CHECK(r2.error_code == "QUOTA_EXCEEDED");
    CHECK_FALSE(r2.retryable);
  }
}

TEST_CASE("gemini read_single: server errors are retried") {
  SECTION("503 UNAVAILABLE (overloaded)") {
    auto r = read(503, mock_error(mock::overloaded_error(mock::dialect::gemini, model)));
    CHECK(r.error_code == "EXTERNAL_SERVICE_ERROR");
    CHECK(r.retryable);
    CHECK(r.http_status == 503);
    CHECK(r.error_message.find("The model is overloaded") != std::string::npos);
  }
  SECTION("500 INTERNAL") {
    auto r = read(500, mock_error(mock::status_error(mock::dialect::gemini, 500, model)));
    CHECK(r.error_code == "EXTERNAL_SERVICE_ERROR");
    CHECK(r.retryable);
  }
  SECTION("an HTML 502 from a proxy is classified by its status") {
    auto r = read(502, "<html><body><h1>502 Bad Gateway</h1></body></html>",
                  {{"content-type", "text/html"}});
    CHECK(r.error_code == "EXTERNAL_SERVICE_ERROR");
    CHECK(r.retryable);
    CHECK(r.http_status == 502);
    CHECK(r.error_message == "Gemini HTTP 502: provider server error");
  }
}

TEST_CASE("gemini read_single: client errors are not retried") {
  SECTION("401 UNAUTHENTICATED") {
    auto r = read(401, mock_error(mock::auth_error(mock::dialect::gemini, false, "wrong")));
    CHECK(r.error_code == "AUTHENTICATION_ERROR");
    CHECK_FALSE(r.retryable);
    CHECK(r.error_message.find("API key not valid") != std::string::npos);
  }
  SECTION("400 with ErrorInfo API_KEY_INVALID, as the real API answers a bad key") {
    auto e = mock::auth_error(mock::dialect::gemini, false, "wrong");
    e.status = 400;
    e.type = "INVALID_ARGUMENT";
    auto r = read(400, mock_error(e));
    CHECK(r.error_code == "AUTHENTICATION_ERROR");
    CHECK_FALSE(r.retryable);
    CHECK(r.http_status == 400);
  }
  SECTION("403 PERMISSION_DENIED") {
    auto r = read(403, mock_error(mock::status_error(mock::dialect::gemini, 403, model)));
    CHECK(r.error_code == "AUTHENTICATION_ERROR");
    CHECK_FALSE(r.retryable);
  }
  SECTION("400 INVALID_ARGUMENT") {
    auto e = mock::gemini_invalid("contents", "contents is not specified");
    auto r = read(400, mock_error(e));
    CHECK(r.error_code == "INVALID_REQUEST");
    CHECK_FALSE(r.retryable);
    CHECK(r.error_message.starts_with("Gemini HTTP 400: provider rejected the request: * "));
  }
  SECTION("404 NOT_FOUND (unknown model)") {
    auto r = read(404, mock_error(mock::status_error(mock::dialect::gemini, 404, model)));
    CHECK(r.error_code == "INVALID_REQUEST");
    CHECK_FALSE(r.retryable);
  }
}

TEST_CASE("gemini read_single: the provider message is cut to 300 characters") {
  auto e = mock::status_error(mock::dialect::gemini, 500, model);
  e.message = std::string(1000, 'm');
  auto r = read(500, mock_error(e));
  const std::string prefix = "Gemini HTTP 500: provider server error: ";
  REQUIRE(r.error_message.starts_with(prefix));
  CHECK(r.error_message.size() == prefix.size() + 300);
}

TEST_CASE("gemini read_single: an error envelope wrapped in an array") {
  auto body = "[" + mock_error(mock::quota_error(mock::dialect::gemini, model)) + "]";
  CHECK(read(429, body).error_code == "QUOTA_EXCEEDED");
}

// -- multi-prompt --

TEST_CASE("gemini multi_call: body") {
  auto a = request("first pair"), b = request("second pair"), c = request("third pair");
  a.overrides.has_temperature = true;
  a.overrides.temperature = 0.3;
  b.overrides.max_tokens = 9000;
  c.overrides.has_temperature = true;
  c.overrides.temperature = 0.9;
  std::vector<lps::multi_item> items{{"c1", &a}, {"c2", &b}, {"c3", &c}};
  auto req = gemini_wire{}.multi_call(target(), items, model);
  CHECK(req.url
        == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
           ":generateContent");
  CHECK(*header(req, "x-goog-api-key") == api_key);
  CHECK(req.body.find(api_key) == std::string::npos);

  auto body = parse_object(req.body);
  CHECK(body.at("systemInstruction").at("parts").at(0).at("text").as_string()
        == std::string{lps::wire::default_system_prompt} + "\n\n"
               + lps::wire::multi_prompt_instructions);
  auto& contents = body.at("contents").as_array();
  REQUIRE(contents.size() == 1);
  CHECK(contents[0].at("role").as_string() == "user");
  CHECK(contents[0].at("parts").at(0).at("text").as_string()
        == lps::wire::pack_multi_prompt(items));

  auto& config = body.at("generationConfig").as_object();
  CHECK(config.at("temperature").to_number<double>() == Approx(0.3)); // the first item's
  CHECK(config.at("maxOutputTokens").to_number<uint64_t>() == 9000);  // the largest
  auto& schema = config.at("responseSchema").as_object();
  CHECK(schema.at("type").as_string() == "OBJECT");
  CHECK(schema.at("required") == json::array{"results"});
  auto& results = schema.at("properties").at("results").as_object();
  CHECK(results.at("type").as_string() == "ARRAY");
  auto& entry = results.at("items").as_object();
  CHECK(entry.at("type").as_string() == "OBJECT");
  auto names = json::array{"comparison_id", "winner", "justification", "confidence"};
  CHECK(entry.at("required") == names);
  CHECK(entry.at("propertyOrdering") == names);
  CHECK(entry.at("properties").at("comparison_id").at("type").as_string() == "STRING");
  CHECK(entry.at("properties").at("winner").at("enum") == json::array{"Essay A", "Essay B"});
  CHECK(entry.at("properties").at("confidence").at("type").as_string() == "NUMBER");
  CHECK_FALSE(has_key_anywhere(body, "additionalProperties"));

  SECTION("an empty first system prompt leaves only the instructions") {
    a.overrides.has_system_prompt = true;
    auto b2 = parse_object(gemini_wire{}.multi_call(target(), items, model).body);
    CHECK(b2.at("systemInstruction").at("parts").at(0).at("text").as_string()
          == lps::wire::multi_prompt_instructions);
  }
}

namespace {

json::object entry(const std::string& id, const std::string& winner, double confidence) {
  return {{"comparison_id", id},
          {"winner", winner},
          {"justification", "because " + id},
          {"confidence", confidence}};
}

lps::wire_multi_response read_multi(unsigned status, const std::string& body,
                                    const wire_headers& h = {}) {
  return gemini_wire{}.read_multi(status, body, h, now);
}

std::string multi_answer(const json::array& results) {
  return answer_with(json::serialize(json::object{{"results", results}}));
}

} // namespace

TEST_CASE("gemini read_multi: answers by comparison id") {
  SECTION("all ids") {
    auto m = read_multi(200, multi_answer({entry("c1", "Essay A", 4), entry("c2", "Essay B", 2)}));
    REQUIRE(m.call.success);
    CHECK(m.call.http_status == 200);
    CHECK(m.call.usage.total_tokens == 15);
    REQUIRE(m.answers.size() == 2);
    CHECK(m.answers.at("c1").winner == "Essay A");
    CHECK(m.answers.at("c1").confidence == 4.0);
    CHECK(m.answers.at("c1").justification == "because c1");
    CHECK(m.answers.at("c2").winner == "Essay B");
  }
  SECTION("a missing id is absent, the call still succeeds") {
    auto m = read_multi(200, multi_answer({entry("c1", "Essay A", 4)}));
    CHECK(m.call.success);
    CHECK(m.answers.size() == 1);
    CHECK(m.answers.count("c2") == 0);
  }
  SECTION("a duplicated id is dropped altogether") {
    auto m = read_multi(200, multi_answer({entry("c1", "Essay A", 4), entry("c2", "Essay B", 2),
                                           entry("c1", "Essay B", 5)}));
    CHECK(m.call.success);
    CHECK(m.answers.size() == 1);
    CHECK(m.answers.count("c1") == 0);
    CHECK(m.answers.count("c2") == 1);
  }
  SECTION("an invalid entry drops only its id") {
    auto m = read_multi(200, multi_answer({entry("c1", "Essay Z", 4), entry("c2", "Essay B", 9),
                                           entry("c3", "Essay A", 1)}));
    CHECK(m.call.success);
    CHECK(m.answers.size() == 1);
    CHECK(m.answers.count("c3") == 1);
  }
}

TEST_CASE("gemini read_multi: call failures") {
  SECTION("truncated") {
    auto body = answer_with(R"({"results":[{"comparison_id":"c1")", "MAX_TOKENS");
    auto m = read_multi(200, body);
    CHECK_FALSE(m.call.success);
    CHECK(m.call.error_code == "PARSING_ERROR");
    CHECK(m.answers.empty());
  }
  SECTION("not JSON") {
    auto m = read_multi(200, answer_with("Essay A wins c1."));
    CHECK(m.call.error_code == "PARSING_ERROR");
    CHECK(m.answers.empty());
  }
  SECTION("refused") {
    CHECK(read_multi(200, answer_with("", "SAFETY")).call.error_code == "INVALID_REQUEST");
  }
  SECTION("HTTP errors as in read_single") {
    auto e = mock::status_error(mock::dialect::gemini, 429, model);
    mock::add_retry_after(mock::dialect::gemini, e, "4");
    auto m = read_multi(429, mock_error(e));
    CHECK_FALSE(m.call.success);
    CHECK(m.call.error_code == "RATE_LIMIT");
    CHECK(m.call.retryable);
    CHECK(m.call.retry_after == milliseconds{4000});
    CHECK(m.answers.empty());
    auto q = read_multi(429, mock_error(mock::quota_error(mock::dialect::gemini, model)));
    CHECK(q.call.error_code == "QUOTA_EXCEEDED");
    CHECK_FALSE(q.call.retryable);
  }
}

TEST_CASE("gemini multi-prompt round trip through the mock provider's parser and renderer") {
  auto a = request("first pair"), b = request("second pair");
  std::vector<lps::multi_item> items{{"c1", &a}, {"c2", &b}};
  auto body = gemini_wire{}.multi_call(target(), items, model).body;
  mock::parsed_call call;
  REQUIRE_FALSE(mock::validate_gemini(parse_object(body), model, call));
  // The mock sees a multi-prompt call and finds every comparison block with its text.
  REQUIRE(call.multi);
  REQUIRE(call.comparisons.size() == 2);
  CHECK(call.comparisons[0] == std::pair<std::string, std::string>{"c1", "first pair"});
  CHECK(call.comparisons[1] == std::pair<std::string, std::string>{"c2", "second pair"});

  mock::answer answer;
  answer.multi = true;
  answer.results = {{"c1", {"Essay A", "A is clearer.", 5}}, {"c2", {"Essay B", "B wins.", 2}}};
  answer.tokens.input = 300;
  answer.tokens.output = 80;
  auto m = read_multi(200, mock::render_gemini(call, answer));
  REQUIRE(m.call.success);
  CHECK(m.call.usage.total_tokens == 380);
  REQUIRE(m.answers.size() == 2);
  CHECK(m.answers.at("c1").winner == "Essay A");
  CHECK(m.answers.at("c1").justification == "A is clearer.");
  CHECK(m.answers.at("c2").confidence == 2.0);
}
