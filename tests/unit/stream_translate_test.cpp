// The stream translators fed the mock provider server's exact streamed bytes
// (mock_stream::render_events, what the server writes for `stream: true`), cut into random
// pieces and parsed by sse_parser: the OpenAI chunks they produce must add up to the same
// answer as the complete (non-streamed) body, tool calls and usage included.

#include "runtime/sse_parser.hpp"
#include "runtime/stream_translate_anthropic.hpp"
#include "runtime/stream_translate_gemini.hpp"
#include "runtime/stream_translate_openai.hpp"
#include "tools/mock_provider/mock_provider_stream.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <array>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace {

namespace json = boost::json;
using lps::sse_event;
using lps::stream_translate_options;
using lps::stream_translator;
using lps::stream_usage;
using lps::mock_stream::dialect;

/// What a client reassembles from the chunks (as the OpenAI SDKs' stream helpers do).
struct reassembled {
  std::string id;
  std::string model;
  std::string role;
  std::string content;
  std::string finish_reason;
  /// Tool call index -> id, name, arguments.
  std::map<uint64_t, std::array<std::string, 3>> tool_calls;
  std::optional<stream_usage> usage;
  size_t chunks = 0;
  bool every_chunk_has_usage_field = true;
};

std::string str(const json::value& v) {
  return v.is_string() ? std::string(v.get_string()) : std::string{};
}

void take_delta(const json::object& delta, reassembled& r) {
  if (const auto* role = delta.if_contains("role"))
    r.role = str(*role);
  if (const auto* content = delta.if_contains("content"))
    r.content += str(*content);
  if (const auto* calls = delta.if_contains("tool_calls"))
    for (const auto& c : calls->as_array()) {
      const auto& call = c.as_object();
      auto& slot = r.tool_calls[call.at("index").to_number<uint64_t>()];
      if (const auto* id = call.if_contains("id"))
        slot[0] = str(*id);
      const auto& fn = call.at("function").as_object();
      if (const auto* name = fn.if_contains("name"))
        slot[1] = str(*name);
      slot[2] += str(fn.at("arguments"));
    }
}

void take_chunk(const std::string& text, reassembled& r) {
  auto chunk = json::parse(text).as_object();
  CHECK(chunk.at("object") == "chat.completion.chunk");
  r.id = str(chunk.at("id"));
  r.model = str(chunk.at("model"));
  r.every_chunk_has_usage_field = r.every_chunk_has_usage_field && chunk.contains("usage");
  ++r.chunks;
  const auto& choices = chunk.at("choices").as_array();
  if (choices.empty()) {
    const auto& u = chunk.at("usage").as_object();
    r.usage = stream_usage{u.at("prompt_tokens").to_number<uint64_t>(),
                           u.at("completion_tokens").to_number<uint64_t>(),
                           u.at("total_tokens").to_number<uint64_t>(),
                           u.at("prompt_tokens_details").at("cached_tokens").to_number<uint64_t>()};
    return;
  }
  const auto& choice = choices.front().as_object();
  take_delta(choice.at("delta").as_object(), r);
  if (!choice.at("finish_reason").is_null())
    r.finish_reason = str(choice.at("finish_reason"));
}

/// Streams `events` (joined) through a parser in random pieces and the translator.
reassembled translate(const std::vector<std::string>& events, stream_translator& t, uint64_t seed) {
  std::string bytes;
  for (const auto& e : events)
    bytes += e;
  std::mt19937_64 rng{seed};
  std::uniform_int_distribution<size_t> piece(1, 1 + seed % 40);
  lps::sse_parser parser;
  std::vector<std::string> chunks;
  size_t at = 0;
  while (at < bytes.size()) {
    auto n = std::min(piece(rng), bytes.size() - at);
    std::vector<sse_event> parsed;
    parser.feed(std::string_view(bytes).substr(at, n), parsed);
    for (const auto& e : parsed)
      t.on_event(e, chunks);
    at += n;
  }
  t.on_end(chunks);
  reassembled r;
  for (const auto& c : chunks)
    take_chunk(c, r);
  return r;
}

stream_translate_options options(bool include_usage) {
  stream_translate_options o;
  o.model = "client-model";
  o.include_usage = include_usage;
  o.created = 1765000000;
  return o;
}

lps::mock_stream::stream_ask ask(bool include_usage) {
  lps::mock_stream::stream_ask a;
  a.stream = true;
  a.include_usage = include_usage;
  return a;
}

const std::string openai_answer = R"({"id":"chatcmpl-abc","object":"chat.completion",
  "created":1765000001,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{
  "role":"assistant","content":"Essay A argues better: its evidence is specific, naïve as it is.",
  "refusal":null,"tool_calls":[{"id":"call_1","type":"function","function":{
  "name":"get_weather","arguments":"{\"city\":\"Zürich\",\"unit\":\"celsius\"}"}},
  {"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},
  "logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":120,
  "completion_tokens":40,"total_tokens":160,"prompt_tokens_details":{"cached_tokens":64}}})";

