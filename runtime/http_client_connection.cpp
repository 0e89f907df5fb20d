#include "runtime/http_client_connection.hpp"
#include "runtime/http_client_pool.hpp"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <string_view>

namespace lps::http_client_detail {

namespace {

constexpr uint32_t max_response_header = 64 * 1024;

bool is_http_category(const error_code& ec) {
  return ec.category() == make_error_code(http::error::end_of_stream).category();
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

/// Room for one read of an answer (the server's read chunk is the same).
constexpr std::size_t read_buffer_bytes = 16 * 1024;

} // namespace

connection::connection(pool& owner)
    : pool_(owner), resolver_(owner.strand()), resolve_timer_(owner.strand()) {
  // Beast reads as much as the buffer has room for, at least 512 bytes: without room an
  // answer a little over 512 bytes (a chat completion) took two reads, each a syscall and a
  // pass through the reactor. Kept across calls (the buffer is only ever consumed).
  buffer_.reserve(read_buffer_bytes);
}

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

void connection::cancel_if_flagged() {
  if (job_ && job_->cancelled())
    abort();
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
    if (job_->on_body_data)
      http::async_read_header(
          stream, buffer_, *parser_,
          beast::bind_front_handler(&connection::on_header, shared_from_this()));
    else
      http::async_read(stream, buffer_, *parser_,
                       beast::bind_front_handler(&connection::on_read, shared_from_this()));
  });
}

/// Only a 2xx body is streamed: an error answer is read whole, for the final callback.
void connection::on_header(error_code ec, size_t) {
  if (!ec && (pool_.stopping() || job_->cancelled()))
    ec = net::error::operation_aborted;
  if (ec)
    return fail_exchange("reading the response", ec);
  auto status = parser_->get().result_int();
  if (status < 200 || status > 299 || job_->head) {
    with_stream([this](auto& stream) {
      http::async_read(stream, buffer_, *parser_,
                       beast::bind_front_handler(&connection::on_read, shared_from_this()));
    });
    return;
  }
  if (parser_->is_done())
    return succeed();
  read_some();
}

void connection::read_some() {
  with_stream([this](auto& stream) {
    http::async_read_some(stream, buffer_, *parser_,
                          beast::bind_front_handler(&connection::on_read_some, shared_from_this()));
  });
}

void connection::on_read_some(error_code ec, size_t) {
  if (!ec && (pool_.stopping() || job_->cancelled()))
    ec = net::error::operation_aborted;
  if (ec)
    return fail_exchange("reading the response", ec);
  deliver_body();
  if (parser_->is_done())
    return succeed();
  read_some();
}

void connection::deliver_body() {
  auto& body = parser_->get().body();
  if (body.empty())
    return;
  // The parser appends at the body's current end, so emptying it between reads is safe.
  std::string piece;
  piece.swap(body);
  try {
    job_->on_body_data(piece);
  } catch (const std::exception& e) {
    spdlog::error("http client: body callback threw: {}", e.what());
  } catch (...) {
    spdlog::error("http client: body callback threw a non-standard exception");
  }
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
  if (job_->cancelled())
    return finish(failure(transport_error::cancelled, "cancelled by the caller"));
  if (ec == beast::error::timeout || clock_type::now() >= job_->deadline)
    return finish(failure(transport_error::timeout, what + ": timed out"));
  finish(failure(kind, ec ? what + ": " + ec.message() : what));
}

void connection::fail_exchange(const char* stage, const error_code& ec) {
  bool nothing_received = !parser_ || !parser_->got_some();
  close_socket();
  if (pool_.stopping())
    return finish(failure(transport_error::reset, "http client stopped"));
  if (job_->cancelled())
    return finish(failure(transport_error::cancelled, "cancelled by the caller"));
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

} // namespace lps::http_client_detail
