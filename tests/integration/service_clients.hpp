#pragma once

// What the tests that run the real lps binary use to talk to it: blocking HTTP calls through
// the project's async client, and a local receiver of callbacks. Everything binds 127.0.0.1.

#include "runtime/http_client.hpp"
#include "runtime/http_server.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace lps::test {

using header_list = std::vector<std::pair<std::string, std::string>>;

/// Blocking calls through the project's async client (tests only).
struct client {
  http_client http{http_client_options{1, 16, "", true}};

  /// `content_type` "" sends none.
  http_client_response call(const std::string& method, const std::string& url,
                            std::string body = {}, std::string content_type = "application/json") {
    header_list headers;
    if (!content_type.empty())
      headers.emplace_back("Content-Type", std::move(content_type));
    return send(method, url, std::move(body), std::move(headers));
  }

  /// A JSON call with extra request headers (Idempotency-Key, Authorization).
  http_client_response call_with(const std::string& method, const std::string& url,
                                 std::string body, header_list headers) {
    headers.emplace_back("Content-Type", "application/json");
    return send(method, url, std::move(body), std::move(headers));
  }

  boost::json::object call_json(const std::string& method, const std::string& url,
                                std::string body = {}) {
    return boost::json::parse(call(method, url, std::move(body)).body).as_object();
  }

private:
  http_client_response send(const std::string& method, const std::string& url, std::string body,
                            header_list headers) {
    http_client_request req;
    req.method = method;
    req.url = url;
    req.body = std::move(body);
    req.headers = std::move(headers);
    req.timeout = std::chrono::seconds{30};
    std::promise<http_client_response> done;
    auto result = done.get_future();
    http.send(std::move(req),
              [&done](http_client_response res) { done.set_value(std::move(res)); });
    return result.get();
  }
};

/// An answer read as a JSON object ({} when the body is empty or not an object).
struct json_answer {
  unsigned status = 0;
  boost::json::object body;
};

/// Blocking JSON calls whose answers are read as objects; `token` is sent as a bearer token.
struct json_client {
  client http;

  json_answer call(const std::string& method, const std::string& url, std::string body = {},
                   const std::string& token = {}) {
    header_list headers;
    if (!token.empty())
      headers.emplace_back("Authorization", "Bearer " + token);
    auto res = http.call_with(method, url, std::move(body), std::move(headers));
    auto value = boost::json::parse(res.body.empty() ? "{}" : res.body);
    return {res.status, value.is_object() ? value.as_object() : boost::json::object{}};
  }
};

/// A callback receiver: keeps every POSTed result event by request id.
struct receiver {
  http_server server;
  std::mutex mtx;
  std::condition_variable cv;
  std::map<std::string, std::vector<boost::json::object>> events;
  size_t total = 0;

  receiver() {
    std::string error;
    http_server_options options;
    options.port = 0;
    REQUIRE(server.start(
        options,
        [this](http_request&& req, http_responder respond) {
          auto event = boost::json::parse(req.body).as_object();
          auto id = std::string{event["data"].as_object()["request_id"].as_string()};
          {
            std::lock_guard<std::mutex> guard{mtx};
            events[id].push_back(std::move(event));
            ++total;
          }
          cv.notify_all();
          respond({200, "{}", "application/json", {}});
        },
        error));
  }

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(server.port()) + "/results";
  }

  bool wait_for(size_t n, std::chrono::seconds limit) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, limit, [&] { return total >= n; });
  }

  /// Events received for one request id.
  size_t count(const std::string& id) {
    std::lock_guard<std::mutex> guard{mtx};
    auto i = events.find(id);
    return i == events.end() ? 0 : i->second.size();
  }
};

} // namespace lps::test
