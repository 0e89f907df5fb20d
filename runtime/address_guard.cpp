#include "runtime/address_guard.hpp"

#include <arpa/inet.h>

#include <array>
#include <algorithm>

namespace lps {

namespace {

using ipv4 = std::array<uint8_t, 4>;
using ipv6 = std::array<uint8_t, 16>;

/// True when the first `bits` bits of `addr` equal those of `prefix`.
template <size_t N>
bool in_prefix(const std::array<uint8_t, N>& addr, const std::array<uint8_t, N>& prefix,
               unsigned bits) {
  for (size_t i = 0; i < N && bits > 0; ++i, bits -= std::min(bits, 8u)) {
    auto mask = static_cast<uint8_t>(bits >= 8 ? 0xff : 0xff << (8 - bits));
    if ((addr[i] & mask) != (prefix[i] & mask))
      return false;
  }
  return true;
}

address_class classify_v4(const ipv4& a) {
  if (in_prefix(a, {127, 0, 0, 0}, 8) || in_prefix(a, {0, 0, 0, 0}, 8))
    return address_class::loopback;
  if (in_prefix(a, {169, 254, 0, 0}, 16))
    return address_class::link_local_or_metadata;
  if (in_prefix(a, {10, 0, 0, 0}, 8) || in_prefix(a, {172, 16, 0, 0}, 12)
      || in_prefix(a, {192, 168, 0, 0}, 16) || in_prefix(a, {100, 64, 0, 0}, 10))
    return address_class::private_network;
  return address_class::global;
}

/// The IPv4 address in the last 4 bytes of `a`.
ipv4 embedded_v4(const ipv6& a) {
  return {a[12], a[13], a[14], a[15]};
}

address_class classify_v6(const ipv6& a) {
  static constexpr ipv6 mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static constexpr ipv6 nat64{0x00, 0x64, 0xff, 0x9b};
  static constexpr ipv6 loopback{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static constexpr ipv6 unspecified{};
  static constexpr ipv6 aws_metadata{0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0,    0,
                                     0,    0,    0,    0,    0, 0, 0x02, 0x54};
  if (in_prefix(a, mapped, 96) || in_prefix(a, nat64, 96))
    return classify_v4(embedded_v4(a));
  if (a == loopback || a == unspecified)
    return address_class::loopback;
  if (a == aws_metadata || in_prefix(a, {0xfe, 0x80}, 10))
    return address_class::link_local_or_metadata;
  if (in_prefix(a, {0xfc}, 7))
    return address_class::private_network;
  return address_class::global;
}

} // namespace

const char* to_string(address_class x) {
  switch (x) {
  case address_class::global:
    return "global";
  case address_class::loopback:
    return "loopback";
  case address_class::private_network:
    return "private";
  case address_class::link_local_or_metadata:
    return "link-local/metadata";
  }
  return "global";
}

std::optional<address_class> classify_address(std::string_view ip) {
  std::string text{ip};
  ipv4 v4{};
  ipv6 v6{};
  if (inet_pton(AF_INET, text.c_str(), v4.data()) == 1)
    return classify_v4(v4);
  if (inet_pton(AF_INET6, text.c_str(), v6.data()) == 1)
    return classify_v6(v6);
  return std::nullopt;
}

std::string callback_target_refusal(std::string_view ip, bool allow_private) {
  auto kind = classify_address(ip);
  auto prefix = "callback target " + std::string{ip} + " is ";
  if (!kind)
    return prefix + "not an IP address: refused";
  switch (*kind) {
  case address_class::global:
    return {};
  case address_class::link_local_or_metadata:
    return prefix + to_string(*kind) + ": refused";
  case address_class::loopback:
  case address_class::private_network:
    if (allow_private)
      return {};
    return prefix + to_string(*kind) + ": refused (CALLBACK_ALLOW_PRIVATE=false)";
  }
  return prefix + "unknown: refused";
}

} // namespace lps
