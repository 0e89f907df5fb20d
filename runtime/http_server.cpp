#include "runtime/http_server.hpp"
#include "runtime/error_code.hpp"
#include "runtime/json_writer.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>

// Threading model
// ---------------
// The io_context runs on dedicated threads. Every connection (session) lives on its own
// strand; all its socket work happens there. Handlers answer through a responder that may run
// on any thread: it looks the waiting session up in `server_core::waiting` (under a mutex) and
// posts the response onto the session's strand.
//
// Ownership: while a request is with the handler, the only strong reference to its session is
// the entry in `waiting`; responders hold the shared core and a ticket, never the session. So
// stop() can take every waiting session away (and destroy it before the io_context), and a
// responder called after stop() finds nothing and does nothing.
//
// A responder destroyed without being called answers 500 INTERNAL_ERROR (a handler bug must
// not leave the client waiting). A responder kept forever without being called keeps its
// connection open until stop(): the server cannot tell "slow" from "forgotten".
//
// TLS: one session template serves both stream types (beast::tcp_stream and
// beast::ssl_stream over it); only the start (server handshake) and the close (close_notify
// before the TCP half-close) differ. Timeouts always sit on the TCP layer.

namespace lps {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using beast::error_code;
using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::size_t read_chunk = 16 * 1024;
/// How long an error answer waits for the client to finish sending before the socket closes.
constexpr std::chrono::milliseconds max_linger{5000};
/// A streamed answer whose client falls this far behind is ended (it is not reading).
constexpr size_t max_stream_backlog = 1 << 20;
/// A watched pending request stops watching once this much of a pipelined next request is
/// buffered (it cannot read further to see a close without buffering without bound).
constexpr size_t max_watched_pipeline_bytes = 64 * 1024;

class session_base;

/// Shared by the server, its sessions and every responder (which may outlive the server).
struct server_core {
  http_server_options options;
  http_handler handler;
  /// Set when serving HTTPS; sessions' TLS streams are made from it.
  std::optional<ssl::context> tls;
  std::atomic<size_t> open{0};
  /// Taken to change `open`; `open_changed` is signalled after every change.
  std::mutex open_mutex;
  std::condition_variable open_changed;
  std::mutex mutex;
  bool stopped = false;                                                // guarded by mutex
  uint64_t next_ticket = 0;                                            // guarded by mutex
  std::unordered_map<uint64_t, std::shared_ptr<session_base>> waiting; // guarded by mutex
};

void count_connection(server_core& core, bool opened) {
  {
    std::lock_guard<std::mutex> lock{core.open_mutex};
    opened ? ++core.open : --core.open;
  }
  core.open_changed.notify_all();
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

/// The service's error envelope. The message is escaped: it may hold Beast's error text and
/// configured setting names.
http_response error_response(unsigned status, ec code, std::string_view text) {
  http_response r;
  r.status = status;
  object_writer body{r.body};
  object_writer error{body.member("error")};
  error.string("code", to_string(code)).string("message", text).null("correlation_id");
  error.member("details") += "{}";
  error.close();
  body.close();
  return r;
}

/// The body limit of a request to `method` `target` (the query string is ignored).
route_body_limit body_limit_for(const http_server_options& o, std::string_view method,
                                std::string_view target) {
  auto path = target.substr(0, target.find('?'));
  for (const auto& x : o.route_body_limits)
    if (x.method == method && x.path == path)
      return x;
  return {std::string(method), std::string(path), o.max_body_bytes, o.max_body_setting, {}};
}

/// The parser's limit until the route is known: the largest of all.
size_t largest_body_limit(const http_server_options& o) {
  auto result = o.max_body_bytes;
  for (const auto& x : o.route_body_limits)
    result = std::max(result, x.max_body_bytes);
  return result;
}

std::string too_large_text(const route_body_limit& limit) {
  auto text = "request body exceeds " + std::to_string(limit.max_body_bytes) + " bytes";
  return limit.setting.empty() ? text : text + " (raise " + limit.setting + ")";
}

bool is_http_category(const error_code& ec) {
  return ec.category() == make_error_code(http::error::end_of_stream).category();
}

http_request to_request(http::request<http::string_body>&& msg) {
  http_request req;
  req.method = std::string(msg.method_string());
  auto target = msg.target();
  auto q = target.find('?');
  req.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos)
    req.query = std::string(target.substr(q + 1));
  req.content_type = std::string(msg[http::field::content_type]);
  req.headers.reserve(static_cast<size_t>(std::distance(msg.begin(), msg.end())));
  for (const auto& f : msg)
    req.headers.emplace_back(lower(f.name_string()), std::string(f.value()));
  req.body = std::move(msg.body());
  return req;
}

/// What responders and the server need of a session, whatever its stream type.
class session_base : public std::enable_shared_from_this<session_base> {
public:
  session_base() = default;
  session_base(const session_base&) = delete;
  session_base& operator=(const session_base&) = delete;
  virtual ~session_base() = default;

