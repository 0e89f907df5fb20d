// The gateway's streaming pieces (runtime/gateway_stream.hpp,
// runtime/stream_translate_completion.hpp): the streamed upstream requests, a whole answer cut
// into chunks, and gateway_stream itself over real loopback sockets: an lps::http_server whose
// handler makes the stream, an lps::http_client reading the client's side piece by piece.

#include "runtime/gateway_request.hpp"
#include "runtime/gateway_stream.hpp"
#include "runtime/http_client.hpp"
#include "runtime/http_server.hpp"
#include "runtime/stream_translate_completion.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

using namespace lps;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

const gateway_target target{"http://127.0.0.1:9/base", "sk-test-key", 1000ms, {}};
const std::string request_body =
    R"({"model":"m","stream":true,"messages":[{"role":"user","content":"Hello there"}]})";

json::object parse(std::string_view text) {
  return json::parse(text).as_object();
}

/// OpenAI stream events of an answer "Hello world" with usage, as a provider sends them.
const std::string openai_events =
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
    "\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello world\"},\"finish_reason\":null}]}"
    "\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up\","
    "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up\","
    "\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}"
    "\n\n"
    "data: [DONE]\n\n";

/// A server whose one route makes a gateway_stream and hands it to the test; with
/// `watch_close` it tells the stream when its client leaves, as the gateway route does.
struct stream_server {
  http_server server;
  std::promise<std::shared_ptr<gateway_stream>> made;

  explicit stream_server(bool watch_close = false) {
    http_server_options o;
    o.host = "127.0.0.1";
    o.port = 0;
    std::string error;
    REQUIRE(server.start(
        o,
        [this, watch_close](http_request&& req, http_responder respond) {
          auto s = std::make_shared<gateway_stream>(
              std::move(respond),
              std::vector<std::pair<std::string, std::string>>{{"x-lps-provider", "openai"}},
              stream_translate_options{"client-model", true, 7, ""});
          s->begin_attempt(gateway_dialect::openai);
          if (watch_close)
            req.close_watch->on_close([s] { s->client_left(); });
          made.set_value(std::move(s));
        },
        error));
  }

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(server.port()) + "/v1/chat/completions";
  }
};

/// The client's side of one call: the pieces as they come, and the final response.
struct client_call {
  std::mutex mutex;
  std::string received; // guarded by mutex
  std::promise<http_client_response> done;
  std::shared_ptr<http_call_cancel> cancel = std::make_shared<http_call_cancel>();

  std::string text() {
    std::lock_guard<std::mutex> lock{mutex};
    return received;
  }
};

void send(http_client& client, const std::string& url, client_call& call) {
  http_client_request r;
  r.url = url;
  r.body = request_body;
  r.timeout = 10000ms;
  r.cancel = call.cancel;
  r.on_body_data = [&call](std::string_view piece) {
    std::lock_guard<std::mutex> lock{call.mutex};
    call.received.append(piece);
  };
  client.send(std::move(r), [&call](http_client_response x) { call.done.set_value(x); });
}