const std::string anthropic_answer = R"({"id":"msg_01XYZ","type":"message","role":"assistant",
  "model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Let me record the verdict — über-carefully."},
  {"type":"tool_use","id":"toolu_01A","name":"comparison_result","input":{"winner":"Essay A",
  "justification":"Clearer thesis.","confidence":4}}],"stop_reason":"tool_use",
  "stop_sequence":null,"usage":{"input_tokens":30,"output_tokens":55,
  "cache_creation_input_tokens":1100,"cache_read_input_tokens":2048,
  "cache_creation":{"ephemeral_5m_input_tokens":1100,"ephemeral_1h_input_tokens":0},
  "service_tier":"standard"}})";

const std::string gemini_answer = R"({"candidates":[{"content":{"parts":[
  {"text":"I'll look that up for you, step by step."},
  {"functionCall":{"name":"get_weather","args":{"city":"Paris"}}}],"role":"model"},
  "finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":12,
  "candidatesTokenCount":20,"totalTokenCount":40,"thoughtsTokenCount":8,
  "cachedContentTokenCount":4},"modelVersion":"gemini-2.5-flash","responseId":"resp123"})";

} // namespace

TEST_CASE("OpenAI chunks pass through in any chunking, with the client's model name", "[stream]") {
  auto events = lps::mock_stream::render_events(dialect::openai, openai_answer, ask(true));
  REQUIRE(events.size() > 8);
  CHECK(events.back() == "data: [DONE]\n\n");
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    INFO("seed " << seed);
    auto t = lps::make_openai_stream_translator(options(true));
    auto r = translate(events, *t, seed);
    CHECK(t->complete());
    CHECK(!t->error());
    CHECK(r.id == "chatcmpl-abc");
    CHECK(r.model == "client-model");
    CHECK(r.role == "assistant");
    CHECK(r.content == "Essay A argues better: its evidence is specific, naïve as it is.");
    CHECK(r.finish_reason == "tool_calls");
    REQUIRE(r.tool_calls.size() == 2);
    CHECK(r.tool_calls[0]
          == std::array<std::string, 3>{"call_1", "get_weather",
                                        R"({"city":"Zürich","unit":"celsius"})"});
    CHECK(r.tool_calls[1] == std::array<std::string, 3>{"call_2", "get_time", "{}"});
    CHECK(r.usage == stream_usage{120, 40, 160, 64});
    CHECK(r.every_chunk_has_usage_field);
  }
}

TEST_CASE("OpenAI usage is recorded but not sent when the client did not ask for it", "[stream]") {
  auto events = lps::mock_stream::render_events(dialect::openai, openai_answer, ask(true));
  auto t = lps::make_openai_stream_translator(options(false));
  auto r = translate(events, *t, 7);
  CHECK(!r.usage);
  CHECK(t->usage() == stream_usage{120, 40, 160, 64});
  std::vector<std::string> chunks;
  auto again = lps::make_openai_stream_translator(options(false));
  for (const auto& e : events) {
    std::vector<sse_event> parsed;
    lps::sse_parser p;
    p.feed(e, parsed);
    for (const auto& ev : parsed)
      again->on_event(ev, chunks);
  }
  for (const auto& c : chunks)
    CHECK(c.find("\"usage\"") == std::string::npos);
}

TEST_CASE("Anthropic events become OpenAI chunks with tool calls and usage, in any chunking",
          "[stream]") {
  auto events = lps::mock_stream::render_events(dialect::anthropic, anthropic_answer, ask(false));
  CHECK(events.front().starts_with("event: message_start\n"));
  CHECK(events[1] == "event: ping\ndata: {\"type\": \"ping\"}\n\n");
  CHECK(events.back() == "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    INFO("seed " << seed);
    auto t = lps::make_anthropic_stream_translator(options(true));
    auto r = translate(events, *t, seed);
    CHECK(t->complete());
    CHECK(!t->error());
    CHECK(r.id == "chatcmpl-msg_01XYZ");
    CHECK(r.model == "client-model");
    CHECK(r.role == "assistant");
    CHECK(r.content == "Let me record the verdict — über-carefully.");
    CHECK(r.finish_reason == "tool_calls");
    REQUIRE(r.tool_calls.size() == 1);
    CHECK(r.tool_calls[0][0] == "toolu_01A");
    CHECK(r.tool_calls[0][1] == "comparison_result");
    CHECK(
        json::parse(r.tool_calls[0][2])
        == json::parse(R"({"winner":"Essay A","justification":"Clearer thesis.","confidence":4})"));
    // Cached input counts in prompt_tokens, as OpenAI reports it.
    CHECK(r.usage == stream_usage{30 + 1100 + 2048, 55, 30 + 1100 + 2048 + 55, 2048});
    CHECK(r.every_chunk_has_usage_field);
  }
}

