// The callback target guard's address classifier (runtime/address_guard): IPv4, IPv6,
// IPv4-mapped and NAT64 IPv6, and what is refused with and without CALLBACK_ALLOW_PRIVATE.

#include "runtime/address_guard.hpp"

#include <catch2/catch.hpp>

using namespace lps;

namespace {

address_class class_of(std::string_view ip) {
  auto result = classify_address(ip);
  INFO(ip);
  REQUIRE(result);
  return *result;
}

} // namespace

TEST_CASE("IPv4 addresses are classified by range, edges included") {
  for (auto ip : {"127.0.0.1", "127.255.255.254", "0.0.0.0", "0.1.2.3"})
    CHECK(class_of(ip) == address_class::loopback);
  for (auto ip : {"10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255", "192.168.0.1",
                  "192.168.255.255", "100.64.0.1", "100.127.255.255"})
    CHECK(class_of(ip) == address_class::private_network);
  for (auto ip : {"169.254.169.254", "169.254.0.0", "169.254.255.255"})
    CHECK(class_of(ip) == address_class::link_local_or_metadata);
  // Just outside each range.
  for (auto ip : {"1.1.1.1", "9.255.255.255", "11.0.0.0", "126.255.255.255", "128.0.0.0",
                  "172.15.255.255", "172.32.0.0", "192.167.255.255", "192.169.0.0",
                  "169.253.255.255", "169.255.0.0", "100.63.255.255", "100.128.0.0"})
    CHECK(class_of(ip) == address_class::global);
}

TEST_CASE("IPv6 addresses are classified by range, metadata included") {
  CHECK(class_of("::1") == address_class::loopback);
  CHECK(class_of("::") == address_class::loopback);
  CHECK(class_of("fd00:ec2::254") == address_class::link_local_or_metadata);
  CHECK(class_of("FD00:EC2:0:0:0:0:0:254") == address_class::link_local_or_metadata);
  CHECK(class_of("fe80::1") == address_class::link_local_or_metadata);
  CHECK(class_of("febf:ffff::1") == address_class::link_local_or_metadata);
  CHECK(class_of("fc00::1") == address_class::private_network);
  CHECK(class_of("fd12:3456::1") == address_class::private_network);
  CHECK(class_of("fd00:ec2::253") == address_class::private_network);
  for (auto ip : {"2001:db8::1", "2606:4700::1111", "fec0::1", "fbff::1", "::2"})
    CHECK(class_of(ip) == address_class::global);
}

TEST_CASE("IPv4-mapped and NAT64 IPv6 addresses count as their IPv4 address") {
  CHECK(class_of("::ffff:169.254.169.254") == address_class::link_local_or_metadata);
  CHECK(class_of("::ffff:a9fe:a9fe") == address_class::link_local_or_metadata);
  CHECK(class_of("::ffff:127.0.0.1") == address_class::loopback);
  CHECK(class_of("::ffff:10.1.2.3") == address_class::private_network);
  CHECK(class_of("::ffff:8.8.8.8") == address_class::global);
  CHECK(class_of("64:ff9b::169.254.169.254") == address_class::link_local_or_metadata);
  CHECK(class_of("64:ff9b::8.8.8.8") == address_class::global);
}

TEST_CASE("text that is not an address has no class") {
  for (auto text : {"", "localhost", "169.254.169", "1.2.3.4.5", "[::1]", "::1%lo", "256.1.1.1"})
    CHECK_FALSE(classify_address(text));
}

TEST_CASE("link-local and metadata targets are always refused, private ones only when told") {
  CHECK(callback_target_refusal("169.254.169.254", true)
        == "callback target 169.254.169.254 is link-local/metadata: refused");
  CHECK(callback_target_refusal("fd00:ec2::254", true)
        == "callback target fd00:ec2::254 is link-local/metadata: refused");
  CHECK(callback_target_refusal("::ffff:169.254.169.254", true)
        == "callback target ::ffff:169.254.169.254 is link-local/metadata: refused");
  CHECK(callback_target_refusal("127.0.0.1", true).empty());
  CHECK(callback_target_refusal("10.0.0.7", true).empty());
  CHECK(callback_target_refusal("127.0.0.1", false)
        == "callback target 127.0.0.1 is loopback: refused (CALLBACK_ALLOW_PRIVATE=false)");
  CHECK(callback_target_refusal("192.168.1.10", false)
        == "callback target 192.168.1.10 is private: refused (CALLBACK_ALLOW_PRIVATE=false)");
  CHECK(callback_target_refusal("93.184.216.34", false).empty());
  CHECK(callback_target_refusal("2606:4700::1111", false).empty());
  CHECK(callback_target_refusal("nonsense", true)
        == "callback target nonsense is not an IP address: refused");
}
