#pragma once

// The one error-code type of the service: every code a client, a callback consumer or an
// operator can see (docs/api.md, "Errors" and "Final error codes"). Header-only and free of
// CAF and Beast so every library and tool can use it; messages/error.hpp makes it the CAF
// error category "lps". Message structs and stored rows keep the code as text (their wire and
// storage format): write it with to_string, read it back with parse_error_code.

#include <cstdint>
#include <optional>
#include <string_view>

namespace lps {

/// Error codes of the service. 0 is reserved: CAF 0.17 treats it as "no error".
enum class ec : uint8_t {
  /// Not an error.
  none = 0,
  // -- error envelope of the HTTP API --
  /// A field or the body failed validation (400).
  validation_error,
  /// Unparsable HTTP, a method a route does not take, a conflicting state (400/405/409); as a
  /// final code: the provider refused the request.
  invalid_request,
  /// A missing or wrong credential (401); as a final code: the provider refused the key.
  authentication_error,
  /// Unknown queue id, batch job, provider or route (404).
  resource_not_found,
  /// A body or request count over its limit (413).
  payload_too_large,
  /// A header block over its limit (431).
  request_header_fields_too_large,
  /// Content-Type is not application/json (415).
  unsupported_media_type,
  /// Queue capacity (count or bytes) reached; nothing was stored (503).
  queue_full,
  /// Shutting down, or an internal answer timed out (503).
  service_unavailable,
  /// An answer could not be made (a request not answered, an invalid response) (500).
  internal_error,
  // -- final codes of a result event --
  /// The provider rate-limited the call after retries.
  rate_limit,
  /// The provider's quota or credit is exhausted.
  quota_exceeded,
  /// No answer before the deadline.
  timeout,
  /// The provider could not be reached.
  connection_error,
  /// The provider failed (5xx, overload, conflict) after retries.
  external_service_error,
  /// The provider's answer could not be read.
  parsing_error,
  /// The provider's answer was read but breaks the comparison's rules.
  invalid_response,
  /// The provider is not usable when the call is made.
  configuration_error,
  /// The request's TTL passed before it was processed.
  expired,
  /// An operator cancelled the request or its batch job.
  cancelled,
  // -- error envelope of the HTTP API (added later: values stay stable) --
  /// The store lost its database (PostgreSQL down) and is reconnecting; nothing was
  /// acknowledged (503 with Retry-After).
  store_unavailable,
};

/// The wire name of a code ("PARSING_ERROR"); "NONE" for ec::none.
constexpr const char* to_string(ec code) {
  switch (code) {
  case ec::none:
    return "NONE";
  case ec::validation_error:
    return "VALIDATION_ERROR";
  case ec::invalid_request:
    return "INVALID_REQUEST";
  case ec::authentication_error:
    return "AUTHENTICATION_ERROR";
  case ec::resource_not_found:
    return "RESOURCE_NOT_FOUND";
  case ec::payload_too_large:
    return "PAYLOAD_TOO_LARGE";
  case ec::request_header_fields_too_large:
    return "REQUEST_HEADER_FIELDS_TOO_LARGE";
  case ec::unsupported_media_type:
    return "UNSUPPORTED_MEDIA_TYPE";
  case ec::queue_full:
    return "QUEUE_FULL";
  case ec::service_unavailable:
    return "SERVICE_UNAVAILABLE";
  case ec::internal_error:
    return "INTERNAL_ERROR";
  case ec::rate_limit:
    return "RATE_LIMIT";
  case ec::quota_exceeded:
    return "QUOTA_EXCEEDED";
  case ec::timeout:
    return "TIMEOUT";
  case ec::connection_error:
    return "CONNECTION_ERROR";
  case ec::external_service_error:
    return "EXTERNAL_SERVICE_ERROR";
  case ec::parsing_error:
    return "PARSING_ERROR";
  case ec::invalid_response:
    return "INVALID_RESPONSE";
  case ec::configuration_error:
    return "CONFIGURATION_ERROR";
  case ec::expired:
    return "EXPIRED";
  case ec::cancelled:
    return "CANCELLED";
  case ec::store_unavailable:
    return "STORE_UNAVAILABLE";
  }
  return "UNKNOWN"; // only for a value cast from outside the enum
}

/// The last enumerator, so callers can walk every code.
inline constexpr ec last_error_code = ec::store_unavailable;

/// Reads a wire name back (a stored row, a response body); nothing for an unknown name or
/// "NONE".
constexpr std::optional<ec> parse_error_code(std::string_view text) {
  for (auto i = uint8_t{1}; i <= static_cast<uint8_t>(last_error_code); ++i)
    if (text == to_string(static_cast<ec>(i)))
      return static_cast<ec>(i);
  return std::nullopt;
}

} // namespace lps