TEST_CASE("Anthropic's json_schema tool streams as content with finish_reason stop", "[stream]") {
  // The forced tool a json_schema response_format became (docs/gateway.md): its input is the
  // answer, so its input_json_delta pieces are content, as in the non-streamed answer.
  const std::string schema_answer = R"({"id":"msg_02","type":"message","role":"assistant",
    "model":"claude-haiku-4-5-20251001","content":[{"type":"tool_use","id":"toolu_02",
    "name":"grade","input":{"grade":"B+","reasons":["clear thesis","über-long intro"]}}],
    "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":40,"output_tokens":25}})";
  auto events = lps::mock_stream::render_events(dialect::anthropic, schema_answer, ask(false));
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    INFO("seed " << seed);
    auto o = options(true);
    o.schema_tool = "grade";
    auto t = lps::make_anthropic_stream_translator(o);
    auto r = translate(events, *t, seed);
    CHECK(t->complete());
    CHECK(!t->error());
    CHECK(r.tool_calls.empty());
    CHECK(r.finish_reason == "stop");
    CHECK(json::parse(r.content)
          == json::parse(R"({"grade":"B+","reasons":["clear thesis","über-long intro"]})"));
    CHECK(r.usage == stream_usage{40, 25, 65, 0});
  }
  // Another tool of the same answer stays a tool call (only the schema's tool is content).
  auto other = options(false);
  other.schema_tool = "not_this_one";
  auto t = lps::make_anthropic_stream_translator(other);
  auto r = translate(events, *t, 3);
  CHECK(r.content.empty());
  CHECK(r.finish_reason == "tool_calls");
  REQUIRE(r.tool_calls.size() == 1);
  CHECK(r.tool_calls[0][1] == "grade");
}

TEST_CASE("Gemini chunks become OpenAI chunks, the usage chunk at the end of the body",
          "[stream]") {
  auto events = lps::mock_stream::render_events(dialect::gemini, gemini_answer, ask(false));
  REQUIRE(events.size() > 3);
  CHECK(events.front().ends_with("\r\n\r\n"));
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    INFO("seed " << seed);
    auto t = lps::make_gemini_stream_translator(options(true));
    auto r = translate(events, *t, seed);
    CHECK(t->complete());
    CHECK(r.id == "chatcmpl-resp123");
    CHECK(r.content == "I'll look that up for you, step by step.");
    CHECK(r.finish_reason == "tool_calls");
    REQUIRE(r.tool_calls.size() == 1);
    CHECK(r.tool_calls[0][0] == "call_0");
    CHECK(r.tool_calls[0][1] == "get_weather");
    CHECK(json::parse(r.tool_calls[0][2]) == json::parse(R"({"city":"Paris"})"));
    CHECK(r.usage == stream_usage{12, 28, 40, 4});
  }
}

TEST_CASE("a stream cut before its end marker is not complete", "[stream]") {
  struct cut_case {
    dialect d;
    const std::string* body;
  };
  for (auto [d, body] :
       {cut_case{dialect::openai, &openai_answer}, cut_case{dialect::anthropic, &anthropic_answer},
        cut_case{dialect::gemini, &gemini_answer}}) {
    auto events = lps::mock_stream::render_events(d, *body, ask(true));
    events.resize(events.size() - 2); // the last two events never arrive
    auto t = d == dialect::openai      ? lps::make_openai_stream_translator(options(true))
             : d == dialect::anthropic ? lps::make_anthropic_stream_translator(options(true))
                                       : lps::make_gemini_stream_translator(options(true));
    auto r = translate(events, *t, 3);
    CHECK(!t->complete());
    CHECK(!t->error());
    CHECK(!r.usage); // no usage chunk for an unfinished answer
  }
}

TEST_CASE("errors inside a stream stop the translation and say what the upstream said",
          "[stream]") {
  std::vector<std::string> chunks;
  auto anthropic = lps::make_anthropic_stream_translator(options(false));
  anthropic->on_event(
      {"error", R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
       ""},
      chunks);
  REQUIRE(anthropic->error());
  CHECK(*anthropic->error() == lps::stream_error{"overloaded_error", "Overloaded"});
  auto openai = lps::make_openai_stream_translator(options(false));
  openai->on_event({"message", R"({"error":{"message":"boom","type":"server_error"}})", ""},
                   chunks);
  CHECK(*openai->error() == lps::stream_error{"server_error", "boom"});
  auto gemini = lps::make_gemini_stream_translator(options(false));
  gemini->on_event(
      {"message", R"({"error":{"code":503,"message":"busy","status":"UNAVAILABLE"}})", ""}, chunks);
  CHECK(*gemini->error() == lps::stream_error{"UNAVAILABLE", "busy"});
  auto garbled = lps::make_anthropic_stream_translator(options(false));
  garbled->on_event({"message_start", "{not json", ""}, chunks);
  CHECK(garbled->error()->type == "bad_stream");
  garbled->on_event({"message_stop", R"({"type":"message_stop"})", ""}, chunks);
  CHECK(!garbled->complete());
  CHECK(chunks.empty());
}

TEST_CASE("Anthropic events out of order are refused, not guessed at", "[stream]") {
  std::vector<std::string> chunks;
  auto t = lps::make_anthropic_stream_translator(options(false));
  t->on_event(
      {"content_block_delta",
       R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}})", ""},
      chunks);
  REQUIRE(t->error());
  CHECK(t->error()->type == "bad_stream");
  CHECK(chunks.empty());
}
