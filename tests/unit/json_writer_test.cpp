// The JSON writer under the renderers (runtime/json_writer, runtime/json_utf8): escaping,
// numbers, the object and array writers, and UTF-8 cutting.

#include "runtime/json_utf8.hpp"
#include "runtime/json_writer.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <limits>

using namespace lps;

namespace {

std::string quoted(std::string_view text) {
  std::string result;
  append_quoted(result, text);
  return result;
}

std::string number(double x) {
  std::string result;
  append_double(result, x);
  return result;
}

} // namespace

TEST_CASE("strings are escaped and invalid UTF-8 becomes U+FFFD") {
  CHECK(quoted("a\"b\\c\n\t\x01") == R"("a\"b\\c\n\t\u0001")");
  CHECK(quoted("caf\xC3\xA9") == "\"caf\xC3\xA9\""); // valid UTF-8 is copied
  CHECK(quoted("x\xFFy") == "\"x\xEF\xBF\xBDy\"");
  CHECK(quoted("\xED\xA0\x80") == "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""); // a surrogate
}

TEST_CASE("doubles keep a fraction and non-finite ones are null") {
  CHECK(number(3) == "3.0");
  CHECK(number(0.1) == "0.1");
  CHECK(number(1e300) == "1e+300");
  CHECK(number(std::numeric_limits<double>::infinity()) == "null");
  CHECK(number(std::numeric_limits<double>::quiet_NaN()) == "null");
}

TEST_CASE("append_value writes parsed JSON compactly and reports non-finite numbers") {
  std::string out;
  CHECK(append_value(out, boost::json::parse(R"({ "a" : [1, -2, true, null, "x"] })")));
  CHECK(out == R"({"a":[1,-2,true,null,"x"]})");
  out.clear();
  CHECK_FALSE(append_value(out, boost::json::parse("[1e400]")));
  CHECK(out == "[null]");
}

TEST_CASE("the object and array writers place commas and nest") {
  std::string out;
  object_writer body{out};
  body.string("s", "v").string_or_null("empty", "").boolean("b", false).integer("n", -7);
  array_writer xs{body.member("xs")};
  xs.element() += "1";
  object_writer inner{xs.element()};
  inner.number("x", 0.5);
  inner.close();
  xs.close();
  object_writer none{body.member("none")};
  none.close();
  body.close();
  CHECK(out == R"({"s":"v","empty":null,"b":false,"n":-7,"xs":[1,{"x":0.5}],"none":{}})");
}

TEST_CASE("cut_to_chars never splits a character") {
  CHECK(cut_to_chars("h\xC3\xA9llo", 2) == "h\xC3\xA9");
  CHECK(cut_to_chars("abc", 5) == "abc");
  CHECK(cut_to_chars("\xFF\xFF"
                     "a",
                     2)
        == "\xFF\xFF"); // a stray byte counts as one
  CHECK(is_valid_utf8("h\xC3\xA9"));
  CHECK_FALSE(is_valid_utf8("h\xC3"));
  CHECK(is_valid_utf8("ab\xFF", 2)); // only characters starting before byte 2 count
}
