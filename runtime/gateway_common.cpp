#include "runtime/gateway_wire.hpp"

#include "actors/providers/wire_common.hpp"
#include "runtime/url.hpp"

#include <algorithm>
#include <cctype>
#include <functional>

namespace lps {

namespace gw = gateway_wire;
namespace json = boost::json;

std::optional<gateway_dialect> gateway_dialect_of(std::string_view provider) {
  if (provider == "openai")
    return gateway_dialect::openai;
  if (provider == "openrouter")
    return gateway_dialect::openrouter;
  if (provider == "anthropic")
    return gateway_dialect::anthropic;
  if (provider == "google")
    return gateway_dialect::gemini;
  return std::nullopt;
}

std::string render_gateway_error(const gateway_error& e) {
  auto nullable = [](const std::string& s) { return s.empty() ? json::value() : json::value(s); };
  return json::serialize(json::object{{"error", json::object{{"message", e.message},
                                                             {"type", e.type},
                                                             {"param", nullable(e.param)},
                                                             {"code", nullable(e.code)}}}});
}

namespace gateway_wire {

json::object parse_object(std::string_view body, json::storage_ptr storage) {
  boost::system::error_code ec;
  auto doc = json::parse(body, ec, storage);
  if (ec || !doc.is_object())
    return json::object(storage);
  return std::move(doc.get_object());
}

std::string text_of(const json::object* o, std::string_view key) {
  const auto* v = o ? o->if_contains(key) : nullptr;
  return v && v->is_string() ? std::string{v->get_string()} : std::string{};
}

std::string content_text(const json::value* content) {
  if (content == nullptr)
    return "";
  if (const auto* s = content->if_string())
    return std::string{*s};
  std::string out;
  if (const auto* parts = content->if_array())
    for (const auto& p : *parts)
      out += text_of(p.if_object(), "text");
  return out;
}

const json::object* response_schema(const json::object& body) {
  const auto* rf = body.if_contains("response_format");
  const auto* o = rf ? rf->if_object() : nullptr;
  if (o == nullptr || text_of(o, "type") != "json_schema")
    return nullptr;
  const auto* js = o->if_contains("json_schema");
  const auto* schema = js && js->is_object() ? js->get_object().if_contains("schema") : nullptr;
  static const json::object empty_object_schema{{"type", "object"}};
  return schema && schema->is_object() ? &schema->get_object() : &empty_object_schema;
}

std::string response_schema_name(const json::object& body) {
  const auto* rf = body.if_contains("response_format");
  const auto* js = rf && rf->is_object() ? rf->get_object().if_contains("json_schema") : nullptr;
  auto name = text_of(js ? js->if_object() : nullptr, "name");
  return name.empty() ? "response" : name;
}

uint64_t max_tokens_of(const json::object& body) {
  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    const auto* v = body.if_contains(key);
    if (v && v->is_uint64())
      return v->get_uint64();
    if (v && v->is_int64() && v->get_int64() > 0)
      return static_cast<uint64_t>(v->get_int64());
  }
  return 0;
}

int64_t unix_seconds(std::chrono::system_clock::time_point now) {
  return std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
}

gateway_result completion(const chat_answer& a, const std::string& model) {
  json::object message{
      {"role", "assistant"},
      {"content", a.text.empty() && !a.tool_calls.empty() ? json::value() : json::value(a.text)},
      {"refusal", nullptr}};
  if (!a.tool_calls.empty())
    message["tool_calls"] = a.tool_calls;
  json::object choice{{"index", 0},
                      {"message", std::move(message)},
                      {"logprobs", nullptr},
                      {"finish_reason", a.finish_reason}};
  json::object usage{{"prompt_tokens", a.prompt_tokens},
                     {"completion_tokens", a.completion_tokens},
                     {"total_tokens", a.prompt_tokens + a.completion_tokens}};
  json::object out{{"id", a.id},
                   {"object", "chat.completion"},
                   {"created", a.created},
                   {"model", model},
                   {"choices", json::array{std::move(choice)}},
                   {"usage", std::move(usage)}};
  gateway_result r;
  r.body = json::serialize(out);
  r.prompt_tokens = a.prompt_tokens;
  r.completion_tokens = a.completion_tokens;
  return r;
}

gateway_result upstream_error(std::string_view provider, unsigned status,
                              std::string_view provider_type, std::string_view provider_message,
                              const gateway_headers& headers,
                              std::chrono::system_clock::time_point now) {
  gateway_result r;
  auto type = std::string{provider_type};
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  bool quota = type.find("quota") != std::string::npos;
  auto message = std::string{provider} + " answered " + std::to_string(status)
                 + (provider_message.empty() ? "" : ": " + wire::quoted(provider_message));
  gateway_error e{400, message, "invalid_request_error", "", "upstream_error"};
  if (status == 429 && !quota) {
    e = {429, message, "rate_limit_error", "", "rate_limit_exceeded"};
    r.retryable = true;
  } else if (status == 429) {
    e = {429, message, "insufficient_quota", "", "insufficient_quota"};
  } else if (status == 503 || status == 529) {
    e = {503, message, "overloaded_error", "", "upstream_overloaded"};
    r.retryable = true;
  } else if (status == 504 || status == 408) {
    e = {504, message, "timeout_error", "", "upstream_timeout"};
    r.retryable = true;
  } else if (status >= 500) {
    e = {502, message, "upstream_error", "", "upstream_server_error"};
    r.retryable = status == 500 || status == 502;
  } else if (status == 401 || status == 403) {
    // lps's own provider key was refused: the client cannot fix that, the operator can.
    e = {502,
         std::string{provider} + " refused lps's API key (" + std::to_string(status)
             + "); the operator must fix the provider key",
         "upstream_error", "", "upstream_authentication_failed"};
  } else if (status == 404) {
    e = {404, message, "invalid_request_error", "model", "model_not_found"};
  }
  r.provider_failure = r.retryable;
  r.status = e.status;
  r.retry_after = wire::retry_after_of(headers, now);
  r.body = render_gateway_error(e);
  return r;
}

gateway_result unreadable(std::string_view provider, std::string_view why) {
  gateway_result r;
  r.status = 502;
  r.body = render_gateway_error(
      {502, std::string{provider} + " answered something lps cannot read: " + std::string{why},
       "upstream_error", "", "upstream_invalid_response"});
  return r;
}

gateway_upstream untranslatable(std::string message, std::string param) {
  gateway_upstream u;
  u.error = gateway_error{400, std::move(message), "invalid_request_error", std::move(param),
                          "unsupported_by_provider"};
  return u;
}

} // namespace gateway_wire

