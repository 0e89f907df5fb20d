#include "runtime/http_client.hpp"
#include "runtime/url.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>

// Design
// ------
// One pool per origin (scheme, host, port). A pool and all its connections live on one strand,
// so the pool's queue, idle list and connection state need no locks. send() parses the URL on
// the caller's thread, builds the Beast request and posts the job to the pool's strand.
// A job waits in the pool's queue at most until its queue deadline; its call deadline starts
// only when a connection takes it, so a busy pool never eats into the call's own timeout.
//
// Every job owns the user's callback and fires it exactly once: normally with the result, and
// from its destructor (as `reset`) when the job is dropped at shutdown. stop() fails queued and
// running work, waits a bounded time for callbacks, then stops the io_context; whatever is left
// reports `reset` as it is destroyed.

namespace lps {

const char* to_string(transport_error x) {
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
  }
  return "invalid";
}

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using beast::error_code;
using clock_type = std::chrono::steady_clock;
using strand_type = net::strand<net::io_context::executor_type>;
using endpoint_type = tcp::endpoint;
using resolved_type = tcp::resolver::results_type;

/// Default limit of a response body (a batch result download asks for more).
constexpr size_t max_response_body = size_t{64} << 20;
constexpr uint32_t max_response_header = 64 * 1024;
/// Idle keep-alive connections are closed after this (most servers drop them sooner).
constexpr std::chrono::seconds max_idle{30};
/// How long stop() waits for outstanding callbacks before tearing the io_context down.
constexpr std::chrono::seconds stop_grace{2};

bool is_http_category(const error_code& ec) {
  return ec.category() == make_error_code(http::error::end_of_stream).category();
}

bool valid_token(std::string_view s) {
  static constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || extra.find(static_cast<char>(c)) != std::string_view::npos;
  });
}

