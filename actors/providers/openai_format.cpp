#include "actors/providers/openai_format.hpp"

#include "actors/providers/header_text.hpp"
#include "actors/providers/retry_policy.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace lps {

namespace json = boost::json;

const char* const openai_default_system_prompt =
    "You are an LLM comparison engine. Follow the caller-supplied instructions and answer "
    "only with a JSON object that satisfies the required schema: winner (\"Essay A\" or "
    "\"Essay B\"), justification (one concise paragraph) and confidence (1 to 5).";

namespace {

// -- request --

json::object comparison_schema() {
  json::object props;
  props["winner"] = json::object{{"type", "string"}, {"enum", json::array{"Essay A", "Essay B"}}};
  props["justification"] = json::object{{"type", "string"}};
  props["confidence"] = json::object{{"type", "number"}};
  json::object schema;
  schema["type"] = "object";
  schema["properties"] = std::move(props);
  schema["required"] = json::array{"winner", "justification", "confidence"};
  schema["additionalProperties"] = false;
  return schema;
}

json::object response_format() {
  json::object js{{"name", "comparison_result"}, {"strict", true}};
  js["schema"] = comparison_schema();
  return json::object{{"type", "json_schema"}, {"json_schema", std::move(js)}};
}

json::array messages_of(const comparison_request& req) {
  const auto& ov = req.overrides;
  // An explicitly empty override still replaces the default: the caller asked for it.
  std::string system = ov.has_system_prompt ? ov.system_prompt : openai_default_system_prompt;
  json::array messages;
  if (!system.empty())
    messages.push_back(json::object{{"role", "system"}, {"content", system}});
  messages.push_back(json::object{{"role", "user"}, {"content", req.user_prompt}});
  return messages;
}

// -- response --

using headers_t = openai_headers;

const std::string* header(const headers_t& headers, std::string_view name) {
  for (const auto& [key, value] : headers)
    if (key == name)
      return &value;
  return nullptr;
}

std::chrono::milliseconds retry_after_of(const headers_t& headers,
                                         std::chrono::system_clock::time_point now) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  if (auto* value = header(headers, "retry-after")) {
    if (auto d = parse_retry_after(*value, now))
      return duration_cast<milliseconds>(*d);
  }
  // OpenAI also sends a millisecond variant; only used when the standard header is absent.
  if (auto* value = header(headers, "retry-after-ms")) {
    uint64_t ms = 0;
    auto text = header_text::trim(*value);
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (ec == std::errc{} && end == text.data() + text.size())
      return std::min(milliseconds{static_cast<int64_t>(std::min<uint64_t>(ms, 1ull << 40))},
                      duration_cast<milliseconds>(max_retry_after));
  }
  return milliseconds{0};
}

openai_parsed_response failure(std::string code, std::string message, unsigned status,
                               bool retryable) {
  openai_parsed_response r;
  r.error_code = std::move(code);
  r.error_message = std::move(message);
  r.http_status = static_cast<int32_t>(status);
  r.retryable = retryable;
  return r;
}

std::string string_field(const json::object& obj, std::string_view key) {
  if (auto* v = obj.if_contains(key); v && v->is_string())
    return std::string{v->get_string()};
  return {};
}

uint64_t count_field(const json::object* obj, std::string_view key) {
  if (obj == nullptr)
    return 0;
  auto* v = obj->if_contains(key);
  if (v == nullptr)
    return 0;
  if (v->is_uint64())
    return v->get_uint64();
  if (v->is_int64() && v->get_int64() > 0)
    return static_cast<uint64_t>(v->get_int64());
  return 0;
}

const json::object* object_field(const json::object* obj, std::string_view key) {
  if (obj == nullptr)
    return nullptr;
  auto* v = obj->if_contains(key);
  return v && v->is_object() ? &v->get_object() : nullptr;
}

openai_parsed_response http_error(unsigned status, std::string_view body) {
  std::string type, code, message;
  json::error_code ec;
  auto doc = json::parse(body, ec);
  if (!ec && doc.is_object())
    if (auto* err = object_field(&doc.get_object(), "error")) {
      type = string_field(*err, "type");
      code = string_field(*err, "code"); // OpenRouter sends a number here: ignored
      message = string_field(*err, "message");
    }
  auto verdict = classify(static_cast<int>(status), type, code);
  std::string text = "OpenAI HTTP " + std::to_string(status) + ": " + std::string{verdict.reason};
  if (!message.empty())
    text += ": " + cut_utf8(message, 300);
  return failure(std::string{verdict.error_code}, std::move(text), status,
                 verdict.kind == failure_class::retryable);
}

