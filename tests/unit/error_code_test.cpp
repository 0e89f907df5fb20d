// The one error-code enum: wire names, reading them back, and agreement with docs/api.md.

#include "runtime/error_code.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

using namespace lps;

namespace {

std::set<std::string> all_wire_names() {
  std::set<std::string> result;
  for (auto i = 1; i <= static_cast<int>(last_error_code); ++i)
    result.insert(to_string(static_cast<ec>(i)));
  return result;
}

std::string api_doc() {
  std::ifstream in{std::string{LPS_SOURCE_DIR} + "/docs/api.md"};
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// The first cells of the table under "## Errors" (the error envelope codes).
std::set<std::string> documented_envelope_codes(const std::string& doc) {
  auto begin = doc.find("## Errors");
  auto section = doc.substr(begin, doc.find("\n## ", begin + 1) - begin);
  std::set<std::string> result;
  static const std::regex row{R"(\n\| ([A-Z_]+) \|)"};
  for (std::sregex_iterator i{section.begin(), section.end(), row}, end; i != end; ++i)
    result.insert((*i)[1]);
  return result;
}

/// The `CODE`s of the "Final error codes:" paragraph (up to its blank line).
std::set<std::string> documented_final_codes(const std::string& doc) {
  auto begin = doc.find("Final error codes:");
  auto paragraph = doc.substr(begin, doc.find("\n\n", begin) - begin);
  std::set<std::string> result;
  static const std::regex code{"`([A-Z_]+)`"};
  for (std::sregex_iterator i{paragraph.begin(), paragraph.end(), code}, end; i != end; ++i)
    result.insert((*i)[1]);
  return result;
}

} // namespace

TEST_CASE("every error code round-trips through its wire name") {
  for (auto i = 1; i <= static_cast<int>(last_error_code); ++i) {
    auto code = static_cast<ec>(i);
    INFO(to_string(code));
    CHECK(parse_error_code(to_string(code)) == code);
  }
  // docs/api.md: 11 envelope codes and 12 final codes, two of them (AUTHENTICATION_ERROR,
  // INVALID_REQUEST) in both lists.
  CHECK(all_wire_names().size() == 21);
}

TEST_CASE("last_error_code is the last enumerator") {
  auto past_the_end = static_cast<ec>(static_cast<int>(last_error_code) + 1);
  CHECK(std::string{to_string(past_the_end)} == "UNKNOWN");
}

TEST_CASE("unknown, lower-case and empty names do not parse") {
  CHECK_FALSE(parse_error_code("NONE"));
  CHECK_FALSE(parse_error_code("parsing_error"));
  CHECK_FALSE(parse_error_code("PARSING_ERROR "));
  CHECK_FALSE(parse_error_code(""));
  CHECK(parse_error_code("QUEUE_FULL") == ec::queue_full);
}

TEST_CASE("the wire names are exactly the codes docs/api.md documents") {
  auto doc = api_doc();
  REQUIRE_FALSE(doc.empty());
  auto envelope = documented_envelope_codes(doc);
  auto final_codes = documented_final_codes(doc);
  REQUIRE(envelope.count("VALIDATION_ERROR") == 1);
  REQUIRE(final_codes.count("PARSING_ERROR") == 1);
  auto documented = envelope;
  documented.insert(final_codes.begin(), final_codes.end());
  CHECK(documented == all_wire_names());
}
