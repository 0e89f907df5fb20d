#pragma once

// The gateway route's checks of an OpenAI chat.completion request (what OpenAI itself would
// reject is rejected here with the same kind of 400, before any provider is called) and the
// routing of a model id to a provider: an explicit "provider/model" prefix, else the model
// manifest (config/models.json), else the family (gpt-* and o1/o3/o4-* -> openai, claude-* ->
// anthropic, gemini-* -> google). The check parses with simdjson (runtime/gateway_check.cpp),
// the routing with Boost.JSON; both stay in the .cpp files.

#include "runtime/gateway_translate.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace lps {

/// What the route needs from a valid request.
struct gateway_request_info {
  /// The model as the client named it.
  std::string model;
  bool stream = false;
  /// Prompt size estimate (4 bytes a token) plus the completion limit, for the token limits.
  uint64_t estimated_tokens = 0;
  /// The body's stream fields are those lps would send: none for a plain call, exactly
  /// `"stream": true` and `"stream_options": {"include_usage": true}` for a streamed one. An
  /// OpenAI-format provider asked for `model` may then get it as it is, without a second
  /// parse (the `as_is` of gateway_upstream_request and gateway_upstream_stream_request).
  bool sendable_as_is = false;
  /// A streamed call's options (gateway_stream_options): stream_options.include_usage, and the
  /// json_schema's name when response_format has one, else "".
  bool include_usage = false;
  std::string schema_tool;
};

/// Checks `body`; nullopt with `out` filled, else the OpenAI-shaped 400.
std::optional<gateway_error> check_gateway_request(std::string_view body,
                                                   gateway_request_info& out);

/// Where a model id goes.
struct gateway_route {
  std::string provider;
  /// The id the provider is asked for (without an explicit prefix).
  std::string model;
};

/// The model ids of the manifest with their provider, and the routing rules above.
class gateway_models {
public:
  /// Reads the manifest's `models[].model_id` / `provider`; false with `error` when it is not
  /// a manifest.
  static bool parse(std::string_view manifest_json, gateway_models& out, std::string& error);

  /// The route of `model`, or nullopt (404 model_not_found).
  std::optional<gateway_route> route(const std::string& model) const;

  /// GET /v1/models: `{"object":"list","data":[{"id","object":"model","created","owned_by"}]}`.
  std::string list_json() const;

private:
  /// Model id -> provider, in manifest order of ids.
  std::map<std::string, std::string> providers_;
};

} // namespace lps
