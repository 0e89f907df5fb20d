// The Beast server and client against each other, plus raw POSIX sockets for what a well-
// behaved client never does (garbage, stalls, pipelining). Everything binds 127.0.0.1:0.

#include "fixtures/raw_socket.hpp"
#include "runtime/http_client.hpp"
#include "runtime/http_server.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

using lps::http_body_stream;
using lps::http_client;
using lps::http_client_options;
using lps::http_client_request;
using lps::http_client_response;
using lps::http_request;
using lps::http_responder;
using lps::http_response;
using lps::http_server;
using lps::http_server_options;
using lps::transport_error;

http_server_options local_options() {
  http_server_options o;
  o.host = "127.0.0.1";
  o.port = 0;
  return o;
}

void start(http_server& server, http_server_options options, lps::http_handler handler) {
  std::string error;
  REQUIRE(server.start(options, std::move(handler), error));
  REQUIRE(server.port() != 0);
}

std::string url_of(const http_server& server, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(server.port()) + path;
}

std::chrono::milliseconds since(clock_type::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0);
}

/// Sends one request and waits (bounded) for its callback.
http_client_response call(http_client& client, http_client_request request,
                          std::chrono::seconds limit = 10s) {
  auto promise = std::make_shared<std::promise<http_client_response>>();
  auto future = promise->get_future();
  client.send(std::move(request),
              [promise](http_client_response r) { promise->set_value(std::move(r)); });
  REQUIRE(future.wait_for(limit) == std::future_status::ready);
  return future.get();
}

http_client_request get(const std::string& url) {
  http_client_request r;
  r.method = "GET";
  r.url = url;
  r.timeout = 5000ms;
  return r;
}

std::string header_of(const std::vector<std::pair<std::string, std::string>>& headers,
                      const std::string& name) {
  for (const auto& [n, v] : headers)
    if (n == name)
      return v;
  return "<none>";
}

/// Counts down; wait() is bounded.
class countdown {
public:
  explicit countdown(size_t n) : left_(n) {}
  void hit() {
    std::lock_guard<std::mutex> lock{mutex_};
    if (left_ > 0 && --left_ == 0)
      done_.notify_all();
  }
  bool wait(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock{mutex_};
    return done_.wait_for(lock, limit, [this] { return left_ == 0; });
  }

private:
  std::mutex mutex_;
  std::condition_variable done_;
  size_t left_;
};

/// Keeps responders the test answers (or drops) later.
struct parked_responders {
  std::mutex mutex;
  std::condition_variable arrived;
  std::vector<http_responder> list;

  lps::http_handler handler() {
    return [this](http_request&&, http_responder r) {
      std::lock_guard<std::mutex> lock{mutex};
      list.push_back(std::move(r));
      arrived.notify_all();
    };
  }
  bool wait_for(size_t n, std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock{mutex};
    return arrived.wait_for(lock, limit, [&] { return list.size() >= n; });
  }
  std::vector<http_responder> take() {
    std::lock_guard<std::mutex> lock{mutex};
    return std::move(list);
  }
};

using lps::test::raw_socket;

/// A port nothing listens on (bound, then released).
uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

void echo(http_request&& req, http_responder respond) {
  http_response r;
  r.status = 201;
  r.content_type = "text/plain";
  r.body = req.method + " " + req.path + " q=" + req.query + " ct=" + req.content_type
           + " x=" + header_of(req.headers, "x-custom") + " body=" + req.body;
  r.headers.emplace_back("X-Reply", "yes");
  respond(std::move(r));
}

} // namespace

TEST_CASE("http round trip carries method path query body and headers", "[http]") {
  http_server server;
  start(server, local_options(), echo);
  http_client client{{}};

  http_client_request req;
  req.method = "PUT";
  req.url = url_of(server, "/api/v1/things?a=1&b=2");
  req.headers = {{"Content-Type", "application/json"}, {"X-Custom", "hello"}};
  req.body = R"({"k":"v"})";
  auto r = call(client, req);
  REQUIRE(r.error == transport_error::none);
  CHECK(r.status == 201);
  CHECK(r.body == R"(PUT /api/v1/things q=a=1&b=2 ct=application/json x=hello body={"k":"v"})");
  CHECK(header_of(r.headers, "x-reply") == "yes");
  CHECK(header_of(r.headers, "content-type") == "text/plain");
  CHECK(header_of(r.headers, "server") == "lps");

  auto plain = call(client, get(url_of(server, "/just/path")));
  CHECK(plain.status == 201);
  CHECK(plain.body == "GET /just/path q= ct= x=<none> body=");
}

TEST_CASE("http server sees lower-cased request header names", "[http]") {
  std::promise<http_request> seen;
  http_server server;
  start(server, local_options(), [&](http_request&& req, http_responder respond) {
    seen.set_value(req);
    respond({});
  });
  http_client client{{}};
  auto req = get(url_of(server, "/"));
  req.headers = {{"X-Mixed-Case", "Value"}};
  CHECK(call(client, req).status == 200);
  auto got = seen.get_future().get();
  CHECK(header_of(got.headers, "x-mixed-case") == "Value");
  CHECK(header_of(got.headers, "user-agent") == "lps/0.1");
  CHECK(header_of(got.headers, "host") == "127.0.0.1:" + std::to_string(server.port()));
}

