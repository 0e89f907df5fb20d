#pragma once

// The HTTP/1.1 server (Boost.Beast, in http_server.cpp only), plain or over TLS (OpenSSL). It
// knows no actor: it hands each request to one handler and sends whatever the handler answers,
// from any thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lps {

/// Tells a handler that its client went away before the answer ended, so work done only for
/// that client (an upstream call) can stop at once instead of at the next write.
class http_close_watch {
public:
  virtual ~http_close_watch() = default;

  /// Calls `callback` once, on an I/O thread (it must be quick), if the client closes or
  /// resets its connection before the answer is whole: while the handler still holds the
  /// request, or while a streamed answer is being written. Callable from any thread, once per
  /// request. Only then does the server watch the connection while the request is pending (an
  /// extra read: a pipelined next request is kept for later, not taken for a close), so
  /// requests nobody watches cost nothing. A watched client that half-closes its side after
  /// its request counts as gone (as nginx sees it). The answer of a client seen gone is
  /// dropped, never written.
  virtual void on_close(std::function<void()> callback) = 0;
};

/// One received request.
struct http_request {
  /// GET, POST, ...
  std::string method;
  /// Path without the query string ("/api/v1/status/abc").
  std::string path;
  /// Query string without '?', possibly empty.
  std::string query;
  /// Content-Type header value, possibly empty.
  std::string content_type;
  std::string body;
  /// All headers as received (names lower-cased).
  std::vector<std::pair<std::string, std::string>> headers;
  /// Set by http_server: says when the client leaves before its answer ends.
  std::shared_ptr<http_close_watch> close_watch;
};

/// The body of a streamed answer (e.g. server-sent events), written piece by piece.
class http_body_stream {
public:
  virtual ~http_body_stream() = default;

  /// Queues `data` for the client; callable from any thread. False once the stream has
  /// ended (the client went away, fell more than 1 MiB behind, or the server stopped): stop
  /// writing then.
  virtual bool write(std::string data) = 0;

  /// Ends the answer after what is queued: the last (empty) chunk, then the connection
  /// closes. Callable from any thread; later writes are refused.
  virtual void finish() = 0;

  /// Breaks the answer off after what is queued: the connection closes without the last
  /// chunk, so the client sees a cut body (what a dying upstream does; the mock provider's
  /// stream faults use it). Callable from any thread; later writes are refused.
  virtual void cut() = 0;
};

/// Gets the stream of a streamed answer, once its status and headers are sent.
using http_stream_start = std::function<void(std::shared_ptr<http_body_stream>)>;

/// The answer to one request.
struct http_response {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  /// Extra headers (e.g. Retry-After).
  std::vector<std::pair<std::string, std::string>> headers;
  /// Set: the answer is a stream instead of `body`. The server sends the status and headers
  /// (chunked transfer encoding, `Connection: close`), then calls this once with the stream.
  /// The connection stays open until the stream is finished or cut, the client closes it or
  /// the server stops.
  http_stream_start stream = {};
};

/// Sends the response; callable from any thread, exactly once.
using http_responder = std::function<void(http_response)>;

/// Handles one request. Runs on an I/O thread: must not block for long.
using http_handler = std::function<void(http_request&&, http_responder)>;

/// A route with its own body limit (a bulk upload may be far larger than one request).
struct route_body_limit {
  std::string method;
  /// Exact path, without a query string.
  std::string path;
  size_t max_body_bytes = 0;
  /// The setting that raises it, named in the 413 answer.
  std::string setting;
  /// The 413 body for the message (a route with its own error shape, e.g. the OpenAI-shaped
  /// gateway); empty: lps's error body.
  std::function<std::string(const std::string& message)> too_large_body = {};
};

/// Limits and threads.
struct http_server_options {
  std::string host = "127.0.0.1";
  /// 0: any free port (see http_server::port()).
  uint16_t port = 8090;
  unsigned io_threads = 1;
  /// Bodies over this get 413 PAYLOAD_TOO_LARGE (the connection is closed afterwards).
  size_t max_body_bytes = 1 << 20;
  /// The setting that raises max_body_bytes, named in 413 answers ("": none named).
  std::string max_body_setting;
  /// Routes with a limit of their own instead of max_body_bytes; chosen from the request
  /// line and headers, before any of the body is read.
  std::vector<route_body_limit> route_body_limits;
  /// Header block limit; larger gets 431.
  size_t max_header_bytes = 16 * 1024;
  /// A request must arrive completely within this time once started (slow clients).
  std::chrono::milliseconds read_timeout{30000};
  /// Idle keep-alive connections are closed after this.
  std::chrono::milliseconds idle_timeout{60000};
  /// New connections beyond this are closed at once.
  size_t max_connections = 10000;
  /// HTTPS: the certificate chain (PEM, server certificate first) and its private key (PEM,
  /// unencrypted). Both empty: plain HTTP; one without the other: start() fails. With TLS
  /// every connection does the server handshake (within read_timeout) before HTTP starts.
  std::string tls_cert_file;
  std::string tls_key_file;
};

class http_server {
public:
  http_server();
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Loads the TLS certificate and key (if set), binds, listens and starts the I/O threads.
  /// Returns false with `error` on failure (a TLS file error names the file).
  bool start(const http_server_options& options, http_handler handler, std::string& error);

  /// The bound port (useful with port 0).
  uint16_t port() const;

  /// Stops accepting, closes connections and joins the I/O threads. Idempotent.
  void stop();

  /// Connections currently open.
  size_t open_connections() const;

  /// Waits until open_connections() == n; false when `limit` passed first. Lets a test wait
  /// for the server to release a connection without polling.
  bool wait_open_connections(size_t n, std::chrono::milliseconds limit) const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace lps
