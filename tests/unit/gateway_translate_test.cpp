// The gateway's pure pieces (runtime/gateway_request, runtime/gateway_translate): the checks of
// an OpenAI chat.completion request, model routing, and the translation to and from OpenAI,
// Anthropic Messages and Gemini generateContent, read back with Boost.JSON.

#include "runtime/gateway_request.hpp"
#include "runtime/gateway_translate.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <string>

using namespace lps;
namespace json = boost::json;

namespace {

const auto now = std::chrono::system_clock::time_point{std::chrono::seconds{1'800'000'000}};
const gateway_target target{"http://127.0.0.1:9/base",
                            "sk-secret-provider-key-123456789012",
                            std::chrono::milliseconds{1234},
                            {}};

json::object parse(const std::string& text) {
  return json::parse(text).as_object();
}

std::string header(const http_client_request& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name)
      return v;
  return "";
}

gateway_error rejected(const std::string& body) {
  gateway_request_info info;
  auto e = check_gateway_request(body, info);
  REQUIRE(e.has_value());
  CHECK(e->status == 400);
  CHECK(parse(render_gateway_error(*e)).at("error").as_object().at("type")
        == "invalid_request_error");
  return *e;
}

const std::string tool_conversation = R"({"model": "m", "temperature": 1.7, "max_tokens": 77,
  "messages": [
    {"role": "system", "content": "Be brief."},
    {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
    {"role": "user", "content": "Weather in Oslo and Bergen?"},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}},
      {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Bergen\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "4C"},
    {"role": "tool", "tool_call_id": "call_2", "content": "7C"}],
  "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
  "tool_choice": "required", "stop": "END"})";

const std::string schema_request =
    R"({"model": "m", "messages": [{"role": "user", "content": "Grade"}],
  "response_format": {"type": "json_schema", "json_schema": {"name": "grade", "strict": true,
    "schema": {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"],
               "additionalProperties": false}}}})";

} // namespace

TEST_CASE("a valid request passes with its model, stream flag and token estimate") {
  gateway_request_info info;
  auto e = check_gateway_request(tool_conversation, info);
  REQUIRE_FALSE(e);
  CHECK(info.model == "m");
  CHECK_FALSE(info.stream);
  CHECK(info.estimated_tokens > 77);
  REQUIRE_FALSE(check_gateway_request(
      R"({"model":"x","stream":true,"messages":[{"role":"user","content":"hi"}]})", info));
  CHECK(info.stream);
}

TEST_CASE("bad requests get the 400 OpenAI would give, naming the field") {
  CHECK(rejected("{\"model\": ").code == "invalid_json");
  CHECK(rejected("[1]").code == "invalid_json");
  CHECK(rejected(R"({"messages":[{"role":"user","content":"x"}]})").param == "model");
  CHECK(rejected(R"({"model":"m"})").param == "messages");
  CHECK(rejected(R"({"model":"m","messages":[]})").code == "empty_array");
  CHECK(rejected(R"({"model":"m","messages":[{"role":"wizard","content":"x"}]})").param
        == "messages[0].role");
  CHECK(rejected(R"({"model":"m","messages":[{"role":"user"}]})").param == "messages[0].content");
  CHECK(rejected(R"({"model":"m","messages":[{"role":"tool","content":"x"}]})").param
        == "messages[0].tool_call_id");
  CHECK(
      rejected(
          R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})")
          .code
      == "unsupported_content_type");
  CHECK(
      rejected(R"({"model":"m","temperature":3,"messages":[{"role":"user","content":"x"}]})").param
      == "temperature");
  CHECK(rejected(R"({"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]})").param
        == "max_tokens");
  CHECK(rejected(R"({"model":"m","n":2,"messages":[{"role":"user","content":"x"}]})").param == "n");
  CHECK(
      rejected(
          R"({"model":"m","tools":[{"type":"retrieval"}],"messages":[{"role":"user","content":"x"}]})")
          .param
      == "tools[0].type");
  CHECK(rejected(
            R"({"model":"m","tool_choice":"sometimes","messages":[{"role":"user","content":"x"}]})")
            .param
        == "tool_choice");
  CHECK(
      rejected(
          R"({"model":"m","response_format":{"type":"json_schema"},"messages":[{"role":"user","content":"x"}]})")
          .param
      == "response_format.json_schema");
}