TEST_CASE("http responder works when called later from another thread", "[http]") {
  std::mutex mutex;
  std::vector<std::thread> workers;
  http_server server;
  start(server, local_options(), [&](http_request&& req, http_responder respond) {
    std::lock_guard<std::mutex> lock{mutex};
    workers.emplace_back([respond, body = req.body] {
      http_response r;
      r.body = "later:" + body;
      respond(std::move(r));
    });
  });
  http_client client{{}};
  for (int i = 0; i < 20; ++i) {
    auto req = get(url_of(server, "/"));
    req.method = "POST";
    req.body = std::to_string(i);
    auto r = call(client, req);
    CHECK(r.status == 200);
    CHECK(r.body == "later:" + std::to_string(i));
  }
  std::lock_guard<std::mutex> lock{mutex};
  for (auto& t : workers)
    t.join();
}

TEST_CASE("http server answers 413 for a body over the limit", "[http]") {
  std::atomic<int> calls{0};
  auto options = local_options();
  options.max_body_bytes = 1 << 20;
  http_server server;
  start(server, options, [&](http_request&&, http_responder respond) {
    ++calls;
    respond({});
  });
  http_client client{{}};
  auto req = get(url_of(server, "/big"));
  req.method = "POST";
  req.body.assign(2 << 20, 'x');
  auto r = call(client, req);
  REQUIRE(r.error == transport_error::none);
  CHECK(r.status == 413);
  CHECK(header_of(r.headers, "content-type") == "application/json");
  CHECK(r.body
        == R"({"error":{"code":"PAYLOAD_TOO_LARGE","message":"request body exceeds )"
           R"(1048576 bytes","correlation_id":null,"details":{}}})");
  CHECK(calls == 0);
  // Still serving.
  CHECK(call(client, get(url_of(server, "/"))).status == 200);
}

TEST_CASE("http server refuses an oversized Content-Length before the body arrives", "[http]") {
  auto options = local_options();
  options.max_body_bytes = 1000;
  http_server server;
  start(server, options, [](http_request&&, http_responder respond) { respond({}); });
  raw_socket raw{server.port()};
  raw.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n");
  auto t0 = clock_type::now();
  auto text = raw.read_responses(1, 2000ms);
  CHECK(since(t0) < 1000ms);
  CHECK(text.rfind("HTTP/1.1 413", 0) == 0);
  CHECK(text.find("PAYLOAD_TOO_LARGE") != std::string::npos);
  CHECK(text.find("Connection: close") != std::string::npos);
}

