// HTTPS end to end: lps::http_server and the mock provider with certificates from a CA made at
// test time (tests/fixtures/test_ca), called through lps::http_client. Covers trust, host-name
// checks, protocol mix-ups, start-up errors and the HTTP behaviour that must not change under
// TLS (keep-alive, limits, timeouts, graceful close). Everything binds 127.0.0.1:0.

#include "fixtures/raw_socket.hpp"
#include "fixtures/test_ca.hpp"
#include "runtime/http_client.hpp"
#include "runtime/http_server.hpp"
#include "tools/mock_provider/mock_provider_server.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

namespace fs = std::filesystem;
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
using lps::test::temp_dir;
using lps::test::test_ca;
using lps::test::test_tls_files;

/// A fresh CA with a good server certificate (localhost, 127.0.0.1) and one for a wrong name.
struct pki {
  temp_dir dir{"lps-tls-test"};
  test_ca ca{dir.path() / "pki"};
  test_tls_files good = ca.issue("server", {"localhost"}, {"127.0.0.1"});
  test_tls_files wrong = ca.issue("wrong", {"example.invalid"}, {});
};

http_server_options tls_options(const test_tls_files& files) {
  http_server_options o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.tls_cert_file = files.cert_file.string();
  o.tls_key_file = files.key_file.string();
  return o;
}

http_client_options trusting(const test_tls_files& files) {
  http_client_options o;
  o.ca_file = files.ca_file.string();
  return o;
}

void start(http_server& server, const http_server_options& options, lps::http_handler handler) {
  std::string error;
  bool started = server.start(options, std::move(handler), error);
  INFO(error);
  REQUIRE(started);
  REQUIRE(server.port() != 0);
}

std::string https(const http_server& server, const std::string& path,
                  const std::string& host = "127.0.0.1") {
  return "https://" + host + ":" + std::to_string(server.port()) + path;
}

std::chrono::milliseconds since(clock_type::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0);
}

http_client_request get(const std::string& url) {
  http_client_request r;
  r.method = "GET";
  r.url = url;
  r.timeout = 5000ms;
  return r;
}

/// Sends one request and waits (bounded) for its callback.
http_client_response call(http_client& client, http_client_request request) {
  auto promise = std::make_shared<std::promise<http_client_response>>();
  auto future = promise->get_future();
  client.send(std::move(request),
              [promise](http_client_response r) { promise->set_value(std::move(r)); });
  REQUIRE(future.wait_for(10s) == std::future_status::ready);
  return future.get();
}

void echo(http_request&& req, http_responder respond) {
  http_response r;
  r.status = 201;
  r.content_type = "text/plain";
  r.body = req.method + " " + req.path + " q=" + req.query + " body=" + req.body;
  respond(std::move(r));
}

using lps::test::raw_socket;

const char* openai_body =
    R"({"model":"gpt-4o","messages":[)"
    R"({"role":"system","content":"You are an LLM comparison engine."},)"
    R"({"role":"user","content":"Compare Essay A and Essay B."}],)"
    R"("response_format":{"type":"json_schema","json_schema":{)"
    R"("name":"comparison","strict":false,"schema":{"type":"object",)"
    R"("properties":{"winner":{"type":"string","enum":["Essay A","Essay B"]},)"
    R"("justification":{"type":"string"},)"
    R"("confidence":{"type":"number","minimum":1,"maximum":5}},)"
    R"("required":["winner","justification","confidence"]}}}})";

} // namespace

TEST_CASE("test CA writes a CA, a server certificate and a key", "[tls]") {
  temp_dir dir{"lps-tls-test"};
  fs::path kept;
  {
    temp_dir inner{"lps-tls-test"};
    kept = inner.path();
    auto files = lps::test::make_test_ca(inner.path() / "a" / "b");
    CHECK(files.ca_file == inner.path() / "a" / "b" / "ca.pem");
    CHECK(files.cert_file == inner.path() / "a" / "b" / "server.pem");
    CHECK(files.key_file == inner.path() / "a" / "b" / "server.key");
    for (const auto& f : {files.ca_file, files.cert_file, files.key_file}) {
      std::ifstream in(f);
      std::string first;
      std::getline(in, first);
      CHECK(first.rfind("-----BEGIN ", 0) == 0);
    }
    CHECK((fs::status(files.key_file).permissions() & fs::perms::group_read) == fs::perms::none);
  }
  CHECK_FALSE(fs::exists(kept)); // temp_dir cleans up
  test_ca ca{dir.path()};
  CHECK_THROWS_AS(ca.issue("none", {}, {}), std::invalid_argument);
  CHECK_THROWS_AS(ca.issue("comma", {"a,IP:1.2.3.4"}, {}), std::invalid_argument);
  CHECK_THROWS_WITH(ca.issue("bad-ip", {}, {"not-an-ip"}), Catch::Contains("subjectAltName"));
}

