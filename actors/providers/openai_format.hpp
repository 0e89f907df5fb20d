#pragma once

// The OpenAI chat/completions wire format as pure functions (no actors, no I/O): the request
// body lps sends for one comparison, and the strict reading of what comes back. OpenRouter
// speaks the same format, so its actor uses these too.

#include "messages/comparison.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

/// The flags for a model name: the GPT-5 family is every model starting with "gpt-5".
openai_model_flags openai_model_flags_for(std::string_view model);

/// Default system prompt when the request has no system_prompt_override.
extern const char* const openai_default_system_prompt;

/// Temperature when the request gives none (judgements should be near-deterministic).
inline constexpr double openai_default_temperature = 0.1;

/// Completion token limit when the request gives none.
inline constexpr uint32_t openai_default_max_tokens = 4096;

/// Longest justification kept, in characters (code points); longer ones are cut.
inline constexpr size_t openai_max_justification_chars = 500;

/// The chat/completions JSON body for one comparison with a json_schema response format.
std::string build_openai_request(const comparison_request& req, const std::string& model,
                                 const openai_model_flags& flags);

/// Response headers as the HTTP client reports them (names lower-cased).
using openai_headers = std::vector<std::pair<std::string, std::string>>;

/// One call's result: a judgement or an error, never both; nothing is guessed.
struct openai_parsed_response {
  bool success = false;
  std::string winner;
  std::string justification;
  double confidence = 0.0;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  uint64_t total_tokens = 0;
  uint64_t cached_tokens = 0;
  std::string error_code;
  std::string error_message;
  int32_t http_status = 0;
  bool retryable = false;
  std::chrono::milliseconds retry_after{0};
};

/// Reads a chat/completions answer. Non-2xx: classify() with `error.type`/`error.code`;
/// finish_reason "length": PARSING_ERROR; content not JSON: PARSING_ERROR; a winner other
/// than "Essay A"/"Essay B" or a confidence outside 1..5: INVALID_RESPONSE. Never throws.
openai_parsed_response
parse_openai_response(unsigned status, std::string_view body, const openai_headers& headers,
                      std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

/// `text` cut to at most `max_chars` code points, never inside a UTF-8 sequence.
std::string cut_utf8(std::string_view text, size_t max_chars);

} // namespace lps