  virtual net::any_io_executor executor() = 0;

  /// Writes the handler's answer (or an error of ours); runs on the session's strand.
  virtual void send(http_response r) = 0;

  /// Writes what the stream's writer gathered (HTTP chunks, framed already); runs on the
  /// session's strand.
  virtual void drain_stream() = 0;

  /// Ends a streamed answer once its queued chunks are written: with the last chunk
  /// (`complete`) or without it (a cut); runs on the session's strand.
  virtual void close_stream(bool complete) = 0;

  /// The handler subscribed to `watch` (its request's close watch): watch the connection
  /// while that request is pending; runs on the session's strand.
  virtual void watch_for_close(const http_close_watch* watch) = 0;
};

/// What a handler writes a streamed answer through. Pieces are framed as HTTP chunks into one
/// buffer, and only the first piece after a drain posts onto the session's strand: pieces
/// written while that post waits (several events of one upstream read, a burst) go out in one
/// socket write with it, so none waits for a later one and a burst costs one wake-up of the
/// I/O thread instead of one each (docs/benchmarks.md, "Streamed calls"). It holds the session
/// weakly, so a client that went away frees its connection at once; `ended_` is set by the
/// session (client gone, too far behind) and by stop().
class body_stream final : public http_body_stream {
public:
  body_stream(std::shared_ptr<server_core> core, std::weak_ptr<session_base> session)
      : core_(std::move(core)), session_(std::move(session)) {}

  bool write(std::string data) override {
    std::lock_guard<std::mutex> lock{mutex_};
    if (ended_)
      return false;
    append_chunk(data);
    if (drain_posted_)
      return true; // goes out with the drain already on its way
    // A finish() or cut() after this write posts after this drain: both under mutex_.
    drain_posted_ = post([](session_base& s) { s.drain_stream(); });
    if (!drain_posted_)
      ended_ = true;
    return drain_posted_;
  }

  void finish() override {
    close(true);
  }

  void cut() override {
    close(false);
  }

  /// The chunks written since the last drain (the session's strand).
  std::string take() {
    std::lock_guard<std::mutex> lock{mutex_};
    drain_posted_ = false;
    return std::exchange(pending_, {});
  }

  void end() {
    std::lock_guard<std::mutex> lock{mutex_};
    ended_ = true;
  }

private:
  /// One HTTP chunk: the size in hex, CRLF, the data, CRLF.
  void append_chunk(std::string_view data) {
    char size[20];
    auto end = std::to_chars(size, size + sizeof(size), data.size(), 16).ptr;
    pending_.append(size, end).append("\r\n").append(data).append("\r\n");
  }

  void close(bool complete) {
    std::lock_guard<std::mutex> lock{mutex_};
    if (std::exchange(ended_, true))
      return;
    post([complete](session_base& s) { s.close_stream(complete); });
  }

  /// Posts `f` onto the session's strand; false when the session or the server is gone.
  /// Under the server's mutex, as reply_slot posts: after stop() no session reference leaves.
  template <class F>
  bool post(F f) {
    std::lock_guard<std::mutex> lock{core_->mutex};
    auto s = session_.lock();
    if (core_->stopped || !s)
      return false;
    auto ex = s->executor();
    net::post(ex, [s = std::move(s), f = std::move(f)] { f(*s); });
    return true;
  }

