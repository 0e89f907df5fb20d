// lps::http_client's streaming mode (http_client_request::on_body_data) and cancellation
// (http_call_cancel), over real loopback sockets: against the mock provider server for real
// provider streams, and against an lps::http_server whose streams the test writes by hand,
// so it can see when the client closes a connection.

#include "runtime/http_client.hpp"
#include "runtime/http_server.hpp"
#include "tools/mock_provider/mock_provider_server.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;
using lps::http_call_cancel;
using lps::http_client_request;
using lps::http_client_response;
using lps::transport_error;

/// A server whose every answer is a stream the test writes to; counts requests.
struct hand_server {
  lps::http_server server;
  std::mutex mutex;
  std::vector<std::shared_ptr<lps::http_body_stream>> streams; // guarded by mutex
  std::atomic<int> requests{0};

  hand_server() {
    lps::http_server_options o;
    o.host = "127.0.0.1";
    o.port = 0;
    std::string error;
    REQUIRE(server.start(
        o,
        [this](lps::http_request&&, lps::http_responder respond) {
          ++requests;
          lps::http_response r{200, "", "text/event-stream", {}};
          r.stream = [this](std::shared_ptr<lps::http_body_stream> s) {
            s->write("data: first\n\n");
            std::lock_guard<std::mutex> lock{mutex};
            streams.push_back(std::move(s));
          };
          respond(std::move(r));
        },
        error));
  }

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(server.port()) + "/stream";
  }
};

/// One call in flight: its pieces and its final response.
struct pending_call {
  std::shared_ptr<std::promise<http_client_response>> done =
      std::make_shared<std::promise<http_client_response>>();
  std::future<http_client_response> result = done->get_future();
  std::shared_ptr<std::promise<void>> first_piece = std::make_shared<std::promise<void>>();
  std::shared_ptr<http_call_cancel> cancel = std::make_shared<http_call_cancel>();
};

pending_call start(lps::http_client& client, const std::string& url) {
  pending_call c;
  http_client_request r;
  r.method = "GET";
  r.url = url;
  r.timeout = 20000ms;
  r.cancel = c.cancel;
  auto once = std::make_shared<std::once_flag>();
  r.on_body_data = [first = c.first_piece, once](std::string_view) {
    std::call_once(*once, [&] { first->set_value(); });
  };
  client.send(std::move(r), [done = c.done](http_client_response x) { done->set_value(x); });
  return c;
}

http_client_response wait(pending_call& c, std::chrono::milliseconds limit = 5000ms) {
  REQUIRE(c.result.wait_for(limit) == std::future_status::ready);
  return c.result.get();
}

http_client_request mock_stream_request(uint16_t port) {
  http_client_request r;
  r.url = "http://127.0.0.1:" + std::to_string(port) + "/v1/chat/completions";
  r.timeout = 10000ms;
  r.headers = {{"authorization", "Bearer test-key"}, {"content-type", "application/json"}};
  r.body = R"({"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Hi there"}]})";
  return r;
}

struct mock_fixture {
  lps::mock_provider_server mock;
  lps::http_client client{lps::http_client_options{}};

  mock_fixture() {
    lps::mock_provider_options o;
    o.port = 0;
    std::string error;
    REQUIRE(mock.start(o, error));
  }

  ~mock_fixture() {
    client.stop();
    mock.stop();
  }
};

} // namespace

TEST_CASE("a streamed body arrives piece by piece, the final callback has status and headers",
          "[http_client_stream]") {
  mock_fixture fx;
  std::string error;
  REQUIRE(fx.mock.add_faults(R"({"faults":[{"kind":"slow_stream","ms":60}]})", error));
  auto pieces = std::make_shared<std::vector<std::pair<std::string, clock_type::time_point>>>();
  auto mutex = std::make_shared<std::mutex>();
  auto r = mock_stream_request(fx.mock.port());
  r.on_body_data = [pieces, mutex](std::string_view p) {
    std::lock_guard<std::mutex> lock{*mutex};
    pieces->emplace_back(std::string(p), clock_type::now());
  };
  std::promise<http_client_response> done;
  fx.client.send(std::move(r), [&done](http_client_response x) { done.set_value(x); });
  auto f = done.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  auto ended = clock_type::now();
  auto last = f.get();
  REQUIRE(last.error == transport_error::none);
  CHECK(last.status == 200);
  CHECK(last.body.empty());
  std::lock_guard<std::mutex> lock{*mutex};
  REQUIRE(pieces->size() >= 3);
  std::string all;
  for (const auto& [p, at] : *pieces)
    all += p;
  // The same bytes the whole-body API collects from the same answer.
  auto whole_request = mock_stream_request(fx.mock.port());
  std::promise<http_client_response> whole;
  fx.client.send(std::move(whole_request),
                 [&whole](http_client_response x) { whole.set_value(x); });
  auto wf = whole.get_future();
  REQUIRE(wf.wait_for(10s) == std::future_status::ready);
  auto collected = wf.get().body;
  CHECK(all.starts_with("data: {\"id\":\"chatcmpl-"));
  CHECK(all.ends_with("data: [DONE]\n\n"));
  CHECK(collected.ends_with("data: [DONE]\n\n"));
  CHECK(all.size() == collected.size()); // ids differ, lengths do not
  CHECK(ended - pieces->front().second >= 100ms);
}