TEST_CASE("http server answers 431 for a header block over the limit", "[http]") {
  auto options = local_options();
  options.max_header_bytes = 4096;
  http_server server;
  start(server, options, [](http_request&&, http_responder respond) { respond({}); });
  raw_socket raw{server.port()};
  raw.write("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
  auto text = raw.read_responses(1, 2000ms);
  CHECK(text.rfind("HTTP/1.1 431", 0) == 0);
  CHECK(text.find("Content-Type: application/json") != std::string::npos);
  CHECK(text.find(R"("code":"REQUEST_HEADER_FIELDS_TOO_LARGE")") != std::string::npos);
}

TEST_CASE("http server answers 400 to garbage and keeps serving", "[http]") {
  std::atomic<int> calls{0};
  http_server server;
  start(server, local_options(), [&](http_request&&, http_responder respond) {
    ++calls;
    respond({});
  });
  {
    raw_socket raw{server.port()};
    raw.write("THIS IS NOT HTTP AT ALL\r\n\r\n");
    bool closed = false;
    auto text = raw.read_until_closed(2000ms, closed);
    CHECK(closed);
    CHECK(text.rfind("HTTP/1.1 400", 0) == 0);
    CHECK(text.find(R"({"error":{"code":"INVALID_REQUEST","message":")") != std::string::npos);
    CHECK(text.find(R"("correlation_id":null,"details":{}}})") != std::string::npos);
  }
  {
    raw_socket raw{server.port()};
    raw.write(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
    bool closed = false;
    raw.read_until_closed(2000ms, closed);
    CHECK(closed);
  }
  CHECK(calls == 0);
  http_client client{{}};
  CHECK(call(client, get(url_of(server, "/"))).status == 200);
}

TEST_CASE("http server closes a stalled request after read_timeout", "[http]") {
  auto options = local_options();
  options.read_timeout = 200ms;
  std::atomic<int> calls{0};
  http_server server;
  start(server, options, [&](http_request&&, http_responder respond) {
    ++calls;
    respond({});
  });
  raw_socket slow{server.port()};
  slow.write("POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf");
  auto t0 = clock_type::now();
  bool closed = false;
  auto text = slow.read_until_closed(3000ms, closed);
  auto waited = since(t0);
  CHECK(closed);
  CHECK(text.empty());
  CHECK(waited >= 150ms);
  CHECK(waited < 1000ms);
  CHECK(calls == 0);

  http_client client{{}};
  CHECK(call(client, get(url_of(server, "/"))).status == 200);
}

TEST_CASE("http server closes idle keep-alive connections after idle_timeout", "[http]") {
  auto options = local_options();
  options.idle_timeout = 200ms;
  http_server server;
  start(server, options, [](http_request&&, http_responder respond) { respond({}); });
  raw_socket raw{server.port()};
  raw.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(raw_socket::complete_responses(raw.read_responses(1, 2000ms)) == 1);
  auto t0 = clock_type::now();
  bool closed = false;
  raw.read_until_closed(3000ms, closed);
  CHECK(closed);
  CHECK(since(t0) >= 150ms);
  CHECK(since(t0) < 1000ms);
}

TEST_CASE("http server handles HTTP/1.0 and pipelined requests", "[http]") {
  http_server server;
  start(server, local_options(), echo);
  {
    raw_socket raw{server.port()};
    raw.write("GET /old HTTP/1.0\r\n\r\n");
    bool closed = false;
    auto text = raw.read_until_closed(2000ms, closed);
    CHECK(closed);
    CHECK(text.rfind("HTTP/1.0 201", 0) == 0);
    CHECK(text.find("GET /old") != std::string::npos);
  }
  {
    raw_socket raw{server.port()};
    raw.write("GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\n"
              "Content-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\nHost: x\r\n\r\n");
    auto text = raw.read_responses(3, 2000ms);
    REQUIRE(raw_socket::complete_responses(text) == 3);
    auto a = text.find("GET /a");
    auto b = text.find("POST /b q= ct= x=<none> body=hi");
    auto c = text.find("GET /c");
    CHECK(a < b);
    CHECK(b < c);
    CHECK(c != std::string::npos);
  }
}

TEST_CASE("http server answers Expect 100-continue before reading the body", "[http]") {
  http_server server;
  start(server, local_options(), echo);
  raw_socket raw{server.port()};
  raw.write("POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  auto interim = raw.read_responses(1, 2000ms);
  CHECK(interim == "HTTP/1.1 100 Continue\r\n\r\n");
  raw.write("hello");
  auto text = raw.read_responses(1, 2000ms);
  CHECK(text.rfind("HTTP/1.1 201", 0) == 0);
  CHECK(text.find("POST /e q= ct= x=<none> body=hello") != std::string::npos);
}

TEST_CASE("http server closes connections beyond max_connections", "[http]") {
  auto options = local_options();
  options.max_connections = 1;
  http_server server;
  start(server, options, [](http_request&&, http_responder respond) { respond({}); });
  raw_socket first{server.port()};
  // An answer proves the server has accepted (and counts) the first connection.
  first.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(raw_socket::complete_responses(first.read_responses(1, 2000ms)) == 1);
  REQUIRE(server.open_connections() == 1);
  raw_socket second{server.port()};
  bool closed = false;
  CHECK(second.read_until_closed(2000ms, closed).empty());
  CHECK(closed);
  first.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(raw_socket::complete_responses(first.read_responses(1, 2000ms)) == 1);
}

TEST_CASE("http server answers 500 when a responder is dropped or the handler throws", "[http]") {
  http_server server;
  start(server, local_options(), [](http_request&& req, http_responder) {
    if (req.path == "/throw")
      throw std::runtime_error("boom");
  });
  http_client client{{}};
  for (auto path : {"/drop", "/throw"}) {
    auto r = call(client, get(url_of(server, path)));
    CHECK(r.status == 500);
    CHECK(r.body.find(R"("code":"INTERNAL_ERROR")") != std::string::npos);
  }
}

TEST_CASE("http client reuses keep-alive connections", "[http]") {
  auto options = local_options();
  // A second connection would be refused, so a client that does not reuse fails here.
  options.max_connections = 1;
  http_server server;
  std::atomic<size_t> most_open{0};
  start(server, options, [&](http_request&&, http_responder respond) {
    most_open = std::max(most_open.load(), server.open_connections());
    respond({});
  });
  http_client client{{}};
  for (int i = 0; i < 200; ++i) {
    auto r = call(client, get(url_of(server, "/n")));
    REQUIRE(r.error == transport_error::none);
    REQUIRE(r.status == 200);
  }
  CHECK(most_open == 1);
  CHECK(server.open_connections() == 1);
}

TEST_CASE("http HEAD and 204 answers carry no body", "[http]") {
  http_server server;
  start(server, local_options(), [](http_request&& req, http_responder respond) {
    http_response r;
    r.status = req.path == "/empty" ? 204 : 200;
    r.body = "twelve bytes";
    respond(std::move(r));
  });
  http_client client{{}};
  auto head = get(url_of(server, "/h"));
  head.method = "HEAD";
  auto r = call(client, head);
  CHECK(r.status == 200);
  CHECK(r.body.empty());
  CHECK(header_of(r.headers, "content-length") == "12");
  r = call(client, get(url_of(server, "/empty")));
  CHECK(r.status == 204);
  CHECK(r.body.empty());
  CHECK(header_of(r.headers, "content-length") == "<none>");
  r = call(client, get(url_of(server, "/full")));
  CHECK(r.body == "twelve bytes");
  CHECK(server.open_connections() == 1);
}

TEST_CASE("http client completes 2000 concurrent requests over 8 connections", "[http]") {
  auto options = local_options();
  options.io_threads = 2;
  http_server server;
  start(server, options, [](http_request&& req, http_responder respond) {
    http_response r;
    r.body = req.body;
    respond(std::move(r));
  });
  http_client_options copts;
  copts.io_threads = 2;
  copts.max_connections_per_origin = 8;
  http_client client{copts};
  constexpr size_t n = 2000;
  countdown all{n};
  std::atomic<size_t> ok{0};
  for (size_t i = 0; i < n; ++i) {
    auto req = get(url_of(server, "/c"));
    req.method = "POST";
    req.body = std::to_string(i);
    req.timeout = 30s;
    client.send(std::move(req), [&, i](http_client_response r) {
      if (r.error == transport_error::none && r.status == 200 && r.body == std::to_string(i))
        ++ok;
      all.hit();
    });
  }
  REQUIRE(all.wait(60000ms));
  client.stop(); // no callback may still run when the locals it uses go away
  CHECK(ok == n);
  CHECK(server.open_connections() <= 8);
}

TEST_CASE("http client reports connect failures timeouts and invalid URLs", "[http]") {
  http_client client{{}};
  auto secret = "Bearer very-secret-key";

  auto refused = get("http://127.0.0.1:" + std::to_string(closed_port()) + "/");
  refused.headers = {{"Authorization", secret}};
  auto r = call(client, refused);
  CHECK(r.error == transport_error::connect);
  CHECK(r.status == 0);
  CHECK(r.error_message.find("very-secret") == std::string::npos);

  parked_responders parked;
  http_server server;
  start(server, local_options(), parked.handler());
  auto slow = get(url_of(server, "/never"));
  slow.timeout = 200ms;
  auto t0 = clock_type::now();
  r = call(client, slow);
  CHECK(r.error == transport_error::timeout);
  CHECK(since(t0) >= 150ms);
  CHECK(since(t0) < 2000ms);

  auto caller = std::this_thread::get_id();
  for (auto url : {"", "ftp://host/", "http://", "http://:80/", "http://host:0/",
                   "http://host:65536/", "http://host:8a/", "http://user@host/", "http://a b/",
                   "http://[::1/", "http://host:/", "mailto:x@y", "HTTP://host/"}) {
    using outcome = std::pair<std::thread::id, http_client_response>;
    auto promise = std::make_shared<std::promise<outcome>>();
    auto done = promise->get_future();
    client.send(get(url), [promise](http_client_response resp) {
      promise->set_value({std::this_thread::get_id(), std::move(resp)});
    });
    REQUIRE(done.wait_for(5s) == std::future_status::ready);
    auto [where, resp] = done.get();
    CHECK(where != caller);
    INFO(url);
    CHECK(resp.error == transport_error::invalid);
  }

  auto injected = get(url_of(server, "/"));
  injected.headers = {{"X-Key", "secret\r\nX-Evil: 1"}};
  r = call(client, injected);
  CHECK(r.error == transport_error::invalid);
  CHECK(r.error_message.find("secret") == std::string::npos);
}

TEST_CASE("http client parses URL forms", "[http]") {
  http_server server;
  start(server, local_options(), echo);
  http_client client{{}};
  auto port = std::to_string(server.port());
  CHECK(call(client, get("http://127.0.0.1:" + port)).body.find("GET / q=") == 0);
  CHECK(call(client, get("http://127.0.0.1:" + port + "?x=1")).body.find("GET / q=x=1") == 0);
  CHECK(call(client, get("http://127.0.0.1:" + port + "/p#frag")).body.find("GET /p q= ") == 0);
  CHECK(call(client, get("http://localhost:" + port + "/l")).status == 201);
}

TEST_CASE("http client gets a TLS error from a plain HTTP server", "[http]") {
  http_server server;
  start(server, local_options(), [](http_request&&, http_responder respond) { respond({}); });
  http_client client{{}};
  auto req = get("https://127.0.0.1:" + std::to_string(server.port()) + "/");
  req.timeout = 5000ms;
  auto t0 = clock_type::now();
  auto r = call(client, req);
  CHECK((r.error == transport_error::tls || r.error == transport_error::reset));
  CHECK(since(t0) < 4000ms);
}

TEST_CASE("http client stop fails requests in flight and returns promptly", "[http]") {
  parked_responders parked;
  std::optional<http_server> server{std::in_place};
  start(*server, local_options(), parked.handler());
  http_client_options copts;
  copts.max_connections_per_origin = 4;
  auto client = std::make_unique<http_client>(copts);
  constexpr size_t n = 20;
  countdown all{n};
  std::atomic<size_t> resets{0};
  for (size_t i = 0; i < n; ++i) {
    auto req = get(url_of(*server, "/park"));
    req.timeout = 30s;
    client->send(std::move(req), [&](http_client_response r) {
      if (r.error == transport_error::reset)
        ++resets;
      all.hit();
    });
  }
  REQUIRE(parked.wait_for(4, 5000ms));
  auto t0 = clock_type::now();
  client->stop();
  CHECK(since(t0) < 1500ms);
  CHECK(all.wait(1000ms));
  CHECK(resets == n);

  // A stopped client answers at once.
  auto r = call(*client, get(url_of(*server, "/")));
  CHECK(r.error == transport_error::reset);
  client.reset();

  // The server stops with responders still pending; answering afterwards does nothing.
  t0 = clock_type::now();
  server->stop();
  CHECK(since(t0) < 1500ms);
  CHECK(server->open_connections() == 0);
  auto late = parked.take();
  REQUIRE(late.size() == 4);
  late[0]({});
  server.reset();
  late[1]({});
  late.clear(); // dropping the rest is harmless too
}

TEST_CASE("http server stop closes open connections", "[http]") {
  parked_responders parked;
  http_server server;
  start(server, local_options(), parked.handler());
  raw_socket idle{server.port()};
  raw_socket waiting{server.port()};
  waiting.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(parked.wait_for(1, 2000ms));
  auto t0 = clock_type::now();
  server.stop();
  server.stop(); // idempotent
  CHECK(since(t0) < 1500ms);
  bool closed = false;
  idle.read_until_closed(1000ms, closed);
  CHECK(closed);
  waiting.read_until_closed(1000ms, closed);
  CHECK(closed);
}

TEST_CASE("http stop called from a handler or a callback does not deadlock", "[http]") {
  http_server server;
  std::promise<void> stopped_inside;
  start(server, local_options(), [&](http_request&&, http_responder respond) {
    server.stop(); // on an I/O thread: only signals
    respond({});   // after stop: a no-op
    stopped_inside.set_value();
  });
  auto client = std::make_unique<http_client>(http_client_options{});
  auto promise = std::make_shared<std::promise<http_client_response>>();
  auto answer = promise->get_future();
  client->send(get(url_of(server, "/")), [&, promise](http_client_response r) {
    client->stop(); // on a client thread: only signals
    promise->set_value(std::move(r));
  });
  REQUIRE(stopped_inside.get_future().wait_for(5s) == std::future_status::ready);
  auto t0 = clock_type::now();
  server.stop(); // finishes: joins and closes the waiting connection
  CHECK(since(t0) < 1500ms);
  REQUIRE(answer.wait_for(5s) == std::future_status::ready);
  CHECK(answer.get().error == transport_error::reset);
  t0 = clock_type::now();
  client.reset();
  CHECK(since(t0) < 1500ms);
}

TEST_CASE("http server start fails on a port in use", "[http]") {
  http_server first;
  start(first, local_options(), [](http_request&&, http_responder respond) { respond({}); });
  auto options = local_options();
  options.port = first.port();
  http_server second;
  std::string error;
  CHECK_FALSE(second.start(
      options, [](http_request&&, http_responder) {}, error));
  CHECK(error.find("cannot listen") != std::string::npos);
}

TEST_CASE("to_string names every transport error", "[http]") {
  CHECK(std::string(lps::to_string(transport_error::none)) == "none");
  CHECK(std::string(lps::to_string(transport_error::timeout)) == "timeout");
  CHECK(std::string(lps::to_string(transport_error::connect)) == "connect");
  CHECK(std::string(lps::to_string(transport_error::reset)) == "reset");
  CHECK(std::string(lps::to_string(transport_error::tls)) == "tls");
  CHECK(std::string(lps::to_string(transport_error::invalid)) == "invalid");
}

// Manual TLS check against `openssl s_server -www` with a certificate for "localhost" only:
// LPS_TLS_PORT=4433 LPS_TLS_CA=/path/cert.pem ./http_test "[.tls]"
TEST_CASE("http client verifies TLS certificates and host names", "[.tls]") {
  const char* port = std::getenv("LPS_TLS_PORT");
  const char* ca = std::getenv("LPS_TLS_CA");
  REQUIRE(port != nullptr);
  REQUIRE(ca != nullptr);
  http_client_options trusted;
  trusted.ca_file = ca;
  http_client client{trusted};
  auto ok = call(client, get(std::string("https://localhost:") + port + "/"));
  CHECK(ok.error_message == "");
  CHECK(ok.status == 200);
  // The certificate names "localhost" only.
  auto wrong_name = call(client, get(std::string("https://127.0.0.1:") + port + "/"));
  CHECK(wrong_name.error == transport_error::tls);

  http_client untrusting{{}};
  auto unknown_ca = call(untrusting, get(std::string("https://localhost:") + port + "/"));
  CHECK(unknown_ca.error == transport_error::tls);
  http_client_options blind;
  blind.verify_peer = false;
  http_client unverified{blind};
  CHECK(call(unverified, get(std::string("https://127.0.0.1:") + port + "/")).status == 200);
}

TEST_CASE("http bench 50000 posts of 6 KB over 32 connections", "[.bench]") {
  http_server server;
  start(server, local_options(), [](http_request&&, http_responder respond) {
    http_response r;
    r.status = 202;
    respond(std::move(r));
  });
  http_client_options copts;
  copts.max_connections_per_origin = 32;
  http_client client{copts};
  constexpr size_t n = 50000;
  constexpr size_t window = 512; // in flight at once, so 50k bodies are not all queued
  const std::string body(6 * 1024, 'b');
  const auto url = url_of(server, "/bench");
  countdown all{n};
  std::atomic<size_t> ok{0};
  std::atomic<size_t> sent{0};
  std::function<void()> send_next = [&] {
    if (sent.fetch_add(1) >= n)
      return;
    http_client_request req;
    req.url = url;
    req.body = body;
    req.headers = {{"Content-Type", "application/json"}};
    client.send(std::move(req), [&](http_client_response r) {
      if (r.status == 202)
        ++ok;
      all.hit();
      send_next();
    });
  };
  auto t0 = clock_type::now();
  for (size_t i = 0; i < window; ++i)
    send_next();
  REQUIRE(all.wait(120000ms));
  auto secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  client.stop(); // no callback may still run when the locals it uses go away
  std::printf("http bench: %zu POSTs (6 KB) in %.2f s = %.0f req/s, %zu ok\n", n, secs,
              static_cast<double>(n) / secs, ok.load());
  CHECK(ok == n);
}

TEST_CASE("http server applies a route's own body limit before reading the body", "[http]") {
  std::atomic<int> calls{0};
  auto options = local_options();
  options.max_body_bytes = 1000;
  options.max_body_setting = "SMALL_LIMIT";
  options.route_body_limits = {{"POST", "/bulk", 100'000, "BULK_LIMIT"}};
  http_server server;
  start(server, options, [&](http_request&& req, http_responder respond) {
    ++calls;
    respond({200, std::to_string(req.body.size()), "text/plain", {}});
  });
  http_client client{{}};
  auto post = [&](const std::string& path, size_t bytes) {
    auto req = get(url_of(server, path));
    req.method = "POST";
    req.body.assign(bytes, 'x');
    return call(client, req);
  };
  SECTION("the route takes more than the default, a query string does not change the route") {
    auto r = post("/bulk?x=1", 50'000);
    CHECK(r.status == 200);
    CHECK(r.body == "50000");
    CHECK(calls == 1);
  }
  SECTION("every other route keeps the default; each 413 names the setting to raise") {
    auto other = post("/one", 50'000);
    CHECK(other.status == 413);
    CHECK(other.body.find("exceeds 1000 bytes (raise SMALL_LIMIT)") != std::string::npos);
    auto bulk = post("/bulk", 200'000);
    CHECK(bulk.status == 413);
    CHECK(bulk.body.find("exceeds 100000 bytes (raise BULK_LIMIT)") != std::string::npos);
    CHECK(calls == 0);
  }
  SECTION("a declared length over the route's limit is refused before the body arrives") {
    raw_socket raw{server.port()};
    raw.write("POST /bulk HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n");
    auto text = raw.read_responses(1, 2000ms);
    CHECK(text.rfind("HTTP/1.1 413", 0) == 0);
    CHECK(text.find("raise BULK_LIMIT") != std::string::npos);
  }
  SECTION("a chunked body is held to the route's limit, not the largest one") {
    raw_socket raw{server.port()};
    raw.write("POST /one HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              "7d0\r\n"
              + std::string(2000, 'x') + "\r\n0\r\n\r\n");
    auto text = raw.read_responses(1, 2000ms);
    CHECK(text.rfind("HTTP/1.1 413", 0) == 0);
    CHECK(text.find("raise SMALL_LIMIT") != std::string::npos);
    CHECK(calls == 0);
  }
}

TEST_CASE("the address filter refuses resolved addresses without connecting", "[http]") {
  // A bare listening socket nobody accepts on: a connection attempt would still complete into
  // its backlog, so an empty backlog afterwards shows that none was made.
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  REQUIRE(listener >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::listen(listener, 8) == 0);
  socklen_t len = sizeof(addr);
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  auto port = std::to_string(ntohs(addr.sin_port));
  std::mutex mutex;
  std::vector<std::string> asked;
  http_client_options options;
  options.address_filter = [&](const std::string& ip) {
    std::lock_guard<std::mutex> lock{mutex};
    asked.push_back(ip);
    return "callback target " + ip + " is loopback: refused";
  };
  http_client client{options};
  auto r = call(client, get("http://127.0.0.1:" + port + "/x"));
  CHECK(r.error == transport_error::invalid);
  CHECK(r.error_message == "callback target 127.0.0.1 is loopback: refused");
  // A name is checked on what it resolved to.
  r = call(client, get("http://localhost:" + port + "/x"));
  CHECK(r.error == transport_error::invalid);
  CHECK(r.error_message.find("is loopback: refused") != std::string::npos);
  {
    std::lock_guard<std::mutex> lock{mutex};
    REQUIRE(asked.size() >= 2);
    CHECK(asked.front() == "127.0.0.1");
  }
  CHECK(::accept(listener, nullptr, nullptr) == -1);
  CHECK((errno == EAGAIN || errno == EWOULDBLOCK));
  ::close(listener);
}

TEST_CASE("an address filter that allows the address lets the call through", "[http]") {
  http_server server;
  start(server, local_options(), [](http_request&&, http_responder respond) { respond({}); });
  std::atomic<int> asked{0};
  http_client_options options;
  options.address_filter = [&](const std::string&) {
    ++asked;
    return std::string{};
  };
  http_client client{options};
  CHECK(call(client, get(url_of(server, "/ok"))).status == 200);
  CHECK(asked == 1);
}

namespace {

/// A client with one connection per origin whose only connection is busy: its first call
/// ("/first") is parked at the server until the test answers it.
struct one_busy_connection {
  parked_responders parked;
  http_server server;
  http_client client{one_connection()};
  std::promise<http_client_response> first_done;

  one_busy_connection() {
    start(server, local_options(), parked.handler());
    client.send(get(url_of(server, "/first")),
                [this](http_client_response r) { first_done.set_value(std::move(r)); });
    REQUIRE(parked.wait_for(1, 5s));
  }

  static http_client_options one_connection() {
    http_client_options result;
    result.max_connections_per_origin = 1;
    return result;
  }
};

} // namespace

TEST_CASE("a call waiting for a pooled connection longer than its timeout still succeeds",
          "[http]") {
  one_busy_connection busy;
  auto& [parked, server, client, first_done] = busy;
  auto second = get(url_of(server, "/second"));
  second.timeout = 300ms;
  second.queue_timeout = 10s;
  std::promise<http_client_response> second_done;
  auto t0 = clock_type::now();
  client.send(second, [&](http_client_response r) { second_done.set_value(std::move(r)); });
  // The only connection is busy, so the second call waits in the queue past its timeout.
  CHECK_FALSE(parked.wait_for(2, 600ms));
  auto held = parked.take();
  REQUIRE(held.size() == 1);
  held[0](http_response{});
  REQUIRE(parked.wait_for(1, 5s));
  parked.take()[0](http_response{});
  auto a = first_done.get_future().get();
  auto b = second_done.get_future().get();
  CHECK(a.error == transport_error::none);
  CHECK(b.error == transport_error::none);
  CHECK(b.status == 200);
  CHECK(since(t0) > second.timeout);
}

TEST_CASE("a call waiting in the queue fails after its queue timeout without being sent",
          "[http]") {
  one_busy_connection busy;
  auto& [parked, server, client, first_done] = busy;
  auto second = get(url_of(server, "/second"));
  second.queue_timeout = 200ms;
  auto r = call(client, second);
  CHECK(r.error == transport_error::timeout);
  CHECK(r.error_message.find("waiting for a connection") != std::string::npos);
  parked.take()[0](http_response{});
  CHECK(first_done.get_future().get().error == transport_error::none);
  CHECK_FALSE(parked.wait_for(1, 200ms)); // the second call never reached the server
}

namespace {

/// A bare listening socket on 127.0.0.1 that accepts one connection at a time (no HTTP server
/// logic), so a test can watch exactly what the client does with the connection.
class raw_listener {
public:
  raw_listener() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 4) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~raw_listener() {
    if (peer_ >= 0)
      ::close(peer_);
    ::close(fd_);
  }
  raw_listener(const raw_listener&) = delete;
  raw_listener& operator=(const raw_listener&) = delete;

  uint16_t port() const {
    return port_;
  }

  /// Accepts the connection and reads the request head; false when none came within `limit`.
  bool accept_request(std::chrono::milliseconds limit) {
    if (!readable(fd_, limit))
      return false;
    if (peer_ >= 0)
      close_peer();
    peer_ = ::accept(fd_, nullptr, nullptr);
    std::string got;
    char buf[4096];
    while (got.find("\r\n\r\n") == std::string::npos && readable(peer_, limit)) {
      auto n = ::recv(peer_, buf, sizeof buf, 0);
      if (n <= 0)
        return false;
      got.append(buf, static_cast<size_t>(n));
    }
    return got.find("\r\n\r\n") != std::string::npos;
  }

  /// Sends `text` on the accepted connection.
  void answer(std::string_view text) {
    REQUIRE(::send(peer_, text.data(), text.size(), MSG_NOSIGNAL)
            == static_cast<ssize_t>(text.size()));
  }

  /// Closes the accepted connection, as a server's idle timeout would.
  void close_peer() {
    ::close(peer_);
    peer_ = -1;
  }

  /// True when the client closed the accepted connection (end of stream) within `limit`.
  bool peer_closed(std::chrono::milliseconds limit) {
    char buf[256];
    return readable(peer_, limit) && ::recv(peer_, buf, sizeof buf, 0) <= 0;
  }

private:
  static bool readable(int fd, std::chrono::milliseconds limit) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(limit.count())) == 1;
  }

  int fd_;
  int peer_ = -1;
  uint16_t port_ = 0;
};

} // namespace

TEST_CASE("a call that times out closes its connection before it reports", "[http]") {
  raw_listener upstream;
  http_client client{{}};
  auto slow = get("http://127.0.0.1:" + std::to_string(upstream.port()) + "/slow");
  slow.timeout = 300ms;
  std::promise<http_client_response> done;
  client.send(slow, [&](http_client_response r) { done.set_value(std::move(r)); });
  REQUIRE(upstream.accept_request(5s));
  CHECK_FALSE(upstream.peer_closed(100ms)); // still open while the call runs
  auto r = done.get_future().get();
  CHECK(r.error == transport_error::timeout);
  // The close was sent before the callback ran; only loopback delivery is left to wait for.
  CHECK(upstream.peer_closed(1000ms));
}

TEST_CASE("http client retries once when the server dropped an idle connection", "[http]") {
  raw_listener upstream;
  http_client client{{}};
  auto url = "http://127.0.0.1:" + std::to_string(upstream.port()) + "/again";
  for (int i = 0; i < 3; ++i) {
    std::promise<http_client_response> done;
    client.send(get(url), [&](http_client_response r) { done.set_value(std::move(r)); });
    // From the second call on, the client reuses the connection closed below, gets nothing
    // back and must send again on a fresh connection: the one accepted here.
    REQUIRE(upstream.accept_request(5s));
    upstream.answer("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"); // keep-alive
    auto answered = done.get_future();
    REQUIRE(answered.wait_for(5s) == std::future_status::ready);
    auto r = answered.get();
    INFO(r.error_message);
    REQUIRE(r.error == transport_error::none);
    CHECK(r.status == 201);
    upstream.close_peer(); // while the client keeps the connection idle
  }
}

TEST_CASE("http server escapes its error message: a quote and a backslash stay valid JSON",
          "[http]") {
  auto options = local_options();
  options.max_body_bytes = 10;
  options.max_body_setting = R"(LIMIT "A" \ B)";
  http_server server;
  start(server, options, [&](http_request&&, http_responder respond) { respond({}); });
  http_client client{{}};
  auto req = get(url_of(server, "/one"));
  req.method = "POST";
  req.body.assign(100, 'x');
  auto r = call(client, req);
  REQUIRE(r.error == transport_error::none);
  CHECK(r.status == 413);
  auto error = boost::json::parse(r.body).at("error").as_object();
  CHECK(error.at("code") == "PAYLOAD_TOO_LARGE");
  CHECK(error.at("message") == R"(request body exceeds 10 bytes (raise LIMIT "A" \ B))");
  CHECK(error.at("correlation_id").is_null());
  CHECK(error.at("details").as_object().empty());
}

namespace {

// A server whose every answer is a stream; the test gets each stream to write to.
struct streaming_server {
  http_server server;
  std::promise<std::shared_ptr<http_body_stream>> given;

  streaming_server() {
    start(server, local_options(), [this](http_request&&, http_responder respond) {
      http_response r{200, "", "text/event-stream", {{"Cache-Control", "no-cache"}}};
      r.stream = [this](std::shared_ptr<http_body_stream> s) { given.set_value(std::move(s)); };
      respond(std::move(r));
    });
  }

  std::shared_ptr<http_body_stream> stream() {
    auto f = given.get_future();
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    return f.get();
  }
};

} // namespace

TEST_CASE("a streamed answer sends its head, then each piece as one chunk", "[http]") {
  streaming_server s;
  auto client = std::make_unique<raw_socket>(s.server.port());
  client->write("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  auto stream = s.stream();
  REQUIRE(stream->write("data: one\n\n"));
  REQUIRE(stream->write("data: two\n\n"));
  auto text = client->read_until_ends_with("data: two\n\n\r\n", 5000ms);
  CHECK(text.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(text.find("Content-Type: text/event-stream\r\n") != std::string::npos);
  CHECK(text.find("Cache-Control: no-cache\r\n") != std::string::npos);
  CHECK(text.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
  CHECK(text.find("Content-Length") == std::string::npos);
  // 11 bytes each: "b" in hex.
  CHECK(text.ends_with("\r\n\r\nb\r\ndata: one\n\n\r\nb\r\ndata: two\n\n\r\n"));
  CHECK(s.server.open_connections() == 1);
}

TEST_CASE("a streamed answer ends when the client goes away, freeing its connection", "[http]") {
  streaming_server s;
  auto client = std::make_unique<raw_socket>(s.server.port());
  client->write("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  auto stream = s.stream();
  REQUIRE(stream->write("data: one\n\n"));
  client->read_until_ends_with("data: one\n\n\r\n", 5000ms);
  REQUIRE(s.server.open_connections() == 1);
  client.reset(); // the client closes its socket
  CHECK(s.server.wait_open_connections(0, 5000ms));
  CHECK(!stream->write("data: two\n\n"));
}

TEST_CASE("a streamed answer ends when the server stops", "[http]") {
  streaming_server s;
  raw_socket client{s.server.port()};
  client.write("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  auto stream = s.stream();
  s.server.stop();
  CHECK(!stream->write("data: late\n\n"));
  bool closed = false;
  client.read_until_closed(5000ms, closed);
  CHECK(closed);
  CHECK(s.server.open_connections() == 0);
}

TEST_CASE("a finished streamed answer ends with the last chunk after what was queued", "[http]") {
  streaming_server s;
  raw_socket client{s.server.port()};
  client.write("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  auto stream = s.stream();
  REQUIRE(stream->write("data: one\n\n"));
  stream->finish();
  CHECK(!stream->write("data: late\n\n"));
  bool closed = false;
  auto text = client.read_until_closed(5000ms, closed);
  CHECK(closed);
  CHECK(text.ends_with("\r\n\r\nb\r\ndata: one\n\n\r\n0\r\n\r\n"));
  CHECK(s.server.wait_open_connections(0, 5000ms));
}

TEST_CASE("a burst of streamed pieces arrives whole and in order, each its own chunk, then the "
          "last chunk",
          "[http]") {
  // Pieces written while an earlier write is under way share a socket write; none may be
  // lost, reordered or overtaken by finish().
  streaming_server s;
  raw_socket client{s.server.port()};
  client.write("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  auto stream = s.stream();
  std::string expected;
  for (int i = 0; i < 2000; ++i) {
    auto piece = "data: " + std::to_string(i) + "\n\n";
    char size[8];
    std::snprintf(size, sizeof(size), "%zx", piece.size());
    expected += std::string(size) + "\r\n" + piece + "\r\n";
    REQUIRE(stream->write(std::move(piece)));
  }
  stream->finish();
  bool closed = false;
  auto text = client.read_until_closed(5000ms, closed);
  CHECK(closed);
  auto body = text.substr(text.find("\r\n\r\n") + 4);
  CHECK(body == expected + "0\r\n\r\n");
  CHECK(s.server.wait_open_connections(0, 5000ms));
}

TEST_CASE("a cut streamed answer closes after what was queued, without the last chunk", "[http]") {
  streaming_server s;
  raw_socket client{s.server.port()};
  client.write("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  auto stream = s.stream();
  REQUIRE(stream->write("data: one\n\n"));
  stream->cut();
  stream->finish(); // too late: the first end wins
  bool closed = false;
  auto text = client.read_until_closed(5000ms, closed);
  CHECK(closed);
  CHECK(text.ends_with("\r\n\r\nb\r\ndata: one\n\n\r\n"));
  CHECK(text.find("0\r\n\r\n") == std::string::npos);
  CHECK(s.server.wait_open_connections(0, 5000ms));
}
