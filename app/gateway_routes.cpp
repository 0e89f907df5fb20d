#include "app/gateway_routes.hpp"

#include "actors/provider_http_gateway.hpp"
#include "app/actor_request.hpp"
#include "app/topology.hpp"
#include "runtime/api_keys.hpp"
#include "runtime/gateway_stream.hpp"

#include <caf/send.hpp>

#include <chrono>

namespace lps {

namespace {

using std::chrono::steady_clock;

http_response openai_error(const gateway_error& e) {
  return {e.status, render_gateway_error(e), "application/json", {}};
}

std::string header_of(const http_request& req, std::string_view name) {
  for (const auto& [key, value] : req.headers)
    if (key == name)
      return value;
  return "";
}

/// The client's key name ("" when API_KEYS_FILE is unset), or nullopt: 401.
std::optional<std::string> client_of(const api_context& ctx, const http_request& req) {
  if (ctx.keys.empty())
    return "";
  auto authorization = header_of(req, "authorization"); // bearer_token() views into it
  return ctx.keys.find(bearer_token(authorization));
}

std::string seconds_text(std::chrono::milliseconds d) {
  return std::to_string(std::max<int64_t>(1, (d.count() + 999) / 1000));
}

/// The model label of the gateway metrics: a manifest id, else "other" (clients choose the
/// model string; labels must stay few).
std::string model_label(const gateway_context& gw, const std::string& model) {
  return gw.prices.count(model) > 0 ? model : "other";
}

/// The call's samples, with the route's own attempt's (`samples`), in one message.
void record_metrics(const metrics_actor& metrics, gateway_context& gw, const gateway_route& route,
                    const gateway_reply& r, double cost, steady_clock::duration took,
                    std::vector<metric_sample> samples) {
  if (!metrics)
    return;
  auto model = model_label(gw, route.model);
  samples.insert(samples.end(), {{"llm_provider_gateway_requests_total",
                                  {route.provider, model, std::to_string(r.status), "gateway"},
                                  1},
                                 {"llm_provider_gateway_duration_seconds",
                                  {route.provider, "gateway"},
                                  std::chrono::duration<double>(took).count()}});
  if (r.status == 200) {
    samples.push_back({"llm_provider_tokens_used_total",
                       {route.provider, model, "prompt"},
                       double(r.prompt_tokens)});
    samples.push_back({"llm_provider_tokens_used_total",
                       {route.provider, model, "completion"},
                       double(r.completion_tokens)});
    samples.push_back({"llm_provider_cost_dollars_total", {route.provider, model}, cost});
  }
  if (auto due = gw.metrics.add(std::move(samples), steady_clock::now()))
    caf::anon_send(metrics, atom::record_v, std::move(*due));
}

void record_refusal(const api_context& ctx, const gateway_route& route, unsigned status) {
  if (ctx.actors.metrics)
    caf::anon_send(
        ctx.actors.metrics, atom::record_v,
        std::vector<metric_sample>{{"llm_provider_gateway_requests_total",
                                    {route.provider, model_label(*ctx.gateway, route.model),
                                     std::to_string(status), "gateway"},
                                    1}});
}

double cost_of(const gateway_context& gw, const std::string& model, const gateway_reply& r) {
  auto price = gw.prices.find(model);
  if (price == gw.prices.end() || r.status != 200)
    return 0.0;
  token_usage usage;
  usage.prompt_tokens = r.prompt_tokens;
  usage.completion_tokens = r.completion_tokens;
  usage.total_tokens = r.prompt_tokens + r.completion_tokens;
  return estimate_cost(price->second, usage);
}

/// The client's answer; `r`'s body moves into it (the rest of `r` is still read afterwards).
http_response response_of(gateway_reply& r, const gateway_route& route) {
  http_response res{
      r.status, std::move(r.body), "application/json", {{"x-lps-provider", route.provider}}};
  if ((r.status == 429 || r.status == 503) && r.retry_after_ms > 0)
    res.headers.emplace_back("Retry-After",
                             seconds_text(std::chrono::milliseconds{r.retry_after_ms}));
  return res;
}

/// The client end of a `stream: true` call: chunks go to the client as they arrive.
std::shared_ptr<gateway_stream> stream_for(const gateway_request_info& info,
                                           const gateway_route& route, http_responder respond) {
  auto created = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  return std::make_shared<gateway_stream>(
      std::move(respond),
      std::vector<std::pair<std::string, std::string>>{{"x-lps-provider", route.provider}},
      gateway_stream_options(info, route.model, created));
}

gateway_reply deadline_reply() {
  return {504,
          render_gateway_error({504, "the provider did not answer within the gateway's deadline",
                                "timeout_error", "", "gateway_timeout"}),
          0,
          0,
          0,
          true,
          0};
}

/// The upstream call is not wanted once its client leaves: cancelled at once, before the
/// answer or mid-stream (the server's close watch), not at the next write.
void cancel_when_client_leaves(const http_request& req, std::shared_ptr<gateway_stream> sink,
                               std::shared_ptr<http_call_cancel> token) {
  if (!req.close_watch)
    return;
  req.close_watch->on_close([sink = std::move(sink), token = std::move(token)] {
    if (sink)
      sink->client_left();
    else
      token->cancel();
  });
}

/// How a call ends, whichever way it went: frees the gate, records metrics (with `extra`
/// samples) and answers (a streamed call whose stream has started has answered already; its
/// reply only says how it ended). Runs once.
using call_end = std::function<void(caf::expected<gateway_reply>, std::vector<metric_sample>)>;

call_end end_of_call(const api_context& ctx, const gateway_route& route, const std::string& client,
                     std::shared_ptr<gateway_stream> sink, std::shared_ptr<http_call_cancel> token,
                     http_responder respond) {
  auto gw = ctx.gateway;
  auto metrics = ctx.actors.metrics;
  auto started = steady_clock::now();
  return [=](caf::expected<gateway_reply> x, std::vector<metric_sample> extra) {
    // Filed for a call that never reached a provider (the built-in mock takes neither).
    if (sink)
      gateway_streams().forget(sink.get());
    else
      gateway_cancels().forget(token.get());
    if (!x)
      token->cancel(); // past the deadline: the upstream call is given up
    auto r = x ? std::move(*x) : deadline_reply();
    auto cost = cost_of(*gw, route.model, r);
    gw->gate.finish(route.provider, client, r.status == 200, r.provider_failure, r.prompt_tokens,
                    r.completion_tokens, cost, r.limits, steady_clock::now());
    if (!sink || !sink->committed())
      respond(response_of(r, route));
    record_metrics(metrics, *gw, route, r, cost, steady_clock::now() - started, std::move(extra));
  };
}

/// Asks the provider actor for `call` and ends the call with its reply (`extra`: the samples
/// of the route's own attempt, when the actor retries it).
void ask_provider(caf::actor_system& sys, std::chrono::milliseconds deadline,
                  const provider_actor& provider, gateway_call call,
                  std::shared_ptr<gateway_stream> sink, std::shared_ptr<http_call_cancel> token,
                  call_end end, std::vector<metric_sample> extra = {}) {
  auto done = [end = std::move(end), extra = std::move(extra)](caf::expected<gateway_reply> x) {
    end(std::move(x), extra);
  };
  auto bridge = sys.spawn(
      request_bridge<gateway_reply, provider_actor, atom::gateway, gateway_call>, provider,
      caf::timespan{deadline}, std::function<void(caf::expected<gateway_reply>)>{std::move(done)});
  // The provider actor finds them by the bridge that asks it.
  auto asker = caf::actor_cast<caf::strong_actor_ptr>(bridge).get();
  if (sink)
    gateway_streams().add(asker, sink);
  else
    gateway_cancels().add(asker, token);
  caf::anon_send(bridge, atom::gateway_v, std::move(call));
}

/// A call's first attempt, sent by the route itself (app/gateway_direct.hpp): its answer
/// ends the call on the client's I/O thread unless it may be retried, which the provider
/// actor then does after the backoff (a stream only while nothing reached its client; the
/// gate learns this answer's rate-limit figures at once then; the call's end brings those
/// of the last answer).
void call_direct(const api_context& ctx, const provider_actor& provider, const gateway_route& route,
                 const gateway_direct_target& t, gateway_call call, bool as_is,
                 std::shared_ptr<gateway_stream> sink, std::shared_ptr<http_call_cancel> token,
                 call_end end) {
  auto shared = std::make_shared<const gateway_call>(std::move(call));
  auto then = [sys = ctx.sys, deadline = ctx.gateway->deadline,
               gate = ctx.gateway->gate.providers(), provider, name = route.provider,
               endpoint = t.endpoint, shared, sink, token,
               end = std::move(end)](gateway_attempt a) {
    std::vector<metric_sample> extra;
    if (!a.status_label.empty())
      extra.push_back({"llm_provider_http_calls_total", {name, endpoint, a.status_label}, 1});
    if (token->cancelled() && a.result.status != 200) // the client left: no retry
      return end(gateway_reply_of(gateway_client_left(std::move(a.result)), 1), std::move(extra));
    if (auto wait = gateway_retry_wait(*shared, 1, a.result)) {
      gate->learn_gateway(name, a.result.limits, steady_clock::now());
      auto next = *shared;
      next.attempts_made = 1;
      next.first_wait_ms = wait->count();
      return ask_provider(*sys, deadline, provider, std::move(next), sink, token, end,
                          std::move(extra));
    }
    end(gateway_reply_of(a.result, 1), std::move(extra));
  };
  auto& http = *ctx.gateway->http;
  if (sink)
    return send_gateway_stream_attempt(http, t, shared, as_is, std::move(sink), std::move(then));
  send_gateway_attempt(http, t, shared, as_is, token, std::move(then));
}

/// Sends the call: its first attempt to an HTTP provider from here, else (the built-in mock)
/// through the provider actor; either way cancelled at once when its client leaves.
void call_provider(const api_context& ctx, const provider_actor& provider, gateway_route route,
                   std::string client, http_request&& req, const gateway_request_info& info,
                   http_responder respond) {
  auto sink = info.stream ? stream_for(info, route, respond) : nullptr;
  auto token = sink ? sink->cancel_token() : std::make_shared<http_call_cancel>();
  auto end = end_of_call(ctx, route, client, sink, token, std::move(respond));
  cancel_when_client_leaves(req, sink, token);
  // The client's bytes can go upstream as they are when they name the routed model already.
  bool as_is = info.sendable_as_is && route.model == info.model;
  gateway_call call{route.model, std::move(req.body), ctx.gateway->max_attempts, 5000};
  auto direct = ctx.gateway->direct.find(route.provider);
  if (ctx.gateway->http != nullptr && direct != ctx.gateway->direct.end())
    return call_direct(ctx, provider, route, direct->second, std::move(call), as_is,
                       std::move(sink), std::move(token), std::move(end));
  ask_provider(*ctx.sys, ctx.gateway->deadline, provider, std::move(call), std::move(sink),
               std::move(token), std::move(end));
}

void chat_completions(const api_context& ctx, http_request&& req, const std::string& client,
                      http_responder respond) {
  gateway_request_info info;
  if (auto e = check_gateway_request(req.body, info))
    return respond(openai_error(*e));
  auto route = ctx.gateway->models.route(info.model);
  auto provider = route ? ctx.actors.providers.find(route->provider) : ctx.actors.providers.end();
  if (!route || provider == ctx.actors.providers.end())
    return respond(openai_error(
        {404,
         "The model '" + info.model.substr(0, 200)
             + "' does not exist or lps cannot route it (GET /v1/models lists the known ids; "
               "prefix another with openai/, anthropic/, google/, openrouter/ or mock/)",
         "invalid_request_error", "model", "model_not_found"}));
  if (auto why = provider_unavailable_reason(ctx.cfg, route->provider); !why.empty())
    return respond(openai_error({503, route->provider + " cannot serve the model: " + why,
                                 "service_unavailable", "model", "provider_not_configured"}));
  if (auto refused = ctx.gateway->gate.admit(route->provider, client, info.estimated_tokens,
                                             steady_clock::now())) {
    record_refusal(ctx, *route, refused->status);
    auto res = openai_error({refused->status, refused->message,
                             refused->status == 429 ? "rate_limit_error" : "service_unavailable",
                             "", refused->code});
    res.headers.emplace_back(
        "Retry-After",
        seconds_text(std::chrono::duration_cast<std::chrono::milliseconds>(refused->retry_after)));
    return respond(std::move(res));
  }
  call_provider(ctx, provider->second, std::move(*route), client, std::move(req), info,
                std::move(respond));
}

} // namespace

std::shared_ptr<gateway_context> make_gateway_context(const config& cfg,
                                                      const model_manifest& manifest,
                                                      std::shared_ptr<provider_gate> providers,
                                                      http_transport* http) {
  auto result = std::shared_ptr<gateway_context>(new gateway_context{
      {},
      manifest.prices,
      gateway_gate{std::move(providers),
                   {cfg.gateway_key_requests_per_minute, cfg.gateway_key_tokens_per_minute}},
      cfg.gateway_max_attempts,
      // Every attempt's timeout, the longest Retry-After waited out, and a second of slack.
      std::chrono::milliseconds(int64_t{cfg.gateway_max_attempts}
                                * (int64_t{cfg.provider_request_timeout_ms} + 5000 + 1000)),
      http,
      http != nullptr ? gateway_direct_targets_of(cfg) : gateway_direct_targets{},
      {}});
  std::string error;
  gateway_models::parse(manifest.json, result->models, error); // an empty manifest lists none
  return result;
}

void flush_gateway_metrics(const api_context& ctx) {
  if (!ctx.gateway || !ctx.actors.metrics)
    return;
  if (auto gathered = ctx.gateway->metrics.take(); !gathered.empty())
    caf::anon_send(ctx.actors.metrics, atom::record_v, std::move(gathered));
}

bool is_gateway_path(const std::string& path) {
  return path.starts_with("/v1/");
}

void handle_gateway(const api_context& ctx, http_request&& req, http_responder respond) {
  auto client = client_of(ctx, req);
  if (!client) {
    auto res = openai_error({401,
                             "Incorrect API key provided: this route needs Authorization: "
                             "Bearer <API key>",
                             "invalid_request_error", "", "invalid_api_key"});
    res.headers.emplace_back("WWW-Authenticate", "Bearer");
    return respond(std::move(res));
  }
  bool chat = req.path == "/v1/chat/completions";
  bool models = req.path == "/v1/models";
  if (!ctx.gateway || (!chat && !models))
    return respond(openai_error({404, "Invalid URL (" + req.method + " " + req.path + ")",
                                 "invalid_request_error", "", "unknown_url"}));
  if (models && req.method == "GET")
    return respond({200, ctx.gateway->models.list_json(), "application/json", {}});
  if (chat && req.method == "POST")
    return chat_completions(ctx, std::move(req), *client, std::move(respond));
  respond(openai_error({405, "Method " + req.method + " is not allowed on " + req.path,
                        "invalid_request_error", "", "method_not_allowed"}));
}

http_response gateway_usage_response(const api_context& ctx) {
  if (!ctx.gateway)
    return {200, R"({"keys":[],"providers":[]})", "application/json", {}};
  return {200, ctx.gateway->gate.usage_json(steady_clock::now()), "application/json", {}};
}

std::string gateway_too_large_body(const std::string& message) {
  return render_gateway_error({413, message, "invalid_request_error", "", "request_too_large"});
}

} // namespace lps
