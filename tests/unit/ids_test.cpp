// Identifiers and hashes: format, stability across processes, known vectors.

#include "runtime/ids.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace lps;

TEST_CASE("random uuids are version 4 and unique") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = new_uuid();
    REQUIRE(is_uuid(id));
    CHECK(id[14] == '4');
    CHECK((id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b'));
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("uuid validation") {
  CHECK(is_uuid("123e4567-e89b-12d3-a456-426614174000"));
  CHECK(is_uuid("123E4567-E89B-12D3-A456-426614174000"));
  CHECK_FALSE(is_uuid("123e4567e89b12d3a456426614174000"));
  CHECK_FALSE(is_uuid("123e4567-e89b-12d3-a456-42661417400g"));
  CHECK_FALSE(is_uuid(""));
}

TEST_CASE("stable ids and hashes do not depend on the process") {
  // Fixed expectations: these values must never change, or event ids change on upgrade.
  CHECK(stable_uuid("ns", "abc") == stable_uuid("ns", "abc"));
  CHECK(stable_uuid("ns", "abc") != stable_uuid("ns", "abd"));
  CHECK(stable_uuid("ns", "abc")[14] == '5');
  // FNV-1a 64 test vectors.
  CHECK(stable_hash("") == 0xcbf29ce484222325ull);
  CHECK(stable_hash("a") == 0xaf63dc4c8601ec8cull);
  // SHA-256 test vector.
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("timestamps format as ISO-8601 UTC with milliseconds") {
  CHECK(iso8601(from_unix_ms(0)) == "1970-01-01T00:00:00.000Z");
  CHECK(iso8601(from_unix_ms(1'795'895'051'123)) == "2026-11-28T19:44:11.123Z");
  CHECK(to_unix_ms(from_unix_ms(1234567)) == 1234567);
}
