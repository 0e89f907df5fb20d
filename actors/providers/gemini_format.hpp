#pragma once

// The Google Gemini generateContent wire format as pure functions (no actors, no I/O, no clock
// reads): the request lps sends for one comparison or a multi-prompt call, and the strict
// reading of what comes back, including Google's error envelope
// `{"error":{"code","message","status","details":[google.rpc ...]}}`.

#include "actors/providers/provider_wire.hpp"

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace lps {

/// The generateContent JSON body for one comparison: systemInstruction (omitted when the
/// system prompt is empty), one user turn, and a generationConfig asking for JSON that
/// follows the verdict schema (Gemini's Schema dialect: upper-case types, propertyOrdering,
/// no additionalProperties). The model is not part of the body (it travels in the URL); it
/// is taken so callers such as batch submission share one signature with the URL builder.
std::string build_gemini_body(const comparison_request& request, const std::string& model);

/// Gemini's generateContent. Errors are classified with `error.status` as the provider type;
/// an exhausted quota (a google.rpc.QuotaFailure that is not only a per-minute limit, or a
/// "quota exceeded" message) becomes QUOTA_EXCEEDED, and a google.rpc.RetryInfo delay is
/// used when there is no Retry-After header. Gemini sends no rate-limit headers, so `limits`
/// stays empty.
class gemini_wire : public provider_wire {
public:
  /// "Gemini".
  std::string_view display_name() const override;

  /// ":generateContent".
  std::string_view endpoint() const override;

  /// POST {base_url}/v1beta/models/{model}:generateContent with the key in x-goog-api-key
  /// (never in the URL, which ends up in logs).
  http_client_request single_call(const wire_target& target, const comparison_request& request,
                                  const std::string& model) const override;

  /// Reads the answer to single_call. Never throws.
  wire_response read_single(unsigned status, std::string_view body, const wire_headers& headers,
                            std::chrono::system_clock::time_point now) const override;

  /// One call for several comparisons: the first item's system prompt plus the multi-prompt
  /// instructions, the packed user texts, the `{results: [...]}` schema, the largest
  /// max_tokens of the items and the first item's temperature.
  http_client_request multi_call(const wire_target& target, const std::vector<multi_item>& items,
                                 const std::string& model) const override;

  /// Reads the answer to multi_call. Never throws.
  wire_multi_response read_multi(unsigned status, std::string_view body,
                                 const wire_headers& headers,
                                 std::chrono::system_clock::time_point now) const override;
};

} // namespace lps
