#pragma once

// Internal to the HTTP client: the keep-alive pool of one origin (scheme, host, port). A pool
// and all its connections live on one strand, so its queue, idle list and connection state
// need no locks. A job waits in the queue at most until its queue deadline; its call deadline
// starts only when a connection takes it.

#include "runtime/http_client_connection.hpp"

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lps::http_client_detail {

class pool {
public:
  pool(net::io_context& ioc, ssl::context& tls, const http_client_options& options,
       http_url origin);

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

  /// Runs the job on an idle or new connection, or queues it until one is free.
  void submit(job_ptr j);

  /// A connection finished its job (open or closed); it takes the next one or goes idle.
  void release(connection& c);

  /// Fails queued jobs, closes every connection and refuses new jobs.
  void shutdown();

  /// Ends the jobs whose caller cancelled them: queued ones leave the queue, running ones
  /// have their connection closed (http_call_cancel).
  void cancel_flagged();

private:
  connection* take_idle();
  void arm_queue_timer(clock_type::time_point at);
  void on_queue_timer();
  void arm_idle_timer(clock_type::time_point at);
  void on_idle_timer();

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

} // namespace lps::http_client_detail
