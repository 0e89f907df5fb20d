#pragma once

// The gateway's wire translators as pure functions (no actors, no I/O, no clock reads; Boost.JSON
// stays in the .cpp files): an OpenAI chat.completion request body turned into the upstream
// provider's request (OpenAI and OpenRouter as they are, Anthropic Messages, Gemini
// generateContent), and the provider's answer turned back into OpenAI's chat.completion or
// error shape, with usage and finish_reason. docs/gateway.md lists what is translated.

#include "messages/comparison.hpp"
#include "runtime/http_client.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lps {

/// The upstream API a provider speaks.
enum class gateway_dialect { openai, openrouter, anthropic, gemini };

/// OpenAI and OpenRouter take OpenAI's request format itself (the others are translated).
inline bool takes_openai_format(gateway_dialect d) {
  return d == gateway_dialect::openai || d == gateway_dialect::openrouter;
}

/// The dialect of a provider name ("openai", "openrouter", "anthropic", "google"); nullopt for
/// others (the built-in mock answers without HTTP).
std::optional<gateway_dialect> gateway_dialect_of(std::string_view provider);

/// Where and as whom the provider is called. The key only ever goes into request headers.
struct gateway_target {
  /// The SDK-style base URL (CONTRACTS.md section 3).
  std::string base_url;
  std::string api_key;
  std::chrono::milliseconds timeout{60000};
  std::vector<std::pair<std::string, std::string>> extra_headers;
};

/// An OpenAI error: the status lps answers with and the body fields.
struct gateway_error {
  unsigned status = 400;
  std::string message;
  /// OpenAI's error.type: invalid_request_error, authentication_error, rate_limit_error, ...
  std::string type = "invalid_request_error";
  /// The request field at fault ("messages[2].content"), "" for none (rendered as null).
  std::string param;
  /// A short machine code ("model_not_found"), "" for none (rendered as null).
  std::string code;
};

/// `{"error":{"message","type","param","code"}}`.
std::string render_gateway_error(const gateway_error& e);

/// The upstream request, or why the client's request cannot be translated (a 400).
struct gateway_upstream {
  http_client_request request;
  std::optional<gateway_error> error;
};

/// Builds the provider call for a validated OpenAI request `body`, asking for `model`. `as_is`:
/// the body already names `model` and has no stream fields (gateway_request_info's
/// sendable_as_is), so an OpenAI or OpenRouter request is the body as it is, not parsed and
/// serialized again; other dialects translate it either way.
gateway_upstream gateway_upstream_request(gateway_dialect d, const gateway_target& target,
                                          std::string_view body, const std::string& model,
                                          bool as_is = false);

/// One upstream answer read back.
struct gateway_result {
  /// 200 with an OpenAI chat.completion body, or the status of an OpenAI error body.
  unsigned status = 200;
  std::string body;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  /// Another attempt could succeed (429, 500, 502, 503, 504, 529, timeouts, resets).
  bool retryable = false;
  /// The failure says something about the provider's health (counts against the breaker).
  bool provider_failure = false;
  /// The provider's Retry-After (retry-after or retry-after-ms), 0 when none.
  std::chrono::milliseconds retry_after{0};
  /// What the answer's rate-limit headers said is left (the provider gate learns it, as it
  /// does from queued calls); empty when they said nothing.
  rate_limit_hint limits;
};

using gateway_headers = std::vector<std::pair<std::string, std::string>>;

/// The rate-limit headers of an answer of dialect `d` (OpenAI's `x-ratelimit-*`, also
/// read for OpenRouter; Anthropic's `anthropic-ratelimit-*`; Gemini sends none).
rate_limit_hint gateway_rate_limits(gateway_dialect d, const gateway_headers& headers,
                                    std::chrono::system_clock::time_point now);

/// Reads the provider's answer to gateway_upstream_request of the client's `request` body,
/// its rate-limit headers included. `model` is the id the client asked for (the answer names
/// it). Never throws.
gateway_result gateway_read_upstream(gateway_dialect d, unsigned status, std::string_view body,
                                     const gateway_headers& headers, std::string_view request,
                                     const std::string& model,
                                     std::chrono::system_clock::time_point now);

/// A call that got no HTTP response (timeout, connect, reset, ...): a retryable 502/504.
gateway_result gateway_transport_failure(std::string_view provider, transport_error error,
                                         std::string_view detail);

/// The built-in mock's answer to a validated OpenAI request `body` (no HTTP): text naming the
/// last user turn, a JSON value matching a json_schema or json_object response_format, or a
/// call of the named (or first) tool while tools are offered and the last turn is not a tool
/// result. Deterministic for the same body.
gateway_result gateway_mock_answer(std::string_view body, const std::string& model);

/// A JSON value that satisfies the JSON Schema (or Gemini Schema) text `schema`: objects with
/// every listed property, the first enum value, "mock" for strings, 1 for numbers, true for
/// booleans, one-item arrays. Used by the mock answers (here and in lps-mock-provider).
std::string example_json_for_schema(std::string_view schema);

} // namespace lps
