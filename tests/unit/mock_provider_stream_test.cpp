// The mock provider server's streamed answers over real loopback sockets, read through
// lps::http_client's streaming mode: each dialect's event format, the same answer as the
// non-streamed call (checked through the stream translators, end to end), and the stream
// fault knobs (cut, slow_stream, an error before the first byte).

#include "runtime/http_client.hpp"
#include "runtime/sse_parser.hpp"
#include "runtime/stream_translate_anthropic.hpp"
#include "runtime/stream_translate_gemini.hpp"
#include "runtime/stream_translate_openai.hpp"
#include "tools/mock_provider/mock_provider_server.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

namespace json = boost::json;
using clock_type = std::chrono::steady_clock;
using lps::http_client_request;
using lps::http_client_response;
using lps::sse_event;

json::object schema() {
  json::object props{{"winner", json::object{{"type", "string"}}},
                     {"justification", json::object{{"type", "string"}}},
                     {"confidence", json::object{{"type", "number"}}}};
  return {{"type", "object"},
          {"properties", std::move(props)},
          {"required", json::array{"winner", "justification", "confidence"}}};
}

json::object openai_body(bool stream) {
  json::object format{{"type", "json_schema"},
                      {"json_schema", json::object{{"name", "comparison"}, {"schema", schema()}}}};
  json::object o{{"model", "gpt-4o"},
                 {"messages", json::array{json::object{{"role", "user"},
                                                       {"content", "Compare Essay A and B."}}}},
                 {"response_format", std::move(format)}};
  if (stream) {
    o["stream"] = true;
    o["stream_options"] = json::object{{"include_usage", true}};
  }
  return o;
}

json::object anthropic_body(bool stream) {
  json::array tools{json::object{{"name", "comparison_result"},
                                 {"description", "Record the comparison."},
                                 {"input_schema", schema()}}};
  json::object o{{"model", "claude-sonnet-4-5-20250929"},
                 {"max_tokens", 1024},
                 {"messages", json::array{json::object{
                                  {"role", "user"}, {"content", "Compare Essay A and Essay B."}}}},
                 {"tools", std::move(tools)},
                 {"tool_choice", json::object{{"type", "tool"}, {"name", "comparison_result"}}}};
  if (stream)
    o["stream"] = true;
  return o;
}

json::object gemini_body() {
  return {
      {"contents", json::array{json::object{
                       {"role", "user"},
                       {"parts", json::array{json::object{{"text", "Compare Essay A and B."}}}}}}}};
}

/// What a streamed call delivered.
struct streamed {
  http_client_response last;
  std::vector<std::string> pieces;
  std::vector<clock_type::time_point> arrivals;
  clock_type::time_point ended;

  std::string bytes() const {
    std::string all;
    for (const auto& p : pieces)
      all += p;
    return all;
  }

  std::vector<sse_event> events() const {
    lps::sse_parser parser;
    std::vector<sse_event> out;
    parser.feed(bytes(), out);
    return out;
  }
};

class fixture {
public:
  fixture() {
    lps::mock_provider_options options;
    options.port = 0;
    std::string error;
    REQUIRE(server.start(options, error));
  }

  ~fixture() {
    client.stop();
    server.stop();
  }

  http_client_request request(const std::string& path, const json::object& body) const {
    http_client_request r;
    r.url = "http://127.0.0.1:" + std::to_string(server.port()) + path;
    r.timeout = 10000ms;
    r.body = json::serialize(body);
    r.headers = {{"content-type", "application/json"},
                 {"authorization", "Bearer test-key"},
                 {"x-api-key", "test-key"},
                 {"anthropic-version", "2023-06-01"},
                 {"x-goog-api-key", "test-key"}};
    return r;
  }

  http_client_response call(http_client_request r) {
    std::promise<http_client_response> done;
    auto f = done.get_future();
    client.send(std::move(r), [&done](http_client_response x) { done.set_value(std::move(x)); });
    REQUIRE(f.wait_for(15s) == std::future_status::ready);
    return f.get();
  }

  streamed stream(http_client_request r) {
    auto out = std::make_shared<streamed>();
    auto mutex = std::make_shared<std::mutex>();
    r.on_body_data = [out, mutex](std::string_view piece) {
      std::lock_guard<std::mutex> lock{*mutex};
      out->pieces.emplace_back(piece);
      out->arrivals.push_back(clock_type::now());
    };
    auto last = call(std::move(r));
    std::lock_guard<std::mutex> lock{*mutex};
    out->last = std::move(last);
    out->ended = clock_type::now();
    return *out;
  }

