#include "actors/provider_openai.hpp"
#include "actors/status_report.hpp"

#include "actors/providers/openai_format.hpp"
#include "actors/providers/retry_policy.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

namespace lps {

void openai_inbox::put(uint64_t ticket, http_client_response response) {
  std::lock_guard<std::mutex> guard{mtx_};
  responses_.insert_or_assign(ticket, std::move(response));
}

bool openai_inbox::take(uint64_t ticket, http_client_response& out) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = responses_.find(ticket);
  if (i == responses_.end())
    return false;
  out = std::move(i->second);
  responses_.erase(i);
  return true;
}

namespace {

using self_ptr = provider_actor::stateful_pointer<provider_openai_state>;
using state_t = provider_openai_state;

bool configured(const provider_openai_config& cfg) {
  return !cfg.base_url.empty() && !cfg.api_key.empty();
}

actor_status status_of(self_ptr self) {
  auto& st = self->state;
  auto result = status_header(self, "provider:" + st.cfg.provider, "provider", st.handled);
  result.figures = {{"calls_total", double(st.calls_total)},
                    {"items_total", double(st.items_total)},
                    {"errors_total", double(st.errors_total)},
                    {"inflight_calls", double(st.calls.size())},
                    {"inflight_items", double(st.items.size())}};
  // The API key is deliberately absent: status output ends up in logs and dashboards.
  result.facts = {{"provider", st.cfg.provider},
                  {"configured", configured(st.cfg) ? "true" : "false"},
                  {"base_url", st.cfg.base_url},
                  {"default_model", st.cfg.default_model}};
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

comparison_outcome outcome_base(const state_t& st, const state_t::pending_item& p) {
  const auto& req = p.item.entry.request;
  comparison_outcome out;
  out.queue_id = req.queue_id;
  out.provider = st.cfg.provider;
  out.model = p.model;
  out.prompt_sha256 = req.prompt_sha256;
  out.enrichment = p.item.enrichment;
  out.response_time = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - p.started);
  return out;
}

transport_kind kind_of(transport_error err) {
  switch (err) {
  case transport_error::none:
    return transport_kind::none;
  case transport_error::timeout:
    return transport_kind::timeout;
  case transport_error::connect:
    return transport_kind::connect;
  case transport_error::reset:
    return transport_kind::reset;
  case transport_error::tls:
    return transport_kind::tls;
  case transport_error::invalid:
    return transport_kind::invalid;
  }
  return transport_kind::reset;
}

void fail(comparison_outcome& out, std::string_view code, std::string message, bool retryable) {
  out.success = false;
  out.error_code = std::string{code};
  out.error_message = std::move(message);
  out.retryable = retryable;
}

/// Turns one HTTP exchange into the item's outcome.
comparison_outcome outcome_of(const state_t& st, const state_t::pending_item& p,
                              const http_client_response& resp) {
  auto out = outcome_base(st, p);
  if (resp.error != transport_error::none) {
    auto verdict = classify(0, "", "", kind_of(resp.error));
    fail(out, verdict.error_code,
         st.cfg.provider + " call failed (" + to_string(resp.error) + "): " + resp.error_message,
         verdict.kind == failure_class::retryable);
    return out;
  }
  auto parsed = parse_openai_response(resp.status, resp.body, resp.headers);
  out.http_status = parsed.http_status;
  out.usage.prompt_tokens = parsed.prompt_tokens;
  out.usage.completion_tokens = parsed.completion_tokens;
  out.usage.total_tokens = parsed.total_tokens;
  out.usage.cache_read_input_tokens = parsed.cached_tokens;
  if (!parsed.success) {
    fail(out, parsed.error_code, std::move(parsed.error_message), parsed.retryable);
    out.retry_after = parsed.retry_after;
    return out;
  }
  out.success = true;
  out.http_status = 0; // no error behind a success
  if (auto price = st.cfg.prices.find(out.model); price != st.cfg.prices.end())
    out.cost_estimate = estimate_cost(price->second, out.usage);
  out.winner = std::move(parsed.winner);
  out.justification = std::move(parsed.justification);
  out.confidence = parsed.confidence;
  return out;
}

/// Stores an item's outcome and replies when it was the call's last one.
void finish_item(self_ptr self, uint64_t ticket, comparison_outcome outcome) {
  auto& st = self->state;
  auto i = st.items.find(ticket);
  if (i == st.items.end())
    return;
  auto call_id = i->second.call;
  auto index = i->second.index;
  st.items.erase(i);
  st.errors_total += outcome.success ? 0 : 1;
  auto c = st.calls.find(call_id);
  if (c == st.calls.end())
    return;
  c->second.outcomes[index] = std::move(outcome);
  if (--c->second.remaining == 0) {
    c->second.promise.deliver(std::move(c->second.outcomes));
    st.calls.erase(c);
  }
}

http_client_request http_request_for(const state_t& st, const state_t::pending_item& p) {
  http_client_request req;
  req.method = "POST";
  req.url = st.cfg.base_url + "/chat/completions";
  req.timeout = st.cfg.request_timeout;
  req.headers = {{"Authorization", "Bearer " + st.cfg.api_key},
                 {"Content-Type", "application/json"}};
  for (const auto& h : st.cfg.extra_headers)
    req.headers.push_back(h);
  req.body = build_openai_request(p.item.entry.request, p.model, openai_model_flags_for(p.model));
  return req;
}

/// Starts the HTTP call of one registered item; the answer comes back as `tick, ticket`.
void start_item(self_ptr self, uint64_t ticket) {
  auto& st = self->state;
  const auto& p = st.items.at(ticket);
  if (!configured(st.cfg) || st.http == nullptr) {
    auto out = outcome_base(st, p);
    fail(out, "CONFIGURATION_ERROR", st.cfg.provider + " provider is not configured", false);
    finish_item(self, ticket, std::move(out));
    return;
  }
  // A weak handle: a late answer must not keep a stopped actor alive.
  caf::weak_actor_ptr weak = self->ctrl();
  auto inbox = st.inbox;
  auto done = [weak, inbox, ticket](http_client_response resp) {
    inbox->put(ticket, std::move(resp));
    if (auto strong = weak.lock())
      caf::anon_send(caf::actor_cast<provider_actor>(strong), atom::tick_v, ticket);
  };
  try {
    st.http->send(http_request_for(st, p), std::move(done));
  } catch (const std::exception& ex) {
    auto out = outcome_base(st, p);
    fail(out, "CONNECTION_ERROR", st.cfg.provider + " call not sent: " + ex.what(), true);
    finish_item(self, ticket, std::move(out));
  }
}

// process_comparison_batch: every item's call is started at once; the reply waits for all.
caf::result<std::vector<comparison_outcome>> process_batch(self_ptr self, const bundle& b) {
  auto& st = self->state;
  ++st.calls_total;
  st.items_total += b.items.size();
  if (b.items.empty())
    return std::vector<comparison_outcome>{};
  auto call_id = st.next_call++;
  auto promise = self->make_response_promise<std::vector<comparison_outcome>>();
  st.calls.emplace(call_id,
                   state_t::pending_call{promise, std::vector<comparison_outcome>(b.items.size()),
                                         b.items.size()});
  std::vector<uint64_t> tickets;
  auto now = std::chrono::steady_clock::now();
  for (size_t i = 0; i < b.items.size(); ++i) {
    auto ticket = st.next_ticket++;
    st.items.emplace(
        ticket, state_t::pending_item{call_id, i, b.items[i], model_for(st, b, b.items[i]), now});
    tickets.push_back(ticket);
  }
  // Registered first, started after: a transport that answers inside send() finds its entry.
  for (auto ticket : tickets)
    start_item(self, ticket);
  return promise;
}

void on_tick(self_ptr self, uint64_t ticket) {
  auto& st = self->state;
  http_client_response resp;
  if (!st.inbox->take(ticket, resp))
    return;
  auto i = st.items.find(ticket);
  if (i == st.items.end())
    return;
  auto outcome = outcome_of(st, i->second, resp);
  finish_item(self, ticket, std::move(outcome));
}

} // namespace

provider_actor::behavior_type provider_openai(self_ptr self, provider_openai_config cfg,
                                              http_transport* http) {
  self->state.cfg = std::move(cfg);
  self->state.http = http;
  return {
      [=](atom::process, const bundle& b) -> caf::result<std::vector<comparison_outcome>> {
        ++self->state.handled;
        return process_batch(self, b);
      },
      [=](atom::tick, uint64_t ticket) {
        ++self->state.handled;
        on_tick(self, ticket);
      },
      [=](atom::status) -> actor_status {
        ++self->state.handled;
        return status_of(self);
      },
  };
}

} // namespace lps