TEST_CASE("the check reads every byte: bad UTF-8 and escapes are refused, a repeated key's last "
          "value counts") {
  const std::string user = R"("messages":[{"role":"user","content":"x"}])";
  CHECK(rejected("{\"model\":\"m\"," + user.substr(0, 37) + "\"\xff\"}]}").code == "invalid_json");
  CHECK(rejected(R"({"model":"m\q",)" + user + "}").code == "invalid_json");
  CHECK(rejected(R"({"model":"m\ud800",)" + user + "}").code == "invalid_json");
  CHECK(rejected(R"({"model":"m",)" + user + ",}").code == "invalid_json");
  CHECK(rejected(R"({"model":"m","max_tokens":-3,)" + user + "}").code
        == "integer_below_min_value");
  CHECK(rejected(R"({"model":"m","max_tokens":2.5,)" + user + "}").code == "invalid_type");
  gateway_request_info info;
  // As OpenAI's parser and the provider that gets the body as it is: the last one.
  REQUIRE_FALSE(check_gateway_request(R"({"model":"a","model":"b",)" + user + "}", info));
  CHECK(info.model == "b");
  // Escapes count as the bytes they stand for: "one\ntwo\u00e9" is 9 bytes.
  REQUIRE_FALSE(check_gateway_request(
      R"({"model":"m","max_tokens":100,"messages":[{"role":"user","content":"one\ntwo\u00e9"}]})",
      info));
  CHECK(info.estimated_tokens == 9 / 4 + 1 + 100);
}

TEST_CASE("models route by manifest id, explicit prefix, then family") {
  gateway_models models;
  std::string error;
  REQUIRE(gateway_models::parse(
      R"({"models":[{"model_id":"gpt-4o-mini","provider":"openai"},
                    {"model_id":"anthropic/claude-x","provider":"openrouter"}]})",
      models, error));
  auto route = [&](const std::string& m) { return models.route(m); };
  CHECK(route("gpt-4o-mini")->provider == "openai");
  CHECK(route("anthropic/claude-x")->provider == "openrouter");
  CHECK(route("anthropic/claude-x")->model == "anthropic/claude-x");
  CHECK(route("anthropic/claude-y")->provider == "anthropic");
  CHECK(route("anthropic/claude-y")->model == "claude-y");
  CHECK(route("openrouter/meta/llama")->model == "meta/llama");
  CHECK(route("gemini/gemini-pro")->provider == "google");
  CHECK(route("mock/anything")->provider == "mock");
  CHECK(route("claude-opus-9")->provider == "anthropic");
  CHECK(route("gemini-9-ultra")->provider == "google");
  CHECK(route("gpt-9")->provider == "openai");
  CHECK_FALSE(route("llama-3"));
  CHECK_FALSE(route("unknown/llama-3"));
  auto list = parse(models.list_json());
  CHECK(list.at("object") == "list");
  CHECK(list.at("data").as_array().size() == 2);
  CHECK(list.at("data").as_array()[0].as_object().at("owned_by") == "openrouter");
  CHECK_FALSE(gateway_models::parse("{}", models, error));
}

TEST_CASE("OpenAI requests pass through with the routed model, without stream") {
  auto u =
      gateway_upstream_request(gateway_dialect::openai, target,
                               R"({"model":"openai/gpt-x","stream":false,"messages":[]})", "gpt-x");
  REQUIRE_FALSE(u.error);
  CHECK(u.request.url == "http://127.0.0.1:9/base/chat/completions");
  CHECK(header(u.request, "Authorization") == "Bearer " + target.api_key);
  CHECK(u.request.timeout == std::chrono::milliseconds{1234});
  auto body = parse(u.request.body);
  CHECK(body.at("model") == "gpt-x");
  CHECK_FALSE(body.contains("stream"));
}