  void script(const std::string& faults) {
    std::string error;
    REQUIRE(server.add_faults(faults, error));
  }

  lps::mock_provider_server server;
  lps::http_client client{lps::http_client_options{}};
};

std::string header_of(const http_client_response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name)
      return v;
  return {};
}

/// Runs `events` through `t`; the concatenated content and tool arguments.
std::pair<std::string, std::string> translated(const std::vector<sse_event>& events,
                                               lps::stream_translator& t) {
  std::vector<std::string> chunks;
  for (const auto& e : events)
    t.on_event(e, chunks);
  t.on_end(chunks);
  std::string content;
  std::string arguments;
  for (const auto& c : chunks) {
    auto o = json::parse(c).as_object();
    if (o.at("choices").as_array().empty())
      continue;
    const auto& delta = o.at("choices").at(0).at("delta").as_object();
    if (const auto* text = delta.if_contains("content"))
      content += text->as_string().c_str();
    if (const auto* calls = delta.if_contains("tool_calls"))
      arguments += calls->at(0).at("function").at("arguments").as_string().c_str();
  }
  return {content, arguments};
}

lps::stream_translate_options client_options() {
  lps::stream_translate_options o;
  o.model = "client-model";
  o.include_usage = true;
  return o;
}

} // namespace

TEST_CASE("an OpenAI stream sends chunks, a usage chunk and DONE, with the non-streamed answer",
          "[mock_stream]") {
  fixture fx;
  auto whole = fx.call(fx.request("/v1/chat/completions", openai_body(false)));
  REQUIRE(whole.status == 200);
  auto answer = json::parse(whole.body).as_object();
  auto s = fx.stream(fx.request("/v1/chat/completions", openai_body(true)));
  REQUIRE(s.last.error == lps::transport_error::none);
  CHECK(s.last.status == 200);
  CHECK(s.last.body.empty());
  CHECK(header_of(s.last, "content-type") == "text/event-stream; charset=utf-8");
  auto events = s.events();
  REQUIRE(events.size() >= 5);
  CHECK(events.back().data == "[DONE]");
  auto first = json::parse(events.front().data).as_object();
  CHECK(first.at("object") == "chat.completion.chunk");
  CHECK(first.at("choices").at(0).at("delta").at("role") == "assistant");
  CHECK(first.at("usage").is_null());
  auto usage = json::parse(events[events.size() - 2].data).as_object();
  CHECK(usage.at("choices").as_array().empty());
  CHECK(usage.at("usage") == answer.at("usage"));
  auto t = lps::make_openai_stream_translator(client_options());
  auto [content, arguments] = translated(events, *t);
  CHECK(content == answer.at("choices").at(0).at("message").at("content").as_string().c_str());
  CHECK(t->complete());
  CHECK(fx.server.stats().by_outcome["ok"] == 2);
}

TEST_CASE("an Anthropic stream sends the Messages events, tool input as input_json_delta",
          "[mock_stream]") {
  fixture fx;
  auto whole = fx.call(fx.request("/v1/messages", anthropic_body(false)));
  REQUIRE(whole.status == 200);
  auto answer = json::parse(whole.body).as_object();
  auto s = fx.stream(fx.request("/v1/messages", anthropic_body(true)));
  REQUIRE(s.last.error == lps::transport_error::none);
  CHECK(header_of(s.last, "request-id").starts_with("req_"));
  auto events = s.events();
  std::vector<std::string> names;
  for (const auto& e : events)
    if (names.empty() || names.back() != e.event)
      names.push_back(e.event);
  CHECK(names
        == std::vector<std::string>{"message_start", "ping", "content_block_start",
                                    "content_block_delta", "content_block_stop", "message_delta",
                                    "message_stop"});
  auto t = lps::make_anthropic_stream_translator(client_options());
  auto [content, arguments] = translated(events, *t);
  CHECK(content.empty());
  CHECK(json::parse(arguments) == answer.at("content").at(0).at("input"));
  REQUIRE(t->usage());
  CHECK(t->usage()->completion_tokens
        == answer.at("usage").at("output_tokens").to_number<uint64_t>());
}