TEST_CASE("https round trip with the test CA reuses keep-alive connections", "[tls]") {
  pki p;
  http_server server;
  start(server, tls_options(p.good), echo);
  http_client client{trusting(p.good)};
  for (int i = 0; i < 5; ++i) {
    auto r = call(client, get(https(server, "/hello?i=" + std::to_string(i))));
    INFO(r.error_message);
    REQUIRE(r.error == transport_error::none);
    CHECK(r.status == 201);
    CHECK(r.body == "GET /hello q=i=" + std::to_string(i) + " body=");
    CHECK(server.open_connections() == 1);
  }
  // A host name (sent as SNI) works as well as the IP address.
  auto by_name = call(client, get(https(server, "/name", "localhost")));
  INFO(by_name.error_message);
  CHECK(by_name.status == 201);
  CHECK(server.open_connections() == 2);

  SECTION("a body over several TLS records") {
    http_client_request post = get(https(server, "/big"));
    post.method = "POST";
    post.body = std::string(300 * 1024, 'x');
    auto r = call(client, post);
    CHECK(r.status == 201);
    CHECK(r.body.size() == std::string("POST /big q= body=").size() + post.body.size());
  }
  SECTION("concurrent requests over a few connections") {
    auto options = trusting(p.good);
    options.max_connections_per_origin = 4;
    http_client pooled{options};
    std::vector<std::future<http_client_response>> answers;
    for (int i = 0; i < 40; ++i) {
      auto promise = std::make_shared<std::promise<http_client_response>>();
      answers.push_back(promise->get_future());
      pooled.send(get(https(server, "/c")),
                  [promise](http_client_response r) { promise->set_value(std::move(r)); });
    }
    for (auto& a : answers) {
      REQUIRE(a.wait_for(10s) == std::future_status::ready);
      CHECK(a.get().status == 201);
    }
    CHECK(server.open_connections() <= 2 + 4);
  }
  SECTION("Connection: close ends the connection with a TLS close") {
    auto r0 = call(client, get(https(server, "/before")));
    REQUIRE(r0.status == 201);
    http_client_request last = get(https(server, "/last"));
    last.headers.emplace_back("Connection", "close");
    auto r = call(client, last);
    CHECK(r.status == 201);
    CHECK(server.wait_open_connections(1, 2000ms));
    CHECK(call(client, get(https(server, "/again"))).status == 201);
  }
}

TEST_CASE("a watched request over https is answered after its watch and told when its client "
          "leaves",
          "[tls]") {
  // The close watch reads through TLS while the request is pending; the answer cancels that
  // read first, so the TLS stream must stay usable: two answers on one kept-alive connection.
  pki p;
  http_server server;
  std::mutex mutex;
  std::vector<http_responder> held; // guarded by mutex
  std::promise<void> left;
  std::atomic<int> answered_but_gone{0};
  start(server, tls_options(p.good), [&](http_request&& req, http_responder respond) {
    if (req.path == "/leave")
      req.close_watch->on_close([&left] { left.set_value(); });
    else
      req.close_watch->on_close([&answered_but_gone] { ++answered_but_gone; });
    std::lock_guard<std::mutex> lock{mutex};
    held.push_back(std::move(respond));
  });
  auto next_held = [&] {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard<std::mutex> lock{mutex};
        if (!held.empty()) {
          auto r = std::move(held.back());
          held.pop_back();
          return r;
        }
      }
      std::this_thread::sleep_for(10ms);
    }
    FAIL("the request never reached the handler");
    return http_responder{};
  };
  http_client client{trusting(p.good)};
  for (int i = 0; i < 2; ++i) {
    auto answer = std::make_shared<std::promise<http_client_response>>();
    client.send(get(https(server, "/answer")),
                [answer](http_client_response r) { answer->set_value(std::move(r)); });
    auto respond = next_held();
    std::this_thread::sleep_for(50ms); // the watch's read is pending by now
    respond({200, "late", "text/plain", {}});
    auto future = answer->get_future();
    REQUIRE(future.wait_for(10s) == std::future_status::ready);
    auto r = future.get();
    INFO(r.error_message);
    CHECK(r.status == 200);
    CHECK(r.body == "late");
    CHECK(server.open_connections() == 1);
  }
  auto leaving = get(https(server, "/leave"));
  leaving.cancel = std::make_shared<lps::http_call_cancel>();
  auto token = leaving.cancel;
  client.send(std::move(leaving), [](http_client_response) {});
  auto respond = next_held();
  token->cancel(); // the client closes its connection while the handler holds the request
  CHECK(left.get_future().wait_for(5s) == std::future_status::ready);
  respond({200, "nowhere", "text/plain", {}});
  CHECK(answered_but_gone == 0);
}