  std::shared_ptr<server_core> core_;
  std::weak_ptr<session_base> session_;
  std::mutex mutex_;
  std::string pending_;       // guarded by mutex_
  bool drain_posted_ = false; // guarded by mutex_
  bool ended_ = false;        // guarded by mutex_
};

/// One request's http_close_watch: the handler subscribes from any thread, the session fires
/// it on its strand when the client is seen gone. Holds the session weakly, as body_stream.
class close_watch final : public http_close_watch,
                          public std::enable_shared_from_this<close_watch> {
public:
  close_watch(std::shared_ptr<server_core> core, std::weak_ptr<session_base> session)
      : core_(std::move(core)), session_(std::move(session)) {}

  void on_close(std::function<void()> callback) override {
    {
      std::lock_guard<std::mutex> lock{mutex_};
      if (!fired_) {
        callback_ = std::move(callback);
        callback = nullptr;
      }
    }
    if (callback) // the client was seen gone already
      return callback();
    // Posting under the mutex, as body_stream does: after stop() no session reference leaves.
    std::lock_guard<std::mutex> lock{core_->mutex};
    auto s = session_.lock();
    if (core_->stopped || !s)
      return;
    auto ex = s->executor();
    net::post(ex,
              [s = std::move(s), self = shared_from_this()] { s->watch_for_close(self.get()); });
  }

  /// The client is gone: runs the callback (outside the lock: it may take the handler's).
  void fire() {
    std::function<void()> callback;
    {
      std::lock_guard<std::mutex> lock{mutex_};
      if (std::exchange(fired_, true))
        return;
      callback = std::move(callback_);
    }
    if (callback)
      callback();
  }

private:
  std::shared_ptr<server_core> core_;
  std::weak_ptr<session_base> session_;
  std::mutex mutex_;
  bool fired_ = false;             // guarded by mutex_
  std::function<void()> callback_; // guarded by mutex_
};

/// Behind every copy of one responder: answers exactly once, from any thread.
class reply_slot {
public:
  reply_slot(std::shared_ptr<server_core> core, uint64_t ticket)
      : core_(std::move(core)), ticket_(ticket) {}

  reply_slot(const reply_slot&) = delete;
  reply_slot& operator=(const reply_slot&) = delete;

  ~reply_slot() {
    if (!done_.exchange(true))
      deliver(error_response(500, ec::internal_error, "the request was not answered"));
  }

  void reply(http_response r) {
    if (!done_.exchange(true))
      deliver(std::move(r));
  }

private:
  void deliver(http_response r) {
    // Posting under the mutex: once stop() has set `stopped`, no strong session reference
    // exists outside the io_context, which stop() then destroys.
    std::lock_guard<std::mutex> lock{core_->mutex};
    if (core_->stopped)
      return;
    auto it = core_->waiting.find(ticket_);
    if (it == core_->waiting.end())
      return;
    auto s = std::move(it->second);
    core_->waiting.erase(it);
    auto ex = s->executor();
    net::post(ex, [s = std::move(s), r = std::move(r)]() mutable { s->send(std::move(r)); });
  }

  std::shared_ptr<server_core> core_;
  uint64_t ticket_;
  std::atomic<bool> done_{false};
};

http_responder make_responder(std::shared_ptr<server_core> core, uint64_t ticket) {
  auto slot = std::make_shared<reply_slot>(std::move(core), ticket);
  return [slot](http_response r) { slot->reply(std::move(r)); };
}

template <class Stream>
Stream make_stream(tcp::socket&& socket, server_core& core) {
  if constexpr (std::is_same_v<Stream, tls_stream>)
    return Stream(std::move(socket), *core.tls);
  else
    return Stream(std::move(socket));
}

/// One connection, plain or TLS; every member function runs on the connection's strand.
template <class Stream>
class session final : public session_base {
  static constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;

public:
  session(tcp::socket&& socket, std::shared_ptr<server_core> core)
      : core_(std::move(core)), stream_(make_stream<Stream>(std::move(socket), *core_)) {
    count_connection(*core_, true);
  }

  ~session() override {
    count_connection(*core_, false);
  }