TEST_CASE("a Gemini streamGenerateContent call with alt=sse streams chunks, CRLF-framed",
          "[mock_stream]") {
  fixture fx;
  auto whole =
      fx.call(fx.request("/v1beta/models/gemini-2.5-flash:generateContent", gemini_body()));
  REQUIRE(whole.status == 200);
  auto answer = json::parse(whole.body).as_object();
  auto s = fx.stream(
      fx.request("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", gemini_body()));
  REQUIRE(s.last.error == lps::transport_error::none);
  CHECK(header_of(s.last, "content-type") == "text/event-stream");
  CHECK(s.bytes().ends_with("}\r\n\r\n"));
  auto events = s.events();
  REQUIRE(events.size() >= 2);
  auto last = json::parse(events.back().data).as_object();
  CHECK(last.at("candidates").at(0).at("finishReason") == "STOP");
  CHECK(last.at("usageMetadata") == answer.at("usageMetadata"));
  auto t = lps::make_gemini_stream_translator(client_options());
  auto [content, arguments] = translated(events, *t);
  CHECK(content
        == answer.at("candidates")
               .at(0)
               .at("content")
               .at("parts")
               .at(0)
               .at("text")
               .as_string()
               .c_str());
  CHECK(t->complete());
  // Without alt=sse Gemini answers the same chunks as one JSON array.
  auto array =
      fx.call(fx.request("/v1beta/models/gemini-2.5-flash:streamGenerateContent", gemini_body()));
  REQUIRE(array.status == 200);
  auto chunks = json::parse(array.body).as_array();
  CHECK(chunks.size() == events.size());
}

TEST_CASE("a cut fault closes the stream after the given events, without its end",
          "[mock_stream]") {
  fixture fx;
  fx.script(R"({"faults":[{"kind":"cut","after":2}]})");
  auto s = fx.stream(fx.request("/v1/messages", anthropic_body(true)));
  CHECK(s.last.error == lps::transport_error::reset);
  auto events = s.events();
  REQUIRE(events.size() == 2);
  CHECK(events[0].event == "message_start");
  CHECK(events[1].event == "ping");
  CHECK(fx.server.stats().by_outcome["cut"] == 1);
  // Without "after" the stream stops half way.
  fx.script(R"({"faults":[{"kind":"cut"}]})");
  auto half = fx.stream(fx.request("/v1/chat/completions", openai_body(true)));
  CHECK(half.last.error == lps::transport_error::reset);
  auto full = fx.stream(fx.request("/v1/chat/completions", openai_body(true)));
  CHECK(half.events().size() == full.events().size() / 2);
  CHECK(full.events().back().data == "[DONE]");
}

TEST_CASE("a slow_stream fault spaces the events out, and they arrive as they are sent",
          "[mock_stream]") {
  fixture fx;
  fx.script(R"({"faults":[{"kind":"slow_stream","ms":40}]})");
  auto started = clock_type::now();
  auto s = fx.stream(fx.request("/v1/chat/completions", openai_body(true)));
  REQUIRE(s.last.error == lps::transport_error::none);
  auto n = s.events().size();
  REQUIRE(n >= 5);
  CHECK(s.ended - started >= (n - 1) * 40ms);
  REQUIRE(s.arrivals.size() >= 2);
  // The first event was in the client's hands long before the last was sent.
  CHECK(s.ended - s.arrivals.front() >= (n - 2) * 40ms);
}

TEST_CASE("an error before the first byte is a plain error answer, never a stream",
          "[mock_stream]") {
  fixture fx;
  fx.script(R"({"faults":[{"kind":"status","status":429,"retry_after":3},{"kind":"overloaded"}]})");
  auto limited = fx.stream(fx.request("/v1/chat/completions", openai_body(true)));
  CHECK(limited.last.status == 429);
  CHECK(limited.pieces.empty());
  CHECK(header_of(limited.last, "retry-after") == "3");
  CHECK(json::parse(limited.last.body).at("error").at("type") == "requests");
  auto overloaded = fx.stream(fx.request("/v1/messages", anthropic_body(true)));
  CHECK(overloaded.last.status == 529);
  CHECK(overloaded.pieces.empty());
  CHECK(json::parse(overloaded.last.body).at("error").at("type") == "overloaded_error");
}

TEST_CASE("stream faults with bad fields are refused", "[mock_stream]") {
  fixture fx;
  std::string error;
  CHECK(!fx.server.add_faults(R"({"faults":[{"kind":"slow_stream"}]})", error));
  CHECK(error == "a slow_stream fault needs ms in 0..60000");
  CHECK(!fx.server.add_faults(R"({"faults":[{"kind":"cut","after":-1}]})", error));
  CHECK(error == "a cut fault's after must be an integer in 0..100000");
}
