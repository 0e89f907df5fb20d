#pragma once

// Internal to the HTTP client (runtime/http_client*.cpp): one outbound request on its way
// through a pool, its deadlines, and the tracker that lets stop() wait for callbacks.
// Only Beast's message types are needed here, not its networking.

#include "runtime/http_client.hpp"
#include "runtime/url.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

namespace lps::http_client_detail {

using clock_type = std::chrono::steady_clock;
using wire_request = boost::beast::http::request<boost::beast::http::string_body>;

/// Default limit of a response body (a batch result download asks for more).
constexpr size_t max_response_body = size_t{64} << 20;

/// Counts requests whose callback has not run yet, so stop() can wait for them.
class tracker {
public:
  void add();
  void done();
  /// True when every callback ran within `limit`.
  bool wait_idle(std::chrono::milliseconds limit);

private:
  std::mutex mutex_;
  std::condition_variable idle_;
  size_t outstanding_ = 0;
};

/// A response that says why there is none.
http_client_response failure(transport_error kind, std::string message);

/// One request and its callback, which runs exactly once: normally with the result, and
/// from the destructor (as `reset`) when the job is dropped at shutdown.
class job {
public:
  job(http_client_callback done, tracker& track);
  job(const job&) = delete;
  job& operator=(const job&) = delete;
  ~job();

  /// Runs the callback (the first call only) and tells the tracker.
  void finish(http_client_response r);

  wire_request request;
  /// Length of the call once a connection takes it.
  std::chrono::milliseconds timeout{0};
  /// Until when it may wait in the pool's queue for a connection.
  clock_type::time_point queue_deadline;
  /// Deadline of the call; set when a connection takes the job (connection::run).
  clock_type::time_point deadline;
  /// Largest response body accepted.
  size_t max_body = max_response_body;
  bool head = false;
  /// Already retried once after a stale keep-alive connection failed.
  bool retried = false;
  /// Set: a 2xx body is streamed to it instead of collected.
  http_body_callback on_body_data;
  /// Set: the caller may cancel the call through it.
  std::shared_ptr<http_call_cancel> cancel;

  bool cancelled() const {
    return cancel && cancel->cancelled();
  }

private:
  http_client_callback done_;
  tracker& track_;
  bool finished_ = false;
};

using job_ptr = std::unique_ptr<job>;

/// Builds the wire request; throws std::invalid_argument on bad input.
void build_request(job& j, const http_url& url, http_client_request& in);

} // namespace lps::http_client_detail
