#pragma once

// Writing JSON text for the renderers. Rendering builds text directly rather than through
// boost::json::serialize: that one writes NaN/Infinity literally and passes invalid UTF-8
// through, both of which make invalid JSON.

#include <boost/json/fwd.hpp>

#include <charconv>
#include <concepts>
#include <string>
#include <string_view>

namespace lps {

/// Appends `text` as a JSON string literal. Invalid UTF-8 bytes become U+FFFD, so the output
/// is valid JSON whatever a provider or caller handed us.
void append_quoted(std::string& out, std::string_view text);

/// Appends an integer in decimal.
template <std::integral T>
void append_integer(std::string& out, T x) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), x);
  out.append(buf, res.ptr);
}

/// Appends a finite double in its shortest round-trip form; integral values keep a ".0" so
/// consumers still read a float. Non-finite values have no JSON form: they become null.
void append_double(std::string& out, double x);

/// Appends a parsed JSON value compactly. Returns false when a number was not finite
/// (Boost.JSON reads 1e400 as infinity); that number is written as null.
bool append_value(std::string& out, const boost::json::value& value);

/// Writes one JSON object member by member into a shared buffer, placing the commas.
/// Nested objects: `object_writer inner{outer.member("key")}; ...; inner.close();`.
class object_writer {
public:
  explicit object_writer(std::string& out) : out_(out) {
    out_ += '{';
  }

  /// Writes `"key":` and returns the buffer for the caller to append the value.
  std::string& member(std::string_view key) {
    if (!first_)
      out_ += ',';
    first_ = false;
    append_quoted(out_, key);
    out_ += ':';
    return out_;
  }

  object_writer& string(std::string_view key, std::string_view value) {
    append_quoted(member(key), value);
    return *this;
  }

  /// An empty string means "unknown" on the wire: null.
  object_writer& string_or_null(std::string_view key, std::string_view value) {
    return value.empty() ? null(key) : string(key, value);
  }

  object_writer& null(std::string_view key) {
    member(key) += "null";
    return *this;
  }

  object_writer& boolean(std::string_view key, bool value) {
    member(key) += value ? "true" : "false";
    return *this;
  }

  template <std::integral T>
  object_writer& integer(std::string_view key, T value) {
    append_integer(member(key), value);
    return *this;
  }

  object_writer& number(std::string_view key, double value) {
    append_double(member(key), value);
    return *this;
  }

  void close() {
    out_ += '}';
  }

private:
  std::string& out_;
  bool first_ = true;
};

/// Writes one JSON array element by element into a shared buffer, placing the commas.
class array_writer {
public:
  explicit array_writer(std::string& out) : out_(out) {
    out_ += '[';
  }

  /// Writes the comma before every element but the first and returns the buffer for the
  /// caller to append the element.
  std::string& element() {
    if (!first_)
      out_ += ',';
    first_ = false;
    return out_;
  }

  void close() {
    out_ += ']';
  }

private:
  std::string& out_;
  bool first_ = true;
};

} // namespace lps
