#include "runtime/json_utf8.hpp"
#include "runtime/json_writer.hpp"

#include <boost/json.hpp>

#include <cmath>

namespace lps {

namespace json = boost::json;

namespace {

constexpr std::string_view replacement_char = "\xEF\xBF\xBD";

} // namespace

void append_quoted(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  out.reserve(out.size() + text.size() + 2);
  out += '"';
  const auto* p = bytes_of(text);
  const auto* end = p + text.size();
  const auto* run = p; // start of the bytes not yet copied
  auto flush = [&](const unsigned char* upto) {
    out.append(reinterpret_cast<const char*>(run), static_cast<size_t>(upto - run));
  };
  while (p < end) {
    auto c = *p;
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++p;
      continue;
    }
    if (c >= 0x80) {
      auto n = utf8_sequence_length(p, static_cast<size_t>(end - p));
      if (n > 0) {
        p += n;
        continue;
      }
    }
    flush(p);
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    default:
      if (c < 0x20) {
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 0x0F];
      } else {
        out += replacement_char;
      }
    }
    run = ++p;
  }
  flush(end);
  out += '"';
}

void append_double(std::string& out, double x) {
  if (!std::isfinite(x)) {
    out += "null";
    return;
  }
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof(buf), x);
  std::string_view text{buf, static_cast<size_t>(res.ptr - buf)};
  out += text;
  if (text.find_first_of(".e") == std::string_view::npos)
    out += ".0";
}

bool append_value(std::string& out, const json::value& value) {
  switch (value.kind()) {
  case json::kind::null:
    out += "null";
    return true;
  case json::kind::bool_:
    out += value.get_bool() ? "true" : "false";
    return true;
  case json::kind::int64:
    append_integer(out, value.get_int64());
    return true;
  case json::kind::uint64:
    append_integer(out, value.get_uint64());
    return true;
  case json::kind::double_:
    append_double(out, value.get_double());
    return std::isfinite(value.get_double());
  case json::kind::string:
    append_quoted(out, value.get_string());
    return true;
  case json::kind::array: {
    auto all_finite = true;
    out += '[';
    const auto& xs = value.get_array();
    for (size_t i = 0; i < xs.size(); ++i) {
      if (i > 0)
        out += ',';
      all_finite = append_value(out, xs[i]) && all_finite;
    }
    out += ']';
    return all_finite;
  }
  case json::kind::object: {
    auto all_finite = true;
    out += '{';
    auto first = true;
    for (const auto& member : value.get_object()) {
      if (!first)
        out += ',';
      first = false;
      append_quoted(out, member.key());
      out += ':';
      all_finite = append_value(out, member.value()) && all_finite;
    }
    out += '}';
    return all_finite;
  }
  }
  return true;
}

} // namespace lps