TEST_CASE("a body without stream fields naming the routed model goes to OpenAI byte for byte") {
  // Spacing and key order the serializer would change: kept only when the bytes are sent.
  const std::string body = R"({ "messages": [{"role": "user", "content": "hi \u00e9"}],
    "model": "gpt-x", "temperature": 1.0 })";
  gateway_request_info info;
  REQUIRE_FALSE(check_gateway_request(body, info));
  CHECK(info.sendable_as_is);
  for (auto d : {gateway_dialect::openai, gateway_dialect::openrouter}) {
    auto u = gateway_upstream_request(d, target, body, "gpt-x", true);
    REQUIRE_FALSE(u.error);
    CHECK(u.request.body == body);
    CHECK(u.request.url == "http://127.0.0.1:9/base/chat/completions");
    CHECK(header(u.request, "Authorization") == "Bearer " + target.api_key);
  }
  // Without `as_is` the same body is parsed and serialized again (compact).
  CHECK(gateway_upstream_request(gateway_dialect::openai, target, body, "gpt-x").request.body
        != body);
  // Other dialects translate whatever `as_is` says.
  auto anthropic =
      gateway_upstream_request(gateway_dialect::anthropic, target, body, "gpt-x", true);
  REQUIRE_FALSE(anthropic.error);
  CHECK(parse(anthropic.request.body).contains("max_tokens"));
  // A stream field of either kind must be dropped, so such a body is never sent as it is.
  for (const char* fields :
       {R"("stream": false)", R"("stream_options": {"include_usage": true})"}) {
    gateway_request_info streamed;
    REQUIRE_FALSE(check_gateway_request(
        std::string{R"({"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}], )"}
            + fields + "}",
        streamed));
    CHECK_FALSE(streamed.sendable_as_is);
  }
}

TEST_CASE("OpenAI answers pass back as they are, errors are classified") {
  const std::string ok = R"({"id":"c","object":"chat.completion","choices":[{"index":0}],
                             "usage":{"prompt_tokens":11,"completion_tokens":5}})";
  auto r = gateway_read_upstream(gateway_dialect::openai, 200, ok, {}, "{}", "gpt-x", now);
  CHECK(r.status == 200);
  CHECK(r.body == ok);
  CHECK(r.prompt_tokens == 11);
  CHECK(r.completion_tokens == 5);
  auto bad =
      gateway_read_upstream(gateway_dialect::openai, 200, R"({"id":"c"})", {}, "{}", "g", now);
  CHECK(bad.status == 502);
  auto limited = gateway_read_upstream(
      gateway_dialect::openai, 429,
      R"({"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}})",
      {{"retry-after", "7"}}, "{}", "g", now);
  CHECK(limited.status == 429);
  CHECK(limited.retryable);
  CHECK(limited.provider_failure);
  CHECK(limited.retry_after == std::chrono::seconds{7});
  auto quota = gateway_read_upstream(
      gateway_dialect::openai, 429,
      R"({"error":{"message":"no money","type":"insufficient_quota","code":"insufficient_quota"}})",
      {}, "{}", "g", now);
  CHECK(quota.status == 429);
  CHECK_FALSE(quota.retryable);
  auto server = gateway_read_upstream(gateway_dialect::openai, 500, "{}", {}, "{}", "g", now);
  CHECK(server.status == 502);
  CHECK(server.retryable);
  auto key = gateway_read_upstream(
      gateway_dialect::openai, 401,
      R"({"error":{"message":"Incorrect API key provided: sk-secret-provider-key-123456789012"}})",
      {}, "{}", "g", now);
  CHECK(key.status == 502);
  CHECK_FALSE(key.retryable);
  CHECK(key.body.find("sk-secret") == std::string::npos);
  auto leaked = gateway_read_upstream(
      gateway_dialect::openai, 400,
      R"({"error":{"message":"bad: sk-secret-provider-key-123456789012"}})", {}, "{}", "g", now);
  CHECK(leaked.status == 400);
  CHECK(leaked.body.find("sk-secret-provider-key-123456789012") == std::string::npos);
}

