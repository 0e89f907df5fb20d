#include "actors/provider_http.hpp"
#include "actors/provider_http_gateway.hpp"
#include "runtime/error_code.hpp"
#include "actors/status_report.hpp"

#include "actors/providers/retry_policy.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <sstream>

namespace lps {

namespace {

using self_ptr = provider_http_impl_actor::stateful_pointer<provider_http_state>;
using state_t = provider_http_state;
using part_t = state_t::part;
using clock = std::chrono::steady_clock;

bool configured(const provider_http_config& cfg) {
  return !cfg.target.base_url.empty() && !cfg.target.api_key.empty();
}

actor_status status_of(self_ptr self) {
  auto& st = self->state;
  auto result = status_header(self, "provider:" + st.cfg.provider, "provider", st.stats);
  auto gauges = call_gauges_of(st.https.size(), st.cfg.max_connections);
  result.figures = {{"bundles_total", double(st.bundles_total)},
                    {"items_total", double(st.items_total)},
                    {"http_calls_total", double(st.http_calls_total)},
                    {"multi_prompt_calls_total", double(st.multi_calls_total)},
                    {"multi_prompt_fallbacks_total", double(st.multi_fallbacks_total)},
                    {"errors_total", double(st.errors_total)},
                    {"gateway_calls_total", double(st.gateway_calls_total)},
                    {"gateway_retries_total", double(st.gateway_retries_total)},
                    {"inflight_gateway_calls", double(st.gateways.size())},
                    {"inflight_bundles", double(st.calls.size())},
                    {"inflight_http_calls", double(gauges.in_flight)},
                    {"http_calls_waiting_for_connection", double(gauges.waiting)}};
  // The API key is deliberately absent: status output ends up in logs and dashboards.
  result.facts = {{"provider", st.cfg.provider},
                  {"wire_format", std::string{st.wire->display_name()}},
                  {"configured", configured(st.cfg) ? "true" : "false"},
                  {"base_url", st.cfg.target.base_url},
                  {"default_model", st.cfg.default_model},
                  {"multi_prompt", st.cfg.multi_prompt ? "true" : "false"}};
  return result;
}

/// The model for one item: what the bundler resolved, else the bundle's, the request's, ours.
std::string model_for(const state_t& st, const bundle& b, const bundle_item& item) {
  if (!item.enrichment.resolved_model.empty())
    return item.enrichment.resolved_model;
  if (!b.model.empty())
    return b.model;
  if (!item.entry.request.overrides.model.empty())
    return item.entry.request.overrides.model;
  return st.cfg.default_model;
}

comparison_outcome outcome_base(const state_t& st, const part_t& p, const std::string& model,
                                clock::time_point started) {
  const auto& req = p.item.entry.request;
  comparison_outcome out;
  out.queue_id = req.queue_id;
  out.provider = st.cfg.provider;
  out.model = model;
  out.prompt_sha256 = req.prompt_sha256;
  out.enrichment = p.item.enrichment;
  out.response_time = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - started);
  return out;
}

void fail(comparison_outcome& out, std::string_view code, std::string message, bool retryable) {
  out.success = false;
  out.error_code = std::string{code};
  out.error_message = std::move(message);
  out.retryable = retryable;
}

/// Fills an outcome from a call's result: the error, or the verdict with usage and cost.
void apply(const state_t& st, comparison_outcome& out, const wire_response& call,
           const wire_verdict* verdict, const token_usage& usage) {
  out.usage = usage;
  out.limits = call.limits;
  if (verdict == nullptr) {
    fail(out, call.error_code, call.error_message, call.retryable);
    out.http_status = call.http_status;
    out.retry_after = call.retry_after;
    return;
  }
  out.success = true;
  out.winner = verdict->winner;
  out.justification = verdict->justification;
  out.confidence = verdict->confidence;
  if (auto price = st.cfg.prices.find(out.model); price != st.cfg.prices.end())
    out.cost_estimate = estimate_cost(price->second, out.usage);
}

/// Stores an item's outcome and replies when it was the call's last one.
void finish_part(self_ptr self, const part_t& p, comparison_outcome outcome) {
  auto& st = self->state;
  st.errors_total += outcome.success ? 0 : 1;
  auto c = st.calls.find(p.call);
  if (c == st.calls.end())
    return;
  c->second.outcomes[p.index] = std::move(outcome);
  if (--c->second.remaining == 0) {
    c->second.promise.deliver(std::move(c->second.outcomes));
    st.calls.erase(c);
  }
}

http_client_request http_request_for(const state_t& st, const state_t::pending_http& h) {
  if (h.parts.size() == 1 && h.parts.front().multi_id.empty())
    return st.wire->single_call(st.cfg.target, h.parts.front().item.entry.request, h.model);
  std::vector<multi_item> items;
  for (const auto& p : h.parts)
    items.push_back(multi_item{p.multi_id, &p.item.entry.request});
  return st.wire->multi_call(st.cfg.target, items, h.model);
}

/// Starts a registered HTTP call; the answer comes back as `http_answered, ticket`.
void start_http(self_ptr self, uint64_t ticket) {
  auto& st = self->state;
  auto& h = st.https.at(ticket);
  auto fail_all = [&](std::string_view code, std::string message, bool retryable) {
    auto parts = std::move(h.parts);
    auto model = h.model;
    auto started = h.started;
    st.https.erase(ticket);
    for (const auto& p : parts) {
      auto out = outcome_base(st, p, model, started);
      fail(out, code, message, retryable);
      finish_part(self, p, std::move(out));
    }
  };
  if (!configured(st.cfg) || st.http == nullptr) {
    fail_all(to_string(ec::configuration_error), st.cfg.provider + " provider is not configured",
             false);
    return;
  }
  auto done = http_inbox::callback<provider_http_impl_actor>(st.inbox, self->ctrl(), ticket);
  ++st.http_calls_total;
  st.multi_calls_total += h.parts.front().multi_id.empty() ? 0 : 1;
  try {
    st.http->send(http_request_for(st, h), std::move(done));
  } catch (const std::exception& ex) {
    fail_all(to_string(ec::connection_error), st.cfg.provider + " call not sent: " + ex.what(),
             true);
  }
}

/// Registers one HTTP call for `parts` and starts it.
void launch(self_ptr self, std::string model, std::vector<part_t> parts) {
  auto& st = self->state;
  auto ticket = st.next_ticket++;
  st.https.emplace(ticket, state_t::pending_http{std::move(model), std::move(parts), clock::now()});
  start_http(self, ticket);
}

/// What must be equal for comparisons to share a multi-prompt call: everything that goes
/// into the call besides the user prompt.
std::string multi_key(const std::string& model, const comparison_request& req) {
  const auto& ov = req.overrides;
  std::ostringstream key;
  key << model << '\x1f' << ov.has_system_prompt << ov.system_prompt << '\x1f' << ov.has_temperature
      << ov.temperature << '\x1f' << ov.reasoning_effort << '\x1f' << ov.output_verbosity;
  return key.str();
}

/// Splits a bundle into HTTP calls: one per item, or multi-prompt groups of compatible items
/// (in item order, at most multi_prompt_max each; a group of one is a plain call).
void launch_bundle(self_ptr self, uint64_t call_id, const bundle& b) {
  auto& st = self->state;
  std::vector<std::string> order;
  std::map<std::string, std::pair<std::string, std::vector<part_t>>> groups;
  for (size_t i = 0; i < b.items.size(); ++i) {
    auto model = model_for(st, b, b.items[i]);
    auto key = st.cfg.multi_prompt ? multi_key(model, b.items[i].entry.request) : std::to_string(i);
    auto [g, fresh] = groups.try_emplace(key, model, std::vector<part_t>{});
    if (fresh)
      order.push_back(key);
    g->second.second.push_back(part_t{call_id, i, b.items[i], {}});
  }
  auto max = std::max<size_t>(1, st.cfg.multi_prompt_max);
  for (const auto& key : order) {
    auto& [model, parts] = groups.at(key);
    for (size_t from = 0; from < parts.size(); from += max) {
      std::vector<part_t> chunk(parts.begin() + from,
                                parts.begin() + std::min(parts.size(), from + max));
      if (chunk.size() > 1)
        for (size_t k = 0; k < chunk.size(); ++k)
          chunk[k].multi_id = "c" + std::to_string(k + 1);
      launch(self, model, std::move(chunk));
    }
  }
}

/// The samples that set the HTTP call gauges of `provider`.
std::vector<metric_sample> call_gauge_samples(const std::string& provider, call_gauges x) {
  return {{"llm_provider_inflight_provider_calls", {provider}, double(x.in_flight)},
          {"llm_provider_calls_waiting_for_connection", {provider}, double(x.waiting)}};
}

/// Sends the HTTP call gauges when they changed (once per bundle or answer, not per call).
void publish_call_gauges(self_ptr self) {
  auto& st = self->state;
  auto now = call_gauges_of(st.https.size(), st.cfg.max_connections);
  if (!st.metrics || now == st.reported)
    return;
  st.reported = now;
  self->send(st.metrics, atom::record_v, call_gauge_samples(st.cfg.provider, now));
}

// process_comparison_batch: every call is started at once; the reply waits for all.
caf::result<std::vector<comparison_outcome>> process_bundle(self_ptr self, const bundle& b) {
  auto& st = self->state;
  ++st.bundles_total;
  st.items_total += b.items.size();
  if (b.items.empty())
    return std::vector<comparison_outcome>{};
  auto call_id = st.next_call++;
  auto promise = self->make_response_promise<std::vector<comparison_outcome>>();
  st.calls.emplace(call_id,
                   state_t::pending_call{promise, std::vector<comparison_outcome>(b.items.size()),
                                         b.items.size()});
  launch_bundle(self, call_id, b);
  publish_call_gauges(self);
  return promise;
}

void record_http_call(self_ptr self, const http_client_response& resp) {
  auto& st = self->state;
  if (!st.metrics)
    return;
  self->send(st.metrics, atom::record_v,
             std::vector<metric_sample>{
                 {"llm_provider_http_calls_total",
                  {st.cfg.provider, std::string{st.wire->endpoint()}, http_status_label(resp)},
                  1}});
}

/// `n` shares of `usage` (remainders to the first), so that the items of a multi-prompt call
/// add up to what the call used.
token_usage share_of(const token_usage& usage, size_t n, size_t k) {
  auto part = [&](uint64_t v) { return v / n + (k == 0 ? v % n : 0); };
  return {part(usage.prompt_tokens), part(usage.completion_tokens), part(usage.total_tokens),
          part(usage.cache_read_input_tokens), part(usage.cache_creation_input_tokens)};
}

void finish_single(self_ptr self, const state_t::pending_http& h,
                   const http_client_response& resp) {
  auto& st = self->state;
  const auto& p = h.parts.front();
  auto call = resp.error != transport_error::none
                  ? transport_failure(st.cfg.provider, resp)
                  : st.wire->read_single(resp.status, resp.body, resp.headers,
                                         std::chrono::system_clock::now());
  auto out = outcome_base(st, p, h.model, h.started);
  apply(st, out, call, call.success ? &call.verdict : nullptr, call.usage);
  finish_part(self, p, std::move(out));
}

/// A multi-prompt answer: items answered validly finish; the others go again alone. A call
/// that failed outright fails every item the same way, unless its answer was unreadable,
/// which a call per item may fix.
void finish_multi(self_ptr self, const state_t::pending_http& h, const http_client_response& resp) {
  auto& st = self->state;
  wire_multi_response r;
  if (resp.error != transport_error::none)
    r.call = transport_failure(st.cfg.provider, resp);
  else
    r = st.wire->read_multi(resp.status, resp.body, resp.headers, std::chrono::system_clock::now());
  bool unreadable = r.call.error_code == to_string(ec::parsing_error)
                    || r.call.error_code == to_string(ec::invalid_response);
  size_t answered = 0;
  for (const auto& p : h.parts)
    answered += r.call.success && r.answers.count(p.multi_id) ? 1 : 0;
  size_t k = 0;
  for (const auto& p : h.parts) {
    auto answer = r.call.success ? r.answers.find(p.multi_id) : r.answers.end();
    if (answer == r.answers.end() && (r.call.success || unreadable)) {
      ++st.multi_fallbacks_total;
      auto alone = p;
      alone.multi_id.clear();
      launch(self, h.model, {std::move(alone)});
      continue;
    }
    auto out = outcome_base(st, p, h.model, h.started);
    auto usage = r.call.success ? share_of(r.call.usage, answered, k++) : token_usage{};
    apply(st, out, r.call, r.call.success ? &answer->second : nullptr, usage);
    finish_part(self, p, std::move(out));
  }
}

void on_tick(self_ptr self, uint64_t ticket) {
  auto& st = self->state;
  http_client_response resp;
  if (!st.inbox->take(ticket, resp) || take_gateway_answer(self, ticket, resp))
    return;
  auto i = st.https.find(ticket);
  if (i == st.https.end())
    return;
  auto h = std::move(i->second);
  st.https.erase(i);
  record_http_call(self, resp);
  if (h.parts.size() == 1 && h.parts.front().multi_id.empty())
    finish_single(self, h, resp);
  else
    finish_multi(self, h, resp);
  publish_call_gauges(self);
}

} // namespace