  void start() {
    error_code ignored;
    lowest().socket().set_option(tcp::no_delay(true), ignored);
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&session::begin, self()));
  }

  net::any_io_executor executor() override {
    return stream_.get_executor();
  }

  void send(http_response r) override {
    if (client_gone_)
      return; // seen gone while the handler held the request: nowhere to write
    if (close_reading_) {
      // A read watches for a close: end it first (one read at a time), then send.
      deferred_ = std::move(r);
      lowest().cancel();
      return;
    }
    awaiting_answer_ = false;
    if (r.stream && !head_)
      return start_stream(std::move(r));
    try {
      build_response(std::move(r));
    } catch (const std::exception& e) {
      // Bad header characters or a status Beast refuses: the handler's bug, not the client's.
      spdlog::warn("http server: cannot send the handler's response: {}", e.what());
      close_after_write_ = true;
      build_response(error_response(500, ec::internal_error, "invalid response"));
    }
    lowest().expires_after(core_->options.idle_timeout);
    http::async_write(stream_, response_, beast::bind_front_handler(&session::on_write, self()));
  }

  void drain_stream() override {
    if (!body_)
      return;
    auto data = body_->take();
    if (stream_ended_ || closing_ || data.empty())
      return;
    if (queued_bytes() + data.size() > max_stream_backlog) {
      spdlog::debug("http server: a streaming client fell {} bytes behind, ending its stream",
                    queued_bytes());
      return end_stream();
    }
    queued_ += data;
    if (!writing_)
      write_queued();
  }

  void close_stream(bool complete) override {
    if (!body_ || stream_ended_ || closing_)
      return;
    closing_ = true;
    if (complete)
      queued_ += "0\r\n\r\n"; // the last chunk: the body is complete
    if (!writing_)
      write_queued();
  }

  void watch_for_close(const http_close_watch* watch) override {
    if (watch == watch_.get() && awaiting_answer_ && !close_reading_ && !client_gone_)
      read_for_close();
    // Streaming already: watch_client() sees the close.
  }

