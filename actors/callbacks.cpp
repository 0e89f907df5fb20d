#include "actors/callbacks.hpp"
#include "actors/status_report.hpp"

#include "runtime/callback_signature.hpp"
#include "runtime/logging.hpp"
#include "runtime/url.hpp"

#include <caf/event_based_actor.hpp>

namespace lps {

namespace {

using self_ptr = callbacks_impl_actor::stateful_pointer<callbacks_state>;

std::shared_ptr<spdlog::logger> log() {
  static auto logger = get_logger("callbacks");
  return logger;
}

void count(self_ptr self, const char* result) {
  if (self->state.metrics)
    self->send(self->state.metrics, atom::record_v,
               std::vector<metric_sample>{{"llm_provider_callback_deliveries_total", {result}, 1}});
}

/// Why an attempt failed, for logs and status ("" for a 2xx). Transport error texts never
/// quote the URL or the request headers.
std::string failure_text(const http_client_response& res) {
  if (res.error != transport_error::none)
    return std::string{to_string(res.error)} + ": " + res.error_message;
  if (res.status >= 200 && res.status < 300)
    return {};
  // Redirects are not followed: a 3xx is a failed attempt like any other non-2xx.
  return "HTTP " + std::to_string(res.status);
}

/// The X-LPS-Signature value of `body`, timestamped now: every attempt is signed afresh, so a
/// receiver's replay window applies to the attempt it gets.
std::string signature_of(const callbacks_state& st, const std::string& body) {
  auto t = std::chrono::duration_cast<std::chrono::seconds>(st.cfg.now().time_since_epoch());
  return callback_signature(st.cfg.signing_secret.reveal(), t.count(), body);
}

void post(self_ptr self, const std::string& origin, delivery d) {
  auto& st = self->state;
  ++st.inflight[origin];
  http_client_request req;
  req.method = "POST";
  req.url = d.callback_url;
  req.headers = {{"Content-Type", "application/json"}};
  if (!st.cfg.signing_secret.empty())
    req.headers.emplace_back(callback_signature_header, signature_of(st, d.event_json));
  req.body = d.event_json;
  req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(st.cfg.request_timeout);
  auto hdl = caf::actor_cast<callbacks_impl_actor>(self);
  // The client calls back on its own thread: hop into the actor with a message.
  st.http->send(std::move(req), [hdl, d = std::move(d)](http_client_response res) mutable {
    // A bad URL or a refused target stays so: retrying cannot help.
    bool permanent = res.error == transport_error::invalid;
    caf::anon_send(hdl, atom::callback_answered_v, std::move(d), static_cast<uint32_t>(res.status),
                   failure_text(res), permanent);
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

/// The retry policy's backoff with the callbacks' delays and the actor's seeded jitter.
caf::timespan backoff(self_ptr self, uint32_t attempts) {
  auto& st = self->state;
  backoff_settings settings;
  settings.base = std::chrono::duration_cast<clock_duration>(st.cfg.retry_base_delay);
  settings.max = std::chrono::duration_cast<clock_duration>(st.cfg.retry_max_delay);
  return std::chrono::duration_cast<caf::timespan>(
      backoff_delay(settings, attempts, st.jitter.next()));
}

/// Records the give-up durably, so status says "failed" and a restart does not try again.
void give_up(self_ptr self, const delivery& d, std::string error) {
  auto& st = self->state;
  ++st.given_up_total;
  count(self, "failed");
  LPS_LOG_WARN(log(),
               "callbacks gave up delivering {} after {} attempts ({}); "
               "the result stays readable at /api/v1/results",
               d.queue_id, d.attempts, error);
  auto failed_at =
      std::chrono::duration_cast<std::chrono::milliseconds>(st.cfg.now().time_since_epoch());
  store_write write;
  write.delivery_give_ups.push_back({d.queue_id, failed_at.count(), d.attempts, error});
  st.db->submit(std::move(write), [](bool, const std::string&) {});
  st.last_error = std::move(error);
}

void on_attempt_done(self_ptr self, delivery d, uint32_t status, std::string error,
                     bool permanent) {
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
  } else if (!permanent && d.attempts < st.cfg.max_attempts) {
    ++st.retried_total;
    count(self, "retry");
    auto when = st.cfg.now() + backoff(self, d.attempts);
    st.retries.emplace(when, std::move(d));
    arm_tick(self);
  } else {
    give_up(self, d, std::move(error));
  }
  pump(self, origin);
}

void on_tick(self_ptr self) {
  auto& st = self->state;
  st.tick_armed = false;
  auto now = st.cfg.now();
  while (!st.retries.empty() && st.retries.begin()->first <= now) {
    auto d = std::move(st.retries.begin()->second);
    st.retries.erase(st.retries.begin());
    enqueue(self, std::move(d));
  }
  arm_tick(self);
}

actor_status status_of(self_ptr self) {
  auto& st = self->state;
  auto result = status_header(self, callbacks_state::name, "callbacks", st.stats);
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
  if (!st.last_error.empty())
    result.facts = {{"last_error", st.last_error}};
  result.last_error = st.last_error;
  return result;
}

} // namespace

std::string origin_of(const std::string& url) {
  std::string ignored; // the HTTP client reports why when it refuses the URL
  auto parsed = parse_http_url(url, ignored);
  return parsed ? parsed->origin() : std::string{};
}

callbacks_impl_actor::behavior_type
callbacks(callbacks_impl_actor::stateful_pointer<callbacks_state> self, callbacks_config cfg,
          http_transport* http, store* db, metrics_actor metrics) {
  auto& st = self->state;
  st.cfg = cfg;
  st.http = http;
  st.db = db;
  st.metrics = std::move(metrics);
  st.jitter = jitter_source{cfg.jitter_seed};
  return counted(
      self,
      [=](atom::deliver, std::vector<delivery>& xs) {
        for (auto& d : xs)
          enqueue(self, std::move(d));
      },
      [=](atom::callback_answered, delivery& d, uint32_t status, std::string& error,
          bool permanent) {
        on_attempt_done(self, std::move(d), status, std::move(error), permanent);
      },
      [=](atom::retry_due) { on_tick(self); },
      [=](atom::status) -> actor_status { return status_of(self); });
}

} // namespace lps