TEST_CASE("an answer's rate-limit headers are read for the provider gate, errors' too") {
  using std::chrono::milliseconds;
  const std::string ok = R"({"id":"c","object":"chat.completion","choices":[{"index":0}],
                             "usage":{"prompt_tokens":1,"completion_tokens":1}})";
  auto openai = gateway_read_upstream(gateway_dialect::openai, 200, ok,
                                      {{"x-ratelimit-remaining-requests", "2"},
                                       {"x-ratelimit-reset-requests", "1.5s"},
                                       {"x-ratelimit-remaining-tokens", "900"},
                                       {"x-ratelimit-reset-tokens", "12ms"}},
                                      "{}", "g", now);
  CHECK(openai.limits.remaining_requests == 2);
  CHECK(openai.limits.requests_reset == milliseconds{1500});
  CHECK(openai.limits.remaining_tokens == 900);
  CHECK(openai.limits.tokens_reset == milliseconds{12});
  auto anthropic = gateway_read_upstream(
      gateway_dialect::anthropic, 529, R"({"type":"error","error":{"type":"overloaded_error"}})",
      {{"anthropic-ratelimit-requests-remaining", "0"},
       {"anthropic-ratelimit-requests-reset", "2027-01-15T08:00:30Z"}},
      "{}", "claude-x", now); // `now` is 2027-01-15T08:00:00Z
  CHECK(anthropic.limits.remaining_requests == 0);
  CHECK(anthropic.limits.requests_reset == milliseconds{30000});
  CHECK(gateway_read_upstream(gateway_dialect::gemini, 200, "{}",
                              {{"x-ratelimit-remaining-requests", "2"}}, "{}", "g", now)
            .limits.empty());
  CHECK(gateway_read_upstream(gateway_dialect::openai, 200, ok, {}, "{}", "g", now).limits.empty());
}

TEST_CASE("OpenAI requests become Anthropic Messages: system, tool calls and results") {
  auto u =
      gateway_upstream_request(gateway_dialect::anthropic, target, tool_conversation, "claude-x");
  REQUIRE_FALSE(u.error);
  CHECK(u.request.url == "http://127.0.0.1:9/base/v1/messages");
  CHECK(header(u.request, "x-api-key") == target.api_key);
  CHECK(header(u.request, "anthropic-version") == "2023-06-01");
  auto body = parse(u.request.body);
  CHECK(body.at("model") == "claude-x");
  CHECK(body.at("system") == "Be brief.\n\nUse tools.");
  CHECK(body.at("max_tokens") == 77);
  CHECK(body.at("temperature").as_double() == 1.0); // Anthropic's range ends at 1
  CHECK(body.at("stop_sequences").as_array().at(0) == "END");
  CHECK(body.at("tool_choice").as_object().at("type") == "any");
  const auto& tool = body.at("tools").as_array().at(0).as_object();
  CHECK(tool.at("name") == "get_weather");
  CHECK(tool.at("input_schema").as_object().at("required").as_array().at(0) == "city");
  const auto& messages = body.at("messages").as_array();
  REQUIRE(messages.size() == 3);
  CHECK(messages[0].as_object().at("role") == "user");
  const auto& uses = messages[1].as_object().at("content").as_array();
  REQUIRE(uses.size() == 2);
  CHECK(uses[0].as_object().at("type") == "tool_use");
  CHECK(uses[0].as_object().at("id") == "call_1");
  CHECK(uses[1].as_object().at("input").as_object().at("city") == "Bergen");
  const auto& results = messages[2].as_object().at("content").as_array();
  REQUIRE(results.size() == 2); // both tool results in one user turn
  CHECK(results[1].as_object().at("tool_use_id") == "call_2");
  CHECK(results[1].as_object().at("content") == "7C");
}

TEST_CASE("a json_schema response_format becomes a forced Anthropic tool, read back as content") {
  auto u = gateway_upstream_request(gateway_dialect::anthropic, target, schema_request, "c");
  REQUIRE_FALSE(u.error);
  auto body = parse(u.request.body);
  CHECK(body.at("max_tokens") == 4096);
  CHECK(body.at("tool_choice").as_object().at("name") == "grade");
  CHECK(body.at("tools").as_array().at(0).as_object().at("input_schema").as_object().at("type")
        == "object");
  auto r = gateway_read_upstream(
      gateway_dialect::anthropic, 200,
      R"({"id":"msg_1","content":[{"type":"tool_use","id":"t","name":"grade","input":{"score":4}}],
          "stop_reason":"tool_use","usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":3}})",
      {}, schema_request, "claude-x", now);
  REQUIRE(r.status == 200);
  auto out = parse(r.body);
  CHECK(out.at("object") == "chat.completion");
  CHECK(out.at("model") == "claude-x");
  const auto& choice = out.at("choices").as_array().at(0).as_object();
  CHECK(choice.at("finish_reason") == "stop");
  CHECK(parse(std::string{choice.at("message").as_object().at("content").as_string()}).at("score")
        == 4);
  CHECK(out.at("usage").as_object().at("prompt_tokens") == 15);
  CHECK(out.at("usage").as_object().at("total_tokens") == 18);
}

