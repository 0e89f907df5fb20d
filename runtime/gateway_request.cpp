#include "runtime/gateway_request.hpp"

#include "runtime/gateway_wire.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>

namespace lps {

namespace json = boost::json;

namespace {

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

/// Length of a content value's text (string or array of text parts), or an error.
std::optional<gateway_error> check_content(const json::value& content, const std::string& at,
                                           size_t& chars) {
  if (const auto* s = content.if_string()) {
    chars += s->size();
    return std::nullopt;
  }
  const auto* parts = content.if_array();
  if (parts == nullptr)
    return wrong_type(at, "a string or an array of content parts");
  for (size_t i = 0; i < parts->size(); ++i) {
    auto pat = at + "[" + std::to_string(i) + "]";
    const auto* p = (*parts)[i].if_object();
    const auto* type = p ? p->if_contains("type") : nullptr;
    if (type == nullptr || !type->is_string())
      return missing(pat + ".type");
    if (type->get_string() != "text")
      return bad("Content parts of type '" + std::string{type->get_string()}
                     + "' are not supported by the lps gateway yet; only 'text' parts are.",
                 pat + ".type", "unsupported_content_type");
    const auto* text = p->if_contains("text");
    if (text == nullptr || !text->is_string())
      return missing(pat + ".text");
    chars += text->get_string().size();
  }
  return std::nullopt;
}

std::optional<gateway_error> check_tool_calls(const json::value& calls, const std::string& at) {
  const auto* list = calls.if_array();
  if (list == nullptr)
    return wrong_type(at, "an array of tool calls");
  for (size_t i = 0; i < list->size(); ++i) {
    auto cat = at + "[" + std::to_string(i) + "]";
    const auto* c = (*list)[i].if_object();
    if (c == nullptr)
      return wrong_type(cat, "an object");
    const auto* id = c->if_contains("id");
    if (id == nullptr || !id->is_string())
      return missing(cat + ".id");
    const auto* fn = c->if_contains("function");
    const auto* fo = fn ? fn->if_object() : nullptr;
    if (fo == nullptr)
      return missing(cat + ".function");
    const auto* name = fo->if_contains("name");
    if (name == nullptr || !name->is_string())
      return missing(cat + ".function.name");
    const auto* args = fo->if_contains("arguments");
    if (args == nullptr || !args->is_string())
      return missing(cat + ".function.arguments");
  }
  return std::nullopt;
}

std::optional<gateway_error> check_message(const json::value& m, size_t i, size_t& chars) {
  auto at = "messages[" + std::to_string(i) + "]";
  const auto* mo = m.if_object();
  if (mo == nullptr)
    return wrong_type(at, "an object");
  const auto* role_value = mo->if_contains("role");
  if (role_value == nullptr || !role_value->is_string())
    return missing(at + ".role");
  std::string_view role = role_value->get_string();
  static constexpr std::array<std::string_view, 5> roles{"system", "developer", "user", "assistant",
                                                         "tool"};
  if (std::find(roles.begin(), roles.end(), role) == roles.end())
    return bad("Invalid value: '" + std::string{role}
                   + "'. Supported values are: 'system', 'developer', 'user', 'assistant' and "
                     "'tool'.",
               at + ".role");
  const auto* content = mo->if_contains("content");
  bool has_calls = mo->contains("tool_calls") && !mo->at("tool_calls").is_null();
  if (has_calls) {
    if (role != "assistant")
      return bad("Only assistant messages may carry 'tool_calls'.", at + ".tool_calls",
                 "invalid_value");
    if (auto e = check_tool_calls(mo->at("tool_calls"), at + ".tool_calls"))
      return e;
  }
  if (role == "tool") {
    const auto* id = mo->if_contains("tool_call_id");
    if (id == nullptr || !id->is_string())
      return missing(at + ".tool_call_id");
  }
  if (content == nullptr || content->is_null()) {
    if (role == "assistant" && has_calls)
      return std::nullopt;
    return missing(at + ".content");
  }
  return check_content(*content, at + ".content", chars);
}

std::optional<gateway_error> check_tools(const json::object& body) {
  const auto* tools = body.if_contains("tools");
  if (tools == nullptr || tools->is_null())
    return std::nullopt;
  const auto* list = tools->if_array();
  if (list == nullptr)
    return wrong_type("tools", "an array");
  for (size_t i = 0; i < list->size(); ++i) {
    auto at = "tools[" + std::to_string(i) + "]";
    const auto* t = (*list)[i].if_object();
    if (t == nullptr)
      return wrong_type(at, "an object");
    const auto* type = t->if_contains("type");
    if (type == nullptr || !type->is_string() || type->get_string() != "function")
      return bad("Invalid value for '" + at + ".type': only 'function' tools are supported.",
                 at + ".type");
    const auto* fn = t->if_contains("function");
    const auto* fo = fn ? fn->if_object() : nullptr;
    if (fo == nullptr)
      return missing(at + ".function");
    const auto* name = fo->if_contains("name");
    if (name == nullptr || !name->is_string() || name->get_string().empty())
      return missing(at + ".function.name");
    if (const auto* params = fo->if_contains("parameters"); params && !params->is_object())
      return wrong_type(at + ".function.parameters", "an object");
  }
  return std::nullopt;
}

std::optional<gateway_error> check_tool_choice(const json::object& body) {
  const auto* choice = body.if_contains("tool_choice");
  if (choice == nullptr || choice->is_null())
    return std::nullopt;
  if (const auto* s = choice->if_string()) {
    if (*s == "none" || *s == "auto" || *s == "required")
      return std::nullopt;
    return bad("Invalid value: '" + std::string{*s}
                   + "'. Supported values are: 'none', 'auto' and 'required'.",
               "tool_choice");
  }
  const auto* o = choice->if_object();
  const auto* fn = o ? o->if_contains("function") : nullptr;
  const auto* name = fn && fn->is_object() ? fn->get_object().if_contains("name") : nullptr;
  if (name == nullptr || !name->is_string())
    return missing("tool_choice.function.name");
  if (!body.contains("tools"))
    return bad("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
               "are specified.",
               "tool_choice");
  return std::nullopt;
}

std::optional<gateway_error> check_response_format(const json::object& body) {
  const auto* rf = body.if_contains("response_format");
  if (rf == nullptr || rf->is_null())
    return std::nullopt;
  const auto* o = rf->if_object();
  if (o == nullptr)
    return wrong_type("response_format", "an object");
  const auto* type = o->if_contains("type");
  if (type == nullptr || !type->is_string())
    return missing("response_format.type");
  std::string_view t = type->get_string();
  if (t == "text" || t == "json_object")
    return std::nullopt;
  if (t != "json_schema")
    return bad("Invalid value: '" + std::string{t}
                   + "'. Supported values are: 'json_object', 'json_schema', and 'text'.",
               "response_format.type");
  const auto* js = o->if_contains("json_schema");
  if (js == nullptr || !js->is_object())
    return missing("response_format.json_schema");
  const auto* name = js->get_object().if_contains("name");
  if (name == nullptr || !name->is_string())
    return missing("response_format.json_schema.name");
  if (const auto* schema = js->get_object().if_contains("schema"); schema && !schema->is_object())
    return wrong_type("response_format.json_schema.schema", "an object");
  return std::nullopt;
}

/// A positive integer field, or an error; 0 when absent.
std::optional<gateway_error> positive_integer(const json::object& body, const char* key,
                                              uint64_t& out) {
  const auto* v = body.if_contains(key);
  if (v == nullptr || v->is_null())
    return std::nullopt;
  if (v->is_uint64())
    out = v->get_uint64();
  else if (v->is_int64() && v->get_int64() > 0)
    out = static_cast<uint64_t>(v->get_int64());
  else if (v->is_int64())
    return bad("Invalid '" + std::string{key}
                   + "': integer below minimum value. Expected a value "
                     ">= 1.",
               key, "integer_below_min_value");
  else
    return wrong_type(key, "an integer");
  return out == 0 ? std::optional{bad("Invalid '" + std::string{key}
                                          + "': integer below minimum value. Expected a value "
                                            ">= 1.",
                                      key, "integer_below_min_value")}
                  : std::nullopt;
}

std::optional<gateway_error> check_settings(const json::object& body, uint64_t& max_tokens) {
  if (const auto* t = body.if_contains("temperature"); t && !t->is_null()) {
    if (!t->is_number())
      return wrong_type("temperature", "a number");
    auto v = t->to_number<double>();
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
  if (const auto* n = body.if_contains("n"); n && !n->is_null()
                                             && !(n->is_int64() && n->get_int64() == 1)
                                             && !(n->is_uint64() && n->get_uint64() == 1))
    return bad("Only n=1 is supported by the lps gateway.", "n", "unsupported_value");
  if (const auto* s = body.if_contains("stream"); s && !s->is_null() && !s->is_bool())
    return wrong_type("stream", "a boolean");
  return std::nullopt;
}

} // namespace

std::optional<gateway_error> check_gateway_request(std::string_view body,
                                                   gateway_request_info& out) {
  // Checked and dropped within this call, so its nodes go on the stack (a larger body spills
  // over to the heap): no allocation per node.
  unsigned char scratch[8192];
  json::monotonic_resource arena{scratch, sizeof scratch};
  boost::system::error_code ec;
  auto doc = json::parse(body, ec, &arena);
  if (ec)
    return bad("We could not parse the JSON body of your request: " + ec.message() + ".", "",
               "invalid_json");
  const auto* o = doc.if_object();
  if (o == nullptr)
    return bad("The request body must be a JSON object.", "", "invalid_json");
  const auto* model = o->if_contains("model");
  if (model == nullptr || !model->is_string() || model->get_string().empty())
    return bad("you must provide a model parameter", "model", "missing_required_parameter");
  out.model = std::string{model->get_string()};
  const auto* messages = o->if_contains("messages");
  if (messages == nullptr)
    return missing("messages");
  const auto* list = messages->if_array();
  if (list == nullptr)
    return wrong_type("messages", "an array of objects");
  if (list->empty())
    return bad("Invalid 'messages': empty array. Expected an array with minimum length 1, but got "
               "an empty array instead.",
               "messages", "empty_array");
  size_t chars = 0;
  for (size_t i = 0; i < list->size(); ++i)
    if (auto e = check_message((*list)[i], i, chars))
      return e;
  uint64_t max_tokens = 0;
  for (auto check : {check_tools, check_tool_choice, check_response_format})
    if (auto e = check(*o))
      return e;
  if (auto e = check_settings(*o, max_tokens))
    return e;
  const auto* stream = o->if_contains("stream");
  out.stream = stream && stream->is_bool() && stream->get_bool();
  gateway_wire::read_stream_options(*o, out.include_usage, out.schema_tool);
  const auto* options = o->if_contains("stream_options");
  bool lps_stream_options =
      options && options->is_object() && options->get_object().size() == 1 && out.include_usage;
  out.sendable_as_is = out.stream ? lps_stream_options : stream == nullptr && options == nullptr;
  out.estimated_tokens = chars / 4 + 1 + max_tokens;
  return std::nullopt;
}

// -- routing --

namespace {

/// Providers a "provider/model" prefix may name ("gemini" is another name of "google").
std::optional<std::string> prefix_provider(std::string_view prefix) {
  for (std::string_view p : {"openai", "openrouter", "anthropic", "google", "mock"})
    if (prefix == p)
      return std::string{p};
  if (prefix == "gemini")
    return std::string{"google"};
  return std::nullopt;
}

std::optional<std::string> family_provider(std::string_view model) {
  for (std::string_view p : {"gpt-", "o1", "o3", "o4", "chatgpt-"})
    if (model.starts_with(p))
      return std::string{"openai"};
  if (model.starts_with("claude-"))
    return std::string{"anthropic"};
  if (model.starts_with("gemini-"))
    return std::string{"google"};
  if (model.starts_with("mock-"))
    return std::string{"mock"};
  return std::nullopt;
}

} // namespace

bool gateway_models::parse(std::string_view manifest_json, gateway_models& out,
                           std::string& error) {
  boost::system::error_code ec;
  auto doc = json::parse(manifest_json, ec);
  const auto* models = !ec && doc.is_object() ? doc.get_object().if_contains("models") : nullptr;
  if (models == nullptr || !models->is_array()) {
    error = "the model manifest has no \"models\" array";
    return false;
  }
  for (const auto& m : models->get_array()) {
    const auto* o = m.if_object();
    const auto* id = o ? o->if_contains("model_id") : nullptr;
    const auto* provider = o ? o->if_contains("provider") : nullptr;
    if (id && id->is_string() && provider && provider->is_string())
      out.providers_[std::string{id->get_string()}] = std::string{provider->get_string()};
  }
  return true;
}

std::optional<gateway_route> gateway_models::route(const std::string& model) const {
  // A manifest id wins, so "anthropic/claude-..." listed for OpenRouter goes there.
  if (auto i = providers_.find(model); i != providers_.end())
    return gateway_route{i->second, model};
  if (auto slash = model.find('/'); slash != std::string::npos && slash + 1 < model.size())
    if (auto provider = prefix_provider(std::string_view{model}.substr(0, slash)))
      return gateway_route{*provider, model.substr(slash + 1)};
  if (auto provider = family_provider(model))
    return gateway_route{*provider, model};
  return std::nullopt;
}

std::string gateway_models::list_json() const {
  json::array data;
  for (const auto& [id, provider] : providers_)
    data.push_back(
        json::object{{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", provider}});
  return json::serialize(json::object{{"object", "list"}, {"data", std::move(data)}});
}

} // namespace lps