namespace {

/// An OpenAI or OpenRouter chat/completions request with `body`.
gateway_upstream openai_request(gateway_dialect d, const gateway_target& target, std::string body) {
  gateway_upstream u;
  u.request.url = join_url(target.base_url, "/chat/completions");
  u.request.headers = {{"Authorization", "Bearer " + target.api_key},
                       {"Content-Type", "application/json"}};
  if (d == gateway_dialect::openrouter)
    for (const auto& h : target.extra_headers)
      u.request.headers.push_back(h);
  u.request.body = std::move(body);
  u.request.timeout = target.timeout;
  return u;
}

/// The client's body asking for `model`, without the client's stream fields (a streamed
/// request adds its own, gateway_upstream_stream_request).
std::string openai_body(json::object body, const std::string& model) {
  body["model"] = model;
  body.erase("stream");
  body.erase("stream_options");
  return json::serialize(body);
}

// OpenAI's answer is already the client's shape: it goes back as it came, once it is known to
// be one (choices present) and its usage is read.
gateway_result openai_read(gateway_dialect d, unsigned status, std::string_view body,
                           const gateway_headers& headers,
                           std::chrono::system_clock::time_point now) {
  std::string_view name = d == gateway_dialect::openrouter ? "OpenRouter" : "OpenAI";
  // Read and dropped within this call, so its nodes go on the stack (a larger answer spills
  // over to the heap): no allocation per node.
  unsigned char scratch[8192];
  json::monotonic_resource arena{scratch, sizeof scratch};
  auto doc = gw::parse_object(body, &arena);
  if (!wire::is_success(status)) {
    const auto* err = wire::object_field(&doc, "error");
    auto type = gw::text_of(err, "code") + " " + gw::text_of(err, "type");
    return gw::upstream_error(name, status, type, gw::text_of(err, "message"), headers, now);
  }
  const auto* choices = wire::array_field(&doc, "choices");
  if (choices == nullptr || choices->empty())
    return gw::unreadable(name, "no choices in a 2xx answer");
  const auto* usage = wire::object_field(&doc, "usage");
  gateway_result r;
  r.body = std::string{body};
  r.prompt_tokens = wire::count_field(usage, "prompt_tokens");
  r.completion_tokens = wire::count_field(usage, "completion_tokens");
  return r;
}

} // namespace