bool valid_header_value(std::string_view s) {
  return std::none_of(s.begin(), s.end(),
                      [](unsigned char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// -- jobs ----------------------------------------------------------------------------------------

/// Counts requests whose callback has not run yet, so stop() can wait for them.
class tracker {
public:
  void add() {
    std::lock_guard<std::mutex> lock{mutex_};
    ++outstanding_;
  }

  void done() {
    std::lock_guard<std::mutex> lock{mutex_};
    if (--outstanding_ == 0)
      idle_.notify_all();
  }

  bool wait_idle(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock{mutex_};
    return idle_.wait_for(lock, limit, [this] { return outstanding_ == 0; });
  }

private:
  std::mutex mutex_;
  std::condition_variable idle_;
  size_t outstanding_ = 0;
};

http_client_response failure(transport_error kind, std::string message) {
  http_client_response r;
  r.error = kind;
  r.error_message = std::move(message);
  return r;
}

/// One request and its callback, which runs exactly once (see the note at the top).
class job {
public:
  job(http_client_callback done, tracker& track) : done_(std::move(done)), track_(track) {
    track_.add();
  }

  job(const job&) = delete;
  job& operator=(const job&) = delete;

  ~job() {
    if (!finished_)
      finish(failure(transport_error::reset, "http client stopped"));
  }

  void finish(http_client_response r) {
    if (finished_)
      return;
    finished_ = true;
    auto fn = std::move(done_);
    try {
      if (fn)
        fn(std::move(r));
    } catch (const std::exception& e) {
      spdlog::error("http client: callback threw: {}", e.what());
    } catch (...) {
      spdlog::error("http client: callback threw a non-standard exception");
    }
    track_.done();
  }

  http::request<http::string_body> request;
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

private:
  http_client_callback done_;
  tracker& track_;
  bool finished_ = false;
};

using job_ptr = std::unique_ptr<job>;

/// Builds the wire request; throws std::invalid_argument on bad input.
void build_request(job& j, const http_url& url, http_client_request& in) {
  if (!valid_token(in.method))
    throw std::invalid_argument("invalid method");
  auto& req = j.request;
  req.version(11);
  req.method_string(in.method);
  req.target(url.target);
  req.set(http::field::host, url.host_header());
  req.set(http::field::user_agent, "lps/0.1");
  for (const auto& [name, value] : in.headers) {
    // No names or values in the message: headers may carry credentials.
    if (!valid_token(name) || !valid_header_value(value))
      throw std::invalid_argument("invalid request header");
    req.set(name, value);
  }
  req.body() = std::move(in.body);
  req.prepare_payload();
  j.head = req.method() == http::verb::head;
}

// -- pool and connections ----------------------------------------------------------------------

class pool;

/// One (re)usable connection of a pool; runs one job at a time, on the pool's strand.
class connection : public std::enable_shared_from_this<connection> {
public:
  explicit connection(pool& owner);

  /// Starts an exchange: on the open connection if there is one, else on a fresh one.
  void run(job_ptr j);

  /// Closes the socket; a pending exchange then fails (stop, idle expiry).
  void abort();

  bool open() const {
    return open_;
  }

  clock_type::time_point idle_since() const {
    return idle_since_;
  }

private:
  void connect();
  void on_resolve(error_code ec, tcp::resolver::results_type results);
  /// The resolved endpoints the address filter allows; `refusal` gets the first refusal.
  std::vector<endpoint_type> allowed_endpoints(const resolved_type& results,
                                               std::string& refusal) const;
  void on_connect(error_code ec, const tcp::endpoint&);
  void on_handshake(error_code ec);
  void write();
  void on_write(error_code ec, size_t);
  void on_read(error_code ec, size_t);
  void fail(transport_error kind, const std::string& what, const error_code& ec);
  void fail_exchange(const char* stage, const error_code& ec);
  void succeed();
  void finish(http_client_response r);
  void close_socket();
  beast::tcp_stream& tcp() {
    return tls_ ? tls_->next_layer() : *tcp_;
  }
  template <class F>
  void with_stream(F&& f) {
    if (tls_)
      f(*tls_);
    else
      f(*tcp_);
  }

  pool& pool_;
  tcp::resolver resolver_;
  net::steady_timer resolve_timer_;
  std::optional<beast::tcp_stream> tcp_;
  std::optional<ssl::stream<beast::tcp_stream>> tls_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  job_ptr job_;
  clock_type::time_point idle_since_;
  bool open_ = false;
  bool reused_ = false;
};

class pool {
public:
  pool(net::io_context& ioc, ssl::context& tls, const http_client_options& options, http_url origin)
      : strand_(net::make_strand(ioc)), tls_(tls), verify_peer_(options.verify_peer),
        address_filter_(options.address_filter), origin_(std::move(origin)),
        max_connections_(std::max<size_t>(1, options.max_connections_per_origin)),
        queue_timer_(strand_), idle_timer_(strand_) {}

  strand_type& strand() {
    return strand_;
  }
  ssl::context& tls_context() {
    return tls_;
  }
  const http_url& origin() const {
    return origin_;
  }
  bool stopping() const {
    return stopping_;
  }
  bool verify_peer() const {
    return verify_peer_;
  }
  const std::function<std::string(const std::string&)>& address_filter() const {
    return address_filter_;
  }

  void submit(job_ptr j) {
    if (stopping_)
      return j->finish(failure(transport_error::reset, "http client stopped"));
    if (auto* c = take_idle())
      return c->run(std::move(j));
    if (connections_.size() < max_connections_) {
      connections_.push_back(std::make_shared<connection>(*this));
      return connections_.back()->run(std::move(j));
    }
    queue_.push_back(std::move(j));
    arm_queue_timer(queue_.back()->queue_deadline);
  }

  /// A connection finished its job (open or closed); it takes the next one or goes idle.
  void release(connection& c) {
    if (stopping_)
      return;
    while (!queue_.empty()) {
      auto j = std::move(queue_.front());
      queue_.pop_front();
      if (clock_type::now() < j->queue_deadline)
        return c.run(std::move(j));
      j->finish(failure(transport_error::timeout, "timed out waiting for a connection"));
    }
    idle_.push_back(&c);
    if (c.open())
      arm_idle_timer(c.idle_since() + max_idle);
  }

  void shutdown() {
    stopping_ = true;
    queue_timer_.cancel();
    idle_timer_.cancel();
    idle_.clear();
    auto queued = std::move(queue_);
    queue_.clear();
    for (auto& c : connections_)
      c->abort();
    for (auto& j : queued)
      j->finish(failure(transport_error::reset, "http client stopped"));
  }

private:
  connection* take_idle() {
    // Most recently used first: the connection least likely to have been dropped.
    if (idle_.empty())
      return nullptr;
    auto* c = idle_.back();
    idle_.pop_back();
    if (c->open() && clock_type::now() - c->idle_since() >= max_idle)
      c->abort(); // stale: run() reconnects
    return c;
  }

  void arm_queue_timer(clock_type::time_point at) {
    if (queue_timer_armed_ && at >= queue_timer_.expiry())
      return;
    queue_timer_armed_ = true;
    queue_timer_.expires_at(at);
    queue_timer_.async_wait([this](error_code ec) {
      if (ec != net::error::operation_aborted)
        on_queue_timer();
    });
  }

  /// Fails queued jobs whose queue deadline passed while no connection was free.
  void on_queue_timer() {
    queue_timer_armed_ = false;
    if (stopping_)
      return;
    auto now = clock_type::now();
    std::vector<job_ptr> expired;
    std::deque<job_ptr> kept;
    for (auto& j : queue_) {
      if (j->queue_deadline <= now)
        expired.push_back(std::move(j));
      else
        kept.push_back(std::move(j));
    }
    queue_ = std::move(kept);
    if (!queue_.empty()) {
      auto next = std::min_element(queue_.begin(), queue_.end(), [](auto& a, auto& b) {
        return a->queue_deadline < b->queue_deadline;
      });
      arm_queue_timer((*next)->queue_deadline);
    }
    for (auto& j : expired)
      j->finish(failure(transport_error::timeout, "timed out waiting for a connection"));
  }

  void arm_idle_timer(clock_type::time_point at) {
    if (idle_timer_armed_)
      return;
    idle_timer_armed_ = true;
    idle_timer_.expires_at(at);
    idle_timer_.async_wait([this](error_code ec) {
      if (ec != net::error::operation_aborted)
        on_idle_timer();
    });
  }

  /// Closes keep-alive connections idle for too long, so unused origins hold no sockets.
  void on_idle_timer() {
    idle_timer_armed_ = false;
    if (stopping_)
      return;
    auto now = clock_type::now();
    std::optional<clock_type::time_point> next;
    for (auto* c : idle_) {
      if (!c->open())
        continue;
      if (now - c->idle_since() >= max_idle)
        c->abort();
      else if (!next || c->idle_since() + max_idle < *next)
        next = c->idle_since() + max_idle;
    }
    if (next)
      arm_idle_timer(*next);
  }

  strand_type strand_;
  ssl::context& tls_;
  bool verify_peer_;
  std::function<std::string(const std::string&)> address_filter_;
  http_url origin_;
  size_t max_connections_;
  std::vector<std::shared_ptr<connection>> connections_;
  std::vector<connection*> idle_;
  std::deque<job_ptr> queue_;
  net::steady_timer queue_timer_;
  net::steady_timer idle_timer_;
  bool queue_timer_armed_ = false;
  bool idle_timer_armed_ = false;
  bool stopping_ = false;
};

connection::connection(pool& owner)
    : pool_(owner), resolver_(owner.strand()), resolve_timer_(owner.strand()) {}

void connection::run(job_ptr j) {
  job_ = std::move(j);
  // The call's own deadline starts now: the wait in the pool's queue does not count.
  job_->deadline = clock_type::now() + job_->timeout;
  reused_ = open_;
  if (open_)
    write();
  else
    connect();
}

void connection::abort() {
  resolver_.cancel();
  resolve_timer_.cancel();
  close_socket();
}

void connection::close_socket() {
  open_ = false;
  if (!tcp_ && !tls_)
    return;
  error_code ignored;
  tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
  tcp().close();
}

void connection::connect() {
  const auto& origin = pool_.origin();
  close_socket();
  buffer_.clear();
  if (origin.tls()) {
    tcp_.reset();
    tls_.emplace(pool_.strand(), pool_.tls_context());
  } else {
    tls_.reset();
    tcp_.emplace(pool_.strand());
  }
  // The resolver has no deadline of its own.
  resolve_timer_.expires_at(job_->deadline);
  resolve_timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (!ec)
      self->resolver_.cancel();
  });
  resolver_.async_resolve(origin.host, std::to_string(origin.port),
                          beast::bind_front_handler(&connection::on_resolve, shared_from_this()));
}

void connection::on_resolve(error_code ec, tcp::resolver::results_type results) {
  resolve_timer_.cancel();
  if (!ec && pool_.stopping())
    ec = net::error::operation_aborted;
  if (ec)
    return fail(transport_error::connect, "cannot resolve " + pool_.origin().host, ec);
  std::string refusal;
  auto endpoints = allowed_endpoints(results, refusal);
  if (endpoints.empty())
    return fail(transport_error::invalid, refusal, {});
  tcp().expires_at(job_->deadline);
  tcp().async_connect(endpoints,
                      beast::bind_front_handler(&connection::on_connect, shared_from_this()));
}

std::vector<endpoint_type> connection::allowed_endpoints(const resolved_type& results,
                                                         std::string& refusal) const {
  std::vector<endpoint_type> result;
  const auto& filter = pool_.address_filter();
  for (const auto& entry : results) {
    auto why = filter ? filter(entry.endpoint().address().to_string()) : std::string{};
    if (why.empty())
      result.push_back(entry.endpoint());
    else if (refusal.empty())
      refusal = std::move(why);
  }
  return result;
}

void connection::on_connect(error_code ec, const tcp::endpoint&) {
  if (!ec && pool_.stopping())
    ec = net::error::operation_aborted;
  const auto& origin = pool_.origin();
  if (ec)
    return fail(transport_error::connect, "cannot connect to " + origin.origin(), ec);
  error_code ignored;
  tcp().socket().set_option(tcp::no_delay(true), ignored);
  if (!tls_)
    return write();
  // SNI is for names only; certificates of IP addresses are checked against IP SANs.
  if (!origin.host_is_ip() && !SSL_set_tlsext_host_name(tls_->native_handle(), origin.host.c_str()))
    return fail(transport_error::tls, "cannot set TLS server name", {});
  if (pool_.verify_peer())
    tls_->set_verify_callback(ssl::host_name_verification(origin.host));
  tcp().expires_at(job_->deadline);
  tls_->async_handshake(ssl::stream_base::client,
                        beast::bind_front_handler(&connection::on_handshake, shared_from_this()));
}

void connection::on_handshake(error_code ec) {
  if (!ec && pool_.stopping())
    ec = net::error::operation_aborted;
  if (ec)
    return fail(transport_error::tls, "TLS handshake with " + pool_.origin().host + " failed", ec);
  write();
}

void connection::write() {
  parser_.emplace();
  parser_->body_limit(job_->max_body);
  parser_->header_limit(max_response_header);
  if (job_->head)
    parser_->skip(true);
  tcp().expires_at(job_->deadline);
  with_stream([this](auto& stream) {
    http::async_write(stream, job_->request,
                      beast::bind_front_handler(&connection::on_write, shared_from_this()));
  });
}

void connection::on_write(error_code ec, size_t) {
  if (!ec && pool_.stopping())
    ec = net::error::operation_aborted;
  if (ec)
    return fail_exchange("sending the request", ec);
  with_stream([this](auto& stream) {
    http::async_read(stream, buffer_, *parser_,
                     beast::bind_front_handler(&connection::on_read, shared_from_this()));
  });
}

void connection::on_read(error_code ec, size_t) {
  if (!ec && pool_.stopping())
    ec = net::error::operation_aborted;
  if (ec)
    return fail_exchange("reading the response", ec);
  succeed();
}

/// Failure of connect, resolve or handshake: `kind` unless it was the deadline or stop().
void connection::fail(transport_error kind, const std::string& what, const error_code& ec) {
  close_socket();
  if (pool_.stopping())
    return finish(failure(transport_error::reset, "http client stopped"));
  if (ec == beast::error::timeout || clock_type::now() >= job_->deadline)
    return finish(failure(transport_error::timeout, what + ": timed out"));
  finish(failure(kind, ec ? what + ": " + ec.message() : what));
}

void connection::fail_exchange(const char* stage, const error_code& ec) {
  bool nothing_received = !parser_ || !parser_->got_some();
  close_socket();
  if (pool_.stopping())
    return finish(failure(transport_error::reset, "http client stopped"));
  if (ec == beast::error::timeout || clock_type::now() >= job_->deadline)
    return finish(failure(transport_error::timeout, std::string("timed out ") + stage));
  // The server may have closed the idle keep-alive connection just as we reused it.
  if (reused_ && nothing_received && !job_->retried) {
    job_->retried = true;
    reused_ = false;
    spdlog::debug("http client: retrying on a fresh connection to {}", pool_.origin().host);
    return connect();
  }
  const auto& origin = pool_.origin();
  auto what =
      is_http_category(ec) && ec != http::error::end_of_stream && ec != http::error::partial_message
          ? "bad response from "
          : "connection reset by ";
  finish(failure(transport_error::reset,
                 std::string(what) + origin.origin() + " while " + stage + ": " + ec.message()));
}

void connection::succeed() {
  auto& msg = parser_->get();
  http_client_response r;
  r.status = msg.result_int();
  r.headers.reserve(static_cast<size_t>(std::distance(msg.begin(), msg.end())));
  for (const auto& f : msg)
    r.headers.emplace_back(lower(f.name_string()), std::string(f.value()));
  r.body = std::move(msg.body());
  // Extra bytes after the response would be misread as the next answer.
  bool keep = parser_->keep_alive() && buffer_.size() == 0;
  parser_.reset();
  if (keep) {
    open_ = true;
    idle_since_ = clock_type::now();
  } else {
    close_socket();
  }
  finish(std::move(r));
}

/// Hands the connection back first (the next job starts), then runs the callback.
void connection::finish(http_client_response r) {
  auto j = std::move(job_);
  idle_since_ = clock_type::now();
  pool_.release(*this);
  j->finish(std::move(r));
}

} // namespace

