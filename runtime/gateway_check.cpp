// check_gateway_request (runtime/gateway_request.hpp) on simdjson's DOM. Every gateway call's
// body is checked here before anything else, and with Boost.JSON that parse was a fifth of
// lps's CPU per call: after a string's first escape (a newline in an essay) Boost.JSON 1.81
// reads the rest of the string a byte at a time, 11 µs for a 6.5 KB chat body against about
// 1 µs with simdjson, which validates the whole body (UTF-8 included) just as strictly
// (docs/benchmarks.md, "The gateway's request check on simdjson").

#include "runtime/gateway_request.hpp"

#include <simdjson.h>

#include <algorithm>
#include <array>

namespace lps {

namespace {

namespace dom = simdjson::dom;

gateway_error bad(std::string message, std::string param, std::string code = "invalid_value") {
  return gateway_error{400, std::move(message), "invalid_request_error", std::move(param),
                       std::move(code)};
}

gateway_error missing(const std::string& param) {
  return bad("Missing required parameter: '" + param + "'.", param, "missing_required_parameter");
}

gateway_error wrong_type(const std::string& param, std::string_view expected) {
  return bad("Invalid type for '" + param + "': expected " + std::string{expected} + ".", param,
             "invalid_type");
}

/// The value of `key` in `o`; the last one when the key repeats, as OpenAI's own parser and
/// the provider that gets the body as it is read it.
std::optional<dom::element> field_of(dom::object o, std::string_view key) {
  std::optional<dom::element> found;
  for (auto member : o)
    if (member.key == key)
      found = member.value;
  return found;
}

std::optional<dom::element> field(std::optional<dom::element> e, std::string_view key) {
  if (!e || !e->is_object())
    return std::nullopt;
  return field_of(dom::object(*e), key);
}

bool present(const std::optional<dom::element>& e) {
  return e && !e->is_null();
}

bool is_string(const std::optional<dom::element>& e) {
  return e && e->is_string();
}

std::string_view text(const std::optional<dom::element>& e) {
  return is_string(e) ? std::string_view(*e) : std::string_view{};
}

/// Length of a content value's text (string or array of text parts), or an error.
std::optional<gateway_error> check_content(dom::element content, const std::string& at,
                                           size_t& chars) {
  if (content.is_string()) {
    chars += std::string_view(content).size();
    return std::nullopt;
  }
  if (!content.is_array())
    return wrong_type(at, "a string or an array of content parts");
  size_t i = 0;
  for (auto part : dom::array(content)) {
    auto pat = at + "[" + std::to_string(i++) + "]";
    auto type = field(part, "type");
    if (!is_string(type))
      return missing(pat + ".type");
    if (text(type) != "text")
      return bad("Content parts of type '" + std::string{text(type)}
                     + "' are not supported by the lps gateway yet; only 'text' parts are.",
                 pat + ".type", "unsupported_content_type");
    auto part_text = field(part, "text");
    if (!is_string(part_text))
      return missing(pat + ".text");
    chars += text(part_text).size();
  }
  return std::nullopt;
}

std::optional<gateway_error> check_tool_calls(dom::element calls, const std::string& at) {
  if (!calls.is_array())
    return wrong_type(at, "an array of tool calls");
  size_t i = 0;
  for (auto call : dom::array(calls)) {
    auto cat = at + "[" + std::to_string(i++) + "]";
    if (!call.is_object())
      return wrong_type(cat, "an object");
    if (!is_string(field(call, "id")))
      return missing(cat + ".id");
    auto fn = field(call, "function");
    if (!fn || !fn->is_object())
      return missing(cat + ".function");
    if (!is_string(field(fn, "name")))
      return missing(cat + ".function.name");
    if (!is_string(field(fn, "arguments")))
      return missing(cat + ".function.arguments");
  }
  return std::nullopt;
}

std::optional<gateway_error> check_message(dom::element m, size_t i, size_t& chars) {
  auto at = "messages[" + std::to_string(i) + "]";
  if (!m.is_object())
    return wrong_type(at, "an object");
  auto role_value = field(m, "role");
  if (!is_string(role_value))
    return missing(at + ".role");
  auto role = text(role_value);
  static constexpr std::array<std::string_view, 5> roles{"system", "developer", "user", "assistant",
                                                         "tool"};
  if (std::find(roles.begin(), roles.end(), role) == roles.end())
    return bad("Invalid value: '" + std::string{role}
                   + "'. Supported values are: 'system', 'developer', 'user', 'assistant' and "
                     "'tool'.",
               at + ".role");
  auto content = field(m, "content");
  auto calls = field(m, "tool_calls");
  bool has_calls = present(calls);
  if (has_calls) {
    if (role != "assistant")
      return bad("Only assistant messages may carry 'tool_calls'.", at + ".tool_calls",
                 "invalid_value");
    if (auto e = check_tool_calls(*calls, at + ".tool_calls"))
      return e;
  }
  if (role == "tool" && !is_string(field(m, "tool_call_id")))
    return missing(at + ".tool_call_id");
  if (!present(content)) {
    if (role == "assistant" && has_calls)
      return std::nullopt;
    return missing(at + ".content");
  }
  return check_content(*content, at + ".content", chars);
}

std::optional<gateway_error> check_tools(dom::object body) {
  auto tools = field_of(body, "tools");
  if (!present(tools))
    return std::nullopt;
  if (!tools->is_array())
    return wrong_type("tools", "an array");
  size_t i = 0;
  for (auto tool : dom::array(*tools)) {
    auto at = "tools[" + std::to_string(i++) + "]";
    if (!tool.is_object())
      return wrong_type(at, "an object");
    if (text(field(tool, "type")) != "function")
      return bad("Invalid value for '" + at + ".type': only 'function' tools are supported.",
                 at + ".type");
    auto fn = field(tool, "function");
    if (!fn || !fn->is_object())
      return missing(at + ".function");
    if (text(field(fn, "name")).empty())
      return missing(at + ".function.name");
    if (auto params = field(fn, "parameters"); params && !params->is_object())
      return wrong_type(at + ".function.parameters", "an object");
  }
  return std::nullopt;
}

std::optional<gateway_error> check_tool_choice(dom::object body) {
  auto choice = field_of(body, "tool_choice");
  if (!present(choice))
    return std::nullopt;
  if (choice->is_string()) {
    auto s = text(choice);
    if (s == "none" || s == "auto" || s == "required")
      return std::nullopt;
    return bad("Invalid value: '" + std::string{s}
                   + "'. Supported values are: 'none', 'auto' and 'required'.",
               "tool_choice");
  }
  if (!is_string(field(field(choice, "function"), "name")))
    return missing("tool_choice.function.name");
  if (!field_of(body, "tools"))
    return bad("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
               "are specified.",
               "tool_choice");
  return std::nullopt;
}

std::optional<gateway_error> check_response_format(dom::object body) {
  auto rf = field_of(body, "response_format");
  if (!present(rf))
    return std::nullopt;
  if (!rf->is_object())
    return wrong_type("response_format", "an object");
  auto type = field(rf, "type");
  if (!is_string(type))
    return missing("response_format.type");
  auto t = text(type);
  if (t == "text" || t == "json_object")
    return std::nullopt;
  if (t != "json_schema")
    return bad("Invalid value: '" + std::string{t}
                   + "'. Supported values are: 'json_object', 'json_schema', and 'text'.",
               "response_format.type");
  auto js = field(rf, "json_schema");
  if (!js || !js->is_object())
    return missing("response_format.json_schema");
  if (!is_string(field(js, "name")))
    return missing("response_format.json_schema.name");
  if (auto schema = field(js, "schema"); schema && !schema->is_object())
    return wrong_type("response_format.json_schema.schema", "an object");
  return std::nullopt;
}

gateway_error below_minimum(const char* key) {
  return bad("Invalid '" + std::string{key}
                 + "': integer below minimum value. Expected a value >= 1.",
             key, "integer_below_min_value");
}

/// A positive integer field, or an error; 0 when absent.
std::optional<gateway_error> positive_integer(dom::object body, const char* key, uint64_t& out) {
  auto v = field_of(body, key);
  if (!present(v))
    return std::nullopt;
  if (v->is_uint64())
    out = uint64_t(*v);
  else if (v->is_int64())
    return below_minimum(key); // a negative one: is_uint64 took the others
  else
    return wrong_type(key, "an integer");
  return out == 0 ? std::optional{below_minimum(key)} : std::nullopt;
}

bool is_one(const std::optional<dom::element>& n) {
  return (n->is_uint64() && uint64_t(*n) == 1) || (n->is_int64() && int64_t(*n) == 1);
}

std::optional<gateway_error> check_settings(dom::object body, uint64_t& max_tokens) {
  if (auto t = field_of(body, "temperature"); present(t)) {
    if (!t->is_number())
      return wrong_type("temperature", "a number");
    auto v = t->is_double()  ? double(*t)
             : t->is_int64() ? double(int64_t(*t))
                             : double(uint64_t(*t));
    if (v < 0 || v > 2)
      return bad("Invalid 'temperature': must be between 0 and 2.", "temperature",
                 "decimal_above_max_value");
  }
  uint64_t legacy = 0;
  if (auto e = positive_integer(body, "max_tokens", legacy))
    return e;
  if (auto e = positive_integer(body, "max_completion_tokens", max_tokens))
    return e;
  if (max_tokens == 0)
    max_tokens = legacy;
  if (auto n = field_of(body, "n"); present(n) && !is_one(n))
    return bad("Only n=1 is supported by the lps gateway.", "n", "unsupported_value");
  if (auto s = field_of(body, "stream"); present(s) && !s->is_bool())
    return wrong_type("stream", "a boolean");
  return std::nullopt;
}

/// The streamed call's options: include_usage, and the json_schema's name ("response" when it
/// has none) when response_format asks for a json_schema (Anthropic's forced tool).
void read_stream_options(dom::object body, gateway_request_info& out) {
  auto usage = field(field_of(body, "stream_options"), "include_usage");
  out.include_usage = usage && usage->is_bool() && bool(*usage);
  auto rf = field_of(body, "response_format");
  out.schema_tool.clear();
  if (text(field(rf, "type")) == "json_schema") {
    auto name = text(field(field(rf, "json_schema"), "name"));
    out.schema_tool = name.empty() ? "response" : std::string{name};
  }
}

std::optional<gateway_error> check_body(dom::object o, gateway_request_info& out) {
  auto model = field_of(o, "model");
  if (text(model).empty())
    return bad("you must provide a model parameter", "model", "missing_required_parameter");
  out.model = std::string{text(model)};
  auto messages = field_of(o, "messages");
  if (!messages)
    return missing("messages");
  if (!messages->is_array())
    return wrong_type("messages", "an array of objects");
  auto list = dom::array(*messages);
  if (list.size() == 0)
    return bad("Invalid 'messages': empty array. Expected an array with minimum length 1, but got "
               "an empty array instead.",
               "messages", "empty_array");
  size_t chars = 0;
  size_t i = 0;
  for (auto m : list)
    if (auto e = check_message(m, i++, chars))
      return e;
  uint64_t max_tokens = 0;
  for (auto check : {check_tools, check_tool_choice, check_response_format})
    if (auto e = check(o))
      return e;
  if (auto e = check_settings(o, max_tokens))
    return e;
  auto stream = field_of(o, "stream");
  out.stream = stream && stream->is_bool() && bool(*stream);
  read_stream_options(o, out);
  auto options = field_of(o, "stream_options");
  bool lps_stream_options =
      options && options->is_object() && dom::object(*options).size() == 1 && out.include_usage;
  out.sendable_as_is = out.stream ? lps_stream_options : !stream && !options;
  out.estimated_tokens = chars / 4 + 1 + max_tokens;
  return std::nullopt;
}

} // namespace

std::optional<gateway_error> check_gateway_request(std::string_view body,
                                                   gateway_request_info& out) {
  // One parser per I/O thread: it keeps its buffers from call to call.
  thread_local dom::parser parser;
  dom::element doc;
  if (auto err = parser.parse(body.data(), body.size()).get(doc))
    return bad("We could not parse the JSON body of your request: "
                   + std::string{simdjson::error_message(err)} + ".",
               "", "invalid_json");
  if (!doc.is_object())
    return bad("The request body must be a JSON object.", "", "invalid_json");
  return check_body(dom::object(doc), out);
}

} // namespace lps
