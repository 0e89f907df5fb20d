#pragma once

// Pieces every provider wire format shares: the verdict check, the JSON Schema of the answer,
// multi-prompt packing, header reading and error results. Includes Boost.JSON, so only the
// *_format.cpp files include it.

#include "actors/providers/provider_wire.hpp"
#include "runtime/error_code.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lps::wire {

namespace json = boost::json;

/// Longest justification kept, in characters (code points); longer ones are cut.
inline constexpr size_t max_justification_chars = 500;

/// Default completion token limit when the request gives none.
inline constexpr uint32_t default_max_tokens = 4096;

/// Default temperature when the request gives none (judgements should be near-deterministic).
inline constexpr double default_temperature = 0.1;

/// Default system prompt when the request has no system_prompt_override.
extern const char* const default_system_prompt;

/// Appended to the system prompt of a multi-prompt call.
extern const char* const multi_prompt_instructions;

/// The name of the single-answer schema / tool, and of the multi-prompt one.
inline constexpr std::string_view single_answer_name = "comparison_result";
inline constexpr std::string_view multi_answer_name = "comparison_results";

/// The system prompt of a request: its override (even an empty one) or the default.
std::string system_prompt_of(const comparison_request& request);

/// The user text of a multi-prompt call: each item's user_prompt inside
/// `<comparison id="ID">` ... `</comparison>`, in order, separated by blank lines.
std::string pack_multi_prompt(const std::vector<multi_item>& items);

/// JSON Schema (OpenAI strict and Anthropic input_schema) of one answer:
/// {winner: enum, justification: string, confidence: number}, all required, no extra fields.
json::object verdict_schema();

/// JSON Schema of a multi-prompt answer: {results: [{comparison_id, winner, justification,
/// confidence}]}, all required, no extra fields.
json::object multi_verdict_schema();

/// `text` cut to at most `max_chars` code points, never inside a UTF-8 sequence.
std::string cut_utf8(std::string_view text, size_t max_chars);

/// Longest part of a provider's text (an error message, a status, an id) quoted in ours, in
/// characters.
inline constexpr size_t max_quoted_chars = 300;

/// A character of an API key (and of an Anthropic custom_id): letter, digit, '-' or '_'.
bool key_char(char c);

/// `text` with anything shaped like an API key ("sk-" and a long run of key characters, as
/// in "sk-ant-api03-...") masked. The reader never sees the key, so it cannot look for it,
/// but the provider, or a proxy in between, might quote one in a message we pass on.
std::string mask_keys(std::string text);

/// A provider's `text` as it may appear in our messages: keys masked, cut to
/// max_quoted_chars.
std::string quoted(std::string_view text);

/// A 2xx status: the call did what it was asked; anything else carries an error body.
inline bool is_success(unsigned status) {
  return status >= 200 && status <= 299;
}

/// A failed result.
wire_response failure(ec code, std::string message, unsigned status, bool retryable);

/// Checks one answer object; on success fills `out` and returns "", else returns why not
/// (a message naming the field; the error code is INVALID_RESPONSE).
std::string check_verdict(const json::object& answer, wire_verdict& out);

/// Reads a multi-prompt answer `{"results": [...]}` (a JSON object, or a string holding one):
/// every entry with a `comparison_id` and a valid verdict. An id answered twice is dropped
/// altogether (which answer would be right?); so are invalid entries. The caller ignores ids
/// it did not ask for.
std::map<std::string, wire_verdict> read_multi_answers(const json::value& answer);

/// The target's base URL without trailing slashes, so a path can be appended to it.
std::string base_of(const wire_target& target);

/// `id` as one URL path segment: anything but RFC 3986's unreserved characters (letters,
/// digits, '-', '_', '.', '~') percent-encoded, so an odd id can never change the path or add
/// a query.
std::string path_segment(std::string_view id);

/// The first header named `name` (lower-case), or nullptr.
const std::string* find_header(const wire_headers& headers, std::string_view name);

/// `retry-after` (delta seconds or HTTP date), else `retry-after-ms`; 0 when neither.
std::chrono::milliseconds retry_after_of(const wire_headers& headers,
                                         std::chrono::system_clock::time_point now);

/// A non-negative integer header value, or -1.
int64_t integer_header(const wire_headers& headers, std::string_view name);

/// OpenAI's `x-ratelimit-*` headers (OpenRouter sends none of them on success).
rate_limit_hint openai_rate_limits(const wire_headers& headers);

/// Anthropic's `anthropic-ratelimit-*` headers: the requests figures, and the most
/// restrictive token limit in force (`tokens-*`, else `input-tokens-*`).
rate_limit_hint anthropic_rate_limits(const wire_headers& headers,
                                      std::chrono::system_clock::time_point now);

// -- JSON field access that never throws --

std::string string_field(const json::object& obj, std::string_view key);
uint64_t count_field(const json::object* obj, std::string_view key);
const json::object* object_field(const json::object* obj, std::string_view key);
const json::array* array_field(const json::object* obj, std::string_view key);

} // namespace lps::wire
