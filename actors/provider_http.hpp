#pragma once

// The provider actor for every real provider (OpenAI, OpenRouter, Anthropic, Gemini): the
// wire format is a provider_wire, the rest is the same. Each bundle item is one HTTP call, all
// in flight at once; with multi-prompt on, up to `multi_prompt_max` compatible items share one
// call and any item whose answer is missing or invalid is sent again alone. One reply with
// every outcome in item order once the last call has answered. HTTP callbacks run on client
// threads, so they only stash the response in a thread-safe inbox and poke the actor with
// `tick, ticket`.

#include "actors/actors.hpp"
#include "actors/status_report.hpp"
#include "actors/http_inbox.hpp"
#include "actors/providers/provider_wire.hpp"
#include "runtime/http_client.hpp"
#include "runtime/model_manifest.hpp"

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lps {

struct provider_http_config {
  /// "openai", "openrouter", "anthropic" or "google": the name outcomes and status report.
  std::string provider;
  /// Base URL, key (never logged, never in errors or status), timeout, extra headers.
  wire_target target;
  /// Model when neither the bundle nor the request names one.
  std::string default_model;
  /// Prices by model id (config/models.json): cost_estimate of successful items.
  std::map<std::string, model_price> prices;
  /// SERIAL_BUNDLE_MULTI_PROMPT: pack compatible items of a bundle into one call.
  bool multi_prompt = false;
  /// Most comparisons per multi-prompt call.
  size_t multi_prompt_max = 4;
  /// Connections the transport's pool opens to the provider's host
  /// (http_client_options::max_connections_per_origin); calls beyond wait there for one.
  size_t max_connections = http_client_options{}.max_connections_per_origin;
};

/// Where the calls handed to the transport and not answered yet are: on a connection at the
/// provider, or waiting in the pool for one.
struct call_gauges {
  /// On a connection to the provider (connecting, sent or being answered).
  size_t in_flight = 0;
  /// Waiting in the pool for a free connection.
  size_t waiting = 0;
  friend bool operator==(const call_gauges&, const call_gauges&) = default;
};

/// The pool never leaves a connection idle while a call waits, so of `outstanding` calls
/// min(outstanding, max_connections) are on connections (exact while this provider is the only
/// user of its host's pool; docs/api.md, "In-flight figures").
call_gauges call_gauges_of(size_t outstanding, size_t max_connections);

struct provider_http_state {
  static inline const char* name = "provider:http";
  provider_http_config cfg;
  std::shared_ptr<const provider_wire> wire;
  http_transport* http = nullptr;
  metrics_actor metrics;
  std::shared_ptr<http_inbox> inbox = std::make_shared<http_inbox>();
  /// A process call waiting for its items.
  struct pending_call {
    caf::typed_response_promise<std::vector<comparison_outcome>> promise;
    std::vector<comparison_outcome> outcomes;
    size_t remaining = 0;
  };
  /// One bundle item inside an HTTP call.
  struct part {
    uint64_t call = 0;
    size_t index = 0;
    bundle_item item;
    /// The id it is asked under in a multi-prompt call ("c1"...); empty for a single call.
    std::string multi_id;
  };
  /// One HTTP call in flight: one part, or several for a multi-prompt call.
  struct pending_http {
    std::string model;
    std::vector<part> parts;
    std::chrono::steady_clock::time_point started;
  };
  std::map<uint64_t, pending_call> calls;
  std::map<uint64_t, pending_http> https;
  /// A gateway call (docs/gateway.md) in flight or waiting out its backoff, by ticket (the
  /// same ticket space as `https`).
  struct pending_gateway {
    caf::typed_response_promise<gateway_reply> promise;
    gateway_call call;
    /// The translated upstream request, sent again as it is on a retry.
    http_client_request request;
    uint32_t attempts = 0;
    /// The rate-limit figures of the latest answer that had any (the reply carries them).
    rate_limit_hint limits{};
  };
  std::map<uint64_t, pending_gateway> gateways;
  uint64_t gateway_calls_total = 0;
  uint64_t gateway_retries_total = 0;
  uint64_t next_call = 0;
  uint64_t next_ticket = 0;
  /// Messages handled, their processing times, the last error (for status).
  actor_stats stats;
  uint64_t bundles_total = 0;
  uint64_t items_total = 0;
  uint64_t http_calls_total = 0;
  uint64_t multi_calls_total = 0;
  uint64_t multi_fallbacks_total = 0;
  uint64_t errors_total = 0;
  /// The HTTP call gauges as last sent to `metrics` (sent again only when they change).
  call_gauges reported;
};

/// Spawns with the provider config, its wire format and the transport (owned by the caller,
/// outlives the actor). `metrics` (may be null) gets llm_provider_http_calls_total and the gauges
/// llm_provider_inflight_provider_calls and llm_provider_calls_waiting_for_connection (0 again
/// when the actor stops: lps gives up on calls still open).
provider_http_impl_actor::behavior_type
provider_http(provider_http_impl_actor::stateful_pointer<provider_http_state> self,
              provider_http_config cfg, std::shared_ptr<const provider_wire> wire,
              http_transport* http, metrics_actor metrics);

} // namespace lps
