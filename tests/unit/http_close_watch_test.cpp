// http_close_watch (runtime/http_server.hpp): a handler learns at once that its client left,
// while it still holds the request and while it streams the answer, over real loopback sockets
// (raw POSIX clients that close when they like). A pipelined next request is not a close.

#include "fixtures/raw_socket.hpp"
#include "runtime/http_server.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using lps::http_body_stream;
using lps::http_request;
using lps::http_responder;
using lps::http_response;
using lps::http_server;
using lps::test::raw_socket;

namespace {

const std::string get_a = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
const std::string get_b = "GET /b HTTP/1.1\r\nHost: x\r\n\r\n";

/// A server whose handler watches every request to /a for a close and keeps its responder
/// (the test answers it); /b is answered at once.
struct watching_server {
  http_server server;
  std::mutex mutex;
  http_responder held;                       // guarded by mutex
  std::promise<clock_type::time_point> left; // set by the close watch
  std::promise<void> dispatched;             // /a reached the handler

  watching_server() {
    lps::http_server_options o;
    o.host = "127.0.0.1";
    o.port = 0;
    std::string error;
    REQUIRE(server.start(
        o,
        [this](http_request&& req, http_responder respond) {
          if (req.path == "/b")
            return respond({200, "b", "text/plain", {}});
          REQUIRE(req.close_watch);
          req.close_watch->on_close([this] { left.set_value(clock_type::now()); });
          std::lock_guard<std::mutex> lock{mutex};
          held = std::move(respond);
          dispatched.set_value();
        },
        error));
  }

  void answer(http_response r) {
    http_responder respond;
    {
      std::lock_guard<std::mutex> lock{mutex};
      respond = std::move(held);
    }
    REQUIRE(respond);
    respond(std::move(r));
  }
};

} // namespace

TEST_CASE("a watched request whose client closes is told at once and its answer dropped",
          "[http_close_watch]") {
  watching_server srv;
  auto left = srv.left.get_future();
  clock_type::time_point closed_at;
  {
    raw_socket client{srv.server.port()};
    client.write(get_a);
    REQUIRE(srv.dispatched.get_future().wait_for(5s) == std::future_status::ready);
    closed_at = clock_type::now();
  } // the client closes while the handler holds its request
  REQUIRE(left.wait_for(5s) == std::future_status::ready);
  auto took = left.get() - closed_at;
  INFO("the close was seen after "
       << std::chrono::duration_cast<std::chrono::microseconds>(took).count() << " us");
  CHECK(took < 100ms);
  // The connection is freed although the handler still holds the responder.
  CHECK(srv.server.wait_open_connections(0, 2s));
  srv.answer({200, "late", "text/plain", {}}); // nowhere to go: nothing happens
  CHECK(srv.server.open_connections() == 0);
}

TEST_CASE("a pipelined next request is not taken for a close", "[http_close_watch]") {
  watching_server srv;
  raw_socket client{srv.server.port()};
  client.write(get_a + get_b); // both at once: /b arrives while /a is watched
  REQUIRE(srv.dispatched.get_future().wait_for(5s) == std::future_status::ready);
  auto left = srv.left.get_future();
  CHECK(left.wait_for(300ms) == std::future_status::timeout);
  srv.answer({200, "a", "text/plain", {}});
  auto both = client.read_responses(2, 5s);
  CHECK(raw_socket::complete_responses(both) == 2);
  auto a = both.find("\r\n\r\na");
  auto b = both.find("\r\n\r\nb");
  CHECK(a != std::string::npos);
  CHECK(b != std::string::npos);
  CHECK(a < b); // answered in order on the kept-alive connection
  CHECK(left.wait_for(0ms) == std::future_status::timeout);
}

TEST_CASE("a streamed answer's client that closes is told before the next write",
          "[http_close_watch]") {
  watching_server srv;
  std::promise<std::shared_ptr<http_body_stream>> opened;
  auto left = srv.left.get_future();
  clock_type::time_point closed_at;
  {
    raw_socket client{srv.server.port()};
    client.write(get_a);
    REQUIRE(srv.dispatched.get_future().wait_for(5s) == std::future_status::ready);
    http_response r{200, "", "text/event-stream", {}};
    r.stream = [&opened](std::shared_ptr<http_body_stream> out) { opened.set_value(out); };
    srv.answer(std::move(r));
    auto out = opened.get_future().get();
    REQUIRE(out->write("data: 1\n\n"));
    auto got = client.read_until_ends_with("data: 1\n\n\r\n", 5s);
    REQUIRE(got.ends_with("data: 1\n\n\r\n"));
    CHECK(left.wait_for(0ms) == std::future_status::timeout); // streaming is not leaving
    closed_at = clock_type::now();
  } // the client leaves mid-stream; the handler writes nothing more
  REQUIRE(left.wait_for(5s) == std::future_status::ready);
  CHECK(left.get() - closed_at < 100ms);
  CHECK(srv.server.wait_open_connections(0, 2s));
}

TEST_CASE("a stream the handler ends itself is no close", "[http_close_watch]") {
  watching_server srv;
  raw_socket client{srv.server.port()};
  client.write(get_a);
  REQUIRE(srv.dispatched.get_future().wait_for(5s) == std::future_status::ready);
  http_response r{200, "", "text/event-stream", {}};
  r.stream = [](std::shared_ptr<http_body_stream> out) {
    out->write("data: 1\n\n");
    out->finish();
  };
  srv.answer(std::move(r));
  bool closed = false;
  auto got = client.read_until_closed(5s, closed);
  CHECK(closed);
  CHECK(got.ends_with("0\r\n\r\n"));
  CHECK(srv.left.get_future().wait_for(200ms) == std::future_status::timeout);
}

TEST_CASE("a watch subscribed after the client left is called at once", "[http_close_watch]") {
  // Watch, leave, then a second subscriber on the same (fired) watch is called at once.
  std::shared_ptr<lps::http_close_watch> watch;
  http_server other;
  std::promise<void> seen;
  lps::http_server_options o;
  o.host = "127.0.0.1";
  o.port = 0;
  std::string error;
  std::promise<http_responder> kept;
  REQUIRE(other.start(
      o,
      [&](http_request&& req, http_responder respond) {
        watch = req.close_watch;
        watch->on_close([&seen] { seen.set_value(); });
        kept.set_value(std::move(respond));
      },
      error));
  auto responder = kept.get_future();
  {
    raw_socket client{other.port()};
    client.write(get_a);
    REQUIRE(responder.wait_for(5s) == std::future_status::ready);
  }
  REQUIRE(seen.get_future().wait_for(5s) == std::future_status::ready);
  bool again = false;
  watch->on_close([&again] { again = true; });
  CHECK(again);
}