call_gauges call_gauges_of(size_t outstanding, size_t max_connections) {
  auto in_flight = std::min(outstanding, max_connections);
  return {in_flight, outstanding - in_flight};
}

provider_http_impl_actor::behavior_type provider_http(self_ptr self, provider_http_config cfg,
                                                      std::shared_ptr<const provider_wire> wire,
                                                      http_transport* http, metrics_actor metrics) {
  self->state.cfg = std::move(cfg);
  self->state.wire = std::move(wire);
  self->state.http = http;
  self->state.metrics = std::move(metrics);
  // Calls still open when the actor stops are given up: they no longer count.
  if (self->state.metrics)
    self->attach_functor([metrics = self->state.metrics, provider = self->state.cfg.provider] {
      caf::anon_send(metrics, atom::record_v, call_gauge_samples(provider, call_gauges{}));
    });
  return counted(
      self,
      [=](atom::process, const bundle& b) -> caf::result<std::vector<comparison_outcome>> {
        return process_bundle(self, b);
      },
      [=](atom::gateway, gateway_call& call) -> caf::result<gateway_reply> {
        return start_gateway_call(self, std::move(call));
      },
      [=](atom::http_answered, uint64_t ticket) { on_tick(self, ticket); },
      [=](atom::retry_due, uint64_t ticket) { retry_gateway_call(self, ticket); },
      [=](atom::status) -> actor_status { return status_of(self); });
}

} // namespace lps
