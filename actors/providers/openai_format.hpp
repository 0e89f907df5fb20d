#pragma once

// The OpenAI chat/completions wire format as pure functions (no actors, no I/O): the request
// body lps sends for one comparison (or several, multi-prompt), and the strict reading of
// what comes back. OpenRouter speaks the same format with its own error envelope and headers.

#include "actors/providers/provider_wire.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace lps {

/// Which parameters a model accepts; the GPT-5 family differs from the older chat models.
struct openai_model_flags {
  /// Send `max_completion_tokens` instead of `max_tokens`.
  bool uses_max_completion_tokens = false;
  /// Send `temperature` (GPT-5 rejects any value other than 1).
  bool supports_temperature = true;
  /// Send `reasoning_effort` and `verbosity` when the overrides give them.
  bool supports_reasoning_controls = false;
};

/// The flags for a model name: the GPT-5 family is every model starting with "gpt-5". Used
/// for models the manifest does not list.
openai_model_flags openai_model_flags_for(std::string_view model);

/// Flags by model id, from the model manifest (config/models.json).
using openai_flags_table = std::map<std::string, openai_model_flags, std::less<>>;

/// The manifest's flags for `model`, else openai_model_flags_for(model).
openai_model_flags openai_model_flags_for(std::string_view model, const openai_flags_table& table);

/// The chat/completions JSON body for one comparison with a strict json_schema response
/// format (also the `body` of an OpenAI Batch API line).
std::string build_openai_request(const comparison_request& req, const std::string& model,
                                 const openai_model_flags& flags);

/// Reads a chat/completions answer. Non-2xx: classify() with `error.type`/`error.code`;
/// finish_reason "length": PARSING_ERROR; content not JSON: PARSING_ERROR; a winner other
/// than "Essay A"/"Essay B" or a confidence outside 1..5: INVALID_RESPONSE. Never throws.
wire_response
parse_openai_response(unsigned status, std::string_view body, const wire_headers& headers,
                      std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

/// OpenAI (and OpenRouter, `openrouter` = true) chat/completions as a provider_wire.
class openai_wire : public provider_wire {
public:
  explicit openai_wire(bool openrouter = false, openai_flags_table flags = {})
      : openrouter_(openrouter), flags_(std::move(flags)) {
    // nop
  }
  std::string_view display_name() const override;
  std::string_view endpoint() const override;
  http_client_request single_call(const wire_target& target, const comparison_request& request,
                                  const std::string& model) const override;
  wire_response read_single(unsigned status, std::string_view body, const wire_headers& headers,
                            std::chrono::system_clock::time_point now) const override;
  http_client_request multi_call(const wire_target& target, const std::vector<multi_item>& items,
                                 const std::string& model) const override;
  wire_multi_response read_multi(unsigned status, std::string_view body,
                                 const wire_headers& headers,
                                 std::chrono::system_clock::time_point now) const override;

private:
  bool openrouter_;
  openai_flags_table flags_;
};

} // namespace lps