TEST_CASE("Anthropic answers: tool_use becomes tool_calls, errors keep their meaning") {
  auto r = gateway_read_upstream(gateway_dialect::anthropic, 200,
                                 R"({"id":"msg_1","content":[{"type":"text","text":"Let me look."},
          {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Oslo"}}],
          "stop_reason":"tool_use","usage":{"input_tokens":10,"output_tokens":3}})",
                                 {}, tool_conversation, "claude-x", now);
  auto out = parse(r.body);
  const auto& choice = out.at("choices").as_array().at(0).as_object();
  CHECK(choice.at("finish_reason") == "tool_calls");
  const auto& call = choice.at("message").as_object().at("tool_calls").as_array().at(0).as_object();
  CHECK(call.at("id") == "toolu_1");
  CHECK(call.at("function").as_object().at("arguments") == R"({"city":"Oslo"})");
  auto length =
      gateway_read_upstream(gateway_dialect::anthropic, 200,
                            R"({"content":[],"stop_reason":"max_tokens"})", {}, "{}", "c", now);
  CHECK(parse(length.body).at("choices").as_array().at(0).as_object().at("finish_reason")
        == "length");
  auto overloaded = gateway_read_upstream(
      gateway_dialect::anthropic, 529,
      R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", {}, "{}",
      "c", now);
  CHECK(overloaded.status == 503);
  CHECK(overloaded.retryable);
  CHECK(parse(overloaded.body).at("error").as_object().at("type") == "overloaded_error");
  auto bad_args = gateway_upstream_request(
      gateway_dialect::anthropic, target,
      R"({"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[
          {"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]})",
      "c");
  REQUIRE(bad_args.error);
  CHECK(bad_args.error->param == "messages[1].tool_calls[0].function.arguments");
}

TEST_CASE("OpenAI requests become Gemini generateContent, function calls matched by id") {
  auto u = gateway_upstream_request(gateway_dialect::gemini, target, tool_conversation,
                                    "models/gemini-x");
  REQUIRE_FALSE(u.error);
  CHECK(u.request.url == "http://127.0.0.1:9/base/v1beta/models/gemini-x:generateContent");
  CHECK(header(u.request, "x-goog-api-key") == target.api_key);
  CHECK(u.request.url.find(target.api_key) == std::string::npos);
  auto body = parse(u.request.body);
  CHECK(body.at("systemInstruction").as_object().at("parts").as_array().at(0).as_object().at("text")
        == "Be brief.\n\nUse tools.");
  const auto& contents = body.at("contents").as_array();
  REQUIRE(contents.size() == 3);
  CHECK(contents[1].as_object().at("role") == "model");
  CHECK(contents[1].as_object().at("parts").as_array().size() == 2);
  const auto& responses = contents[2].as_object().at("parts").as_array();
  CHECK(responses.at(1).as_object().at("functionResponse").as_object().at("name") == "get_weather");
  const auto& config = body.at("generationConfig").as_object();
  CHECK(config.at("temperature").as_double() == 1.7);
  CHECK(config.at("maxOutputTokens") == 77);
  CHECK(body.at("toolConfig").as_object().at("functionCallingConfig").as_object().at("mode")
        == "ANY");
  CHECK(body.at("tools").as_array().at(0).as_object().at("functionDeclarations").as_array().size()
        == 1);
  auto schema = gateway_upstream_request(gateway_dialect::gemini, target, schema_request, "g");
  auto schema_body = parse(schema.request.body);
  const auto& sc = schema_body.at("generationConfig").as_object();
  CHECK(sc.at("responseMimeType") == "application/json");
  CHECK(sc.at("responseJsonSchema").as_object().at("type") == "object");
  auto orphan = gateway_upstream_request(
      gateway_dialect::gemini, target,
      R"({"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"zz","content":"r"}]})",
      "g");
  REQUIRE(orphan.error);
  CHECK(orphan.error->status == 400);
}