TEST_CASE("https limits and timeouts work as over plain HTTP", "[tls]") {
  pki p;
  auto options = tls_options(p.good);
  options.max_body_bytes = 1000;
  options.read_timeout = 300ms;
  http_server server;
  start(server, options, echo);
  http_client client{trusting(p.good)};

  SECTION("a body over the limit gets 413 and the server keeps serving") {
    http_client_request post = get(https(server, "/big"));
    post.method = "POST";
    post.body = std::string(2 << 20, 'x'); // still being sent while the answer goes out
    auto t0 = clock_type::now();
    auto r = call(client, post);
    CHECK(since(t0) < 2000ms);
    INFO(r.error_message);
    CHECK(r.status == 413);
    CHECK(r.body.find("PAYLOAD_TOO_LARGE") != std::string::npos);
    CHECK(call(client, get(https(server, "/ok"))).status == 201);
    CHECK(server.wait_open_connections(1, 2000ms));
  }
  SECTION("a client that never starts the handshake is closed after read_timeout") {
    raw_socket silent{server.port()};
    auto t0 = clock_type::now();
    bool closed = false;
    silent.read_until_closed(3000ms, closed);
    CHECK(closed);
    CHECK(since(t0) >= 200ms);
    CHECK(since(t0) < 2000ms);
    CHECK(server.wait_open_connections(0, 2000ms));
  }
  SECTION("stop closes TLS connections") {
    REQUIRE(call(client, get(https(server, "/ok"))).status == 201);
    REQUIRE(server.open_connections() == 1);
    auto t0 = clock_type::now();
    server.stop();
    CHECK(since(t0) < 1500ms);
    CHECK(server.open_connections() == 0);
  }
}

TEST_CASE("https without the test CA fails with a TLS error", "[tls]") {
  pki p;
  http_server server;
  start(server, tls_options(p.good), echo);
  http_client system_store_only{http_client_options{}};
  auto r = call(system_store_only, get(https(server, "/")));
  CHECK(r.error == transport_error::tls);
  CHECK(r.status == 0);
  CHECK(call(system_store_only, get(https(server, "/", "localhost"))).error
        == transport_error::tls);

  // Only tests turn verification off; then the unknown CA does not matter.
  http_client_options blind;
  blind.verify_peer = false;
  http_client unverified{blind};
  CHECK(call(unverified, get(https(server, "/"))).status == 201);
}

TEST_CASE("https to a certificate for another name fails with a TLS error", "[tls]") {
  pki p;
  http_server server;
  start(server, tls_options(p.wrong), echo);
  http_client client{trusting(p.wrong)};
  for (const char* host : {"127.0.0.1", "localhost"}) {
    auto r = call(client, get(https(server, "/", host)));
    INFO(host << ": " << r.error_message);
    CHECK(r.error == transport_error::tls);
  }
  // The same server is fine when the name is not checked: the failure was the name.
  http_client_options blind = trusting(p.wrong);
  blind.verify_peer = false;
  http_client unverified{blind};
  CHECK(call(unverified, get(https(server, "/"))).status == 201);
}

TEST_CASE("plain HTTP to a TLS port and TLS to a plain port fail cleanly", "[tls]") {
  pki p;
  auto options = tls_options(p.good);
  options.read_timeout = 2000ms;
  http_server tls_server;
  start(tls_server, options, echo);
  http_client client{trusting(p.good)};

  auto plain = get("http://127.0.0.1:" + std::to_string(tls_server.port()) + "/");
  plain.timeout = 3000ms;
  auto t0 = clock_type::now();
  auto r = call(client, plain);
  INFO(r.error_message);
  CHECK(r.error != transport_error::none);
  CHECK(r.error != transport_error::timeout); // the server refuses at once, no waiting
  CHECK(since(t0) < 1500ms);

  {
    raw_socket raw{tls_server.port()};
    raw.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    bool closed = false;
    auto got = raw.read_until_closed(1500ms, closed);
    CHECK(closed);
    CHECK(got.find("HTTP/1.1") == std::string::npos); // an alert at most, never an answer
  }
  CHECK(call(client, get(https(tls_server, "/still"))).status == 201);

  http_server plain_server;
  auto plain_options = options;
  plain_options.tls_cert_file.clear();
  plain_options.tls_key_file.clear();
  start(plain_server, plain_options, echo);
  auto tls = get(https(plain_server, "/"));
  tls.timeout = 3000ms;
  t0 = clock_type::now();
  auto r2 = call(client, tls);
  INFO(r2.error_message);
  CHECK(r2.error == transport_error::tls);
  CHECK(since(t0) < 1500ms);
  CHECK(call(client, get("http://127.0.0.1:" + std::to_string(plain_server.port()) + "/")).status
        == 201);
}

