#include "actors/bundler.hpp"
#include "actors/status_report.hpp"

#include "runtime/ids.hpp"
#include "runtime/logging.hpp"

#include <caf/event_based_actor.hpp>

namespace lps {

namespace {

using self_ptr = bundler_actor::stateful_pointer<bundler_state>;

std::shared_ptr<spdlog::logger> log() {
  static auto logger = get_logger("bundler");
  return logger;
}

void form(self_ptr self);

uint32_t limit_of(self_ptr self, const std::string& provider) {
  auto& limits = self->state.cfg.max_inflight_per_provider;
  auto i = limits.find(provider);
  return i == limits.end() ? 64 : i->second;
}

clock_time steady_now() {
  return std::chrono::steady_clock::now();
}

circuit_breaker& breaker_of(self_ptr self, const std::string& provider) {
  auto& st = self->state;
  return st.breakers.try_emplace(provider, st.cfg.breaker).first->second;
}

rate_limiter& limiter_of(self_ptr self, const std::string& provider) {
  auto& st = self->state;
  auto i = st.cfg.rate_limits.find(provider);
  auto settings = i == st.cfg.rate_limits.end() ? rate_limit_settings{} : i->second;
  return st.limiters.try_emplace(provider, settings).first->second;
}

// How long `provider` is blocked by its breaker or rate limit (zero: it may be called).
clock_duration blocked_for(self_ptr self, const std::string& provider, clock_time now) {
  return std::max(breaker_of(self, provider).time_until_allowed(now),
                  limiter_of(self, provider).wait_time(now, 1, 0));
}

// A provider takes another bundle when it has a free call slot, its breaker lets calls
// through and its rate limit has room.
bool has_capacity(self_ptr self, const std::string& provider) {
  return self->state.inflight[provider] < limit_of(self, provider)
         && blocked_for(self, provider, steady_now()) == clock_duration::zero();
}

// Wakes the bundler when the soonest time-blocked provider opens up again.
void arm_wake(self_ptr self) {
  auto& st = self->state;
  if (st.wake_armed)
    return;
  auto now = steady_now();
  auto soonest = clock_duration::max();
  for (const auto& [name, hdl] : st.providers)
    if (auto wait = blocked_for(self, name, now); wait > clock_duration::zero())
      soonest = std::min(soonest, wait);
  if (soonest == clock_duration::max())
    return;
  st.wake_armed = true;
  auto delay = std::max<clock_duration>(soonest, std::chrono::milliseconds{1});
  self->delayed_send(self, std::chrono::duration_cast<caf::timespan>(delay), atom::wake_v);
}

void publish_breaker_state(self_ptr self, const std::string& provider) {
  auto& st = self->state;
  if (!st.metrics)
    return;
  auto state = breaker_of(self, provider).state();
  double value = state == breaker_state::closed ? 0 : state == breaker_state::open ? 1 : 2;
  self->send(st.metrics, atom::record_v,
             std::vector<metric_sample>{{"llm_provider_circuit_breaker_state", {provider}, value}});
}

// Provider health as the breaker sees it: a bundle in which nothing succeeded and some
// item failed for a provider-side reason (5xx, overload, timeout, connection) is a failure;
// client errors such as 400 or a missing key say nothing about the provider's health.
void report_health(self_ptr self, const std::string& provider,
                   const std::vector<comparison_outcome>& outcomes) {
  bool any_success = false;
  bool provider_failure = false;
  for (const auto& o : outcomes) {
    any_success |= o.success;
    provider_failure |= !o.success
                        && (o.error_code == "EXTERNAL_SERVICE_ERROR" || o.error_code == "TIMEOUT"
                            || o.error_code == "CONNECTION_ERROR");
  }
  auto& breaker = breaker_of(self, provider);
  auto before = breaker.state();
  if (provider_failure && !any_success)
    breaker.on_failure(steady_now());
  else
    breaker.on_success(steady_now());
  if (breaker.state() != before) {
    LPS_LOG_WARN(log(), "bundler: circuit breaker of {} is now {}", provider,
                 to_string(breaker.state()));
    publish_breaker_state(self, provider);
  }
}

// Takes the bundle's provider calls (one per item, or one per packed group with
// multi-prompt) and estimated tokens from the provider's rate limit. The
// estimate (4 bytes per token) is good enough to pace; a bundle that does not fit the
// token budget whole still goes (it was admitted by the request budget) and leaves debt.
void charge_rate_limit(self_ptr self, const bundle& b) {
  uint64_t tokens = 0;
  for (const auto& item : b.items)
    tokens += item.entry.request.user_prompt.size() / 4 + 1;
  auto& limiter = limiter_of(self, b.provider);
  auto now = steady_now();
  auto per_call = self->state.cfg.multi_prompt_max;
  uint64_t calls = per_call > 1 ? (b.items.size() + per_call - 1) / per_call : b.items.size();
  if (!limiter.try_acquire(now, calls, tokens)) {
    limiter.try_acquire(now, calls, 0);
    limiter.reconcile_tokens(static_cast<int64_t>(tokens));
  }
}

// What is needed to fail a bundle's items without keeping their texts.
struct bundle_skeleton {
  std::string bundle_id;
  std::string provider;
  std::string model;
  std::vector<std::pair<std::string, request_enrichment>> items;
};

bundle_skeleton skeleton_of(const bundle& b) {
  bundle_skeleton result{b.bundle_id, b.provider, b.model, {}};
  for (const auto& item : b.items)
    result.items.emplace_back(item.entry.request.queue_id, item.enrichment);
  return result;
}

// Every item of a bundle that got no answer fails with the same error (the queue manager
// fills in the prompt hash when it builds the result event).
std::vector<comparison_outcome> fail_bundle(const bundle_skeleton& b, const std::string& code,
                                            const std::string& message, bool retryable) {
  std::vector<comparison_outcome> result;
  for (const auto& [queue_id, enrichment] : b.items) {
    comparison_outcome outcome;
    outcome.queue_id = queue_id;
    outcome.error_code = code;
    outcome.error_message = message;
    outcome.retryable = retryable;
    outcome.enrichment = enrichment;
    outcome.provider = b.provider;
    outcome.model = b.model;
    result.push_back(std::move(outcome));
  }
  return result;
}

void record_bundle(self_ptr self, const bundle& b) {
  auto& st = self->state;
  ++st.bundles_total;
  st.items_total += b.items.size();
  std::vector<metric_sample> xs{
      {"llm_provider_bundles_total", {b.provider, b.model, b.queue_processing_mode}, 1},
      {"llm_provider_inflight_provider_calls", {b.provider}, double(st.inflight[b.provider])}};
  if (b.queue_processing_mode == "serial_bundle") {
    xs.push_back({"llm_provider_serial_bundle_calls_total", {b.provider, b.model}, 1});
    xs.push_back({"llm_provider_serial_bundle_items_per_call",
                  {b.provider, b.model},
                  double(b.items.size())});
  }
  if (st.metrics)
    self->send(st.metrics, atom::record_v, std::move(xs));
}

// Providers say in response headers how much of their rate limit is left (OpenAI
// x-ratelimit-*, Anthropic anthropic-ratelimit-*); the limiter trusts that over its own
// count. Of a bundle's calls, the most restrictive figures win.
void learn_limits(self_ptr self, const std::string& provider,
                  const std::vector<comparison_outcome>& outcomes) {
  const rate_limit_hint* tightest = nullptr;
  auto lower = [](int64_t a, int64_t b) { return a >= 0 && (b < 0 || a < b); };
  for (const auto& o : outcomes)
    if (!o.limits.empty()
        && (tightest == nullptr || lower(o.limits.remaining_requests, tightest->remaining_requests)
            || lower(o.limits.remaining_tokens, tightest->remaining_tokens)))
      tightest = &o.limits;
  if (tightest == nullptr)
    return;
  auto count = [](int64_t v) {
    return v >= 0 ? std::optional<uint64_t>{static_cast<uint64_t>(v)} : std::nullopt;
  };
  auto reset = [](std::chrono::milliseconds d) {
    return d.count() >= 0 ? std::optional<clock_duration>{d} : std::nullopt;
  };
  limiter_of(self, provider)
      .observe_limits(steady_now(), count(tightest->remaining_requests),
                      count(tightest->remaining_tokens), reset(tightest->requests_reset),
                      reset(tightest->tokens_reset));
}

void finish_call(self_ptr self, const std::string& provider,
                 std::vector<comparison_outcome> outcomes) {
  auto& st = self->state;
  --st.inflight[provider];
  report_health(self, provider, outcomes);
  learn_limits(self, provider, outcomes);
  if (st.metrics)
    self->send(
        st.metrics, atom::record_v,
        std::vector<metric_sample>{
            {"llm_provider_inflight_provider_calls", {provider}, double(st.inflight[provider])}});
  self->send(st.queue, atom::complete_v, std::move(outcomes));
  form(self);
}

// One provider call per bundle; the reply (or its absence) always reaches the queue manager.
void dispatch(self_ptr self) {
  auto& st = self->state;
  auto id = "bnd-" + std::to_string(++st.next_bundle) + "-" + new_uuid().substr(0, 8);
  auto b = st.builder->finish(id);
  auto provider = b.provider;
  ++st.inflight[provider];
  auto before = breaker_of(self, provider).state();
  breaker_of(self, provider).allow(steady_now()); // takes the half-open probe slot
  if (breaker_of(self, provider).state() != before)
    publish_breaker_state(self, provider);
  charge_rate_limit(self, b);
  record_bundle(self, b);
  LPS_LOG_DEBUG(log(), "bundler dispatched bundle {} ({} items) to {}", id, b.items.size(),
                provider);
  auto i = st.providers.find(provider);
  if (i == st.providers.end()) {
    finish_call(self, provider,
                fail_bundle(skeleton_of(b), "CONFIGURATION_ERROR",
                            "provider '" + provider + "' is not available in this service", false));
    return;
  }
  auto skeleton = std::make_shared<bundle_skeleton>(skeleton_of(b));
  self->request(i->second, st.cfg.provider_timeout, atom::process_v, std::move(b))
      .then(
          [=](std::vector<comparison_outcome>& outcomes) {
            finish_call(self, provider, std::move(outcomes));
          },
          [=](caf::error& err) {
            ++self->state.lost_replies_total;
            LPS_LOG_WARN(log(), "bundler lost the reply for bundle {}: {}", skeleton->bundle_id,
                         caf::to_string(err));
            finish_call(self, provider,
                        fail_bundle(*skeleton, "TIMEOUT", "provider did not answer in time", true));
          });
}

void fill(self_ptr self, const std::string& provider);

void stop_forming(self_ptr self) {
  self->state.forming = false;
  self->state.form_again = false;
  form(self);
}

void dispatch_and_continue(self_ptr self) {
  dispatch(self);
  stop_forming(self);
}

std::string provider_names(const std::map<std::string, provider_actor>& providers) {
  std::string result;
  for (const auto& [name, hdl] : providers)
    result += (result.empty() ? "" : ", ") + name;
  return result;
}

// Providers that can take another bundle now.
std::vector<std::string> available_providers(self_ptr self) {
  std::vector<std::string> result;
  for (const auto& [name, hdl] : self->state.providers)
    if (has_capacity(self, name))
      result.push_back(name);
  return result;
}

// Files dequeued requests under their resolved provider, keeping queue order.
void hold(self_ptr self, std::vector<queued_request>& xs) {
  auto& st = self->state;
  for (auto& x : xs) {
    auto provider = st.builder->resolve(x.request).provider;
    st.held[provider].push_back(std::move(x));
  }
}

// Among available providers with held requests, the one whose first request comes first
// (higher priority, then earlier acceptance).
std::optional<std::string> next_held_provider(self_ptr self) {
  std::optional<std::string> result;
  const queued_request* best = nullptr;
  for (auto& [provider, queue] : self->state.held) {
    if (queue.empty() || !has_capacity(self, provider))
      continue;
    const auto& head = queue.front().request;
    if (best == nullptr || head.priority > best->request.priority
        || (head.priority == best->request.priority && head.queued_at < best->request.queued_at)) {
      best = &queue.front();
      result = provider;
    }
  }
  return result;
}

// Asks the queue manager for up to `n` requests of `providers`; they join `held`.
template <class Continue>
void pull(self_ptr self, uint32_t n, std::vector<std::string> providers, Continue next) {
  auto& st = self->state;
  self->request(st.queue, st.cfg.provider_timeout, atom::dequeue_v, n, std::move(providers))
      .then(
          [=](std::vector<queued_request>& xs) {
            hold(self, xs);
            next(!xs.empty());
          },
          [=](caf::error& err) {
            LPS_LOG_WARN(log(), "bundler dequeue failed: {}", caf::to_string(err));
            next(false);
          });
}

// Adds held requests of `provider` while they are compatible and fit; dequeues more of
// that provider when none are held.
void fill(self_ptr self, const std::string& provider) {
  auto& st = self->state;
  auto& queue = st.held[provider];
  while (!st.builder->full() && !queue.empty()) {
    if (!st.builder->offer(queue.front()))
      return dispatch_and_continue(self); // incompatible: it leads the next bundle
    queue.pop_front();
  }
  if (st.builder->full())
    return dispatch_and_continue(self);
  auto room = static_cast<uint32_t>(st.cfg.policy.max_items - st.builder->size());
  if (const auto& requests = limiter_of(self, provider).requests(); !requests.unlimited()) {
    // Never dequeue more than the request budget can send now.
    auto budget = requests.available(steady_now()) - static_cast<int64_t>(st.builder->size());
    if (budget <= 0)
      return dispatch_and_continue(self);
    room = static_cast<uint32_t>(std::min<int64_t>(room, budget));
  }
  pull(self, room, {provider}, [=](bool got_any) {
    if (got_any)
      fill(self, provider);
    else
      dispatch_and_continue(self); // nothing more right now: send what we have
  });
}

void start_bundle(self_ptr self, const std::string& provider) {
  auto& queue = self->state.held[provider];
  self->state.builder->start(std::move(queue.front()));
  queue.pop_front();
  fill(self, provider);
}

// Forms the next bundle: from held requests first, else from the queue, and only for
// providers that can take a bundle now (a saturated provider's work waits in the queue
// while the others flow).
void form(self_ptr self) {
  auto& st = self->state;
  if (st.stopped)
    return;
  if (st.forming) {
    // A bundle finished or work arrived meanwhile: look again when this formation ends.
    st.form_again = true;
    return;
  }
  if (auto provider = next_held_provider(self)) {
    st.forming = true;
    return start_bundle(self, *provider);
  }
  auto providers = available_providers(self);
  arm_wake(self); // a provider blocked by its breaker or rate limit is looked at again later
  if (providers.empty())
    return; // a finishing bundle or the wake calls form() again
  st.forming = true;
  pull(self, st.cfg.policy.max_items, std::move(providers), [=](bool got_any) {
    if (auto provider = got_any ? next_held_provider(self) : std::nullopt)
      return start_bundle(self, *provider);
    self->state.forming = false; // the queue manager wakes us when work arrives
    if (std::exchange(self->state.form_again, false))
      form(self);
  });
}

size_t held_count(const bundler_state& st) {
  size_t result = 0;
  for (const auto& [provider, queue] : st.held)
    result += queue.size();
  return result;
}

actor_status status_of(self_ptr self) {
  auto& st = self->state;
  auto result = status_header(self, bundler_state::name, "bundler", st.handled);
  double inflight = 0;
  for (const auto& [provider, n] : st.inflight) {
    result.figures["inflight_" + provider] = n;
    inflight += n;
  }
  result.figures["inflight_bundles"] = inflight;
  result.figures["bundles_total"] = double(st.bundles_total);
  result.figures["items_total"] = double(st.items_total);
  result.figures["avg_items_per_bundle"] =
      st.bundles_total == 0 ? 0.0 : double(st.items_total) / double(st.bundles_total);
  result.figures["lost_replies_total"] = double(st.lost_replies_total);
  auto now = steady_now();
  for (auto& [provider, hdl] : st.providers) {
    auto& breaker = breaker_of(self, provider);
    result.facts["breaker_" + provider] = std::string{to_string(breaker.state())};
    result.figures["breaker_opened_total_" + provider] = double(breaker.counters().opened_total);
    result.figures["blocked_ms_" + provider] = double(
        std::chrono::duration_cast<std::chrono::milliseconds>(blocked_for(self, provider, now))
            .count());
  }
  result.figures["max_items_per_bundle"] = st.cfg.policy.max_items;
  result.facts = {{"configured_mode", st.cfg.configured_mode},
                  {"effective_mode", to_string(st.cfg.policy.mode)},
                  {"held_requests", std::to_string(held_count(st))}};
  return result;
}

} // namespace

bundler_actor::behavior_type bundler(bundler_actor::stateful_pointer<bundler_state> self,
                                     bundler_config cfg, queue_manager_actor queue,
                                     std::map<std::string, provider_actor> providers,
                                     metrics_actor metrics) {
  auto& st = self->state;
  st.builder.emplace(cfg.policy);
  st.cfg = std::move(cfg);
  st.queue = std::move(queue);
  st.providers = std::move(providers);
  st.metrics = std::move(metrics);
  if (st.cfg.configured_mode == "batch_api")
    LPS_LOG_INFO(log(),
                 "QUEUE_PROCESSING_MODE=batch_api: the bundler serves the providers "
                 "without batch jobs ({}) as serial_bundle",
                 provider_names(st.providers));
  form(self);
  return {
      [=](atom::wake) {
        ++self->state.handled;
        self->state.wake_armed = false;
        form(self);
      },
      [=](atom::stop) {
        ++self->state.handled;
        self->state.stopped = true;
      },
      [=](atom::status) -> actor_status {
        ++self->state.handled;
        return status_of(self);
      },
  };
}

} // namespace lps