TEST_CASE("Gemini answers: text, function calls, finish reasons and usage") {
  auto r = gateway_read_upstream(
      gateway_dialect::gemini, 200,
      R"({"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{"city":"Oslo"}}}]},
          "finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":4,"thoughtsTokenCount":2},
          "responseId":"abc"})",
      {}, "{}", "gemini-x", now);
  auto out = parse(r.body);
  const auto& choice = out.at("choices").as_array().at(0).as_object();
  CHECK(choice.at("finish_reason") == "tool_calls");
  CHECK(choice.at("message").as_object().at("content").is_null());
  CHECK(choice.at("message").as_object().at("tool_calls").as_array().at(0).as_object().at("id")
        == "call_1");
  CHECK(r.completion_tokens == 6);
  auto text = gateway_read_upstream(
      gateway_dialect::gemini, 200,
      R"({"candidates":[{"content":{"parts":[{"text":"Hel"},{"text":"lo"}]},"finishReason":"MAX_TOKENS"}]})",
      {}, "{}", "g", now);
  auto text_body = parse(text.body);
  const auto& tc = text_body.at("choices").as_array().at(0).as_object();
  CHECK(tc.at("message").as_object().at("content") == "Hello");
  CHECK(tc.at("finish_reason") == "length");
  auto unavailable = gateway_read_upstream(
      gateway_dialect::gemini, 503,
      R"({"error":{"code":503,"message":"The model is overloaded","status":"UNAVAILABLE"}})", {},
      "{}", "g", now);
  CHECK(unavailable.status == 503);
  CHECK(unavailable.retryable);
}

TEST_CASE("a call without an HTTP answer is a retryable 504 or 502") {
  auto timeout = gateway_transport_failure("OpenAI", transport_error::timeout, "deadline");
  CHECK(timeout.status == 504);
  CHECK(timeout.retryable);
  auto tls = gateway_transport_failure("OpenAI", transport_error::tls, "bad certificate");
  CHECK(tls.status == 502);
  CHECK_FALSE(tls.retryable);
  CHECK(parse(tls.body).at("error").as_object().contains("param"));
}

TEST_CASE("the built-in mock answers text, schema JSON and tool calls") {
  auto plain =
      parse(gateway_mock_answer(
                R"({"model":"mock/x","messages":[{"role":"user","content":"Hi there"}]})", "mock/x")
                .body);
  const auto& pm = plain.at("choices").as_array().at(0).as_object().at("message").as_object();
  CHECK(pm.at("content") == "Mock answer to: Hi there");
  auto schema = parse(gateway_mock_answer(schema_request, "mock/x").body);
  auto content =
      schema.at("choices").as_array().at(0).as_object().at("message").as_object().at("content");
  CHECK(parse(std::string{content.as_string()}).at("score") == 1);
  const std::string with_tools = R"({"model":"m","messages":[{"role":"user","content":"Oslo?"}],
    "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object",
    "properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]}}}}}]})";
  auto called = parse(gateway_mock_answer(with_tools, "m").body);
  const auto& choice = called.at("choices").as_array().at(0).as_object();
  CHECK(choice.at("finish_reason") == "tool_calls");
  auto args =
      choice.at("message").as_object().at("tool_calls").as_array().at(0).as_object().at("function");
  CHECK(parse(std::string{args.as_object().at("arguments").as_string()}).at("unit") == "c");
  auto after = parse(gateway_mock_answer(tool_conversation, "m").body);
  CHECK(after.at("choices").as_array().at(0).as_object().at("finish_reason") == "stop");
  CHECK(example_json_for_schema(R"({"type":"array","items":{"type":"BOOLEAN"}})") == "[true]");
  CHECK(example_json_for_schema("not json") == "null");
}
