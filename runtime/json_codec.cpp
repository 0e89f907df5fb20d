#include "runtime/json_codec.hpp"

#include "runtime/ids.hpp"
#include "runtime/url.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>

namespace lps {

namespace {

namespace json = boost::json;

// -- UTF-8 -----------------------------------------------------------------------------------

/// Length of the well-formed UTF-8 sequence starting at `p` (RFC 3629 table: no overlong
/// forms, no surrogates, nothing above U+10FFFF), or 0 when the bytes there are not one.
size_t utf8_sequence_length(const unsigned char* p, size_t available) {
  auto c = p[0];
  if (c < 0x80)
    return 1;
  auto continuation = [&](size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < available && p[i] >= lo && p[i] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF)
    return continuation(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    auto lo = c == 0xE0 ? 0xA0 : 0x80;
    auto hi = c == 0xED ? 0x9F : 0xBF;
    return continuation(1, lo, hi) && continuation(2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    auto lo = c == 0xF0 ? 0x90 : 0x80;
    auto hi = c == 0xF4 ? 0x8F : 0xBF;
    return continuation(1, lo, hi) && continuation(2) && continuation(3) ? 4 : 0;
  }
  return 0;
}

const unsigned char* bytes_of(std::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}

/// True when every character starting before byte `end` is well-formed (the last one may
/// run past `end`).
bool is_valid_utf8(std::string_view text, size_t end = std::string_view::npos) {
  const auto* p = bytes_of(text);
  end = std::min(end, text.size());
  size_t i = 0;
  while (i < end) {
    auto n = utf8_sequence_length(p + i, text.size() - i);
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

/// The longest prefix of `text` holding at most `max_chars` characters, never ending
/// inside a multi-byte character. A stray invalid byte counts as one character (it is
/// rendered as U+FFFD).
std::string_view cut_to_chars(std::string_view text, size_t max_chars) {
  const auto* p = bytes_of(text);
  size_t i = 0;
  for (size_t chars = 0; i < text.size() && chars < max_chars; ++chars) {
    auto n = utf8_sequence_length(p + i, text.size() - i);
    i += n == 0 ? 1 : n;
  }
  return text.substr(0, i);
}

// -- writing JSON ----------------------------------------------------------------------------
// Rendering builds text directly rather than through boost::json::serialize: that one writes
// NaN/Infinity literally and passes invalid UTF-8 through, both of which make invalid JSON.

constexpr std::string_view replacement_char = "\xEF\xBF\xBD";

/// Appends `text` as a JSON string literal. Invalid UTF-8 bytes become U+FFFD, so the output
/// is valid JSON whatever a provider or caller handed us.
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

template <std::integral T>
void append_integer(std::string& out, T x) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), x);
  out.append(buf, res.ptr);
}

/// Appends a finite double in its shortest round-trip form; integral values keep a ".0" so
/// consumers still read a float. Non-finite values have no JSON form: they become null.
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

/// Appends a parsed JSON value compactly. Returns false when a number was not finite
/// (Boost.JSON reads 1e400 as infinity); that number is written as null.
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

/// The error envelope's inner object, shared by the single and the bulk bodies.
void append_error_object(std::string& out, std::string_view code, std::string_view message,
                         std::string_view correlation_id, std::string_view details_field) {
  object_writer error{out};
  error.string("code", code)
      .string("message", message)
      .string_or_null("correlation_id", correlation_id);
  object_writer details{error.member("details")};
  if (!details_field.empty())
    details.string("field", details_field);
  details.close();
  error.close();
}

// -- reading JSON ----------------------------------------------------------------------------

constexpr std::string_view json_whitespace = " \t\r\n";

bool is_blank(std::string_view text, std::string_view whitespace = json_whitespace) {
  return text.find_first_not_of(whitespace) == std::string_view::npos;
}

/// A whole-body error: no field to name.
bool fail_body(field_error& error, std::string message) {
  error.code = ec::validation_error;
  error.field.clear();
  error.message = std::move(message);
  return false;
}

/// Explains a Boost.JSON parse failure in the caller's terms: depth and UTF-8 are called
/// out because Boost reports invalid UTF-8 as a plain syntax error.
std::string describe_parse_error(std::string_view body, const json::error_code& ec, size_t offset,
                                 unsigned max_depth) {
  std::string result = "malformed JSON: ";
  if (ec == json::error::too_deep) {
    result += "nesting is deeper than the limit of ";
    append_integer(result, max_depth);
    result += " levels";
  } else if (!is_valid_utf8(body, offset + 4)) {
    // Boost stops right at the offending byte; a syntax error further on is not our case.
    result += "text is not valid UTF-8";
  } else {
    result += ec.message();
    result += " at byte ";
    append_integer(result, offset);
  }
  return result;
}

/// Parses a whole body into `out`, with memory from `sp`.
// -- raw member texts --
//
// Boost.JSON 1.81 has no precise number mode: some numbers come back an ulp off, and
// differently depending on what follows them. The caller's metadata is echoed, so lps keeps
// its original text. These helpers find a member's text in a body Boost has already
// validated (so the text is well-formed JSON).

bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

size_t skip_space(std::string_view s, size_t i) {
  while (i < s.size() && is_json_space(s[i]))
    ++i;
  return i;
}

size_t skip_string(std::string_view s, size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\')
      ++i;
    else if (s[i] == '"')
      return i + 1;
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

// `text` without the whitespace between tokens (strings are copied as they are).
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

// The decoded text of a raw JSON string token (escapes resolved by Boost when present).
std::string decode_key(std::string_view token) {
  if (token.find('\\') == std::string_view::npos)
    return std::string{token.substr(1, token.size() - 2)};
  json::error_code ec;
  auto value = json::parse(token, ec);
  return !ec && value.is_string() ? std::string{value.get_string()} : std::string{};
}

// The raw text of member `key` of the object `text`; nullopt when absent or repeated
// (then the caller falls back to Boost's value, whichever duplicate that is).
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

// The raw texts of the elements of the array `text`.
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

bool parse_body(std::string_view body, unsigned max_depth, json::storage_ptr sp, json::value& out,
                field_error& error) {
  if (is_blank(body))
    return fail_body(error, "request body is empty");
  json::parse_options options;
  options.max_depth = max_depth;
  // The parser's own scratch stack lives here: no heap allocation for ordinary bodies.
  unsigned char scratch[2048];
  json::parser parser{json::storage_ptr{}, options, scratch, sizeof(scratch)};
  parser.reset(std::move(sp));
  json::error_code ec;
  auto consumed = parser.write(body.data(), body.size(), ec);
  if (ec)
    return fail_body(error, describe_parse_error(body, ec, consumed, max_depth));
  out = parser.release();
  return true;
}

/// Looks up `key`; a JSON null counts as absent ("not given") everywhere in the request.
const json::value* find(const json::object& object, std::string_view key) {
  const auto* result = object.if_contains(key);
  return result != nullptr && !result->is_null() ? result : nullptr;
}

/// Any JSON number as a double (integers are numbers too).
std::optional<double> as_number(const json::value& value) {
  switch (value.kind()) {
  case json::kind::int64:
    return static_cast<double>(value.get_int64());
  case json::kind::uint64:
    return static_cast<double>(value.get_uint64());
  case json::kind::double_:
    return value.get_double();
  default:
    return std::nullopt;
  }
}

/// A JSON integer, or a float with an integral value (3.0), as int64; nothing else.
std::optional<int64_t> as_integer(const json::value& value) {
  switch (value.kind()) {
  case json::kind::int64:
    return value.get_int64();
  case json::kind::uint64:
    if (value.get_uint64() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return std::nullopt;
    return static_cast<int64_t>(value.get_uint64());
  case json::kind::double_: {
    // Beyond 2^53 a double no longer says which integer the caller meant.
    constexpr double exact_limit = 9007199254740992.0;
    auto x = value.get_double();
    if (!std::isfinite(x) || std::trunc(x) != x || std::fabs(x) > exact_limit)
      return std::nullopt;
    return static_cast<int64_t>(x);
  }
  default:
    return std::nullopt;
  }
}

std::string join(const std::vector<std::string>& xs) {
  std::string result;
  for (const auto& x : xs) {
    if (!result.empty())
      result += ", ";
    result += x;
  }
  return result;
}

bool is_one_of(std::string_view x, std::initializer_list<std::string_view> allowed) {
  return std::find(allowed.begin(), allowed.end(), x) != allowed.end();
}

std::string element_path(std::string_view array, size_t index) {
  std::string result{array};
  result += '[';
  append_integer(result, index);
  result += ']';
  return result;
}

/// Validates one request object into a comparison_request. Field paths in errors get
/// `prefix` in front ("requests[3]." inside a bulk body).
class request_reader {
public:
  /// `raw` is the request object's original text (empty when unknown).
  request_reader(std::string_view prefix, comparison_request& out, field_error& error,
                 std::string_view raw = {})
      : prefix_(prefix), out_(out), error_(error), raw_(raw) {
    // nop
  }

  bool read(const json::object& body) {
    return read_user_prompt(body) && read_prompt_blocks(body) && read_callback(body)
           && read_overrides(body) && read_correlation_id(body)
           && read_string(body, "user_id", "user_id", out_.user_id) && read_metadata(body)
           && read_priority(body);
  }

private:
  bool fail(std::string_view field, std::string message) {
    error_.code = ec::validation_error;
    error_.field = prefix_;
    error_.field += field;
    error_.message = std::move(message);
    return false;
  }

  /// An optional string member: absent or null leaves `out` alone.
  bool read_string(const json::object& object, std::string_view key, std::string_view path,
                   std::string& out) {
    const auto* value = find(object, key);
    if (value == nullptr)
      return true;
    if (!value->is_string())
      return fail(path, "must be a string");
    out.assign(value->get_string().data(), value->get_string().size());
    return true;
  }

  /// An optional string restricted to a few words.
  bool read_choice(const json::object& object, std::string_view key, std::string_view path,
                   std::initializer_list<std::string_view> allowed, std::string_view listed,
                   std::string& out) {
    const auto* value = find(object, key);
    if (value == nullptr)
      return true;
    if (!value->is_string() || !is_one_of(value->get_string(), allowed))
      return fail(path, "must be one of " + std::string{listed});
    out.assign(value->get_string().data(), value->get_string().size());
    return true;
  }

  bool read_user_prompt(const json::object& body) {
    const auto* value = find(body, "user_prompt");
    if (value == nullptr)
      return fail("user_prompt", "is required");
    if (!value->is_string())
      return fail("user_prompt", "must be a string");
    const auto& text = value->get_string();
    if (is_blank(text, " \t\r\n\f\v"))
      return fail("user_prompt", "must not be empty");
    out_.user_prompt.assign(text.data(), text.size());
    return true;
  }

  bool read_prompt_blocks(const json::object& body) {
    const auto* value = find(body, "prompt_blocks");
    if (value == nullptr)
      return true;
    if (!value->is_array())
      return fail("prompt_blocks", "must be an array");
    const auto& xs = value->get_array();
    out_.prompt_blocks.reserve(xs.size());
    auto first_5m = std::string::npos; // index of the first 5m block seen, if any
    for (size_t i = 0; i < xs.size(); ++i) {
      prompt_block block;
      if (!read_prompt_block(xs[i], i, block))
        return false;
      if (block.ttl == "5m" && first_5m == std::string::npos)
        first_5m = i;
      // Provider caches are prefix caches: a long-lived block after a short-lived one
      // would expire with it, so the 1h blocks have to lead.
      if (block.ttl == "1h" && first_5m != std::string::npos)
        return fail(block_path(i, ".ttl"), "a block with ttl 1h must come before every block "
                                           "with ttl 5m, but "
                                               + block_path(first_5m, "") + " has ttl 5m");
      out_.prompt_blocks.push_back(std::move(block));
    }
    return true;
  }

  /// "prompt_blocks[i]" plus `member`; built only for an error message.
  static std::string block_path(size_t index, std::string_view member) {
    auto result = element_path("prompt_blocks", index);
    result += member;
    return result;
  }

  bool read_prompt_block(const json::value& value, size_t index, prompt_block& block) {
    auto path = [index](std::string_view member) { return block_path(index, member); };
    if (!value.is_object())
      return fail(path(""), "must be an object");
    const auto& object = value.get_object();
    const auto* target = find(object, "target");
    if (target == nullptr)
      return fail(path(".target"), "is required");
    if (!target->is_string() || !is_one_of(target->get_string(), {"system", "user_content"}))
      return fail(path(".target"), "must be \"system\" or \"user_content\"");
    block.target.assign(target->get_string().data(), target->get_string().size());
    const auto* content = find(object, "content");
    if (content == nullptr)
      return fail(path(".content"), "is required");
    if (!content->is_string())
      return fail(path(".content"), "must be a string");
    block.content.assign(content->get_string().data(), content->get_string().size());
    if (const auto* cacheable = find(object, "cacheable")) {
      if (!cacheable->is_bool())
        return fail(path(".cacheable"), "must be true or false");
      block.cacheable = cacheable->get_bool();
    }
    if (const auto* ttl = find(object, "ttl")) {
      if (!ttl->is_string() || !is_one_of(ttl->get_string(), {"5m", "1h"}))
        return fail(path(".ttl"), "must be \"5m\" or \"1h\"");
      block.ttl.assign(ttl->get_string().data(), ttl->get_string().size());
    }
    return true;
  }

  bool read_callback(const json::object& body) {
    if (const auto* url = find(body, "callback_url")) {
      std::string why; // not shown: the envelope's message is the contract's fixed text
      if (!url->is_string() || !parse_http_url(url->get_string(), why))
        return fail("callback_url", "must be an http or https URL");
      out_.callback_url.assign(url->get_string().data(), url->get_string().size());
    }
    return read_string(body, "callback_topic", "callback_topic", out_.callback_topic);
  }

  bool read_overrides(const json::object& body) {
    const auto* value = find(body, "llm_config_overrides");
    if (value == nullptr)
      return true;
    if (!value->is_object())
      return fail("llm_config_overrides", "must be an object");
    const auto& object = value->get_object();
    auto& x = out_.overrides;
    return read_provider(object) && read_model(object) && read_temperature(object)
           && read_system_prompt(object) && read_max_tokens(object)
           && read_choice(object, "reasoning_effort", "llm_config_overrides.reasoning_effort",
                          {"none", "low", "medium", "high"}, "none, low, medium, high",
                          x.reasoning_effort)
           && read_choice(object, "output_verbosity", "llm_config_overrides.output_verbosity",
                          {"low", "medium", "high"}, "low, medium, high", x.output_verbosity);
  }

  bool read_provider(const json::object& object) {
    const auto* value = find(object, "provider_override");
    if (value == nullptr)
      return true;
    std::string name;
    if (value->is_string())
      name.assign(value->get_string().data(), value->get_string().size());
    if (!value->is_string() || !is_provider_name(name))
      return fail("llm_config_overrides.provider_override",
                  "must be one of " + join(provider_names()));
    out_.overrides.provider = std::move(name);
    return true;
  }

  bool read_model(const json::object& object) {
    constexpr std::string_view path = "llm_config_overrides.model_override";
    if (!read_string(object, "model_override", path, out_.overrides.model))
      return false;
    if (find(object, "model_override") != nullptr && is_blank(out_.overrides.model))
      return fail(path, "must not be empty");
    return true;
  }

  bool read_temperature(const json::object& object) {
    const auto* value = find(object, "temperature_override");
    if (value == nullptr)
      return true;
    auto x = as_number(*value);
    // The negated comparison also refuses NaN and infinities.
    if (!x || !(*x >= 0.0 && *x <= 2.0))
      return fail("llm_config_overrides.temperature_override", "must be a number between 0 and 2");
    out_.overrides.has_temperature = true;
    out_.overrides.temperature = *x;
    return true;
  }

  bool read_system_prompt(const json::object& object) {
    if (find(object, "system_prompt_override") == nullptr)
      return true;
    out_.overrides.has_system_prompt = true;
    return read_string(object, "system_prompt_override",
                       "llm_config_overrides.system_prompt_override", out_.overrides.system_prompt);
  }

  bool read_max_tokens(const json::object& object) {
    constexpr int64_t max_tokens_limit = 1'000'000;
    const auto* value = find(object, "max_tokens_override");
    if (value == nullptr)
      return true;
    auto x = as_integer(*value);
    if (!x || *x <= 0 || *x > max_tokens_limit)
      return fail("llm_config_overrides.max_tokens_override",
                  "must be an integer between 1 and 1000000");
    out_.overrides.max_tokens = static_cast<uint32_t>(*x);
    return true;
  }

  bool read_correlation_id(const json::object& body) {
    const auto* value = find(body, "correlation_id");
    if (value == nullptr)
      return true; // intake generates one
    if (!value->is_string() || !is_uuid(value->get_string()))
      return fail("correlation_id", "must be a UUID string (8-4-4-4-12 hex digits)");
    const auto& text = value->get_string();
    out_.correlation_id.resize(text.size());
    std::transform(text.begin(), text.end(), out_.correlation_id.begin(), [](char c) {
      return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    });
    return true;
  }

  bool read_metadata(const json::object& body) {
    const auto* value = find(body, "metadata");
    if (value == nullptr)
      return true; // metadata_json keeps its "{}" default
    if (!value->is_object())
      return fail("metadata", "must be an object");
    // The original text, so numbers are echoed exactly as the caller wrote them.
    if (auto raw = raw_.empty() ? std::nullopt : raw_member(raw_, "metadata")) {
      out_.metadata_json = compact_json(*raw);
    } else {
      std::string text;
      if (!append_value(text, *value))
        return fail("metadata", "contains a number too large to represent");
      out_.metadata_json = std::move(text);
    }
    if (const auto* mode = value->get_object().if_contains("cj_llm_batching_mode");
        mode != nullptr && mode->is_string()) {
      out_.has_cj_batching_mode = true;
      out_.cj_batching_mode.assign(mode->get_string().data(), mode->get_string().size());
    }
    return true;
  }

  bool read_priority(const json::object& body) {
    const auto* value = find(body, "priority");
    if (value == nullptr)
      return true; // the default 5 stays
    auto x = as_integer(*value);
    if (!x || *x < 0 || *x > 10)
      return fail("priority", "must be an integer between 0 and 10");
    out_.priority = static_cast<int32_t>(*x);
    return true;
  }

  std::string_view prefix_;
  comparison_request& out_;
  field_error& error_;
  std::string_view raw_;
};

/// Exceptions stop here (bad_alloc from a huge body, or a bug): the caller sees a 400-class
/// error instead of a crashed handler.
bool fail_unexpected(field_error& error, const std::exception& e) {
  return fail_body(error, std::string{"request could not be parsed: "} + e.what());
}

/// Stack memory for the parsed document; bigger bodies spill to the heap.
constexpr size_t document_buffer_size = 8192;

/// Enrichment keys lps adds to request_metadata, each only where the caller did not set it.
template <class Emit>
void for_each_enrichment(const json::object& caller, const result_event& event, Emit emit) {
  const auto& outcome = event.outcome;
  const auto& enrichment = outcome.enrichment;
  auto text = [&](std::string_view key, std::string_view value) {
    if (!value.empty() && !caller.contains(key))
      emit(key, json_quote(value));
  };
  auto count = [&](std::string_view key, uint64_t value) {
    if (value > 0 && !caller.contains(key))
      emit(key, std::to_string(value));
  };
  text("resolved_provider", enrichment.resolved_provider);
  text("resolved_model", enrichment.resolved_model);
  text("queue_processing_mode", enrichment.queue_processing_mode);
  text("prompt_sha256", outcome.prompt_sha256);
  if (enrichment.bundle_size > 0) {
    text("bundle_id", enrichment.bundle_id);
    count("bundle_size", enrichment.bundle_size);
  }
  text("batch_job_id", enrichment.batch_job_id);
  count("cache_read_input_tokens", outcome.usage.cache_read_input_tokens);
  count("cache_creation_input_tokens", outcome.usage.cache_creation_input_tokens);
}

/// `raw` is a valid JSON object text: copied as it is, lps' keys appended before its brace.
void append_metadata_verbatim(std::string& out, std::string_view raw, const json::object& keys,
                              const result_event& event) {
  out.append(raw.data(), raw.size() - 1);
  bool first = keys.empty();
  for_each_enrichment(keys, event, [&](std::string_view key, const std::string& value) {
    if (!first)
      out += ',';
    first = false;
    out += json_quote(key);
    out += ':';
    out += value;
  });
  out += '}';
}

/// request_metadata: the caller's keys untouched, then enrichment keys the caller did not set.
void append_request_metadata(std::string& out, const result_event& event) {
  unsigned char buffer[document_buffer_size];
  json::monotonic_resource resource{buffer, sizeof(buffer)};
  json::parse_options options;
  options.max_depth = 256; // stored metadata passed the intake limit already
  json::error_code ec;
  auto caller = json::parse(event.caller_metadata_json, ec, json::storage_ptr{&resource}, options);
  static const json::object no_keys;
  const auto& keys = !ec && caller.is_object() ? caller.get_object() : no_keys;
  // The caller's text as given (exact numbers), then lps' keys appended inside its braces.
  std::string_view raw = event.caller_metadata_json;
  while (!raw.empty() && is_json_space(raw.front()))
    raw.remove_prefix(1);
  while (!raw.empty() && is_json_space(raw.back()))
    raw.remove_suffix(1);
  bool verbatim =
      !ec && caller.is_object() && raw.size() >= 2 && raw.front() == '{' && raw.back() == '}';
  if (verbatim)
    return append_metadata_verbatim(out, raw, keys, event);
  object_writer metadata{out};
  for (const auto& member : keys)
    append_value(metadata.member(member.key()), member.value());
  for_each_enrichment(keys, event, [&](std::string_view key, const std::string& value) {
    metadata.member(key) += value;
  });
  metadata.close();
}

constexpr std::string_view service_name = "llm_provider_service";

/// CONTRACTS.md: justification holds at most 500 characters; longer text is cut, not lost.
constexpr size_t max_justification_chars = 500;

std::string_view first_non_empty(std::string_view a, std::string_view b) {
  return !a.empty() ? a : b;
}

void append_error_detail(std::string& out, const result_event& event,
                         std::string_view correlation_id, std::string_view provider) {
  const auto& outcome = event.outcome;
  object_writer detail{out};
  // An unnamed failure still needs a code consumers can switch on.
  detail.string("error_code", first_non_empty(outcome.error_code, to_string(ec::internal_error)))
      .string("message", outcome.error_message)
      .string_or_null("correlation_id", correlation_id)
      .string("timestamp", iso8601(event.completed_at))
      .string("service", service_name)
      .string("operation", "process_comparison");
  object_writer details{detail.member("details")};
  if (outcome.http_status != 0)
    details.integer("http_status", outcome.http_status);
  details.boolean("retryable", outcome.retryable)
      .string_or_null("provider", provider)
      .string_or_null("final_status", event.final_status);
  // How many provider attempts were made before this final failure (0: none, e.g. expiry).
  details.integer("attempts", event.attempts);
  details.close();
  detail.close();
}

void append_result_data(std::string& out, const result_event& event,
                        std::string_view correlation_id) {
  const auto& outcome = event.outcome;
  // Who served the call; a request that never reached a provider names the one resolved for it.
  auto provider = first_non_empty(outcome.provider, outcome.enrichment.resolved_provider);
  auto model = first_non_empty(outcome.model, outcome.enrichment.resolved_model);
  object_writer data{out};
  data.string("request_id", event.request_id).string_or_null("correlation_id", correlation_id);
  if (outcome.success) {
    data.string("winner", outcome.winner)
        .string("justification", cut_to_chars(outcome.justification, max_justification_chars))
        .number("confidence", outcome.confidence)
        .null("error_detail");
  } else {
    data.null("winner").null("justification").null("confidence");
    append_error_detail(data.member("error_detail"), event, correlation_id, provider);
  }
  data.string_or_null("provider", provider)
      .string_or_null("model", model)
      .integer("response_time_ms",
               static_cast<int64_t>(
                   std::chrono::duration_cast<std::chrono::milliseconds>(outcome.response_time)
                       .count()));
  object_writer usage{data.member("token_usage")};
  usage.integer("prompt_tokens", outcome.usage.prompt_tokens)
      .integer("completion_tokens", outcome.usage.completion_tokens)
      .integer("total_tokens", outcome.usage.total_tokens);
  usage.close();
  data.number("cost_estimate", std::isfinite(outcome.cost_estimate) ? outcome.cost_estimate : 0.0)
      .string("requested_at", iso8601(event.requested_at))
      .string("completed_at", iso8601(event.completed_at))
      .string_or_null("trace_id", event.trace_id);
  append_request_metadata(data.member("request_metadata"), event);
  data.close();
}

} // namespace

// -- parsing ---------------------------------------------------------------------------------

bool parse_comparison_request(std::string_view body, const request_limits& limits,
                              comparison_request& out, field_error& error) {
  try {
    unsigned char buffer[document_buffer_size];
    json::monotonic_resource resource{buffer, sizeof(buffer)};
    json::value document;
    if (!parse_body(body, limits.max_depth, json::storage_ptr{&resource}, document, error))
      return false;
    if (!document.is_object())
      return fail_body(error, "request body must be a JSON object");
    out = comparison_request{};
    return request_reader{"", out, error, body}.read(document.get_object());
  } catch (const std::exception& e) {
    return fail_unexpected(error, e);
  }
}

bool parse_comparison_batch(std::string_view body, const request_limits& limits,
                            std::vector<bulk_item>& items, field_error& error) {
  items.clear();
  try {
    // A bulk body is large: let the resource grow from the heap in big blocks.
    json::monotonic_resource resource{body.size() + 4096};
    json::value document;
    if (!parse_body(body, limits.max_depth, json::storage_ptr{&resource}, document, error))
      return false;
    if (!document.is_object())
      return fail_body(error, "request body must be a JSON object");
    auto fail_requests = [&](std::string message) {
      error.code = ec::validation_error;
      error.field = "requests";
      error.message = std::move(message);
      return false;
    };
    const auto* requests = find(document.get_object(), "requests");
    if (requests == nullptr)
      return fail_requests("is required");
    if (!requests->is_array())
      return fail_requests("must be an array of request objects");
    const auto& xs = requests->get_array();
    if (xs.empty())
      return fail_requests("must contain at least one request");
    if (xs.size() > limits.max_batch_items) {
      std::string message = "must contain at most ";
      append_integer(message, limits.max_batch_items);
      fail_requests(message + " requests");
      error.code = ec::payload_too_large; // a limit, not a malformed body: 413
      return false;
    }
    items.resize(xs.size());
    auto raw_requests = raw_member(body, "requests");
    auto raw_items = raw_requests ? raw_elements(*raw_requests) : std::vector<std::string_view>{};
    if (raw_items.size() != xs.size())
      raw_items.assign(xs.size(), std::string_view{}); // unknown: fall back to Boost's values
    for (size_t i = 0; i < xs.size(); ++i) {
      auto& item = items[i];
      auto prefix = element_path("requests", i);
      if (!xs[i].is_object()) {
        item.error.field = std::move(prefix);
        item.error.message = "must be a JSON object";
        continue;
      }
      prefix += '.';
      item.ok =
          request_reader{prefix, item.request, item.error, raw_items[i]}.read(xs[i].get_object());
    }
    return true;
  } catch (const std::exception& e) {
    items.clear();
    return fail_unexpected(error, e);
  }
}

// -- rendering -------------------------------------------------------------------------------

std::string render_error_body(ec code, std::string_view message, std::string_view correlation_id,
                              std::string_view details_field) {
  std::string result;
  result.reserve(128 + message.size());
  object_writer body{result};
  append_error_object(body.member("error"), to_string(code), message, correlation_id,
                      details_field);
  body.close();
  return result;
}

std::string render_result_event(const result_event& event) {
  // The original service fell back to the queue id when a request had no correlation id.
  std::string_view correlation_id =
      !event.correlation_id.empty() ? event.correlation_id : event.request_id;
  std::string result;
  result.reserve(1024 + event.outcome.justification.size() + event.caller_metadata_json.size()
                 + event.outcome.error_message.size());
  object_writer envelope{result};
  envelope.string("event_id", event.event_id)
      .string("event_type", "LLMComparisonResultV1")
      .string("event_timestamp", iso8601(event.event_timestamp))
      .string("source_service", service_name)
      .integer("schema_version", 1)
      .string_or_null("correlation_id", correlation_id);
  append_result_data(envelope.member("data"), event, correlation_id);
  envelope.close();
  return result;
}

std::string render_accepted(const enqueue_outcome& outcome) {
  std::string result;
  object_writer body{result};
  body.string("queue_id", outcome.queue_id)
      .string("status", "queued")
      .string_or_null("correlation_id", outcome.correlation_id)
      .string("message", "Request queued for processing");
  body.close();
  return result;
}

std::string render_bulk_accepted(const std::vector<bulk_entry>& entries) {
  std::string result;
  result.reserve(32 + entries.size() * 128);
  object_writer body{result};
  auto& out = body.member("results");
  out += '[';
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0)
      out += ',';
    const auto& entry = entries[i];
    object_writer item{out};
    if (entry.accepted) {
      item.string("queue_id", entry.outcome.queue_id)
          .string("status", "queued")
          .string_or_null("correlation_id", entry.outcome.correlation_id);
    } else if (!entry.error.message.empty()) {
      // Refused while parsing: the request never got a correlation id of ours.
      append_error_object(item.member("error"), to_string(entry.error.code), entry.error.message,
                          {}, entry.error.field);
    } else {
      append_error_object(item.member("error"), entry.outcome.error_code,
                          entry.outcome.error_message, entry.outcome.correlation_id, {});
    }
    item.close();
  }
  out += ']';
  body.close();
  return result;
}

std::string render_status(const request_status& status) {
  std::string result;
  object_writer body{result};
  body.string("queue_id", status.queue_id)
      .string("status", to_string(status.status))
      .string("queued_at", iso8601(status.queued_at))
      .integer("attempts", status.attempts)
      .integer("priority", status.priority)
      .string_or_null("provider", status.provider)
      .string_or_null("model", status.model)
      .string_or_null("correlation_id", status.correlation_id);
  if (status.last_error_code.empty()) {
    body.null("last_error");
  } else {
    object_writer error{body.member("last_error")};
    error.string("code", status.last_error_code).string("message", status.last_error_message);
    error.close();
  }
  if (status.next_attempt_at == caf::timestamp{})
    body.null("next_attempt_at");
  else
    body.string("next_attempt_at", iso8601(status.next_attempt_at));
  body.close();
  return result;
}

std::string render_inspection(const std::vector<actor_status>& actors) {
  std::string result;
  object_writer body{result};
  auto& out = body.member("actors");
  out += '[';
  for (size_t i = 0; i < actors.size(); ++i) {
    if (i > 0)
      out += ',';
    const auto& actor = actors[i];
    object_writer item{out};
    item.string("name", actor.name)
        .string("kind", actor.kind)
        .integer("mailbox_size", actor.mailbox_size)
        .integer("messages_handled", actor.messages_handled);
    object_writer figures{item.member("figures")};
    for (const auto& [key, value] : actor.figures)
      figures.number(key, value);
    figures.close();
    object_writer facts{item.member("facts")};
    for (const auto& [key, value] : actor.facts)
      facts.string(key, value);
    facts.close();
    item.close();
  }
  out += ']';
  body.close();
  return result;
}

std::string json_quote(std::string_view text) {
  std::string result;
  append_quoted(result, text);
  return result;
}

std::string json_string_field(std::string_view text, std::string_view key) {
  try {
    json::monotonic_resource resource;
    json::parse_options options;
    options.max_depth = 256; // our own stored events nest metadata below data
    json::error_code ec;
    auto document = json::parse(text, ec, json::storage_ptr{&resource}, options);
    if (ec || !document.is_object())
      return {};
    const auto* value = document.get_object().if_contains(key);
    if (value == nullptr || !value->is_string())
      return {};
    return std::string{value->get_string().data(), value->get_string().size()};
  } catch (const std::exception&) {
    return {};
  }
}

} // namespace lps
