#pragma once

// The Anthropic Messages API (POST /v1/messages) wire format as pure functions (no actors, no
// I/O, no clock reads): the request lps sends for one comparison or for a multi-prompt call,
// with forced tool use for the answer and prompt caching from the caller's prompt_blocks, and
// the strict reading of what comes back (errors, truncation, usage, rate-limit headers).

#include "actors/providers/provider_wire.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace lps {

/// The `anthropic-version` header lps sends unless configured otherwise.
inline constexpr std::string_view anthropic_default_version = "2023-06-01";

/// The JSON body of a Messages request for one comparison: the system prompt and the "system"
/// prompt blocks as `system` text blocks, the "user_content" blocks (else `user_prompt`) as
/// one user message, cache_control from the blocks' cacheable/ttl, and the forced tool
/// `comparison_result`. Also the `params` of a Message Batches item.
std::string build_anthropic_body(const comparison_request& request, const std::string& model);

/// The Anthropic Messages wire format.
class anthropic_wire : public provider_wire {
public:
  /// `version` is sent as the `anthropic-version` header.
  explicit anthropic_wire(std::string version = std::string{anthropic_default_version});

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
  /// The HTTP request around a JSON body.
  http_client_request post(const wire_target& target, std::string body) const;

  std::string version_;
};

} // namespace lps