struct http_client::impl {
  explicit impl(const http_client_options& o)
      : options(o), ioc(static_cast<int>(std::max(1u, o.io_threads))),
        tls(ssl::context::tls_client) {
    setup_tls();
    work.emplace(net::make_work_guard(*ioc));
    for (unsigned i = 0; i < std::max(1u, o.io_threads); ++i)
      threads.emplace_back([this] { run_thread(); });
  }

  void setup_tls() {
    error_code ec;
    tls.set_default_verify_paths(ec);
    if (ec)
      spdlog::warn("http client: cannot load the system CA store: {}", ec.message());
    if (!options.ca_file.empty()) {
      tls.load_verify_file(options.ca_file, ec);
      if (ec)
        spdlog::error("http client: cannot load CA file {}: {}", options.ca_file, ec.message());
    }
    SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
    tls.set_verify_mode(options.verify_peer ? ssl::verify_peer : ssl::verify_none);
  }

  void run_thread() {
    for (;;) {
      try {
        ioc->run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("http client: I/O thread caught: {}", e.what());
      }
    }
  }

  bool on_io_thread() const {
    auto self = std::this_thread::get_id();
    return std::any_of(threads.begin(), threads.end(),
                       [self](const std::thread& t) { return t.get_id() == self; });
  }

  /// Single-threaded after the join. Dropped jobs report `reset` from their destructors.
  void tear_down() {
    if (!track.wait_idle(stop_grace))
      spdlog::warn("http client: stopping with requests still outstanding");
    ioc->stop();
    for (auto& t : threads)
      t.join();
    threads.clear();
    {
      std::lock_guard<std::mutex> lock{mutex};
      pools.clear();
    }
    ioc.reset();
  }

