#include "actors/callbacks.hpp"
#include "actors/status_report.hpp"

#include "runtime/logging.hpp"

#include <caf/event_based_actor.hpp>

#include <random>

namespace lps {

namespace {

using self_ptr = callbacks_actor::stateful_pointer<callbacks_state>;

std::shared_ptr<spdlog::logger> log() {
  static auto logger = get_logger("callbacks");
  return logger;
}

void count(self_ptr self, const char* result) {
  if (self->state.metrics)
    self->send(self->state.metrics, atom::record_v,
               std::vector<metric_sample>{{"llm_provider_callback_deliveries_total", {result}, 1}});
}

void post(self_ptr self, const std::string& origin, delivery d) {
  auto& st = self->state;
  ++st.inflight[origin];
  http_client_request req;
  req.method = "POST";
  req.url = d.callback_url;
  req.headers = {{"Content-Type", "application/json"}};
  req.body = d.event_json;
  req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(st.cfg.request_timeout);
  auto hdl = caf::actor_cast<callbacks_actor>(self);
  // The client calls back on its own thread: hop into the actor with a message.
  st.http->send(std::move(req), [hdl, d = std::move(d)](http_client_response res) mutable {
    caf::anon_send(hdl, atom::callback_answered_v, std::move(d), static_cast<uint32_t>(res.status));
  });
}

void pump(self_ptr self, const std::string& origin) {
  auto& st = self->state;
  auto& queue = st.waiting[origin];
  while (!queue.empty() && st.inflight[origin] < st.cfg.max_concurrent_per_origin) {
    auto d = std::move(queue.front());
    queue.pop_front();
    post(self, origin, std::move(d));
  }
}

void arm_tick(self_ptr self) {
  auto& st = self->state;
  if (st.tick_armed || st.retries.empty())
    return;
  st.tick_armed = true;
  self->delayed_send(self, st.cfg.tick_interval, atom::retry_due_v);
}

void enqueue(self_ptr self, delivery d) {
  auto origin = origin_of(d.callback_url);
  self->state.waiting[origin].push_back(std::move(d));
  pump(self, origin);
}

caf::timespan backoff(const callbacks_config& cfg, uint32_t attempts) {
  thread_local std::mt19937 gen{std::random_device{}()};
  auto base = cfg.retry_base_delay * (1u << std::min<uint32_t>(attempts - 1, 16));
  auto capped = std::min<caf::timespan>(base, cfg.retry_max_delay);
  std::uniform_real_distribution<double> jitter{0.5, 1.5};
  return std::chrono::duration_cast<caf::timespan>(capped * jitter(gen));
}

void on_attempt_done(self_ptr self, delivery d, uint32_t status) {
  auto& st = self->state;
  auto origin = origin_of(d.callback_url);
  --st.inflight[origin];
  ++d.attempts;
  if (status >= 200 && status < 300) {
    ++st.delivered_total;
    count(self, "success");
    store_write write;
    write.delivered.push_back(d.queue_id);
    st.db->submit(std::move(write), [](bool, const std::string&) {});
  } else if (d.attempts < st.cfg.max_attempts) {
    ++st.retried_total;
    count(self, "retry");
    auto when = caf::make_timestamp() + backoff(st.cfg, d.attempts);
    st.retries.emplace(when, std::move(d));
    arm_tick(self);
  } else {
    ++st.given_up_total;
    count(self, "failed");
    LPS_LOG_WARN(log(),
                 "callbacks gave up delivering {} after {} attempts (last status {}); "
                 "the result stays readable at /api/v1/results",
                 d.queue_id, d.attempts, status);
  }
  pump(self, origin);
}

void on_tick(self_ptr self) {
  auto& st = self->state;
  st.tick_armed = false;
  auto now = caf::make_timestamp();
  while (!st.retries.empty() && st.retries.begin()->first <= now) {
    auto d = std::move(st.retries.begin()->second);
    st.retries.erase(st.retries.begin());
    enqueue(self, std::move(d));
  }
  arm_tick(self);
}

actor_status status_of(self_ptr self) {
  auto& st = self->state;
  auto result = status_header(self, callbacks_state::name, "callbacks", st.handled);
  double waiting = 0;
  double inflight = 0;
  for (const auto& [origin, q] : st.waiting)
    waiting += double(q.size());
  for (const auto& [origin, n] : st.inflight)
    inflight += n;
  result.figures = {{"waiting", waiting},
                    {"inflight", inflight},
                    {"retry_waiting", double(st.retries.size())},
                    {"delivered_total", double(st.delivered_total)},
                    {"retried_total", double(st.retried_total)},
                    {"given_up_total", double(st.given_up_total)}};
  return result;
}

} // namespace

std::string origin_of(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos)
    return "";
  auto host_end = url.find_first_of("/?#", scheme_end + 3);
  return url.substr(0, host_end);
}

callbacks_actor::behavior_type callbacks(callbacks_actor::stateful_pointer<callbacks_state> self,
                                         callbacks_config cfg, http_transport* http, store* db,
                                         metrics_actor metrics) {
  auto& st = self->state;
  st.cfg = cfg;
  st.http = http;
  st.db = db;
  st.metrics = std::move(metrics);
  return {
      [=](atom::deliver, std::vector<delivery>& xs) {
        ++self->state.handled;
        for (auto& d : xs)
          enqueue(self, std::move(d));
      },
      [=](atom::callback_answered, delivery& d, uint32_t status) {
        ++self->state.handled;
        on_attempt_done(self, std::move(d), status);
      },
      [=](atom::retry_due) {
        ++self->state.handled;
        on_tick(self);
      },
      [=](atom::status) -> actor_status {
        ++self->state.handled;
        return status_of(self);
      },
  };
}

} // namespace lps