private:
  std::shared_ptr<session> self() {
    return std::static_pointer_cast<session>(shared_from_this());
  }

  // -- streamed answers: the head, then chunks as the handler writes them, until the client
  // goes away (seen by a read that ends) or the server stops --

  void start_stream(http_response r) {
    stream_head_.emplace(http::status::ok, version_);
    stream_head_->result(r.status >= 200 && r.status <= 999 ? r.status : 500);
    stream_head_->set(http::field::server, "lps");
    if (!r.content_type.empty())
      stream_head_->set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers)
      stream_head_->insert(name, value);
    stream_head_->keep_alive(false);
    stream_head_->chunked(true);
    stream_serializer_.emplace(*stream_head_);
    http::async_write_header(
        stream_, *stream_serializer_,
        [self = self(), start = std::move(r.stream)](error_code ec, size_t) mutable {
          if (ec)
            return self->end_stream();
          self->body_ = std::make_shared<body_stream>(self->core_, self->weak_from_this());
          self->watch_client();
          start(self->body_);
        });
  }

  // A streaming client sends nothing more; a read that ends means it went away.
  void watch_client() {
    buffer_.consume(buffer_.size());
    lowest().async_read_some(buffer_.prepare(read_chunk), [self = self()](error_code ec, size_t) {
      if (ec)
        return self->end_stream();
      self->watch_client();
    });
  }

  // -- a watched pending request (http_close_watch): a read that ends means the client went
  // away; bytes that arrive are a pipelined next request, kept in buffer_ for later --

  void read_for_close() {
    if (buffer_.size() >= max_watched_pipeline_bytes)
      return;
    close_reading_ = true;
    stream_.async_read_some(buffer_.prepare(read_chunk), [self = self()](error_code ec, size_t n) {
      self->on_close_read(ec, n);
    });
  }

  void on_close_read(error_code ec, size_t n) {
    close_reading_ = false;
    if (!ec)
      buffer_.commit(n);
    if (ec && ec != net::error::operation_aborted)
      return client_left();
    if (deferred_) // the answer came: send() cancelled this read
      return send(*std::exchange(deferred_, std::nullopt));
    if (awaiting_answer_)
      read_for_close();
  }

  // The answer has nowhere to go: forget the request (its responder finds nothing), tell the
  // handler, close the socket.
  void client_left() {
    spdlog::debug("http server: a client left before its answer");
    client_gone_ = true;
    awaiting_answer_ = false;
    deferred_.reset();
    {
      std::lock_guard<std::mutex> lock{core_->mutex};
      core_->waiting.erase(ticket_);
    }
    watch_->fire();
    error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
  }

  /// Writes everything queued in one go: chunks drained while a write was under way wait
  /// for it and then leave together.
  void write_queued() {
    if (queued_.empty()) // only after close_stream(): everything queued is written
      return end_stream();
    writing_ = true;
    written_.swap(queued_);
    queued_.clear();
    net::async_write(stream_, net::buffer(written_),
                     [self = self()](error_code ec, size_t) { self->on_queued_written(ec); });
  }

  void on_queued_written(error_code ec) {
    writing_ = false;
    written_.clear();
    if (ec)
      return end_stream();
    if (!queued_.empty() || closing_)
      write_queued();
  }

  size_t queued_bytes() const {
    return queued_.size() + written_.size();
  }

  // Closing the socket ends the pending read and write; the session (and its count in
  // open_connections) goes with the last of them.
  void end_stream() {
    if (std::exchange(stream_ended_, true))
      return;
    if (body_)
      body_->end();
    if (!closing_ && watch_) // ended before the handler ended it: the client is gone
      watch_->fire();
    queued_.clear();
    error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
  }

  /// The TCP layer: timeouts, socket options, half-close.
  beast::tcp_stream& lowest() {
    return beast::get_lowest_layer(stream_);
  }

  void begin() {
    if constexpr (is_tls) {
      // A silent or slow client gets read_timeout for the whole handshake.
      lowest().expires_after(core_->options.read_timeout);
      stream_.async_handshake(ssl::stream_base::server,
                              beast::bind_front_handler(&session::on_handshake, self()));
    } else {
      wait_for_request();
    }
  }

  void on_handshake(error_code ec) {
    if (ec) {
      // Plain HTTP on the TLS port, an untrusting client, a scanner: nothing to answer.
      spdlog::debug("http server: TLS handshake failed: {}", ec.message());
      return;
    }
    wait_for_request();
  }

  void build_response(http_response&& r) {
    response_ = {};
    response_.version(version_);
    // 1xx as a final answer or a code Beast cannot write would break the connection.
    response_.result(r.status >= 200 && r.status <= 999 ? r.status : 500);
    response_.set(http::field::server, "lps");
    if (!r.content_type.empty())
      response_.set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers)
      response_.insert(name, value);
    response_.keep_alive(keep_alive_ && !close_after_write_);
    auto code = response_.result();
    if (code == http::status::no_content || code == http::status::not_modified)
      return;                             // no body and no Content-Length allowed
    response_.body() = std::move(r.body); // an answer of some KB: moved, not copied
    response_.prepare_payload();
    if (head_)
      response_.body().clear(); // Content-Length stays: it describes the GET answer
  }

  void wait_for_request() {
    parser_.emplace();
    parser_->body_limit(largest_body_limit(core_->options));
    parser_->header_limit(
        static_cast<uint32_t>(std::min<size_t>(core_->options.max_header_bytes, UINT32_MAX)));
    if (buffer_.size() > 0) // a pipelined request is already here
      return read_header();
    // Idle until the first byte; from then on the whole request gets read_timeout.
    lowest().expires_after(core_->options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(read_chunk),
                            beast::bind_front_handler(&session::on_first_bytes, self()));
  }

  void on_first_bytes(error_code ec, size_t n) {
    if (ec) {
      if (ec != net::error::eof && ec != ssl::error::stream_truncated)
        spdlog::debug("http server: idle connection closed: {}", ec.message());
      return;
    }
    buffer_.commit(n);
    read_header();
  }

  void read_header() {
    lowest().expires_after(core_->options.read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&session::on_header, self()));
  }

  void on_header(error_code ec, size_t) {
    if (ec)
      return fail_request(ec);
    const auto& req = parser_->get();
    // Before any of the body is read (and before 100 Continue): the route's own limit.
    auto limit = body_limit_for(core_->options, req.method_string(), req.target());
    auto length = parser_->content_length();
    if (length && *length > limit.max_body_bytes)
      return send_too_large(limit);
    parser_->body_limit(limit.max_body_bytes);
    bool wants_continue = req.version() >= 11 && !parser_->is_done()
                          && beast::iequals(req[http::field::expect], "100-continue");
    if (!wants_continue)
      return read_body();
    net::async_write(stream_, net::buffer(continue_line.data(), continue_line.size()),
                     [self = self()](error_code wec, size_t) {
                       if (!wec)
                         self->read_body();
                     });
  }

  void read_body() {
    if (parser_->is_done())
      return on_body({}, 0);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&session::on_body, self()));
  }

  void on_body(error_code ec, size_t) {
    if (ec)
      return fail_request(ec);
    dispatch_request();
  }

  /// Limits and syntax errors get an answer; timeouts, resets and TLS errors just close.
  void fail_request(const error_code& ec) {
    const auto& limits = core_->options;
    if (ec == http::error::body_limit) {
      const auto& req = parser_->get();
      return send_too_large(body_limit_for(limits, req.method_string(), req.target()));
    }
    if (ec == http::error::header_limit)
      return send_error(431, ec::request_header_fields_too_large,
                        "request header block exceeds " + std::to_string(limits.max_header_bytes)
                            + " bytes");
    if (!is_http_category(ec) || ec == http::error::end_of_stream
        || ec == http::error::partial_message) {
      spdlog::debug("http server: connection closed while reading: {}", ec.message());
      return;
    }
    send_error(400, lps::ec::invalid_request, "malformed HTTP request: " + ec.message());
  }

  void send_too_large(const route_body_limit& limit) {
    if (!limit.too_large_body)
      return send_error(413, ec::payload_too_large, too_large_text(limit));
    close_after_write_ = true;
    keep_alive_ = false;
    head_ = false;
    version_ = 11;
    http_response r;
    r.status = 413;
    r.body = limit.too_large_body(too_large_text(limit));
    send(std::move(r));
  }

  void send_error(unsigned status, ec code, const std::string& text) {
    close_after_write_ = true;
    keep_alive_ = false;
    head_ = false;
    version_ = 11;
    send(error_response(status, code, text));
  }

  void dispatch_request() {
    auto msg = parser_->release();
    version_ = msg.version();
    keep_alive_ = msg.keep_alive();
    head_ = msg.method() == http::verb::head;
    close_after_write_ = false;
    auto req = to_request(std::move(msg));
    lowest().expires_never(); // the handler may take its time; see the note at the top
    uint64_t ticket = 0;
    {
      std::lock_guard<std::mutex> lock{core_->mutex};
      if (core_->stopped)
        return;
      ticket = core_->next_ticket++;
      core_->waiting.emplace(ticket, shared_from_this());
    }
    ticket_ = ticket;
    awaiting_answer_ = true;
    watch_ = std::make_shared<close_watch>(core_, weak_from_this());
    req.close_watch = watch_;
    http_responder responder = make_responder(core_, ticket);
    try {
      core_->handler(std::move(req), std::move(responder));
    } catch (const std::exception& e) {
      // The responder's copies die with the stack: the client gets a 500, not silence.
      spdlog::error("http server: handler threw: {}", e.what());
    } catch (...) {
      spdlog::error("http server: handler threw a non-standard exception");
    }
  }

  void on_write(error_code ec, size_t) {
    if (ec) {
      spdlog::debug("http server: write failed: {}", ec.message());
      return;
    }
    if (close_after_write_)
      return linger();
    if (!response_.keep_alive())
      return close();
    wait_for_request();
  }

  /// Ends a connection after its last answer: close_notify first with TLS (waiting a bounded
  /// time for the client's), then the TCP half-close; the socket closes with the session.
  void close() {
    if constexpr (is_tls) {
      lowest().expires_after(std::min(core_->options.read_timeout, max_linger));
      stream_.async_shutdown([self = self()](error_code) { self->half_close(); });
    } else {
      half_close();
    }
  }

  void half_close() {
    error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  // After an error answer the client may still be sending (a 2 MB body, say). Closing now
  // would make the kernel reset the connection and the client could lose our answer, so
  // half-close and read and drop what arrives for a bounded time (with TLS after the
  // close_notify exchange, which shares that time; the rest is dropped undecrypted).
  void linger() {
    buffer_.consume(buffer_.size());
    lowest().expires_after(std::min(core_->options.read_timeout, max_linger));
    if constexpr (is_tls) {
      stream_.async_shutdown([self = self()](error_code) {
        self->half_close();
        self->drain();
      });
    } else {
      half_close();
      drain();
    }
  }

  void drain() {
    lowest().async_read_some(buffer_.prepare(read_chunk), [self = self()](error_code ec, size_t) {
      if (!ec)
        self->drain();
    });
  }

  // core_ first: the stream is made from its TLS context and destroyed before it.
  std::shared_ptr<server_core> core_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_ = false;
  bool close_after_write_ = false;
  // A streamed answer: its head, the writer given to the handler, chunks not written yet.
  std::optional<http::response<http::empty_body>> stream_head_;
  std::optional<http::response_serializer<http::empty_body>> stream_serializer_;
  std::shared_ptr<body_stream> body_;
  /// Chunks drained and not written yet, and those of the write under way.
  std::string queued_;
  std::string written_;
  bool writing_ = false;
  bool stream_ended_ = false;
  /// The handler finished or cut the stream: the connection closes once queued_ is written.
  bool closing_ = false;
  // The pending request (http_close_watch): its ticket in `waiting` and its watch; whether a
  // read watches for a close, an answer waiting for that read to end, the client seen gone.
  uint64_t ticket_ = 0;
  bool awaiting_answer_ = false;
  std::shared_ptr<close_watch> watch_;
  bool close_reading_ = false;
  std::optional<http_response> deferred_;
  bool client_gone_ = false;
};

