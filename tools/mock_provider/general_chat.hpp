#pragma once

// General chat calls in the mock provider (not lps's comparison prompts), for the gateway
// path (docs/gateway.md, docs/mock-provider.md "General chat calls"): a call is general when
// its answer schema asks for no comparison verdict. Such calls get the checks the real APIs
// make of tools, tool calls and results, roles and sampling ranges, and a deterministic answer
// in the dialect's shape: a call of the forced (or first) tool while tools are offered and the
// last turn is no tool result, else JSON matching the requested schema, else text naming the
// last user turn. The server's hook: validate() calls check(), build() calls render().

#include "tools/mock_provider/mock_provider_wire.hpp"

#include <boost/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace lps::mock_general {

/// Whether a call that passed the dialect's checks is a general chat call: OpenAI and
/// OpenRouter calls with tools, in text, or with a json_schema that is no verdict (json_object
/// without tools is how lps asks OpenRouter for one); Anthropic calls without a tool whose
/// input schema is a verdict; Gemini calls without a verdict response schema.
bool is_general(mock_wire::dialect d, const boost::json::object& body);

/// What the real API rejects in a general call (nullopt: nothing).
std::optional<mock_wire::provider_error> check(mock_wire::dialect d,
                                               const boost::json::object& body);

/// The 200 body of a general call; `output_tokens` gets the completion's token count.
std::string render(mock_wire::dialect d, const boost::json::object& body, const std::string& model,
                   const std::string& id, uint64_t input_tokens, int64_t created,
                   uint64_t& output_tokens);

} // namespace lps::mock_general
