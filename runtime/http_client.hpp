#pragma once

// The outbound HTTP/1.1 client (Boost.Beast + OpenSSL, in runtime/http_client*.cpp only): used
// for callback delivery and provider calls. Asynchronous, keep-alive pools per origin,
// http:// and https:// with certificate and host-name verification.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lps {

/// Why a call produced no HTTP response.
enum class transport_error : uint8_t {
  none = 0,
  /// Connect, TLS handshake or response did not complete in time.
  timeout,
  /// Could not resolve or connect.
  connect,
  /// The peer closed or reset the connection mid-exchange.
  reset,
  /// TLS handshake or certificate verification failed.
  tls,
  /// Bad URL or other local problem.
  invalid,
  /// The caller cancelled the call (http_call_cancel) before it completed.
  cancelled,
};

/// "none", "timeout", "connect", "reset", "tls", "invalid", "cancelled". Inline, so code that
/// names a transport error (the gateway's translators) needs no link to the client.
inline const char* to_string(transport_error x) {
  switch (x) {
  case transport_error::none:
    return "none";
  case transport_error::timeout:
    return "timeout";
  case transport_error::connect:
    return "connect";
  case transport_error::reset:
    return "reset";
  case transport_error::tls:
    return "tls";
  case transport_error::invalid:
    return "invalid";
  case transport_error::cancelled:
    return "cancelled";
  }
  return "invalid";
}

/// Cancels a call in flight, from any thread: give the same token to the request
/// (http_client_request::cancel) and call cancel() when the answer is no longer wanted (a
/// gateway client disconnected mid-stream). A queued call leaves the queue; a running one has
/// its connection closed (never returned to the pool for reuse, since the rest of its answer
/// would still arrive on it); either way the final callback runs with
/// transport_error::cancelled, unless the call completed first. One token per call.
class http_call_cancel {
public:
  /// Idempotent.
  void cancel();
  bool cancelled() const;

  /// Internal to the client: what cancel() does for the running call; cleared when the
  /// call ends.
  void set_hook(std::function<void()> hook);
  void clear_hook();

private:
  mutable std::mutex mutex_;
  bool cancelled_ = false;
  std::function<void()> hook_;
};

/// Gets each piece of a streamed body as it arrives, on a client I/O thread (must not block).
using http_body_callback = std::function<void(std::string_view piece)>;

struct http_client_request {
  /// GET, POST, ...
  std::string method = "POST";
  /// http://host[:port]/path?query or https://...
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// Deadline of the call itself (connect + write + read), counted from the moment a pooled
  /// connection takes the request, not while it waits for one. A call that runs out of it has
  /// its connection closed before the callback runs, so a retry never overlaps it.
  std::chrono::milliseconds timeout{30000};
  /// Longest wait for a free pooled connection before the call starts (then it fails with
  /// transport_error::timeout, never having been sent); 0: as long as `timeout`. The worst
  /// case of one send() is therefore queue_timeout + timeout.
  std::chrono::milliseconds queue_timeout{0};
  /// Largest response body accepted (0: the client's default of 64 MiB); larger bodies
  /// fail the call. Batch result files need more. A streamed body counts in full too.
  size_t max_response_bytes = 0;
  /// Set: the body of a 2xx answer is streamed (e.g. server-sent events): each piece goes
  /// here as soon as it is read, in order, and the final callback gets the status and
  /// headers with an empty body (or the error that cut the stream). Other statuses are
  /// collected whole in the final response's body as usual (an error answer is one
  /// document), so a caller can still retry before anything was streamed. `timeout` covers
  /// the whole stream.
  http_body_callback on_body_data = {};
  /// Set: the token that cancels this call (see http_call_cancel).
  std::shared_ptr<http_call_cancel> cancel;
};

struct http_client_response {
  /// HTTP status, 0 when `error` != none.
  unsigned status = 0;
  std::string body;
  /// Response headers, names lower-cased.
  std::vector<std::pair<std::string, std::string>> headers;
  transport_error error = transport_error::none;
  /// Human-readable detail of a transport error (never contains request headers).
  std::string error_message;
};

/// Called once per request, on a client I/O thread.
using http_client_callback = std::function<void(http_client_response)>;

struct http_client_options {
  unsigned io_threads = 1;
  /// Keep-alive connections kept per origin (scheme, host, port); more requests wait.
  size_t max_connections_per_origin = 32;
  /// Extra CA bundle (PEM) trusted besides the system store; empty for none.
  std::string ca_file;
  /// Verify certificates and host names (only tests against self-made CAs turn it off).
  bool verify_peer = true;
  /// Called on an I/O thread with each address a host resolved to (text; IPv6 without
  /// brackets) right before connecting, so DNS rebinding cannot slip past it: a non-empty
  /// answer refuses that address and says why. When every address is refused the call fails
  /// with transport_error::invalid and the first answer as its message, without connecting.
  /// Empty: every address is allowed.
  std::function<std::string(const std::string& address)> address_filter = {};
};

/// The interface provider and callback actors get, so unit tests can pass a fake.
class http_transport {
public:
  virtual ~http_transport() = default;
  /// Sends asynchronously; `done` runs exactly once.
  virtual void send(http_client_request request, http_client_callback done) = 0;
};

class http_client : public http_transport {
public:
  explicit http_client(const http_client_options& options);
  ~http_client() override;
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  void send(http_client_request request, http_client_callback done) override;

  /// Cancels outstanding work (callbacks get transport_error::reset) and joins threads.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace lps
