#include "actors/bundler.hpp"
#include "actors/request_timeout.hpp"
#include "runtime/error_code.hpp"
#include "actors/status_report.hpp"

#include "runtime/ids.hpp"
#include "runtime/logging.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/sec.hpp>

#include <algorithm>

namespace lps {

namespace {

using self_ptr = cluster_bundler_actor::stateful_pointer<bundler_state>;

std::shared_ptr<spdlog::logger> log() {
  static auto logger = get_logger("bundler");
  return logger;
}

void form(self_ptr self);

// CAF's actor clock: the steady clock in the service, virtual time under the test
// coordinator (so tests move breaker and rate-limit time with sched.advance_time).
clock_time now_of(self_ptr self) {
  return self->clock().now();
}

// Wakes the bundler after `delay` (once: a wake already pending does it).
void wake_in(self_ptr self, clock_duration delay) {
  auto& st = self->state;
  if (st.wake_armed)
    return;
  st.wake_armed = true;
  delay = std::max<clock_duration>(delay, std::chrono::milliseconds{1});
  self->delayed_send(self, std::chrono::duration_cast<caf::timespan>(delay), atom::wake_v);
}

// The node for the next bundle to `provider`: the one with the fewest calls in flight below
// the per-node cap, counting this node's gateway calls (they share its call slots). When the
// gateway holds slots the bundler would wait for, it looks again shortly: the end of a
// gateway call sends it nothing.
std::optional<std::string> pick_node(self_ptr self, const std::string& provider) {
  auto& st = self->state;
  auto gateway_calls = st.gate->gateway_inflight(provider);
  st.routes.set_gateway_calls(st.cfg.self_node, provider, gateway_calls);
  auto node = st.routes.pick(provider, st.gate->limit_of(provider));
  if (!node && gateway_calls > 0)
    wake_in(self, std::chrono::milliseconds{20});
  return node;
}

// A provider takes another bundle when its breaker lets calls through, its rate limit has
// room (both decided here, for every node: the limits hold cluster-wide) and one of the
// nodes serving it has a free call slot.
bool has_capacity(self_ptr self, const std::string& provider) {
  auto& st = self->state;
  return st.gate->pause_of(provider) == nullptr
         && st.gate->blocked_for(provider, now_of(self)) == clock_duration::zero()
         && pick_node(self, provider).has_value();
}

std::vector<std::string> provider_names_of(const std::map<std::string, provider_actor>& providers) {
  std::vector<std::string> result;
  for (const auto& [name, hdl] : providers)
    result.push_back(name);
  return result;
}

// Wakes the bundler when the soonest time-blocked provider opens up again.
void arm_wake(self_ptr self) {
  auto& st = self->state;
  if (st.wake_armed)
    return;
  if (auto soonest = st.gate->soonest_unblock(provider_names_of(st.providers), now_of(self)))
    wake_in(self, *soonest);
}

void publish_breaker_state(self_ptr self, const std::string& provider) {
  auto& st = self->state;
  auto state = st.gate->breaker(provider).state();
  LPS_LOG_WARN(log(), "bundler: circuit breaker of {} is now {}", provider, to_string(state));
  if (!st.metrics)
    return;
  double value = state == breaker_state::closed ? 0 : state == breaker_state::open ? 1 : 2;
  self->send(st.metrics, atom::record_v,
             std::vector<metric_sample>{{"llm_provider_circuit_breaker_state", {provider}, value}});
}

void publish_paused(self_ptr self, const std::string& provider, bool paused) {
  auto& st = self->state;
  if (st.metrics)
    self->send(st.metrics, atom::record_v,
               std::vector<metric_sample>{{"llm_provider_paused", {provider}, paused ? 1.0 : 0.0}});
}

// The provider rejected our key: one error line (never the key) tells the operator what to do.
void report_pause(self_ptr self, const std::string& provider) {
  const auto* pause = self->state.gate->pause_of(provider);
  LPS_LOG_ERROR(log(),
                "bundler: provider {} is paused: it rejected the key (model {}, {}); its "
                "requests wait in the queue. Fix the key, then POST /api/v1/providers/{}/resume "
                "(or restart with the fixed key)",
                provider, pause->model, pause->error_code, provider);
  publish_paused(self, provider, true);
}

// The operator fixed the key: that provider's work flows again at once.
bool resume(self_ptr self, const std::string& provider) {
  if (!self->state.gate->resume(provider))
    return false;
  LPS_LOG_WARN(log(), "bundler: provider {} resumed by the operator", provider);
  publish_paused(self, provider, false);
  form(self);
  return true;
}

bundle_skeleton skeleton_of(const bundle& b, clock_time started) {
  bundle_skeleton result{b.bundle_id, b.provider, b.model, {}, started};
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
  ++st.items_per_call[b.items.size()];
  std::vector<metric_sample> xs{
      {"llm_provider_bundles_total", {b.provider, b.model, b.queue_processing_mode}, 1},
      {"llm_provider_inflight_bundles", {b.provider}, double(st.routes.inflight(b.provider))}};
  if (b.queue_processing_mode == "serial_bundle") {
    xs.push_back({"llm_provider_serial_bundle_calls_total", {b.provider, b.model}, 1});
    xs.push_back({"llm_provider_serial_bundle_items_per_call",
                  {b.provider, b.model},
                  double(b.items.size())});
  }
  if (st.metrics)
    self->send(st.metrics, atom::record_v, std::move(xs));
}

// The outcomes of a call that ended (or of a bundle put back) go to the queue manager, and
// the freed slot lets the next bundle form.
void hand_outcomes(self_ptr self, const std::string& provider,
                   std::vector<comparison_outcome> outcomes) {
  auto& st = self->state;
  if (st.metrics)
    self->send(
        st.metrics, atom::record_v,
        std::vector<metric_sample>{
            {"llm_provider_inflight_bundles", {provider}, double(st.routes.inflight(provider))}});
  self->send(st.queue, atom::complete_v, std::move(outcomes));
  if (st.stopped && st.sent.size() == 0)
    for (auto& waiter : std::exchange(st.drain_waiters, {}))
      waiter.deliver(atom::drained_v);
  form(self);
}

void finish_call(self_ptr self, const std::string& provider,
                 std::vector<comparison_outcome> outcomes, bool on_this_node) {
  auto& st = self->state;
  auto was_paused = st.gate->pause_of(provider) != nullptr;
  if (st.gate->finish_call(provider, outcomes, now_of(self), on_this_node))
    publish_breaker_state(self, provider);
  if (!was_paused && st.gate->pause_of(provider) != nullptr)
    report_pause(self, provider);
  hand_outcomes(self, provider, std::move(outcomes));
}

// Keeps the bundle for inspection: the newest recent_bundles_kept, and failures by class.
void note_finished(self_ptr self, const bundle_skeleton& b,
                   const std::vector<comparison_outcome>& outcomes) {
  auto& st = self->state;
  finished_bundle x{
      b.bundle_id, b.provider,
      b.model,     b.items.size(),
      0,           std::chrono::duration_cast<caf::timespan>(now_of(self) - b.started)};
  for (const auto& outcome : outcomes) {
    if (outcome.error_code.empty())
      ++x.succeeded;
    else
      ++st.errors_by_class[b.provider][outcome.error_code];
  }
  st.recent_bundles.push_back(std::move(x));
  if (st.recent_bundles.size() > recent_bundles_kept)
    st.recent_bundles.pop_front();
}

void finish_bundle(self_ptr self, const bundle_skeleton& b,
                   std::vector<comparison_outcome> outcomes, bool on_this_node) {
  note_finished(self, b, outcomes);
  finish_call(self, b.provider, std::move(outcomes), on_this_node);
}

// The answer for bundle `id` arrived (or its request failed): finishes it, unless it was put
// back already because its node was gone (then the answer is dropped: its items run again,
// and each still gets exactly one final result).
// A leaving node whose last bundle ended (or that is gone) hears that it may go.
void answer_retired(self_ptr self, const std::string& name) {
  auto& st = self->state;
  auto i = st.retire_waiters.find(name);
  if (i == st.retire_waiters.end() || (st.routes.has(name) && st.routes.inflight_of(name) > 0))
    return;
  auto waiters = std::move(i->second);
  st.retire_waiters.erase(i);
  LPS_LOG_INFO(log(), "bundler: node {} has no bundle in flight; it may leave", name);
  for (auto& promise : waiters)
    promise.deliver(atom::drained_v);
}

// Node `name` leaves (SIGTERM): no new bundle goes there; its calls in flight finish there
// and their answers are handled as usual, so none of them is made twice.
caf::result<atom::drained> retire_node(self_ptr self, const std::string& name) {
  auto& st = self->state;
  if (name == st.cfg.self_node || !st.routes.retire(name) || st.routes.inflight_of(name) == 0)
    return atom::drained_v;
  LPS_LOG_INFO(log(), "bundler: node {} leaves; it gets no new bundle, {} still in flight there",
               name, st.routes.inflight_of(name));
  auto& waiters = st.retire_waiters[name];
  waiters.push_back(self->make_response_promise<atom::drained>());
  return waiters.back();
}

template <class MakeOutcomes>
void answered(self_ptr self, const std::string& id, MakeOutcomes make_outcomes) {
  auto& st = self->state;
  auto routed = st.routes.finish(id);
  if (!routed) {
    LPS_LOG_DEBUG(log(), "bundler drops the late answer for bundle {} (put back already)", id);
    return;
  }
  auto i = st.sent.find(id);
  auto skeleton = std::move(i->second);
  st.sent.erase(i);
  auto outcomes = make_outcomes(skeleton);
  finish_bundle(self, skeleton, std::move(outcomes), routed->node == st.cfg.self_node);
  answer_retired(self, routed->node);
}

// Bundle `id` (no longer routed) went to node `name`, which is gone: its items go back to the
// queue with a retryable outcome.
void put_back(self_ptr self, const std::string& id, const std::string& name) {
  auto& st = self->state;
  auto i = st.sent.find(id);
  auto skeleton = std::move(i->second);
  st.sent.erase(i);
  ++st.put_back_total;
  note_finished(self, skeleton, {});
  hand_outcomes(self, skeleton.provider,
                fail_bundle(skeleton, to_string(ec::connection_error),
                            "cluster node " + name + " is gone; the request runs again", true));
}

// Node `name` is gone (its connection dropped, or its heartbeat went stale): its bundles in
// flight will never be answered, so their items go back to the queue at once with a
// retryable outcome. The provider is not judged by it: its gate hears nothing of these calls
// (a breaker probe among them is presumed lost after the open duration), and the slots
// counted are the routes' (per node), not the gate's.
void drop_node(self_ptr self, const std::string& name, const std::string& why) {
  auto& st = self->state;
  if (!st.routes.has(name))
    return;
  auto ids = st.routes.remove(name);
  st.node_actors.erase(name);
  st.gate->forget_node(name, now_of(self));
  LPS_LOG_WARN(log(), "bundler: node {} is gone ({}); putting back its {} bundles in flight", name,
               why, ids.size());
  for (const auto& id : ids)
    put_back(self, id, name);
  answer_retired(self, name);
}

// Syncs the provider gate with every other node (actors/provider_gate_sync.cpp): each gets
// a lease and the gate's state; its answer gives back what it did not use, tells the
// breakers how its gateway calls ended and how many call slots they take on that node.
void sync_gates(self_ptr self) {
  auto& st = self->state;
  st.gate_sync_armed = false;
  if (st.node_actors.empty())
    return;
  for (const auto& [name, hdl] : st.node_actors) {
    std::map<std::string, uint32_t> bundles;
    for (const auto& [provider, actor] : st.providers)
      bundles[provider] = st.routes.inflight_on(name, provider);
    auto sync =
        st.gate->lease_to(name, bundles, st.node_actors.size(), st.cfg.gate_lease, now_of(self));
    auto node = name;
    self->request(caf::actor_cast<node_actor>(hdl), st.cfg.gate_lease, atom::gate_v,
                  std::move(sync))
        .then(
            [=](const gate_report& report) {
              auto& state = self->state;
              if (state.node_actors.count(node) == 0)
                return; // the node left meanwhile: its lease is spent
              if (state.gate->settle(node, report, now_of(self)))
                for (const auto& u : report.providers)
                  publish_breaker_state(self, u.provider);
              for (const auto& u : report.providers)
                state.routes.set_gateway_calls(node, u.provider, u.gateway_inflight);
              form(self);
            },
            // The lease stays spent: the cluster-wide limit errs on the safe side.
            [=](const caf::error& err) {
              LPS_LOG_DEBUG(log(), "bundler: no gate report from node {}: {}", node,
                            caf::to_string(err));
            });
  }
  st.gate_sync_armed = true;
  self->delayed_send(self, st.cfg.gate_sync_period, atom::gate_v);
}

// A node's provider actors join: from now on its bundles may go there too.
void join_node(self_ptr self, const node_providers& x) {
  auto& st = self->state;
  std::map<std::string, provider_actor> providers;
  for (size_t i = 0; i < x.names.size() && i < x.handles.size(); ++i)
    if (st.providers.count(x.names[i]) > 0)
      providers.emplace(x.names[i], caf::actor_cast<provider_actor>(x.handles[i]));
  if (!st.routes.add(x.node, std::move(providers), x.node_actor.address()))
    return;
  if (x.node_actor) {
    self->monitor(x.node_actor);
    // The node asks this bundler to retire it when it leaves (SIGTERM).
    self->send(caf::actor_cast<node_actor>(x.node_actor), atom::leader_v,
               caf::actor_cast<caf::actor>(self));
    st.node_actors.emplace(x.node, x.node_actor);
    if (!st.gate_sync_armed)
      sync_gates(self);
  }
  LPS_LOG_INFO(log(), "bundler: node {} joined; its providers take bundles now", x.node);
  form(self);
}

// One provider call per bundle; the reply (or its absence) always reaches the queue manager.
void dispatch(self_ptr self) {
  auto& st = self->state;
  auto id = "bnd-" + std::to_string(++st.next_bundle) + "-" + new_uuid().substr(0, 8);
  auto b = st.builder->finish(id);
  auto provider = b.provider;
  auto node = pick_node(self, provider);
  auto on_this_node = node && *node == st.cfg.self_node;
  if (st.gate->start_call(b, now_of(self), on_this_node))
    publish_breaker_state(self, provider);
  LPS_LOG_DEBUG(log(), "bundler dispatched bundle {} ({} items) to {}", id, b.items.size(),
                provider);
  auto skeleton = skeleton_of(b, now_of(self));
  if (st.providers.count(provider) == 0) {
    record_bundle(self, b);
    finish_bundle(self, skeleton,
                  fail_bundle(skeleton, to_string(ec::configuration_error),
                              "provider '" + provider + "' is not available in this service",
                              false),
                  on_this_node);
    return;
  }
  if (!node) { // the node chosen when the bundle began to form is gone: run it again
    record_bundle(self, b);
    hand_outcomes(self, provider,
                  fail_bundle(skeleton, to_string(ec::connection_error),
                              "no cluster node can take the bundle now; the request runs again",
                              true));
    return;
  }
  st.routes.start(id, *node, provider);
  st.sent.emplace(id, std::move(skeleton));
  record_bundle(self, b);
  auto reply = self->request(st.routes.handle(*node, provider), st.cfg.provider_timeout,
                             atom::process_v, std::move(b));
  auto target = *node;
  auto reply_id = reply.id();
  std::move(reply).then(
      [=](std::vector<comparison_outcome>& outcomes) {
        forget_request_timeout(self, reply_id);
        answered(self, id, [&](const bundle_skeleton&) { return std::move(outcomes); });
      },
      [=](caf::error& err) {
        forget_request_timeout(self, reply_id);
        // Another node's provider actor is gone (that node stops, or its connection
        // dropped): not the provider's fault, so the bundle goes back like its node's.
        if (err == caf::sec::request_receiver_down && target != self->state.cfg.self_node) {
          if (self->state.routes.finish(id))
            put_back(self, id, target);
          answer_retired(self, target);
          return;
        }
        answered(self, id, [&](const bundle_skeleton& lost) {
          ++self->state.lost_replies_total;
          LPS_LOG_WARN(log(), "bundler lost the reply for bundle {}: {}", id, caf::to_string(err));
          self->state.stats.last_error =
              "lost the reply for bundle " + id + ": " + caf::to_string(err);
          return fail_bundle(lost, to_string(ec::timeout), "provider did not answer in time", true);
        });
      });
}

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

// What a dequeue brought: whether it got any request, and whether the queue manager had
// fewer than asked for (then it had no more of those providers at that moment).
struct pulled {
  bool got_any = false;
  bool drained = false;
};

// Asks the queue manager for up to `n` requests of `providers`; they join `held`. Without a
// timeout: the queue manager runs in this process and always answers (a store read it waits
// for answers too), and a timed request costs two wake-ups of `caf.clock` (set, cancel).
template <class Continue>
void pull(self_ptr self, uint32_t n, std::vector<std::string> providers, Continue next) {
  auto& st = self->state;
  self->request(st.queue, caf::infinite, atom::dequeue_v, n, std::move(providers))
      .then(
          [=](std::vector<queued_request>& xs) {
            hold(self, xs);
            next(pulled{!xs.empty(), xs.size() < n});
          },
          [=](caf::error& err) {
            LPS_LOG_WARN(log(), "bundler dequeue failed: {}", caf::to_string(err));
            next(pulled{false, true});
          });
}

// Items the next bundle of `provider` may carry: max_items, or fewer when its request budget
// is lower (the calls left, each carrying multi_prompt_max items when packed; at least one:
// has_capacity saw room for a call). Held requests count too: a bundle filled from them
// beyond the budget would go out uncharged (the gate charges a bundle that fits the bucket
// only), and the limit would not hold.
size_t item_cap(self_ptr self, const std::string& provider) {
  auto& st = self->state;
  auto cap = static_cast<int64_t>(st.cfg.policy.max_items);
  if (auto available = st.gate->request_budget(provider, now_of(self))) {
    int64_t per_call = std::max<uint32_t>(st.cfg.gate.multi_prompt_max, 1);
    cap = std::clamp<int64_t>(*available * per_call, 1, cap);
  }
  return static_cast<size_t>(cap);
}

// Adds held requests of `provider` while they are compatible and fit; dequeues more of
// that provider when none are held, unless the dequeue just made (`drained`, in this same
// message) found no more: asking again would cost a round trip to the queue manager
// for nothing (at one request in flight, every bundle's). Work that arrives meanwhile is
// taken by the formation that follows the dispatch. Never more than the request budget
// can send now.
void fill(self_ptr self, const std::string& provider, bool drained) {
  auto& st = self->state;
  auto& queue = st.held[provider];
  auto cap = item_cap(self, provider);
  while (!st.builder->full() && st.builder->size() < cap && !queue.empty()) {
    if (!st.builder->offer(queue.front()))
      return dispatch_and_continue(self); // incompatible: it leads the next bundle
    queue.pop_front();
  }
  if (st.builder->full() || st.builder->size() >= cap || drained)
    return dispatch_and_continue(self);
  pull(self, static_cast<uint32_t>(cap - st.builder->size()), {provider}, [=](pulled got) {
    if (got.got_any)
      fill(self, provider, got.drained);
    else
      dispatch_and_continue(self); // nothing more right now: send what we have
  });
}

void start_bundle(self_ptr self, const std::string& provider, bool drained) {
  auto& queue = self->state.held[provider];
  self->state.builder->start(std::move(queue.front()));
  queue.pop_front();
  fill(self, provider, drained);
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
    return start_bundle(self, *provider, false);
  }
  auto providers = available_providers(self);
  arm_wake(self); // a provider blocked by its breaker or rate limit is looked at again later
  if (providers.empty())
    return; // a finishing bundle or the wake calls form() again
  st.forming = true;
  pull(self, st.cfg.policy.max_items, std::move(providers), [=](pulled got) {
    if (auto provider = got.got_any ? next_held_provider(self) : std::nullopt)
      return start_bundle(self, *provider, got.drained);
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

// Every provider the bundler serves, as its gate sees it now.
std::vector<provider_status> provider_statuses(self_ptr self) {
  auto& st = self->state;
  auto now = now_of(self);
  std::vector<provider_status> result;
  for (const auto& [provider, hdl] : st.providers) {
    auto breaker = st.gate->breaker(provider);
    provider_status x;
    x.name = provider;
    x.circuit_state = to_string(breaker.state());
    x.breaker_opened_total = breaker.counters().opened_total;
    x.inflight_bundles = st.routes.inflight(provider);
    x.blocked_for =
        std::chrono::duration_cast<std::chrono::milliseconds>(st.gate->blocked_for(provider, now));
    if (const auto* pause = st.gate->pause_of(provider))
      x.paused_by = pause->error_code;
    result.push_back(std::move(x));
  }
  return result;
}

double to_ms(caf::timespan d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// The inspector's "recent_bundles" table, newest first.
std::vector<status_row> recent_bundle_rows(const bundler_state& st) {
  std::vector<status_row> result;
  for (auto i = st.recent_bundles.rbegin(); i != st.recent_bundles.rend(); ++i) {
    auto outcome = i->succeeded == i->items ? "ok" : i->succeeded == 0 ? "failed" : "partial";
    result.push_back({{{"items", double(i->items)},
                       {"succeeded", double(i->succeeded)},
                       {"failed", double(i->items - i->succeeded)},
                       {"duration_ms", to_ms(i->duration)}},
                      {{"bundle_id", i->bundle_id},
                       {"provider", i->provider},
                       {"model", i->model},
                       {"outcome", outcome}}});
  }
  return result;
}

// The inspector's "items_per_call" table: provider calls by bundle size.
std::vector<status_row> items_per_call_rows(const bundler_state& st) {
  std::vector<status_row> result;
  for (const auto& [items, calls] : st.items_per_call)
    result.push_back({{{"items", double(items)}, {"calls", double(calls)}}, {}});
  return result;
}

// The inspector's "providers" table: one row per provider with its breaker, calls in flight
// against the limit, rate-limit headroom (requests it may send now; absent: unlimited), the
// mean latency of its recent bundles and its failed items by error code.
std::vector<status_row> provider_rows(self_ptr self) {
  auto& st = self->state;
  std::vector<status_row> result;
  for (const auto& x : provider_statuses(self)) {
    status_row row{
        {{"inflight_bundles", double(x.inflight_bundles)},
         {"max_inflight_bundles", double(st.gate->limit_of(x.name))},
         {"blocked_ms", double(x.blocked_for.count())},
         {"breaker_opened_total", double(x.breaker_opened_total)}},
        {{"provider", x.name}, {"circuit_state", x.circuit_state}, {"paused_by", x.paused_by}}};
    if (auto budget = st.gate->request_budget(x.name, now_of(self)))
      row.figures["rate_limit_requests_available"] = double(*budget);
    double total_ms = 0;
    size_t calls = 0;
    for (const auto& b : st.recent_bundles)
      if (b.provider == x.name) {
        total_ms += to_ms(b.duration);
        ++calls;
      }
    if (calls > 0)
      row.figures["latency_ms_mean"] = total_ms / double(calls);
    if (auto i = st.errors_by_class.find(x.name); i != st.errors_by_class.end())
      for (const auto& [code, n] : i->second)
        row.figures["errors_" + code] = double(n);
    result.push_back(std::move(row));
  }
  return result;
}

// The inspector's generic view: the providers' status flattened into figures and facts,
// only displayed (GET /api/v1/providers asks for provider_statuses instead).
actor_status status_of(self_ptr self) {
  auto& st = self->state;
  auto result = status_header(self, bundler_state::name, "bundler", st.stats);
  result.facts = {{"configured_mode", st.cfg.configured_mode},
                  {"effective_mode", to_string(st.cfg.policy.mode)},
                  {"held_requests", std::to_string(held_count(st))}};
  result.figures["inflight_bundles"] = st.sent.size();
  result.figures["bundles_total"] = double(st.bundles_total);
  result.figures["items_total"] = double(st.items_total);
  result.figures["avg_items_per_bundle"] =
      st.bundles_total == 0 ? 0.0 : double(st.items_total) / double(st.bundles_total);
  result.figures["lost_replies_total"] = double(st.lost_replies_total);
  result.figures["put_back_bundles_total"] = double(st.put_back_total);
  result.figures["nodes"] = double(st.routes.nodes().size());
  for (const auto& name : st.routes.nodes())
    result.figures["inflight_node_" + name] = double(st.routes.inflight_of(name));
  for (const auto& x : provider_statuses(self)) {
    result.figures["inflight_" + x.name] = double(x.inflight_bundles);
    result.facts["breaker_" + x.name] = x.circuit_state;
    if (!x.paused_by.empty())
      result.facts["paused_" + x.name] = x.paused_by;
    result.figures["breaker_opened_total_" + x.name] = double(x.breaker_opened_total);
    result.figures["blocked_ms_" + x.name] = double(x.blocked_for.count());
  }
  result.figures["max_items_per_bundle"] = st.cfg.policy.max_items;
  result.tables = {{"recent_bundles", recent_bundle_rows(st)},
                   {"items_per_call", items_per_call_rows(st)},
                   {"providers", provider_rows(self)}};
  return result;
}

// Stops pulling work; the answer comes when the last bundle in flight has finished.
caf::result<atom::drained> drain(self_ptr self) {
  auto& st = self->state;
  st.stopped = true;
  if (st.sent.size() == 0)
    return atom::drained_v;
  st.drain_waiters.push_back(self->make_response_promise<atom::drained>());
  return st.drain_waiters.back();
}

// Without the queue manager nothing can be pulled or completed; a provider that is gone
// only fails its calls (lost replies, retried).
void watch_peers(self_ptr self) {
  auto& st = self->state;
  self->monitor(st.queue);
  for (const auto& [name, hdl] : st.providers)
    self->monitor(hdl);
  self->set_down_handler([=](caf::down_msg& msg) {
    if (msg.source == self->state.queue.address()) {
      LPS_LOG_ERROR(log(), "bundler stops: the queue manager is down ({})",
                    caf::to_string(msg.reason));
      self->quit(msg.reason);
      return;
    }
    if (auto name = self->state.routes.node_watched_by(msg.source); !name.empty()) {
      drop_node(self, name, "connection lost: " + caf::to_string(msg.reason));
      return;
    }
    LPS_LOG_WARN(log(), "bundler: a provider actor is down ({}); its calls fail and are retried",
                 caf::to_string(msg.reason));
  });
}

// At exit (shutdown), says what is left unfinished: the queue hands it out again at the
// next start (its requests are still processing in the store).
void report_unfinished(self_ptr self) {
  self->set_exit_handler([=](caf::exit_msg& msg) {
    auto& st = self->state;
    auto dequeued = held_count(st) + st.builder->size();
    if (st.sent.size() > 0 || dequeued > 0)
      LPS_LOG_WARN(log(),
                   "bundler stops with {} bundles in flight and {} dequeued requests not sent; "
                   "they are put back and run again after the next start",
                   st.sent.size(), dequeued);
    self->quit(msg.reason);
  });
}

} // namespace

cluster_bundler_actor::behavior_type
bundler(cluster_bundler_actor::stateful_pointer<bundler_state> self, bundler_config cfg,
        queue_manager_actor queue, std::map<std::string, provider_actor> providers,
        metrics_actor metrics) {
  auto& st = self->state;
  st.builder.emplace(cfg.policy);
  st.gate = cfg.shared_gate ? cfg.shared_gate : std::make_shared<provider_gate>(cfg.gate);
  st.gate->begin_term(now_of(self));
  st.cfg = std::move(cfg);
  st.queue = std::move(queue);
  st.providers = std::move(providers);
  st.routes.add(st.cfg.self_node, st.providers);
  st.metrics = std::move(metrics);
  if (st.cfg.configured_mode == "batch_api")
    LPS_LOG_INFO(log(),
                 "QUEUE_PROCESSING_MODE=batch_api: the bundler serves the providers "
                 "without batch jobs ({}) as serial_bundle",
                 provider_names(st.providers));
  watch_peers(self);
  report_unfinished(self);
  form(self);
  return counted(
      self,
      [=](atom::wake) {
        self->state.wake_armed = false;
        form(self);
      },
      [=](atom::drain) -> caf::result<atom::drained> { return drain(self); },
      [=](atom::status) -> actor_status { return status_of(self); },
      [=](atom::resume, const std::string& provider) -> bool { return resume(self, provider); },
      [=](atom::providers) -> std::vector<provider_status> { return provider_statuses(self); },
      [=](atom::join, const node_providers& x) { join_node(self, x); },
      [=](atom::leave, const std::string& name) {
        if (name != self->state.cfg.self_node)
          drop_node(self, name, "stale heartbeat");
      },
      [=](atom::retire, const std::string& name) -> caf::result<atom::drained> {
        return retire_node(self, name);
      },

      [=](atom::gate) { sync_gates(self); });
}

} // namespace lps
