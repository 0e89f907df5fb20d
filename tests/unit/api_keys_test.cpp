// Client API keys: the file format, hashed lookup, bearer parsing.

#include "runtime/api_keys.hpp"
#include "runtime/ids.hpp"

#include <catch2/catch.hpp>

using namespace lps;

TEST_CASE("an API keys file names each key by the SHA-256 of the key") {
  auto text = "# clients\ncj-prod " + sha256_hex("key-one") + "\n\n  nightly  "
              + sha256_hex("key-two") + "   # the batch runner\n";
  api_keys keys;
  std::string error;
  REQUIRE(api_keys::parse(text, "keys.txt", keys, error));
  CHECK(error.empty());
  CHECK(keys.find("key-one") == std::optional<std::string>{"cj-prod"});
  CHECK(keys.find("key-two") == std::optional<std::string>{"nightly"});
  CHECK_FALSE(keys.find("key-three"));
  CHECK_FALSE(keys.find(""));
  // The hash itself is not a key.
  CHECK_FALSE(keys.find(sha256_hex("key-one")));
}

TEST_CASE("a malformed API keys file is refused naming the file and line") {
  api_keys keys;
  std::string error;
  auto good = "a " + sha256_hex("k") + "\n";
  SECTION("a key in clear instead of its hash") {
    CHECK_FALSE(api_keys::parse(good + "b sk-plain-key\n", "/etc/keys", keys, error));
    CHECK(error.rfind("/etc/keys:2: expected '<name> <sha256 hex of the key>'", 0) == 0);
    CHECK(error.find("sk-plain-key") == std::string::npos);
  }
  SECTION("a hash without a name") {
    CHECK_FALSE(api_keys::parse(sha256_hex("k") + "\n", "f", keys, error));
    CHECK(error.rfind("f:1: ", 0) == 0);
  }
  SECTION("three words") {
    CHECK_FALSE(api_keys::parse("a b " + sha256_hex("k"), "f", keys, error));
    CHECK(error.rfind("f:1: ", 0) == 0);
  }
  SECTION("a name twice") {
    CHECK_FALSE(api_keys::parse(good + good, "f", keys, error));
    CHECK(error == "f:2: the name 'a' is used twice");
  }
  SECTION("no key at all") {
    CHECK_FALSE(api_keys::parse("# nothing yet\n", "f", keys, error));
    CHECK(error.find("holds no key") != std::string::npos);
  }
  SECTION("a missing file") {
    CHECK_FALSE(api_keys::load("/nonexistent/lps-keys", keys, error));
    CHECK(error == "/nonexistent/lps-keys: cannot be read");
  }
  CHECK(keys.empty());
}

TEST_CASE("bearer tokens and constant-time comparison") {
  CHECK(bearer_token("Bearer abc") == "abc");
  CHECK(bearer_token("bearer  abc ") == "abc");
  CHECK(bearer_token("Basic abc").empty());
  CHECK(bearer_token("Bearer").empty());
  CHECK(bearer_token("").empty());
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "abcd"));
}
