// Request bodies to validated structs: parse_comparison_request and parse_comparison_batch,
// with errors that name the field.

#include "runtime/json_codec.hpp"
#include "runtime/json_scanner.hpp"
#include "runtime/json_utf8.hpp"
#include "runtime/json_writer.hpp"

#include "runtime/ids.hpp"
#include "runtime/url.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>

namespace lps {

namespace {

namespace json = boost::json;

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

/// Parses a whole body into `out`, with memory from `out`'s own storage: the parsed value then
/// moves into `out` as it is (a value moved between different storages is copied whole, every
/// 6 KB essay of a bulk body included).
bool parse_body(std::string_view body, unsigned max_depth, json::value& out, field_error& error) {
  if (is_blank(body))
    return fail_body(error, "request body is empty");
  json::parse_options options;
  options.max_depth = max_depth;
  // The parser's own scratch stack lives here: no heap allocation for ordinary bodies.
  unsigned char scratch[2048];
  json::parser parser{json::storage_ptr{}, options, scratch, sizeof(scratch)};
  parser.reset(out.storage());
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

} // namespace

bool parse_comparison_request(std::string_view body, const request_limits& limits,
                              comparison_request& out, field_error& error) {
  try {
    unsigned char buffer[document_buffer_size];
    json::monotonic_resource resource{buffer, sizeof(buffer)};
    json::value document(json::storage_ptr{&resource});
    if (!parse_body(body, limits.max_depth, document, error))
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
    json::value document(json::storage_ptr{&resource});
    if (!parse_body(body, limits.max_depth, document, error))
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

} // namespace lps