TEST_CASE("http server start fails clearly on bad TLS files", "[tls]") {
  pki p;
  auto handler = [](http_request&&, http_responder respond) { respond({}); };
  auto try_start = [&](const http_server_options& o) {
    http_server server;
    std::string error;
    CHECK_FALSE(server.start(o, handler, error));
    CHECK(server.port() == 0);
    return error;
  };

  auto missing_key = tls_options(p.good);
  missing_key.tls_key_file = (p.dir.path() / "nope.key").string();
  auto e = try_start(missing_key);
  CHECK(e.find("cannot read TLS key file") != std::string::npos);
  CHECK(e.find(missing_key.tls_key_file) != std::string::npos);
  CHECK(e.find("No such file") != std::string::npos);

  auto missing_cert = tls_options(p.good);
  missing_cert.tls_cert_file = (p.dir.path() / "nope.pem").string();
  CHECK(try_start(missing_cert).find("cannot read TLS certificate file") != std::string::npos);

  auto cert_only = tls_options(p.good);
  cert_only.tls_key_file.clear();
  e = try_start(cert_only);
  CHECK(e.find("without a key file") != std::string::npos);
  CHECK(e.find(cert_only.tls_cert_file) != std::string::npos);

  auto key_only = tls_options(p.good);
  key_only.tls_cert_file.clear();
  CHECK(try_start(key_only).find("without a certificate file") != std::string::npos);

  auto garbage = p.dir.path() / "garbage.pem";
  std::ofstream(garbage) << "not a certificate\n";
  auto bad_cert = tls_options(p.good);
  bad_cert.tls_cert_file = garbage.string();
  e = try_start(bad_cert);
  CHECK(e.find("invalid TLS certificate file") != std::string::npos);
  CHECK(e.find(garbage.string()) != std::string::npos);

  auto bad_key = tls_options(p.good);
  bad_key.tls_key_file = garbage.string();
  e = try_start(bad_key);
  CHECK(e.find("invalid TLS key file") != std::string::npos);
  CHECK(e.find(garbage.string()) != std::string::npos);

  auto mismatched = tls_options(p.good);
  mismatched.tls_key_file = p.wrong.key_file.string();
  e = try_start(mismatched);
  CHECK(e.find("does not match") != std::string::npos);
  CHECK(e.find(p.wrong.key_file.string()) != std::string::npos);

  auto directory = tls_options(p.good);
  directory.tls_cert_file = p.dir.path().string();
  CHECK(try_start(directory).find(p.dir.path().string()) != std::string::npos);

  // A failed start leaves the server startable.
  http_server server;
  std::string error;
  CHECK_FALSE(server.start(cert_only, handler, error));
  CHECK(server.start(tls_options(p.good), handler, error));
  CHECK(server.port() != 0);
}

TEST_CASE("mock provider serves an OpenAI call over https", "[tls]") {
  pki p;
  lps::mock_provider_options options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.tls_cert_file = p.good.cert_file.string();
  options.tls_key_file = p.good.key_file.string();
  lps::mock_provider_server mock;
  std::string error;
  bool started = mock.start(options, error);
  INFO(error);
  REQUIRE(started);

  http_client client{trusting(p.good)};
  http_client_request r;
  r.url = "https://127.0.0.1:" + std::to_string(mock.port()) + "/v1/chat/completions";
  r.headers.emplace_back("content-type", "application/json");
  r.headers.emplace_back("authorization", "Bearer test-key");
  r.body = openai_body;
  r.timeout = 5000ms;
  auto answer = call(client, r);
  INFO(answer.error_message << answer.body);
  CHECK(answer.status == 200);
  CHECK(answer.body.find("\"choices\"") != std::string::npos);
  CHECK(mock.stats().by_outcome["ok"] == 1);

  auto plain = r;
  plain.url = "http://127.0.0.1:" + std::to_string(mock.port()) + "/v1/chat/completions";
  CHECK(call(client, plain).error != transport_error::none);

  lps::mock_provider_server no_key;
  auto half = options;
  half.tls_key_file.clear();
  CHECK_FALSE(no_key.start(half, error));
  CHECK(error.find("without a key file") != std::string::npos);
}
