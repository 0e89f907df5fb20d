#pragma once

// The first attempt of a gateway call, plain or streamed, sent by the route itself: the
// request is translated on the HTTP server's I/O thread, handed straight to the provider HTTP
// client, and its answer read (a stream's pieces translated and written to the client as they
// come) on the client's I/O thread, which then ends the call. Two thread hand-overs per call
// instead of six through a bridge and the provider actor (docs/benchmarks.md, "Gateway
// overhead at 1,000 calls/s" and "Streamed calls"). Retries go through the provider actor
// (actors/provider_http_gateway), which owns backoff timers; the route hands a retryable
// failure over to it.

#include "runtime/gateway_translate.hpp"
#include "runtime/http_client.hpp"

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace lps {

struct config;
struct model_manifest;
struct gateway_call;
class gateway_stream;

/// An HTTP provider as the gateway route calls it.
struct gateway_direct_target {
  gateway_dialect dialect = gateway_dialect::openai;
  /// Base URL, key (only ever in request headers), per-attempt timeout, extra headers.
  gateway_target target;
  /// "OpenAI", "Anthropic", ...: names the provider in transport failures.
  std::string display_name;
  /// The endpoint label of llm_provider_http_calls_total ("/chat/completions", ...).
  std::string endpoint;
};

/// By provider name: every configured HTTP provider (the built-in mock has none).
using gateway_direct_targets = std::map<std::string, gateway_direct_target>;

/// One attempt's outcome: the answer read back, and the status label of
/// llm_provider_http_calls_total (the HTTP status or the transport error).
struct gateway_attempt {
  gateway_result result;
  std::string status_label;
};

/// Translates `call` for `t` (`as_is`: see gateway_upstream_request) and sends it on `http`,
/// cancelled by `cancel` (the client left). `done` runs exactly once: on a client I/O thread
/// with the answer, or at once on the caller's thread when the call cannot be translated
/// (status_label empty: nothing was sent).
void send_gateway_attempt(http_transport& http, const gateway_direct_target& t,
                          std::shared_ptr<const gateway_call> call, bool as_is,
                          std::shared_ptr<http_call_cancel> cancel,
                          std::function<void(gateway_attempt)> done);

/// The same for a streamed call (`as_is`: see gateway_upstream_stream_request): the upstream's
/// stream goes to `sink` as it arrives, and
/// `done` gets the attempt's result (gateway_stream_attempt_result) once it ended. Cancelled
/// by the sink's token (the client left).
void send_gateway_stream_attempt(http_transport& http, const gateway_direct_target& t,
                                 std::shared_ptr<const gateway_call> call, bool as_is,
                                 std::shared_ptr<gateway_stream> sink,
                                 std::function<void(gateway_attempt)> done);

} // namespace lps