TEST_CASE("an error answer to a streamed call is collected whole, not streamed",
          "[http_client_stream]") {
  mock_fixture fx;
  std::string error;
  REQUIRE(fx.mock.add_faults(R"({"faults":[{"kind":"status","status":500}]})", error));
  auto r = mock_stream_request(fx.mock.port());
  auto called = std::make_shared<std::atomic<int>>(0);
  r.on_body_data = [called](std::string_view) { ++*called; };
  std::promise<http_client_response> done;
  fx.client.send(std::move(r), [&done](http_client_response x) { done.set_value(x); });
  auto f = done.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  auto last = f.get();
  CHECK(last.status == 500);
  CHECK(last.body.find("\"server_error\"") != std::string::npos);
  CHECK(called->load() == 0);
}

TEST_CASE("a stream cut by the server ends the call with a reset after what arrived",
          "[http_client_stream]") {
  mock_fixture fx;
  std::string error;
  REQUIRE(fx.mock.add_faults(R"({"faults":[{"kind":"cut","after":3}]})", error));
  auto r = mock_stream_request(fx.mock.port());
  auto got = std::make_shared<std::string>();
  r.on_body_data = [got](std::string_view p) { got->append(p); };
  std::promise<http_client_response> done;
  fx.client.send(std::move(r), [&done](http_client_response x) { done.set_value(x); });
  auto f = done.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  auto last = f.get();
  CHECK(last.error == transport_error::reset);
  CHECK(last.error_message.find("reading the response") != std::string::npos);
  size_t events = 0;
  for (size_t at = got->find("\n\n"); at != std::string::npos; at = got->find("\n\n", at + 2))
    ++events;
  CHECK(events == 3);
}

TEST_CASE("cancelling mid-stream ends the call as cancelled and closes its connection",
          "[http_client_stream]") {
  hand_server hs;
  lps::http_client client{lps::http_client_options{}};
  auto c = start(client, hs.url());
  REQUIRE(c.first_piece->get_future().wait_for(5s) == std::future_status::ready);
  REQUIRE(hs.server.open_connections() == 1);
  auto asked = clock_type::now();
  c.cancel->cancel();
  auto last = wait(c);
  CHECK(clock_type::now() - asked < 1s);
  CHECK(last.error == transport_error::cancelled);
  CHECK(last.error_message == "cancelled by the caller");
  // The server sees the client go away: the connection was closed, not pooled.
  CHECK(hs.server.wait_open_connections(0, 5000ms));
  // The origin still works, on a new connection.
  auto next = start(client, hs.url());
  REQUIRE(next.first_piece->get_future().wait_for(5s) == std::future_status::ready);
  CHECK(hs.requests.load() == 2);
  next.cancel->cancel();
  CHECK(wait(next).error == transport_error::cancelled);
  client.stop();
}

TEST_CASE("cancelling a call queued for a connection takes it off the queue",
          "[http_client_stream]") {
  hand_server hs;
  lps::http_client_options o;
  o.max_connections_per_origin = 1;
  lps::http_client client{o};
  auto running = start(client, hs.url());
  REQUIRE(running.first_piece->get_future().wait_for(5s) == std::future_status::ready);
  auto queued = start(client, hs.url());
  queued.cancel->cancel();
  CHECK(wait(queued).error == transport_error::cancelled);
  CHECK(hs.requests.load() == 1); // it never reached the server
  CHECK(running.result.wait_for(100ms) == std::future_status::timeout); // still streaming
  running.cancel->cancel();
  CHECK(wait(running).error == transport_error::cancelled);
  client.stop();
}

TEST_CASE("a call cancelled before it is sent never reaches the server, and cancel is idempotent",
          "[http_client_stream]") {
  hand_server hs;
  lps::http_client client{lps::http_client_options{}};
  pending_call c;
  c.cancel->cancel();
  c.cancel->cancel();
  http_client_request r;
  r.method = "GET";
  r.url = hs.url();
  r.cancel = c.cancel;
  client.send(std::move(r), [done = c.done](http_client_response x) { done->set_value(x); });
  CHECK(wait(c).error == transport_error::cancelled);
  CHECK(hs.requests.load() == 0);
  CHECK(c.cancel->cancelled());
  client.stop();
}

TEST_CASE("cancelling after the call completed changes nothing", "[http_client_stream]") {
  mock_fixture fx;
  auto cancel = std::make_shared<http_call_cancel>();
  auto r = mock_stream_request(fx.mock.port());
  r.cancel = cancel;
  std::promise<http_client_response> done;
  fx.client.send(std::move(r), [&done](http_client_response x) { done.set_value(x); });
  auto f = done.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  auto last = f.get();
  cancel->cancel();
  CHECK(last.error == transport_error::none);
  CHECK(last.status == 200);
  CHECK(last.body.ends_with("data: [DONE]\n\n"));
}
