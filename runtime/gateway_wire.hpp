#pragma once

// Pieces the gateway translators share (Boost.JSON, so only runtime/gateway_*.cpp include it):
// the OpenAI chat.completion answer they all produce, and reading an upstream error.

#include "runtime/gateway_translate.hpp"

#include <boost/json.hpp>

#include <string>
#include <string_view>

namespace lps::gateway_wire {

namespace json = boost::json;

/// What a translated answer says, before it is rendered as a chat.completion.
struct chat_answer {
  std::string id;
  /// The assistant's text; null content when empty and tool calls are present.
  std::string text;
  /// OpenAI tool_calls entries ({id, type: function, function: {name, arguments}}).
  json::array tool_calls;
  /// stop, length, tool_calls or content_filter.
  std::string finish_reason = "stop";
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  int64_t created = 0;
};

/// The 200 result with OpenAI's chat.completion body for `model`.
gateway_result completion(const chat_answer& a, const std::string& model);

/// An upstream error answer turned into the client's: 429 stays 429 (rate_limit_error), 529
/// and 503 become 503 (overloaded), other 5xx 502, the provider rejecting lps's own key 502,
/// other 4xx 400 (404 stays 404). `provider_message` is quoted with keys masked.
gateway_result upstream_error(std::string_view provider, unsigned status,
                              std::string_view provider_type, std::string_view provider_message,
                              const gateway_headers& headers,
                              std::chrono::system_clock::time_point now);

/// An answer lps cannot read (a 2xx that is not the expected JSON): 502, not retried.
gateway_result unreadable(std::string_view provider, std::string_view why);

/// The request body parsed (into `storage`: e.g. a stack arena for a body read and dropped
/// within one call); the route checked it, so this only fails on a bug.
json::object parse_object(std::string_view body, json::storage_ptr storage = {});

/// A field's string, or "".
std::string text_of(const json::object* o, std::string_view key);

/// Text of an OpenAI message content: a string, or the text parts of an array joined.
std::string content_text(const json::value* content);

/// The schema of a json_schema response_format (nullptr when none).
const json::object* response_schema(const json::object& body);

/// response_format.json_schema.name (or "response").
std::string response_schema_name(const json::object& body);

/// The completion limit the client asked for (max_completion_tokens, else max_tokens), or 0.
uint64_t max_tokens_of(const json::object& body);

/// Seconds since the epoch of `now`.
int64_t unix_seconds(std::chrono::system_clock::time_point now);

// -- the dialects (runtime/gateway_anthropic.cpp, runtime/gateway_gemini.cpp) --

gateway_upstream anthropic_request(const gateway_target& target, const json::object& body,
                                   const std::string& model);
gateway_result anthropic_read(unsigned status, std::string_view body,
                              const gateway_headers& headers, const json::object& request,
                              const std::string& model, std::chrono::system_clock::time_point now);
gateway_upstream gemini_request(const gateway_target& target, const json::object& body,
                                const std::string& model);
gateway_result gemini_read(unsigned status, std::string_view body, const gateway_headers& headers,
                           const std::string& model, std::chrono::system_clock::time_point now);

/// A 400 for a request the upstream dialect cannot express.
gateway_upstream untranslatable(std::string message, std::string param);

} // namespace lps::gateway_wire
