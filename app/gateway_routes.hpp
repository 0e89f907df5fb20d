#pragma once

// The OpenAI-compatible gateway routes (docs/gateway.md): POST /v1/chat/completions, GET
// /v1/models. Synchronous and without durability by design: the request is checked on the
// I/O thread, admitted by the gateway gate (or refused at once with Retry-After), sent to the
// provider the model routes to (a plain call's first attempt straight to the provider HTTP
// client, app/gateway_direct; retries and streamed calls through the provider actor), and its
// answer sent back in OpenAI's shape. Every error, 401 and 404 included, is in OpenAI's error
// shape.

#include "app/gateway_direct.hpp"
#include "app/gateway_gate.hpp"
#include "runtime/metric_batch.hpp"
#include "app/http_api.hpp"
#include "runtime/gateway_request.hpp"
#include "runtime/model_manifest.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <string>

namespace lps {

/// What the gateway routes share (one per process, behind api_context::gateway).
struct gateway_context {
  gateway_models models;
  /// Prices by model id: the cost of a call (llm_provider_cost_dollars_total, per-key usage).
  std::map<std::string, model_price> prices;
  gateway_gate gate;
  /// GATEWAY_MAX_ATTEMPTS.
  uint32_t max_attempts = 3;
  /// How long the route waits for the provider actor: every attempt's timeout and waits.
  std::chrono::milliseconds deadline{200000};
  /// The provider HTTP client (the one the provider actors use, so one pool per host) and
  /// the providers whose plain calls the route sends itself; null: every call goes through
  /// the provider actor.
  http_transport* http = nullptr;
  gateway_direct_targets direct;
  /// The calls' metric samples, sent to the metrics actor every 100 ms of traffic and
  /// before GET /metrics renders (flush_gateway_metrics).
  metric_batch metrics;
};

/// The gateway context of `cfg` with the model `manifest` (its JSON text and parsed prices),
/// admitting provider calls through `providers`, the node's gate (shared with its bundler);
/// `http`: the provider HTTP client, which the route calls directly (null: it never does).
std::shared_ptr<gateway_context> make_gateway_context(const config& cfg,
                                                      const model_manifest& manifest,
                                                      std::shared_ptr<provider_gate> providers,
                                                      http_transport* http = nullptr);

/// Sends the gateway's gathered metric samples to the metrics actor (GET /metrics does
/// before it renders, so it never shows them late).
void flush_gateway_metrics(const api_context& ctx);

/// Whether `path` is a gateway route (everything under /v1/).
bool is_gateway_path(const std::string& path);

/// Answers a request under /v1/ (authentication included).
void handle_gateway(const api_context& ctx, http_request&& req, http_responder respond);

/// GET /api/v1/inspect/gateway: usage per client key and the gate's state per provider.
http_response gateway_usage_response(const api_context& ctx);

/// The OpenAI-shaped 413 body for a /v1/ request over its body limit (the HTTP server
/// answers it before the route runs).
std::string gateway_too_large_body(const std::string& message);

} // namespace lps
