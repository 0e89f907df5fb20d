// Raw member texts of validated JSON (runtime/json_scanner): what the request parser uses to
// echo the caller's metadata with its numbers exactly as sent.

#include "runtime/json_codec.hpp"
#include "runtime/json_scanner.hpp"

#include <catch2/catch.hpp>

using namespace lps;

TEST_CASE("raw_member gives a member's text as it was sent") {
  auto text = R"( {"a": 1.10, "b" : {"x": [1, "}"]}, "c":"s\"t"} )";
  CHECK(raw_member(text, "a") == "1.10");
  CHECK(raw_member(text, "b") == R"({"x": [1, "}"]})");
  CHECK(raw_member(text, "c") == R"("s\"t")");
  CHECK_FALSE(raw_member(text, "x"));
}

TEST_CASE("raw_member ends strings at the first quote no odd run of backslashes escapes") {
  auto text = R"({"a": "x\\", "b": "y\\\"}", "c": "\\\\\"", "d": "", "e": "z\"\"w"})";
  CHECK(raw_member(text, "a") == R"("x\\")");
  CHECK(raw_member(text, "b") == R"("y\\\"}")");
  CHECK(raw_member(text, "c") == R"("\\\\\"")");
  CHECK(raw_member(text, "d") == R"("")");
  CHECK(raw_member(text, "e") == R"("z\"\"w")");
}

TEST_CASE("raw_member decodes escaped keys and refuses repeated ones") {
  CHECK(raw_member(R"({"m\u0065ta": 2})", "meta") == "2");
  CHECK_FALSE(raw_member(R"({"a": 1, "a": 2})", "a"));
  CHECK_FALSE(raw_member("[1]", "a"));
}

TEST_CASE("raw_elements splits an array into element texts") {
  auto xs = raw_elements(R"([ {"a": [1,2]} , "x,y", 3e2 ])");
  REQUIRE(xs.size() == 3);
  CHECK(xs[0] == R"({"a": [1,2]})");
  CHECK(xs[1] == R"("x,y")");
  CHECK(xs[2] == "3e2");
  CHECK(raw_elements("[]").empty());
  CHECK(raw_elements(R"({"a": 1})").empty());
}

TEST_CASE("compact_json drops whitespace outside strings only") {
  CHECK(compact_json("{ \"a b\" :\n [1, 2] }") == R"({"a b":[1,2]})");
}

TEST_CASE("json_string_field reads a top-level string field") {
  auto event = R"({"correlation_id": "c-1", "n": 2, "data": {"correlation_id": "inner"}})";
  CHECK(json_string_field(event, "correlation_id") == "c-1");
  CHECK(json_string_field(event, "n").empty());
  CHECK(json_string_field("not json", "correlation_id").empty());
}