  std::shared_ptr<pool> pool_for(const http_url& url) {
    auto& p = pools[url.origin()];
    if (!p)
      p = std::make_shared<pool>(*ioc, tls, options, url);
    return p;
  }

  http_client_options options;
  // The io_context must outlive every I/O object (pools, connections, queued handlers).
  std::optional<net::io_context> ioc;
  ssl::context tls;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  tracker track;
  std::mutex mutex;
  bool stopped = false;                                         // guarded by mutex
  std::unordered_map<std::string, std::shared_ptr<pool>> pools; // guarded by mutex
  std::mutex teardown;    // the joining half of stop(); never taken on an I/O thread
  bool torn_down = false; // guarded by teardown
};

http_client::http_client(const http_client_options& options)
    : impl_(std::make_unique<impl>(options)) {}

http_client::~http_client() {
  stop();
}

void http_client::send(http_client_request request, http_client_callback done) {
  auto j = std::make_unique<job>(std::move(done), impl_->track);
  std::string why;
  auto url = parse_http_url(request.url, why);
  j->timeout = request.timeout;
  j->queue_deadline =
      clock_type::now()
      + (request.queue_timeout.count() > 0 ? request.queue_timeout : request.timeout);
  if (request.max_response_bytes > 0)
    j->max_body = request.max_response_bytes;
  if (url) {
    try {
      build_request(*j, *url, request);
    } catch (const std::exception& e) {
      why = std::string("bad request: ") + e.what();
      url.reset();
    }
  }
  std::unique_lock<std::mutex> lock{impl_->mutex};
  if (impl_->stopped) {
    lock.unlock();
    return j->finish(failure(transport_error::reset, "http client stopped"));
  }
  if (!url) {
    // Answer on a client thread like every other outcome.
    net::post(*impl_->ioc, [j = std::move(j), why = std::move(why)]() mutable {
      j->finish(failure(transport_error::invalid, std::move(why)));
    });
    return;
  }
  auto p = impl_->pool_for(*url);
  net::post(p->strand(), [p, j = std::move(j)]() mutable { p->submit(std::move(j)); });
}

// From a callback (an I/O thread, which cannot join itself) stop() only fails the work; the
// destructor or a later stop() from another thread finishes the job.
void http_client::stop() {
  {
    std::lock_guard<std::mutex> lock{impl_->mutex};
    if (!impl_->stopped) {
      impl_->stopped = true;
      for (auto& [key, p] : impl_->pools)
        net::post(p->strand(), [p = p] { p->shutdown(); });
      impl_->work.reset(); // after the posts, so the threads see the shutdowns
    }
  }
  if (impl_->on_io_thread()) {
    spdlog::warn("http client: stop() called from a callback; finishing later");
    return;
  }
  std::lock_guard<std::mutex> guard{impl_->teardown};
  if (impl_->torn_down)
    return;
  impl_->torn_down = true;
  impl_->tear_down();
}

} // namespace lps
