#include "runtime/http_client_pool.hpp"

#include <algorithm>
#include <optional>

namespace lps::http_client_detail {

namespace {

/// Idle keep-alive connections are closed after this (most servers drop them sooner).
constexpr std::chrono::seconds max_idle{30};

} // namespace

pool::pool(net::io_context& ioc, ssl::context& tls, const http_client_options& options,
           http_url origin)
    : strand_(net::make_strand(ioc)), tls_(tls), verify_peer_(options.verify_peer),
      address_filter_(options.address_filter), origin_(std::move(origin)),
      max_connections_(std::max<size_t>(1, options.max_connections_per_origin)),
      queue_timer_(strand_), idle_timer_(strand_) {}

void pool::submit(job_ptr j) {
  if (stopping_)
    return j->finish(failure(transport_error::reset, "http client stopped"));
  if (j->cancelled())
    return j->finish(failure(transport_error::cancelled, "cancelled by the caller"));
  if (auto* c = take_idle())
    return c->run(std::move(j));
  if (connections_.size() < max_connections_) {
    connections_.push_back(std::make_shared<connection>(*this));
    return connections_.back()->run(std::move(j));
  }
  queue_.push_back(std::move(j));
  arm_queue_timer(queue_.back()->queue_deadline);
}

void pool::release(connection& c) {
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

void pool::shutdown() {
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

void pool::cancel_flagged() {
  std::vector<job_ptr> cancelled;
  std::deque<job_ptr> kept;
  for (auto& j : queue_) {
    if (j->cancelled())
      cancelled.push_back(std::move(j));
    else
      kept.push_back(std::move(j));
  }
  queue_ = std::move(kept);
  for (auto& c : connections_)
    c->cancel_if_flagged();
  for (auto& j : cancelled)
    j->finish(failure(transport_error::cancelled, "cancelled by the caller"));
}

connection* pool::take_idle() {
  // Most recently used first: the connection least likely to have been dropped.
  if (idle_.empty())
    return nullptr;
  auto* c = idle_.back();
  idle_.pop_back();
  if (c->open() && clock_type::now() - c->idle_since() >= max_idle)
    c->abort(); // stale: run() reconnects
  return c;
}

void pool::arm_queue_timer(clock_type::time_point at) {
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
void pool::on_queue_timer() {
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

void pool::arm_idle_timer(clock_type::time_point at) {
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
void pool::on_idle_timer() {
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

} // namespace lps::http_client_detail