gateway_upstream gateway_upstream_request(gateway_dialect d, const gateway_target& target,
                                          std::string_view body, const std::string& model,
                                          bool as_is) {
  if (as_is && takes_openai_format(d)) // the bytes the client sent: nothing in them needs changing
    return openai_request(d, target, std::string{body});
  auto request = gw::parse_object(body);
  switch (d) {
  case gateway_dialect::anthropic:
    return gw::anthropic_request(target, request, model);
  case gateway_dialect::gemini:
    return gw::gemini_request(target, request, model);
  default:
    return openai_request(d, target, openai_body(std::move(request), model));
  }
}

gateway_result gateway_read_upstream(gateway_dialect d, unsigned status, std::string_view body,
                                     const gateway_headers& headers, std::string_view request,
                                     const std::string& model,
                                     std::chrono::system_clock::time_point now) {
  auto result =
      d == gateway_dialect::anthropic
          ? gw::anthropic_read(status, body, headers, gw::parse_object(request), model, now)
      : d == gateway_dialect::gemini ? gw::gemini_read(status, body, headers, model, now)
                                     : openai_read(d, status, body, headers, now);
  result.limits = gateway_rate_limits(d, headers, now);
  return result;
}

rate_limit_hint gateway_rate_limits(gateway_dialect d, const gateway_headers& headers,
                                    std::chrono::system_clock::time_point now) {
  switch (d) {
  case gateway_dialect::anthropic:
    return wire::anthropic_rate_limits(headers, now);
  case gateway_dialect::gemini:
    return {};
  default:
    return wire::openai_rate_limits(headers);
  }
}

gateway_result gateway_transport_failure(std::string_view provider, transport_error error,
                                         std::string_view detail) {
  bool timeout = error == transport_error::timeout;
  gateway_result r;
  r.status = timeout ? 504 : 502;
  r.retryable = error == transport_error::timeout || error == transport_error::connect
                || error == transport_error::reset;
  r.provider_failure = r.retryable;
  r.body = render_gateway_error(
      {r.status,
       std::string{provider} + (timeout ? " did not answer in time" : " could not be reached")
           + " (" + std::string{to_string(error)}
           + (detail.empty() ? "" : ": " + wire::quoted(detail)) + ")",
       timeout ? "timeout_error" : "upstream_error", "",
       timeout ? "upstream_timeout" : "upstream_unreachable"});
  return r;
}

// -- the built-in mock --

