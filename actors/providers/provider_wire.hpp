#pragma once

// What one provider's wire format must do, so that one provider actor (provider_http) can call
// any of them: build the HTTP request of a comparison, read the answer strictly, and the same
// for a multi-prompt call that asks for several comparisons at once. Implementations are pure
// (no actors, no I/O, no clock reads): openai_format, anthropic_format, gemini_format.

#include "messages/comparison.hpp"
#include "runtime/http_client.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lps {

/// Response headers as the HTTP client reports them (names lower-cased).
using wire_headers = std::vector<std::pair<std::string, std::string>>;

/// Where and as whom a provider is called. The key is only ever put into request headers.
struct wire_target {
  /// The SDK-style base URL (CONTRACTS.md section 3), no trailing slash.
  std::string base_url;
  std::string api_key;
  /// Whole-call deadline.
  std::chrono::milliseconds timeout{60000};
  /// Extra request headers (OpenRouter: HTTP-Referer, X-Title).
  std::vector<std::pair<std::string, std::string>> extra_headers;
};

/// A checked answer to one comparison.
struct wire_verdict {
  /// "Essay A" or "Essay B".
  std::string winner;
  /// At most max_justification_chars code points (cut, not lost).
  std::string justification;
  /// 1..5 as the model gave it.
  double confidence = 0.0;
};

/// One call's result: a judgement or an error, never both; nothing is guessed.
struct wire_response {
  bool success = false;
  /// Set when success (single calls only; multi-prompt answers are in wire_multi_response).
  wire_verdict verdict;
  token_usage usage;
  /// CONTRACTS.md error code when !success.
  std::string error_code;
  std::string error_message;
  /// The HTTP status of the response (also on success).
  int32_t http_status = 0;
  bool retryable = false;
  /// The provider's Retry-After (or equivalent), 0 when none.
  std::chrono::milliseconds retry_after{0};
  /// Rate-limit headers, read on every response that has them (success or error).
  rate_limit_hint limits;
};

/// One comparison of a multi-prompt call: the id the model is asked to answer under.
struct multi_item {
  /// Short and unique within the call ("c1", "c2", ...).
  std::string id;
  const comparison_request* request = nullptr;
};

/// A multi-prompt call's result. `call.success` means the call and its envelope were fine
/// (usage and limits are set); each answer was then checked like a single answer. Ids whose
/// answer is missing, duplicated or invalid are absent from `answers` (they are retried alone).
struct wire_multi_response {
  wire_response call;
  std::map<std::string, wire_verdict> answers;
};

/// A provider wire format.
class provider_wire {
public:
  virtual ~provider_wire() = default;

  /// For messages and metrics: "OpenAI", "OpenRouter", "Anthropic", "Gemini".
  virtual std::string_view display_name() const = 0;

  /// The endpoint label of llm_provider_http_calls_total, e.g. "/chat/completions".
  virtual std::string_view endpoint() const = 0;

  /// The HTTP request for one comparison.
  virtual http_client_request single_call(const wire_target& target,
                                          const comparison_request& request,
                                          const std::string& model) const = 0;

  /// Reads the answer to single_call. Never throws.
  virtual wire_response read_single(unsigned status, std::string_view body,
                                    const wire_headers& headers,
                                    std::chrono::system_clock::time_point now) const = 0;

  /// The HTTP request asking for one answer per item (2..4 items). The items share model,
  /// system prompt and generation settings; their user_prompt texts are packed with
  /// pack_multi_prompt (wire_common.hpp).
  virtual http_client_request multi_call(const wire_target& target,
                                         const std::vector<multi_item>& items,
                                         const std::string& model) const = 0;

  /// Reads the answer to multi_call. Never throws.
  virtual wire_multi_response read_multi(unsigned status, std::string_view body,
                                         const wire_headers& headers,
                                         std::chrono::system_clock::time_point now) const = 0;
};

} // namespace lps