/// The verdict JSON inside the message content, checked field by field.
openai_parsed_response read_verdict(unsigned status, std::string_view content) {
  json::error_code ec;
  auto doc = json::parse(content, ec);
  if (ec || !doc.is_object())
    return failure("PARSING_ERROR", "OpenAI content is not a JSON object", status, false);
  const auto& obj = doc.get_object();
  auto winner = string_field(obj, "winner");
  if (winner != "Essay A" && winner != "Essay B")
    return failure("INVALID_RESPONSE", "OpenAI winner is not \"Essay A\" or \"Essay B\"", status,
                   false);
  auto* just = obj.if_contains("justification");
  if (just == nullptr || !just->is_string())
    return failure("INVALID_RESPONSE", "OpenAI justification missing", status, false);
  auto* conf = obj.if_contains("confidence");
  double confidence = conf && conf->is_number() ? conf->to_number<double>() : NAN;
  if (!(confidence >= 1.0 && confidence <= 5.0))
    return failure("INVALID_RESPONSE", "OpenAI confidence is not a number in 1..5", status, false);
  openai_parsed_response r;
  r.success = true;
  r.http_status = static_cast<int32_t>(status);
  r.winner = std::move(winner);
  r.justification = cut_utf8(just->get_string(), openai_max_justification_chars);
  r.confidence = confidence;
  return r;
}

openai_parsed_response http_success(unsigned status, std::string_view body) {
  json::error_code ec;
  auto doc = json::parse(body, ec);
  if (ec || !doc.is_object())
    return failure("PARSING_ERROR", "OpenAI response body is not JSON", status, false);
  const auto& root = doc.get_object();
  auto* choices = root.if_contains("choices");
  if (!choices || !choices->is_array() || choices->get_array().empty()
      || !choices->get_array()[0].is_object())
    return failure("PARSING_ERROR", "OpenAI response has no choices", status, false);
  const auto& choice = choices->get_array()[0].get_object();
  auto finish = string_field(choice, "finish_reason");
  if (finish == "length")
    return failure("PARSING_ERROR", "OpenAI response truncated (finish_reason length)", status,
                   false);
  auto* message = object_field(&choice, "message");
  std::string refusal = message ? string_field(*message, "refusal") : std::string{};
  if (finish == "content_filter" || !refusal.empty()) {
    auto verdict = classify(static_cast<int>(status), "content_filter", "");
    return failure(std::string{verdict.error_code}, "OpenAI refused the content", status,
                   verdict.kind == failure_class::retryable);
  }
  auto* content = message ? message->if_contains("content") : nullptr;
  if (!content || !content->is_string())
    return failure("PARSING_ERROR", "OpenAI response has no message content", status, false);
  auto result = read_verdict(status, content->get_string());
  auto* usage = object_field(&root, "usage");
  result.prompt_tokens = count_field(usage, "prompt_tokens");
  result.completion_tokens = count_field(usage, "completion_tokens");
  result.total_tokens = count_field(usage, "total_tokens");
  if (result.total_tokens == 0)
    result.total_tokens = result.prompt_tokens + result.completion_tokens;
  result.cached_tokens = count_field(object_field(usage, "prompt_tokens_details"), "cached_tokens");
  return result;
}

} // namespace

openai_model_flags openai_model_flags_for(std::string_view model) {
  openai_model_flags flags;
  if (model.starts_with("gpt-5")) {
    flags.uses_max_completion_tokens = true;
    flags.supports_temperature = false;
    flags.supports_reasoning_controls = true;
  }
  return flags;
}

std::string build_openai_request(const comparison_request& req, const std::string& model,
                                 const openai_model_flags& flags) {
  const auto& ov = req.overrides;
  json::object body;
  body["model"] = model;
  body["messages"] = messages_of(req);
  body["response_format"] = response_format();
  auto max_tokens = ov.max_tokens > 0 ? ov.max_tokens : openai_default_max_tokens;
  body[flags.uses_max_completion_tokens ? "max_completion_tokens" : "max_tokens"] = max_tokens;
  if (flags.supports_temperature)
    body["temperature"] = ov.has_temperature ? ov.temperature : openai_default_temperature;
  if (flags.supports_reasoning_controls) {
    if (!ov.reasoning_effort.empty())
      body["reasoning_effort"] = ov.reasoning_effort;
    if (!ov.output_verbosity.empty())
      body["verbosity"] = ov.output_verbosity;
  }
  return json::serialize(body);
}

openai_parsed_response parse_openai_response(unsigned status, std::string_view body,
                                             const openai_headers& headers,
                                             std::chrono::system_clock::time_point now) {
  try {
    auto result =
        status >= 200 && status <= 299 ? http_success(status, body) : http_error(status, body);
    if (!result.success)
      result.retry_after = retry_after_of(headers, now);
    return result;
  } catch (const std::exception& ex) {
    // Only allocation failures can get here; report them rather than take down the actor.
    return failure("PARSING_ERROR", std::string{"OpenAI response unreadable: "} + ex.what(), status,
                   false);
  }
}

std::string cut_utf8(std::string_view text, size_t max_chars) {
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    // Continuation bytes (10xxxxxx) belong to the character already counted.
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80)
      continue;
    if (chars == max_chars)
      return std::string{text.substr(0, i)};
    ++chars;
  }
  return std::string{text};
}

} // namespace lps
