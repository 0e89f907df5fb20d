// The callback signer (runtime/callback_signature) against vectors computed independently:
// RFC 4231's published HMAC-SHA256 test cases, and `openssl dgst` run at test time.

#include "runtime/callback_signature.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <memory>
#include <string>

using namespace lps;

namespace {

/// The HMAC-SHA256 hex of `message` under `key` as the openssl command line computes it.
std::string openssl_hmac(const std::string& key, const std::string& message) {
  // Key and message are test constants without quotes, so plain shell quoting is enough.
  auto command = "printf '%s' '" + message + "' | openssl dgst -sha256 -hmac '" + key + "' -r";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe{popen(command.c_str(), "r"), pclose};
  REQUIRE(pipe);
  std::array<char, 256> buf{};
  std::string out;
  while (auto n = fread(buf.data(), 1, buf.size(), pipe.get()))
    out.append(buf.data(), n);
  return out.substr(0, out.find(' ')); // "-r" prints "<hex> *stdin"
}

} // namespace

TEST_CASE("hmac_sha256_hex matches RFC 4231 test cases 1 and 2") {
  // Test case 1: key 0x0b * 20, data "Hi There".
  CHECK(hmac_sha256_hex(std::string(20, '\x0b'), "Hi There")
        == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Test case 2: key "Jefe", data "what do ya want for nothing?".
  CHECK(hmac_sha256_hex("Jefe", "what do ya want for nothing?")
        == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("the signature header signs \"<t>.<body>\" with the secret, as openssl computes it") {
  const std::string secret = "whsec-test-1";
  const std::string body = R"({"event_id":"e1","data":{"winner":"Essay A"}})";
  auto header = callback_signature(secret, 1700000000, body);
  auto expected_hex = openssl_hmac(secret, "1700000000." + body);
  REQUIRE(expected_hex.size() == 64);
  CHECK(header == "t=1700000000,v1=" + expected_hex);
  // Any change to the body, the time or the secret changes the signature.
  CHECK(callback_signature(secret, 1700000000, body + " ") != header);
  CHECK(callback_signature(secret, 1700000001, body) != header);
  CHECK(callback_signature(secret + "x", 1700000000, body) != header);
}
