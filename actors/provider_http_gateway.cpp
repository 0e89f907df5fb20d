#include "actors/provider_http_gateway.hpp"

#include "actors/providers/retry_policy.hpp"
#include "runtime/gateway_stream.hpp"
#include "runtime/gateway_translate.hpp"

#include <caf/event_based_actor.hpp>

#include <algorithm>
#include <random>

namespace lps {

namespace {

using state_t = provider_http_state;

/// First retry after 200 ms, doubling, jittered: a gateway caller is waiting on the line.
const backoff_settings gateway_backoff{std::chrono::milliseconds{200}, std::chrono::seconds{5}, 0.5,
                                       10};

gateway_reply error_reply(unsigned status, std::string message, std::string type,
                          std::string code) {
  gateway_reply out;
  out.status = status;
  out.body =
      render_gateway_error({status, std::move(message), std::move(type), "", std::move(code)});
  return out;
}

/// The client stream of a streamed call: filed in the registry under its upstream request's
/// cancel token (a non-streamed call's token is not filed there), so the plain
/// pending_gateway state needs no field of its own.
std::shared_ptr<gateway_stream> stream_of(const state_t::pending_gateway& g) {
  return g.request.cancel ? gateway_streams().find(g.request.cancel.get()) : nullptr;
}

void send_attempt(provider_http_self self, uint64_t ticket) {
  auto& st = self->state;
  auto& g = st.gateways.at(ticket);
  ++g.attempts;
  ++st.http_calls_total;
  if (auto sink = stream_of(g))
    sink->begin_attempt(*gateway_dialect_of(st.cfg.provider));
  auto done = http_inbox::callback<provider_http_impl_actor>(st.inbox, self->ctrl(), ticket);
  try {
    st.http->send(g.request, std::move(done));
  } catch (const std::exception& ex) {
    http_client_response failed;
    failed.error = transport_error::invalid;
    failed.error_message = ex.what();
    take_gateway_answer(self, ticket, failed);
  }
}

void record_attempt(provider_http_self self, const http_client_response& resp) {
  auto& st = self->state;
  if (st.metrics)
    self->send(st.metrics, atom::record_v,
               std::vector<metric_sample>{
                   {"llm_provider_http_calls_total",
                    {st.cfg.provider, std::string{st.wire->endpoint()}, http_status_label(resp)},
                    1}});
}

/// The status lps records for a call whose client left before its end (nginx's "client
/// closed request"); the client never sees it.
constexpr unsigned client_closed_status = 499;

/// The route cancelled the call's token: its client left (or the route gave up). An attempt
/// that failed then is no provider failure and is not tried again; nobody reads its answer.
bool client_left(const state_t::pending_gateway& g, const gateway_result& r) {
  return g.request.cancel && g.request.cancel->cancelled() && r.status != 200;
}

/// Waits `wait` before the next attempt of `ticket`. No upstream request is open meanwhile,
/// so the call's cancel token gets a hook of its own: a client that leaves makes the retry due
/// at once, and retry_gateway_call then ends the call (the next send replaces the hook).
void wait_for_retry(provider_http_self self, uint64_t ticket, std::chrono::milliseconds wait) {
  self->delayed_send(self, wait, atom::retry_due_v, ticket);
  const auto& token = self->state.gateways.at(ticket).request.cancel;
  if (!token)
    return;
  auto due_now = [weak = caf::weak_actor_ptr{self->ctrl()}, ticket] {
    if (auto strong = weak.lock())
      caf::anon_send(caf::actor_cast<provider_http_impl_actor>(strong), atom::retry_due_v, ticket);
  };
  token->set_hook(due_now);
  if (token->cancelled()) // before the hook was set: it will not run
    due_now();
}

/// Ends the call of `i` with `result`: delivers its reply and forgets it.
void end_gateway_call(provider_http_self self,
                      std::map<uint64_t, state_t::pending_gateway>::iterator i,
                      const gateway_result& result) {
  auto& st = self->state;
  auto& g = i->second;
  st.errors_total += result.status == 200 ? 0 : 1;
  if (stream_of(g))
    gateway_streams().take(g.request.cancel.get());
  auto reply = gateway_reply_of(result, g.attempts);
  reply.limits = g.limits;
  g.promise.deliver(std::move(reply));
  st.gateways.erase(i);
}

} // namespace

gateway_reply gateway_reply_of(const gateway_result& r, uint32_t attempts) {
  gateway_reply out;
  out.status = r.status;
  out.body = r.body;
  out.prompt_tokens = r.prompt_tokens;
  out.completion_tokens = r.completion_tokens;
  out.retry_after_ms = r.retry_after.count();
  out.provider_failure = r.provider_failure;
  out.attempts = attempts;
  out.limits = r.limits;
  return out;
}

std::optional<std::chrono::milliseconds>
gateway_retry_wait(const gateway_call& call, uint32_t attempts, const gateway_result& r) {
  if (!r.retryable || attempts >= std::max<uint32_t>(1, call.max_attempts))
    return std::nullopt;
  if (r.retry_after.count() > 0)
    return r.retry_after.count() <= call.max_retry_wait_ms ? std::optional{r.retry_after}
                                                           : std::nullopt;
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  auto delay =
      backoff_delay(gateway_backoff, attempts, std::uniform_real_distribution<double>{0, 1}(rng));
  return std::chrono::duration_cast<std::chrono::milliseconds>(delay);
}

caf::result<gateway_reply> start_gateway_call(provider_http_self self, gateway_call call) {
  auto& st = self->state;
  ++st.gateway_calls_total;
  if (call.attempts_made > 0) // the route's own first attempt failed: this is its retry
    ++st.gateway_retries_total;
  auto dialect = gateway_dialect_of(st.cfg.provider);
  if (st.cfg.target.base_url.empty() || st.cfg.target.api_key.empty() || st.http == nullptr
      || !dialect)
    return error_reply(503, st.cfg.provider + " provider is not configured", "service_unavailable",
                       "provider_not_configured");
  gateway_target target{st.cfg.target.base_url, st.cfg.target.api_key, st.cfg.target.timeout,
                        st.cfg.target.extra_headers};
  // A streamed call's client end, filed by the route under the asking bridge.
  auto sink = gateway_streams().take(self->current_sender().get());
  auto upstream = sink ? gateway_upstream_stream_request(*dialect, target, call.body, call.model)
                       : gateway_upstream_request(*dialect, target, call.body, call.model);
  if (upstream.error)
    return gateway_reply{upstream.error->status, render_gateway_error(*upstream.error)};
  if (sink) {
    upstream.request.on_body_data = [sink](std::string_view piece) { sink->on_piece(piece); };
    upstream.request.cancel = sink->cancel_token();
    gateway_streams().add(upstream.request.cancel.get(), sink);
  } else {
    // Cancelled by the route when the client leaves.
    upstream.request.cancel = gateway_cancels().take(self->current_sender().get());
  }
  auto ticket = st.next_ticket++;
  auto promise = self->make_response_promise<gateway_reply>();
  auto made = call.attempts_made;
  auto wait = std::chrono::milliseconds{call.first_wait_ms};
  st.gateways.emplace(ticket, state_t::pending_gateway{promise, std::move(call),
                                                       std::move(upstream.request), made});
  if (wait.count() > 0)
    wait_for_retry(self, ticket, wait);
  else
    send_attempt(self, ticket);
  return promise;
}

bool take_gateway_answer(provider_http_self self, uint64_t ticket, http_client_response& resp) {
  auto& st = self->state;
  auto i = st.gateways.find(ticket);
  if (i == st.gateways.end())
    return false;
  auto& g = i->second;
  record_attempt(self, resp);
  auto dialect = *gateway_dialect_of(st.cfg.provider);
  auto sink = stream_of(g);
  auto result =
      sink ? gateway_stream_attempt_result(*sink, dialect, st.wire->display_name(), resp,
                                           g.call.body, g.call.model)
      : resp.error != transport_error::none
          ? gateway_transport_failure(st.wire->display_name(), resp.error, resp.error_message)
          : gateway_read_upstream(dialect, resp.status, resp.body, resp.headers, g.call.body,
                                  g.call.model, std::chrono::system_clock::now());
  if (client_left(g, result))
    result = gateway_client_left(std::move(result));
  if (!result.limits.empty())
    g.limits = result.limits;
  if (auto wait = gateway_retry_wait(g.call, g.attempts, result)) {
    ++st.gateway_retries_total;
    wait_for_retry(self, ticket, *wait);
    return true;
  }
  end_gateway_call(self, i, result);
  return true;
}

// A call whose client left while it waited is not tried again: it ends at once, as 499.
void retry_gateway_call(provider_http_self self, uint64_t ticket) {
  auto i = self->state.gateways.find(ticket);
  if (i == self->state.gateways.end())
    return;
  if (const auto& token = i->second.request.cancel; token && token->cancelled())
    return end_gateway_call(self, i, gateway_client_left({}));
  send_attempt(self, ticket);
}

gateway_result gateway_client_left(gateway_result r) {
  r.status = client_closed_status;
  r.retryable = false;
  r.provider_failure = false;
  r.body.clear();
  r.retry_after = {};
  return r;
}

} // namespace lps
