#include "runtime/json_codec.hpp"
#include "runtime/json_scanner.hpp"

#include <boost/json.hpp>

#include <cstring>
#include <initializer_list>

namespace lps {

namespace json = boost::json;

namespace {

size_t skip_space(std::string_view s, size_t i) {
  while (i < s.size() && is_json_space(s[i]))
    ++i;
  return i;
}

// The end of the string token starting at s[i]. A bulk body's strings are essays of kilobytes,
// scanned several times (raw_member, raw_elements): memchr finds each quote, and the quote
// ends the string unless an odd number of backslashes escapes it.
size_t skip_string(std::string_view s, size_t i) {
  const char* begin = s.data() + i + 1;
  const char* end = s.data() + s.size();
  for (const char* p = begin; p < end; ++p) {
    p = static_cast<const char*>(std::memchr(p, '"', static_cast<size_t>(end - p)));
    if (p == nullptr)
      break;
    const char* q = p;
    while (q > begin && q[-1] == '\\')
      --q;
    if ((p - q) % 2 == 0)
      return static_cast<size_t>(p - s.data()) + 1;
  }
  return s.size();
}

size_t skip_value(std::string_view s, size_t i) {
  if (i >= s.size())
    return s.size();
  if (s[i] == '"')
    return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    while (i < s.size()) {
      char c = s[i];
      if (c == '"') {
        i = skip_string(s, i);
        continue;
      }
      if (c == '{' || c == '[')
        ++depth;
      else if ((c == '}' || c == ']') && --depth == 0)
        return i + 1;
      ++i;
    }
    return s.size();
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_json_space(s[i]))
    ++i;
  return i;
}

// The decoded text of a raw JSON string token (escapes resolved by Boost when present).
std::string decode_key(std::string_view token) {
  if (token.find('\\') == std::string_view::npos)
    return std::string{token.substr(1, token.size() - 2)};
  json::error_code ec;
  auto value = json::parse(token, ec);
  return !ec && value.is_string() ? std::string{value.get_string()} : std::string{};
}

} // namespace

bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string compact_json(std::string_view text) {
  std::string result;
  result.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '"') {
      auto end = skip_string(text, i);
      result.append(text.data() + i, end - i);
      i = end;
    } else {
      if (!is_json_space(text[i]))
        result += text[i];
      ++i;
    }
  }
  return result;
}

std::optional<std::string_view> raw_member(std::string_view text, std::string_view key) {
  std::optional<std::string_view> result;
  size_t i = skip_space(text, 0);
  if (i >= text.size() || text[i] != '{')
    return std::nullopt;
  i = skip_space(text, i + 1);
  while (i < text.size() && text[i] == '"') {
    auto key_end = skip_string(text, i);
    auto name = decode_key(text.substr(i, key_end - i));
    i = skip_space(text, key_end);
    if (i >= text.size() || text[i] != ':')
      return std::nullopt;
    auto value_begin = skip_space(text, i + 1);
    auto value_end = skip_value(text, value_begin);
    if (name == key) {
      if (result)
        return std::nullopt;
      result = text.substr(value_begin, value_end - value_begin);
    }
    i = skip_space(text, value_end);
    if (i < text.size() && text[i] == ',')
      i = skip_space(text, i + 1);
  }
  return result;
}

std::vector<std::string_view> raw_elements(std::string_view text) {
  std::vector<std::string_view> result;
  size_t i = skip_space(text, 0);
  if (i >= text.size() || text[i] != '[')
    return result;
  i = skip_space(text, i + 1);
  while (i < text.size() && text[i] != ']') {
    auto end = skip_value(text, i);
    result.push_back(text.substr(i, end - i));
    i = skip_space(text, end);
    if (i < text.size() && text[i] == ',')
      i = skip_space(text, i + 1);
  }
  return result;
}

namespace {

// The string at `path` (object keys, outermost first) of the JSON object `text`, or "" when
// the text is no object or the path leads to no string.
std::string string_at(std::string_view text, std::initializer_list<std::string_view> path) {
  try {
    json::monotonic_resource resource;
    json::parse_options options;
    options.max_depth = 256; // our own stored events nest metadata below data
    json::error_code ec;
    auto document = json::parse(text, ec, json::storage_ptr{&resource}, options);
    if (ec)
      return {};
    const json::value* value = &document;
    for (auto key : path) {
      const auto* object = value->if_object();
      value = object != nullptr ? object->if_contains(key) : nullptr;
      if (value == nullptr)
        return {};
    }
    if (!value->is_string())
      return {};
    return std::string{value->get_string().data(), value->get_string().size()};
  } catch (const std::exception&) {
    return {};
  }
}

} // namespace

std::string json_string_field(std::string_view text, std::string_view key) {
  return string_at(text, {key});
}

std::string json_error_code(std::string_view text) {
  return string_at(text, {"error", "code"});
}

} // namespace lps
