#pragma once

// Internal to the HTTP client: one keep-alive connection (plain or TLS) of a pool. It runs one
// job at a time on its pool's strand: resolve (with the address filter), connect, TLS
// handshake, write, read, and hands itself back to the pool when the job is done.

#include "runtime/http_client_job.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lps::http_client_detail {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using beast::error_code;
using strand_type = net::strand<net::io_context::executor_type>;
using endpoint_type = tcp::endpoint;
using resolved_type = tcp::resolver::results_type;

class pool;

/// One (re)usable connection of a pool; runs one job at a time, on the pool's strand.
class connection : public std::enable_shared_from_this<connection> {
public:
  explicit connection(pool& owner);

  /// Starts an exchange: on the open connection if there is one, else on a fresh one.
  void run(job_ptr j);

  /// Closes the socket; a pending exchange then fails (stop, idle expiry).
  void abort();

  /// Aborts the exchange when its caller cancelled it; it then ends as cancelled.
  void cancel_if_flagged();

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
  // A streamed body (job::on_body_data): the head first, then piece by piece.
  void on_header(error_code ec, size_t);
  void read_some();
  void on_read_some(error_code ec, size_t);
  /// Hands what the parser has put in the body to the caller and empties it.
  void deliver_body();
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

} // namespace lps::http_client_detail
