#pragma once

// Which IP addresses a callback may connect to (issue 13: no server-side request forgery
// through callback_url). The HTTP client asks this for every resolved address right before
// connecting, so a name that resolves (or re-resolves: DNS rebinding) to a refused address
// is caught too. Plain C++, no Beast or CAF.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lps {

/// The kinds of address the guard tells apart.
enum class address_class : uint8_t {
  /// Anything not below: the public internet.
  global,
  /// 127.0.0.0/8, ::1, and the unspecified 0.0.0.0/8 and :: (which reach the local host).
  loopback,
  /// 10/8, 172.16/12, 192.168/16, 100.64/10 (carrier-grade NAT) and fc00::/7 (unique local).
  private_network,
  /// 169.254.0.0/16 and fe80::/10 (link-local, where cloud metadata services live), and the
  /// AWS IPv6 metadata address fd00:ec2::254.
  link_local_or_metadata,
};

/// "global", "loopback", "private", "link-local/metadata".
const char* to_string(address_class x);

/// The class of an IPv4 or IPv6 address in text form (no brackets); an IPv4-mapped
/// (::ffff:a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) IPv6 address counts as its IPv4 address.
/// nullopt when `ip` is not an address.
std::optional<address_class> classify_address(std::string_view ip);

/// Empty when a callback may connect to `ip`; otherwise why not, e.g. "callback target
/// 169.254.169.254 is link-local/metadata: refused". Link-local and metadata addresses are
/// always refused; loopback and private ones unless `allow_private` (CALLBACK_ALLOW_PRIVATE).
std::string callback_target_refusal(std::string_view ip, bool allow_private);

} // namespace lps