namespace {

json::value example_of(const json::value& schema, int depth) {
  const auto* o = schema.if_object();
  if (o == nullptr || depth > 16)
    return nullptr;
  if (const auto* c = o->if_contains("const"))
    return *c;
  if (const auto* e = o->if_contains("enum"); e && e->is_array() && !e->get_array().empty())
    return e->get_array().front();
  for (const char* key : {"anyOf", "oneOf", "allOf"})
    if (const auto* alts = o->if_contains(key);
        alts && alts->is_array() && !alts->get_array().empty())
      return example_of(alts->get_array().front(), depth + 1);
  std::string type;
  if (const auto* t = o->if_contains("type")) {
    if (t->is_string())
      type = std::string{t->get_string()};
    else if (t->is_array())
      for (const auto& x : t->get_array())
        if (x.is_string() && x.get_string() != "null") {
          type = std::string{x.get_string()};
          break;
        }
  }
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (type.empty() && o->contains("properties"))
    type = "object";
  if (type == "object") {
    json::object out;
    if (const auto* props = o->if_contains("properties"); props && props->is_object())
      for (const auto& [name, sub] : props->get_object())
        out[name] = example_of(sub, depth + 1);
    return out;
  }
  if (type == "array") {
    const auto* items = o->if_contains("items");
    return json::array{items ? example_of(*items, depth + 1) : json::value("mock")};
  }
  if (type == "string")
    return "mock";
  if (type == "integer" || type == "number")
    return 1;
  if (type == "boolean")
    return true;
  return nullptr;
}

/// The last user turn's text.
std::string last_user_text(const json::object& body) {
  const auto* messages = wire::array_field(&body, "messages");
  if (messages == nullptr)
    return "";
  for (auto m = messages->rbegin(); m != messages->rend(); ++m)
    if (gw::text_of(m->if_object(), "role") == "user")
      return gw::content_text(m->get_object().if_contains("content"));
  return "";
}

/// The tool the mock calls, or nullptr: tools offered, tool_choice not "none", and the last
/// turn not a tool result (a model sees the result, then answers).
const json::object* tool_to_call(const json::object& body) {
  const auto* tools = wire::array_field(&body, "tools");
  const auto* messages = wire::array_field(&body, "messages");
  if (tools == nullptr || tools->empty() || messages == nullptr || messages->empty())
    return nullptr;
  if (gw::text_of(messages->back().if_object(), "role") == "tool")
    return nullptr;
  std::string wanted;
  if (const auto* choice = body.if_contains("tool_choice")) {
    if (choice->is_string() && choice->get_string() == "none")
      return nullptr;
    if (const auto* co = choice->if_object())
      wanted = gw::text_of(wire::object_field(co, "function"), "name");
  }
  for (const auto& t : *tools) {
    const auto* fn = wire::object_field(t.if_object(), "function");
    if (fn && (wanted.empty() || gw::text_of(fn, "name") == wanted))
      return fn;
  }
  return nullptr;
}

} // namespace

std::string example_json_for_schema(std::string_view schema) {
  boost::system::error_code ec;
  auto doc = json::parse(schema, ec);
  return json::serialize(ec ? json::value{} : example_of(doc, 0));
}

gateway_result gateway_mock_answer(std::string_view body, const std::string& model) {
  auto request = gw::parse_object(body);
  gw::chat_answer a;
  a.id = "chatcmpl-mock" + std::to_string(std::hash<std::string_view>{}(body) % 1000000000000ULL);
  a.created = 1700000000;
  auto asked = last_user_text(request);
  if (const auto* fn = tool_to_call(request)) {
    const auto* params = fn->if_contains("parameters");
    auto args = params ? json::serialize(example_of(*params, 0)) : std::string{"{}"};
    a.tool_calls.push_back(json::object{
        {"id", "call_mock" + std::to_string(a.tool_calls.size() + 1)},
        {"type", "function"},
        {"function", json::object{{"name", gw::text_of(fn, "name")}, {"arguments", args}}}});
    a.finish_reason = "tool_calls";
  } else if (const auto* schema = gw::response_schema(request)) {
    a.text = json::serialize(example_of(*schema, 0));
  } else {
    a.text = "Mock answer to: " + wire::cut_utf8(asked, 200);
    const auto* rf = wire::object_field(&request, "response_format");
    if (gw::text_of(rf, "type") == "json_object")
      a.text = json::serialize(json::object{{"answer", a.text}});
  }
  a.prompt_tokens = body.size() / 4 + 1;
  a.completion_tokens = (a.text.size() + json::serialize(a.tool_calls).size()) / 4 + 1;
  return gw::completion(a, model);
}

} // namespace lps