/// Opens `path` for reading, so a missing or unreadable file gets the system's reason.
bool readable(const std::string& path, std::string& why) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    why = std::strerror(errno);
    return false;
  }
  std::fclose(f);
  return true;
}

/// Builds the server TLS context from the options; false with `error` naming the culprit.
bool load_tls(const http_server_options& o, std::optional<ssl::context>& out, std::string& error) {
  const auto& cert = o.tls_cert_file;
  const auto& key = o.tls_key_file;
  if (cert.empty() && key.empty())
    return true;
  if (cert.empty() || key.empty()) {
    error = cert.empty() ? "TLS key file '" + key + "' given without a certificate file"
                         : "TLS certificate file '" + cert + "' given without a key file";
    return false;
  }
  std::string why;
  if (!readable(cert, why)) {
    error = "cannot read TLS certificate file '" + cert + "': " + why;
    return false;
  }
  if (!readable(key, why)) {
    error = "cannot read TLS key file '" + key + "': " + why;
    return false;
  }
  try {
    ssl::context ctx{ssl::context::tls_server};
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2
                    | ssl::context::no_sslv3);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    // An encrypted key must fail here, not prompt on the terminal.
    ctx.set_password_callback(
        [](std::size_t, ssl::context::password_purpose) { return std::string(); });
    error_code ec;
    ctx.use_certificate_chain_file(cert, ec);
    if (ec) {
      error = "invalid TLS certificate file '" + cert + "': " + ec.message();
      return false;
    }
    ctx.use_private_key_file(key, ssl::context::pem, ec);
    if (ec
        && ERR_GET_REASON(static_cast<unsigned long>(ec.value())) != X509_R_KEY_VALUES_MISMATCH) {
      error = "invalid TLS key file '" + key + "': " + ec.message();
      return false;
    }
    if (ec || SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
      error = "TLS key file '" + key + "' does not match certificate file '" + cert + "'";
      return false;
    }
    out.emplace(std::move(ctx));
  } catch (const std::exception& e) {
    error = std::string("cannot set up TLS: ") + e.what();
    return false;
  }
  return true;
}

} // namespace

