#pragma once

// Signed callbacks (issue 13): with CALLBACK_SIGNING_SECRET every callback POST carries
// `X-LPS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`, the
// scheme of Stripe's webhooks, so a receiver can check the body came from lps and refuse
// replays older than its tolerance. docs/api.md has a verification example.

#include <cstdint>
#include <string>
#include <string_view>

namespace lps {

/// The header that carries the signature.
inline constexpr std::string_view callback_signature_header = "X-LPS-Signature";

/// Lower-case hex HMAC-SHA256 of `message` under `key`.
std::string hmac_sha256_hex(std::string_view key, std::string_view message);

/// The header value "t=<unix_seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
std::string callback_signature(std::string_view secret, int64_t unix_seconds,
                               std::string_view body);

} // namespace lps
