#pragma once

// Getting requests in and results back: the submitter (single or bulk POSTs, retrying
// QUEUE_FULL), the poller (GET /api/v1/results/{id}) and the callback receiver.

#include "runtime/error_code.hpp"
#include "runtime/http_client.hpp"
#include "runtime/http_server.hpp"
#include "tools/loadgen/bodies.hpp"
#include "tools/loadgen/events.hpp"
#include "tools/loadgen/flow.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lps::loadgen {

struct poll_item {
  uint64_t index = 0;
  std::string queue_id;
  uint32_t attempts = 0;
};

/// GET /api/v1/results/{id} until 200, backing off per request (10 ms doubling to 1 s).
class poller {
public:
  explicit poller(run_context& ctx)
      : ctx_(ctx), client_(client_options(ctx.opt.concurrency)),
        window_(ctx.opt.concurrency, nullptr, [this](poll_item x) { launch(std::move(x)); }) {}

  void watch(uint64_t index, const std::string& queue_id) {
    schedule(poll_item{index, queue_id, 0});
  }

  void stop() {
    window_.close();
    client_.stop();
  }

private:
  void schedule(poll_item x) {
    auto delay = milliseconds{std::min<uint64_t>(1000, uint64_t{10} << std::min(x.attempts, 7u))};
    ctx_.sched.after(delay, [this, x = std::move(x)]() mutable { window_.push(std::move(x)); });
  }

  void launch(poll_item x) {
    lps::http_client_request req;
    req.method = "GET";
    req.url = ctx_.opt.url + "/api/v1/results/" + x.queue_id;
    req.timeout = ctx_.http_timeout;
    client_.send(std::move(req), [this, x = std::move(x)](lps::http_client_response r) mutable {
      on_answer(std::move(x), r);
      window_.done();
    });
  }

  void on_answer(poll_item x, const lps::http_client_response& r) {
    if (r.status == 200) {
      if (auto event = parse_event(r.body))
        return ctx_.track.result(*event, now_ns(ctx_.origin));
      ctx_.track.bad_event();
    }
    ++x.attempts;
    schedule(std::move(x));
  }

  run_context& ctx_;
  lps::http_client client_;
  window<poll_item> window_;
};

/// One POST worth of requests (one index in single mode).
using unit = std::vector<uint64_t>;

/// Sends every request once, retrying refusals that come with Retry-After (QUEUE_FULL).
class submitter {
public:
  submitter(run_context& ctx, const body_builder& bodies, poller* polls)
      : ctx_(ctx), bodies_(bodies), polls_(polls),
        per_post_(ctx.opt.mode == submit_mode::bulk ? ctx.opt.bulk_size : 1),
        client_(client_options(ctx.opt.concurrency)),
        window_(
            ctx.opt.concurrency, [this] { return next_unit(); },
            [this](unit u) { launch(std::move(u)); }, ctx.opt.rate, &ctx.sched) {}

  void start() {
    window_.pump();
  }

  pacing_figures pacing() const {
    return window_.pacing();
  }

  void stop() {
    window_.close();
    client_.stop();
  }

private:
  /// Called under the window's lock.
  std::optional<unit> next_unit() {
    if (next_ >= ctx_.opt.count)
      return std::nullopt;
    unit u;
    for (auto end = std::min(ctx_.opt.count, next_ + per_post_); next_ < end; ++next_)
      u.push_back(next_);
    return u;
  }

  void launch(unit u) {
    bool bulk = ctx_.opt.mode == submit_mode::bulk;
    lps::http_client_request req;
    req.url = ctx_.opt.url + (bulk ? "/api/v1/comparisons" : "/api/v1/comparison");
    req.headers = {{"Content-Type", "application/json"}};
    req.body = bulk ? bodies_.bulk(u) : bodies_.single(u.front());
    req.timeout = ctx_.http_timeout;
    auto sent = now_ns(ctx_.origin);
    ctx_.track.sent(u, sent);
    client_.send(std::move(req), [this, u = std::move(u), sent](lps::http_client_response r) {
      auto at = now_ns(ctx_.origin);
      if (r.status != 0)
        ctx_.track.post_answered(double(at - sent) / 1e6);
      on_answer(u, r, at);
      window_.done();
    });
  }

  void accept(uint64_t index, const std::string& queue_id, int64_t at) {
    ctx_.track.accepted(index, queue_id, at);
    if (polls_)
      polls_->watch(index, queue_id);
  }

  void retry_later(unit u, milliseconds delay) {
    ctx_.sched.after(delay, [this, u = std::move(u)]() mutable { window_.push(std::move(u)); });
  }

  /// A refusal of the whole POST: retried when the server said when, else final.
  void refuse_post(unit u, const lps::http_client_response& r) {
    bool retry = (r.status == 503 || r.status == 429) && !header(r, "retry-after").empty();
    ctx_.track.refused(refusal_key(r), u.size(), !retry);
    if (retry)
      retry_later(std::move(u), retry_delay(r, milliseconds{1000}));
  }

  /// Handles both endpoints: a single 202 is {"queue_id"}, a bulk 202 is {"results": [...]}.
  void on_answer(const unit& u, const lps::http_client_response& r, int64_t at) {
    if (r.status != 202)
      return refuse_post(u, r);
    boost::system::error_code ec;
    auto doc = boost::json::parse(r.body, ec);
    const auto* root = ec ? nullptr : doc.if_object();
    if (!root) {
      ctx_.track.refused("bad_202_body", u.size(), true);
      return;
    }
    if (ctx_.opt.mode == submit_mode::single)
      return item_answer(u.front(), *root, r, at, nullptr);
    const auto* results = root->if_contains("results");
    const auto* items = results ? results->if_array() : nullptr;
    if (!items || items->size() != u.size()) {
      ctx_.track.refused("bad_202_body", u.size(), true);
      return;
    }
    static const boost::json::object no_fields;
    unit again;
    for (size_t i = 0; i < u.size(); ++i) {
      const auto* item = (*items)[i].if_object();
      item_answer(u[i], item ? *item : no_fields, r, at, &again);
    }
    if (!again.empty())
      retry_later(std::move(again), retry_delay(r, milliseconds{1000}));
  }

  /// One accepted or refused entry; per-item QUEUE_FULL goes into `again` (bulk only).
  void item_answer(uint64_t index, const boost::json::object& item,
                   const lps::http_client_response& r, int64_t at, unit* again) {
    const auto* qid = item.if_contains("queue_id");
    if (qid && qid->is_string())
      return accept(index, std::string(qid->get_string()), at);
    std::string code = "unknown";
    if (const auto* err = item.if_contains("error"); err && err->is_object())
      if (const auto* c = err->get_object().if_contains("code"); c && c->is_string())
        code = std::string(c->get_string());
    bool retry = again && code == lps::to_string(lps::ec::queue_full);
    ctx_.track.refused((again ? "item_" : std::to_string(r.status) + "_") + code, 1, !retry);
    if (retry)
      again->push_back(index);
  }

  run_context& ctx_;
  const body_builder& bodies_;
  poller* polls_;
  uint64_t per_post_;
  uint64_t next_ = 0; // guarded by the window's lock (next_unit)
  lps::http_client client_;
  window<unit> window_;
};

/// Starts the local receiver for result events; returns its callback URL.
std::string start_receiver(lps::http_server& server, run_context& ctx);

} // namespace lps::loadgen