struct http_server::impl {
  std::shared_ptr<server_core> core;
  // Declaration order is destruction order in reverse: the io_context must outlive every
  // I/O object.
  std::optional<net::io_context> ioc;
  std::optional<tcp::acceptor> acceptor;
  std::optional<net::steady_timer> retry_timer;
  std::vector<std::thread> threads;
  std::atomic<uint16_t> port{0};
  std::mutex lifecycle;   // start() and the signalling half of stop()
  bool started = false;   // guarded by lifecycle
  bool stopped = false;   // guarded by lifecycle
  std::mutex teardown;    // the joining half of stop(); never taken on an I/O thread
  bool torn_down = false; // guarded by teardown

  bool listen(const http_server_options& options, std::string& error);
  void accept();
  void on_accept(error_code ec, tcp::socket socket);
  void run_thread();
  bool on_io_thread() const;
  void tear_down();
};

bool http_server::impl::listen(const http_server_options& options, std::string& error) {
  error_code ec;
  tcp::resolver resolver{*ioc};
  auto results =
      resolver.resolve(options.host, std::to_string(options.port), tcp::resolver::passive, ec);
  if (!ec && results.empty())
    ec = net::error::host_not_found;
  if (!ec) {
    auto endpoint = results.begin()->endpoint();
    acceptor.emplace(*ioc);
    acceptor->open(endpoint.protocol(), ec);
    if (!ec)
      acceptor->set_option(net::socket_base::reuse_address(true), ec);
    if (!ec)
      acceptor->bind(endpoint, ec);
    if (!ec)
      acceptor->listen(net::socket_base::max_listen_connections, ec);
    if (!ec)
      port = acceptor->local_endpoint(ec).port();
  }
  if (ec) {
    error = "cannot listen on " + options.host + ":" + std::to_string(options.port) + ": "
            + ec.message();
    return false;
  }
  return true;
}