bool eventually(const std::function<bool()>& test) {
  for (int i = 0; i < 500; ++i) {
    if (test())
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

} // namespace

TEST_CASE("the streamed upstream requests ask each provider for a stream", "[gateway_stream]") {
  auto openai =
      gateway_upstream_stream_request(gateway_dialect::openai, target, request_body, "gpt");
  REQUIRE_FALSE(openai.error);
  auto body = parse(openai.request.body);
  CHECK(body.at("stream").as_bool());
  CHECK(body.at("stream_options").at("include_usage").as_bool());
  CHECK(openai.request.url == "http://127.0.0.1:9/base/chat/completions");

  auto anthropic =
      gateway_upstream_stream_request(gateway_dialect::anthropic, target, request_body, "claude");
  REQUIRE_FALSE(anthropic.error);
  auto a = parse(anthropic.request.body);
  CHECK(a.at("stream").as_bool());
  CHECK_FALSE(a.contains("stream_options"));

  auto gemini =
      gateway_upstream_stream_request(gateway_dialect::gemini, target, request_body, "gemini-x");
  REQUIRE_FALSE(gemini.error);
  CHECK(gemini.request.url
        == "http://127.0.0.1:9/base/v1beta/models/gemini-x:streamGenerateContent?alt=sse");
  CHECK_FALSE(parse(gemini.request.body).contains("stream"));

  // The client's own stream fields are replaced, never sent twice (the upstream's fields are
  // appended to the translated body as text).
  auto count = [](const std::string& text, std::string_view key) {
    size_t n = 0;
    for (auto at = text.find(key); at != std::string::npos; at = text.find(key, at + 1))
      ++n;
    return n;
  };
  auto own = gateway_upstream_stream_request(
      gateway_dialect::openai, target,
      R"({"model":"x","stream":true,"stream_options":{"include_usage":false},"messages":[]})",
      "gpt");
  REQUIRE_FALSE(own.error);
  CHECK(count(own.request.body, "\"stream\"") == 1);
  CHECK(count(own.request.body, "\"stream_options\"") == 1);
  auto b = parse(own.request.body);
  CHECK(b.at("stream_options").at("include_usage").as_bool());
  CHECK(b.at("model") == "gpt");
  CHECK(b.at("messages").as_array().empty());
}

TEST_CASE("the client's stream options are read by the route's check", "[gateway_stream]") {
  const std::string user = R"("messages":[{"role":"user","content":"hi"}],"model":"m")";
  auto options_of = [&](const std::string& fields) {
    gateway_request_info info;
    REQUIRE_FALSE(check_gateway_request("{" + fields + "," + user + "}", info));
    return gateway_stream_options(info, "m", 9);
  };
  auto o = options_of(R"("stream":true,"stream_options":{"include_usage":true})");
  CHECK(o.model == "m");
  CHECK(o.created == 9);
  CHECK(o.include_usage);
  CHECK(o.schema_tool.empty());
  CHECK_FALSE(
      options_of(R"("stream":true,"stream_options":{"include_usage":false})").include_usage);
  CHECK_FALSE(options_of(R"("stream":true)").include_usage);
  // A json_schema response_format names Anthropic's forced tool (the check refuses one
  // without a name, as OpenAI does).
  CHECK(
      options_of(
          R"("response_format":{"type":"json_schema","json_schema":{"name":"grade","schema":{}}})")
          .schema_tool
      == "grade");
  CHECK(options_of(R"("response_format":{"type":"json_object"})").schema_tool.empty());
  auto both = options_of(
      R"("stream":true,"stream_options":{"include_usage":true},"response_format":{"type":"json_schema","json_schema":{"name":"grade"}})");
  CHECK(both.include_usage);
  CHECK(both.schema_tool == "grade");
}

TEST_CASE("a streamed body asking for what lps would ask goes to OpenAI as it is",
          "[gateway_stream]") {
  const std::string rest = R"("messages":[{"role":"user","content":"hi"}],"model":"gpt")";
  auto info_of = [&](const std::string& fields) {
    gateway_request_info info;
    REQUIRE_FALSE(check_gateway_request("{" + fields + "," + rest + "}", info));
    return info;
  };
  const std::string usage = R"("stream":true,"stream_options":{"include_usage":true})";
  CHECK(info_of(usage).sendable_as_is);
  // Anything else needs lps's own stream fields instead of the client's.
  CHECK_FALSE(info_of(R"("stream":true)").sendable_as_is);
  CHECK_FALSE(info_of(R"("stream":true,"stream_options":{"include_usage":false})").sendable_as_is);
  CHECK_FALSE(
      info_of(R"("stream":true,"stream_options":{"include_usage":true,"other":1})").sendable_as_is);
  auto body = "{" + usage + "," + rest + "}";
  auto as_is = gateway_upstream_stream_request(gateway_dialect::openai, target, body, "gpt", true);
  REQUIRE_FALSE(as_is.error);
  CHECK(as_is.request.body == body);
  // Anthropic is translated, with its own stream field, whatever `as_is` says.
  auto anthropic =
      gateway_upstream_stream_request(gateway_dialect::anthropic, target, body, "gpt", true);
  REQUIRE_FALSE(anthropic.error);
  CHECK(parse(anthropic.request.body).at("stream").as_bool());
  CHECK_FALSE(parse(anthropic.request.body).contains("stream_options"));
}

TEST_CASE("a whole answer is cut into role, content, finish and usage chunks", "[gateway_stream]") {
  auto answer = gateway_mock_answer(
      R"({"model":"mock/x","messages":[{"role":"user","content":"Tell me about long rivers"}]})",
      "x");
  REQUIRE(answer.status == 200);
  auto text =
      std::string{parse(answer.body).at("choices").at(0).at("message").at("content").as_string()};
  auto whole = chunks_of_completion(answer.body, {"x", true, 5, ""});
  REQUIRE(whole.chunks.size() >= 5);
  std::string joined;
  for (size_t i = 0; i + 2 < whole.chunks.size(); ++i) {
    auto c = parse(whole.chunks[i]);
    CHECK(c.at("object").as_string() == "chat.completion.chunk");
    CHECK(c.at("model").as_string() == "x");
    CHECK(c.at("usage").is_null());
    const auto& delta = c.at("choices").at(0).at("delta").as_object();
    if (i == 0)
      CHECK(delta.at("role").as_string() == "assistant");
    if (auto* content = delta.if_contains("content"))
      joined += content->as_string();
  }
  CHECK(joined == text);
  CHECK(whole.chunks.size() > 4); // the content came in several pieces
  auto finish = parse(whole.chunks[whole.chunks.size() - 2]);
  CHECK(finish.at("choices").at(0).at("finish_reason").as_string() == "stop");
  auto usage = parse(whole.chunks.back());
  CHECK(usage.at("choices").as_array().empty());
  CHECK(usage.at("usage").at("completion_tokens").to_number<uint64_t>()
        == whole.usage.completion_tokens);
  CHECK(whole.usage.prompt_tokens == answer.prompt_tokens);

  CHECK(chunks_of_completion(R"({"error":{}})", {"x", true, 5, ""}).chunks.empty());
  auto no_usage = chunks_of_completion(answer.body, {"x", false, 5, ""});
  CHECK(no_usage.chunks.size() == whole.chunks.size() - 1);
  CHECK_FALSE(parse(no_usage.chunks.front()).contains("usage"));
}

TEST_CASE("gateway_stream writes each chunk as it comes and ends with DONE", "[gateway_stream]") {
  stream_server srv;
  http_client client{http_client_options{}};
  client_call call;
  send(client, srv.url(), call);
  auto made = srv.made.get_future();
  REQUIRE(made.wait_for(5s) == std::future_status::ready);
  auto s = made.get();
  CHECK_FALSE(s->committed()); // nothing sent before the first chunk
  auto first_event_end = openai_events.find("\n\n") + 2;
  s->on_piece(openai_events.substr(0, first_event_end - 5)); // an event cut in the middle
  CHECK_FALSE(s->committed());
  s->on_piece(openai_events.substr(first_event_end - 5, 5));
  CHECK(s->committed());
  REQUIRE(
      eventually([&] { return call.text().find("\"role\":\"assistant\"") != std::string::npos; }));
  CHECK(call.text().find("\"model\":\"client-model\"") != std::string::npos);
  s->on_piece(openai_events.substr(first_event_end));
  auto o = s->end(false, "");
  CHECK(o.committed);
  CHECK(o.complete);
  CHECK(o.usage.prompt_tokens == 5);
  CHECK(o.usage.completion_tokens == 2);
  auto future = call.done.get_future();
  REQUIRE(future.wait_for(5s) == std::future_status::ready);
  auto resp = future.get();
  CHECK(resp.status == 200);
  CHECK(resp.error == transport_error::none);
  auto text = call.text();
  CHECK(text.ends_with("data: [DONE]\n\n"));
  CHECK(text.find("\"usage\":{\"prompt_tokens\":5") != std::string::npos);
}

TEST_CASE("gateway_stream ends a stream cut mid-way with one error event", "[gateway_stream]") {
  stream_server srv;
  http_client client{http_client_options{}};
  client_call call;
  send(client, srv.url(), call);
  auto made = srv.made.get_future();
  REQUIRE(made.wait_for(5s) == std::future_status::ready);
  auto s = made.get();
  s->on_piece(openai_events.substr(0, openai_events.find("\n\n") + 2));
  auto o = s->end(true, "reset: connection reset");
  CHECK(o.committed);
  CHECK_FALSE(o.complete);
  CHECK(o.error_type == "upstream_stream_cut");
  auto future = call.done.get_future();
  REQUIRE(future.wait_for(5s) == std::future_status::ready);
  CHECK(future.get().error == transport_error::none); // the body itself ends cleanly
  auto text = call.text();
  CHECK(text.find("[DONE]") == std::string::npos);
  auto last = text.substr(text.rfind("data: ") + 6);
  auto error = parse(last).at("error").as_object();
  CHECK(error.at("code").as_string() == "upstream_stream_cut");
  CHECK(error.at("type").as_string() == "upstream_error");
}

TEST_CASE("gateway_stream that failed before its first chunk sends nothing", "[gateway_stream]") {
  stream_server srv;
  http_client client{http_client_options{}};
  client_call call;
  send(client, srv.url(), call);
  auto made = srv.made.get_future();
  REQUIRE(made.wait_for(5s) == std::future_status::ready);
  auto s = made.get();
  s->on_piece(": OPENROUTER PROCESSING\n\n");
  auto o = s->end(true, "reset");
  CHECK_FALSE(o.committed);
  CHECK(o.error_type == "upstream_stream_cut");
  // The route answers then (here: the server's own 500 once the responder is dropped).
  s.reset();
  auto future = call.done.get_future();
  REQUIRE(future.wait_for(5s) == std::future_status::ready);
  CHECK(future.get().status == 500);
  CHECK(call.text().empty());
}

TEST_CASE("gateway_stream cancels the upstream call once the client is gone", "[gateway_stream]") {
  stream_server srv;
  http_client client{http_client_options{}};
  client_call call;
  send(client, srv.url(), call);
  auto made = srv.made.get_future();
  REQUIRE(made.wait_for(5s) == std::future_status::ready);
  auto s = made.get();
  auto first_event_end = openai_events.find("\n\n") + 2;
  s->on_piece(openai_events.substr(0, first_event_end));
  REQUIRE(eventually([&] { return !call.text().empty(); }));
  call.cancel->cancel(); // the client closes its connection
  auto future = call.done.get_future();
  REQUIRE(future.wait_for(5s) == std::future_status::ready);
  CHECK(future.get().error == transport_error::cancelled);
  // The next chunk cannot be written: the upstream call's token is cancelled.
  auto second_event_end = openai_events.find("\n\n", first_event_end) + 2;
  CHECK(eventually([&] {
    s->on_piece(openai_events.substr(first_event_end, second_event_end - first_event_end));
    return s->cancel_token()->cancelled();
  }));
  auto o = s->end(true, "cancelled");
  CHECK(o.client_gone);
  CHECK_FALSE(o.complete);
}

TEST_CASE("a client that leaves before the first chunk cancels the upstream call at once",
          "[gateway_stream]") {
  stream_server srv{true};
  http_client client{http_client_options{}};
  client_call call;
  send(client, srv.url(), call);
  auto made = srv.made.get_future();
  REQUIRE(made.wait_for(5s) == std::future_status::ready);
  auto s = made.get();
  auto left = std::chrono::steady_clock::now();
  call.cancel->cancel(); // the client closes its connection; no chunk was written
  REQUIRE(eventually([&] { return s->cancel_token()->cancelled(); }));
  auto took = std::chrono::steady_clock::now() - left;
  INFO("cancelled after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                          << " ms");
  CHECK(took < 100ms);
  // The upstream's answer, when it comes, goes nowhere: no head, no chunk.
  s->on_piece(openai_events);
  auto o = s->end(false, "");
  CHECK(o.client_gone);
  CHECK_FALSE(o.committed);
  CHECK_FALSE(o.complete);
  CHECK(srv.server.wait_open_connections(0, 2s));
}

TEST_CASE("a client that leaves mid-stream cancels the upstream call without a write",
          "[gateway_stream]") {
  stream_server srv{true};
  http_client client{http_client_options{}};
  client_call call;
  send(client, srv.url(), call);
  auto made = srv.made.get_future();
  REQUIRE(made.wait_for(5s) == std::future_status::ready);
  auto s = made.get();
  s->on_piece(openai_events.substr(0, openai_events.find("\n\n") + 2));
  REQUIRE(eventually([&] { return !call.text().empty(); }));
  call.cancel->cancel();
  // No further piece is fed: the close alone cancels the upstream token.
  CHECK(eventually([&] { return s->cancel_token()->cancelled(); }));
  auto o = s->end(true, "cancelled");
  CHECK(o.client_gone);
  CHECK(o.committed);
}