void http_server::impl::accept() {
  acceptor->async_accept(net::make_strand(*ioc), [this](error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void http_server::impl::on_accept(error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted)
    return;
  if (ec) {
    // E.g. out of file descriptors: pause instead of spinning on the error.
    spdlog::warn("http server: accept failed: {}", ec.message());
    retry_timer->expires_after(std::chrono::milliseconds(50));
    retry_timer->async_wait([this](error_code tec) {
      if (!tec)
        accept();
    });
    return;
  }
  if (core->open.load() >= core->options.max_connections) {
    spdlog::debug("http server: connection limit {} reached, closing a new connection",
                  core->options.max_connections);
    error_code ignored;
    socket.close(ignored);
  } else if (core->tls) {
    std::make_shared<session<tls_stream>>(std::move(socket), core)->start();
  } else {
    std::make_shared<session<plain_stream>>(std::move(socket), core)->start();
  }
  accept();
}

void http_server::impl::run_thread() {
  for (;;) {
    try {
      ioc->run();
      return;
    } catch (const std::exception& e) {
      spdlog::error("http server: I/O thread caught: {}", e.what());
    }
  }
}

http_server::http_server() : impl_(std::make_unique<impl>()) {}

http_server::~http_server() {
  stop();
}

bool http_server::start(const http_server_options& options, http_handler handler,
                        std::string& error) {
  std::lock_guard<std::mutex> guard{impl_->lifecycle};
  if (impl_->started) {
    error = "http server already started (a server starts once)";
    return false;
  }
  if (!handler) {
    error = "http server needs a handler";
    return false;
  }
  std::optional<ssl::context> tls;
  if (!load_tls(options, tls, error))
    return false;
  auto threads = std::max(1u, options.io_threads);
  impl_->core = std::make_shared<server_core>();
  impl_->core->options = options;
  impl_->core->handler = std::move(handler);
  if (tls)
    impl_->core->tls.emplace(std::move(*tls));
  impl_->ioc.emplace(static_cast<int>(threads));
  if (!impl_->listen(options, error)) {
    impl_->acceptor.reset();
    impl_->ioc.reset();
    return false;
  }
  impl_->retry_timer.emplace(*impl_->ioc);
  impl_->accept();
  for (unsigned i = 0; i < threads; ++i)
    impl_->threads.emplace_back([this] { impl_->run_thread(); });
  impl_->started = true;
  spdlog::debug("http server: listening on {}:{}{}", options.host, impl_->port.load(),
                impl_->core->tls ? " (TLS)" : "");
  return true;
}

uint16_t http_server::port() const {
  return impl_->port.load();
}

size_t http_server::open_connections() const {
  return impl_->core ? impl_->core->open.load() : 0;
}

bool http_server::wait_open_connections(size_t n, std::chrono::milliseconds limit) const {
  if (!impl_->core)
    return n == 0;
  auto& core = *impl_->core;
  std::unique_lock<std::mutex> lock{core.open_mutex};
  return core.open_changed.wait_for(lock, limit, [&] { return core.open.load() == n; });
}

bool http_server::impl::on_io_thread() const {
  auto self = std::this_thread::get_id();
  return std::any_of(threads.begin(), threads.end(),
                     [self](const std::thread& t) { return t.get_id() == self; });
}

// Single-threaded: close everything before the io_context goes away. Sessions inside pending
// operations die with the io_context; waiting ones are dropped here.
void http_server::impl::tear_down() {
  for (auto& t : threads)
    t.join();
  threads.clear();
  std::unordered_map<uint64_t, std::shared_ptr<session_base>> waiting;
  {
    std::lock_guard<std::mutex> lock{core->mutex};
    waiting.swap(core->waiting);
  }
  error_code ignored;
  acceptor->close(ignored);
  waiting.clear();
  retry_timer.reset();
  acceptor.reset();
  ioc.reset();
}

// From a handler (an I/O thread, which cannot join itself) stop() only stops the io_context;
// the destructor or a later stop() from another thread finishes the job.
void http_server::stop() {
  {
    std::lock_guard<std::mutex> guard{impl_->lifecycle};
    if (!impl_->started)
      return;
    if (!impl_->stopped) {
      impl_->stopped = true;
      {
        std::lock_guard<std::mutex> lock{impl_->core->mutex};
        impl_->core->stopped = true;
      }
      impl_->ioc->stop();
    }
  }
  if (impl_->on_io_thread()) {
    spdlog::warn("http server: stop() called on an I/O thread; finishing later");
    return;
  }
  std::lock_guard<std::mutex> guard{impl_->teardown};
  if (impl_->torn_down)
    return;
  impl_->torn_down = true;
  impl_->tear_down();
}

} // namespace lps
