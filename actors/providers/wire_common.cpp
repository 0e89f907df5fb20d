#include "actors/providers/wire_common.hpp"

#include "actors/providers/header_text.hpp"
#include "actors/providers/rate_limiter.hpp"
#include "actors/providers/retry_policy.hpp"
#include "runtime/url.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

namespace lps::wire {

const char* const default_system_prompt =
    "You are an LLM comparison engine. Follow the caller-supplied instructions and answer "
    "only with a JSON object that satisfies the required schema: winner (\"Essay A\" or "
    "\"Essay B\"), justification (one concise paragraph) and confidence (1 to 5).";

const char* const multi_prompt_instructions =
    "You will receive several independent comparisons, each inside <comparison id=\"...\"> "
    "tags. Judge each one on its own, as if it were the only one, and answer with exactly one "
    "entry per comparison id in `results`, each with its comparison_id, winner, justification "
    "and confidence.";

std::string system_prompt_of(const comparison_request& request) {
  const auto& ov = request.overrides;
  // An explicitly empty override still replaces the default: the caller asked for it.
  return ov.has_system_prompt ? ov.system_prompt : std::string{default_system_prompt};
}

std::string pack_multi_prompt(const std::vector<multi_item>& items) {
  std::string text;
  for (const auto& item : items) {
    if (!text.empty())
      text += "\n\n";
    text += "<comparison id=\"" + item.id + "\">\n";
    text += item.request->user_prompt;
    text += "\n</comparison>";
  }
  return text;
}

namespace {

json::object verdict_properties() {
  json::object props;
  props["winner"] = json::object{{"type", "string"}, {"enum", json::array{"Essay A", "Essay B"}}};
  props["justification"] = json::object{{"type", "string"}};
  props["confidence"] = json::object{{"type", "number"}};
  return props;
}

json::object closed_object(json::object props, json::array required) {
  json::object schema;
  schema["type"] = "object";
  schema["properties"] = std::move(props);
  schema["required"] = std::move(required);
  schema["additionalProperties"] = false;
  return schema;
}

} // namespace

json::object verdict_schema() {
  return closed_object(verdict_properties(), json::array{"winner", "justification", "confidence"});
}

json::object multi_verdict_schema() {
  auto props = verdict_properties();
  props["comparison_id"] = json::object{{"type", "string"}};
  auto entry = closed_object(std::move(props),
                             json::array{"comparison_id", "winner", "justification", "confidence"});
  json::object results{{"type", "array"}, {"items", std::move(entry)}};
  return closed_object(json::object{{"results", std::move(results)}}, json::array{"results"});
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

bool key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
         || c == '_';
}

std::string mask_keys(std::string text) {
  constexpr std::string_view prefix = "sk-";
  constexpr size_t min_key_chars = 16;
  size_t pos = 0;
  while ((pos = text.find(prefix, pos)) != std::string::npos) {
    auto end = pos + prefix.size();
    while (end < text.size() && key_char(text[end]))
      ++end;
    bool word_start = pos == 0 || !key_char(text[pos - 1]);
    if (word_start && end - pos >= min_key_chars) {
      text.replace(pos, end - pos, "sk-***");
      end = pos + 6;
    }
    pos = end;
  }
  return text;
}

std::string quoted(std::string_view text) {
  return cut_utf8(mask_keys(std::string{text}), max_quoted_chars);
}

wire_response failure(ec code, std::string message, unsigned status, bool retryable) {
  wire_response r;
  r.error_code = to_string(code);
  r.error_message = std::move(message);
  r.http_status = static_cast<int32_t>(status);
  r.retryable = retryable;
  return r;
}

std::string check_verdict(const json::object& answer, wire_verdict& out) {
  auto winner = string_field(answer, "winner");
  if (winner != "Essay A" && winner != "Essay B")
    return "winner is not \"Essay A\" or \"Essay B\"";
  auto* just = answer.if_contains("justification");
  if (just == nullptr || !just->is_string())
    return "justification missing";
  auto* conf = answer.if_contains("confidence");
  double confidence = conf && conf->is_number() ? conf->to_number<double>() : NAN;
  if (!(confidence >= 1.0 && confidence <= 5.0))
    return "confidence is not a number in 1..5";
  out.winner = std::move(winner);
  out.justification = cut_utf8(just->get_string(), max_justification_chars);
  out.confidence = confidence;
  return {};
}

std::map<std::string, wire_verdict> read_multi_answers(const json::value& answer) {
  json::value parsed;
  const json::value* doc = &answer;
  if (answer.is_string()) {
    json::error_code ec;
    parsed = json::parse(answer.get_string(), ec);
    if (ec)
      return {};
    doc = &parsed;
  }
  std::map<std::string, wire_verdict> result;
  std::set<std::string> repeated;
  auto* results = doc->is_object() ? array_field(&doc->get_object(), "results") : nullptr;
  if (results == nullptr)
    return result;
  for (const auto& entry : *results) {
    if (!entry.is_object())
      continue;
    auto id = string_field(entry.get_object(), "comparison_id");
    wire_verdict v;
    if (id.empty() || !check_verdict(entry.get_object(), v).empty())
      continue;
    if (!result.emplace(id, std::move(v)).second)
      repeated.insert(id);
  }
  for (const auto& id : repeated)
    result.erase(id);
  return result;
}

std::string base_of(const wire_target& target) {
  return join_url(target.base_url, "");
}

std::string path_segment(std::string_view id) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : id) {
    auto u = static_cast<unsigned char>(c);
    bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                      || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 0xF];
    }
  }
  return out;
}

const std::string* find_header(const wire_headers& headers, std::string_view name) {
  for (const auto& [key, value] : headers)
    if (key == name)
      return &value;
  return nullptr;
}

std::chrono::milliseconds retry_after_of(const wire_headers& headers,
                                         std::chrono::system_clock::time_point now) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  if (auto* value = find_header(headers, "retry-after")) {
    if (auto d = parse_retry_after(*value, now))
      return duration_cast<milliseconds>(*d);
  }
  // OpenAI also sends a millisecond variant; only used when the standard header is absent.
  if (auto ms = integer_header(headers, "retry-after-ms"); ms >= 0)
    return std::min(milliseconds{std::min<int64_t>(ms, int64_t{1} << 40)},
                    duration_cast<milliseconds>(max_retry_after));
  return milliseconds{0};
}

int64_t integer_header(const wire_headers& headers, std::string_view name) {
  auto* value = find_header(headers, name);
  if (value == nullptr)
    return -1;
  auto text = header_text::trim(*value);
  int64_t n = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || end != text.data() + text.size() || n < 0)
    return -1;
  return n;
}

rate_limit_hint openai_rate_limits(const wire_headers& headers) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  rate_limit_hint hint;
  hint.remaining_requests = integer_header(headers, "x-ratelimit-remaining-requests");
  hint.remaining_tokens = integer_header(headers, "x-ratelimit-remaining-tokens");
  if (auto* v = find_header(headers, "x-ratelimit-reset-requests"))
    if (auto d = parse_openai_reset(*v))
      hint.requests_reset = duration_cast<milliseconds>(*d);
  if (auto* v = find_header(headers, "x-ratelimit-reset-tokens"))
    if (auto d = parse_openai_reset(*v))
      hint.tokens_reset = duration_cast<milliseconds>(*d);
  return hint;
}

namespace {

/// Time left until a `-reset` header's RFC 3339 instant, -1 ms when absent or malformed.
/// Rounded up: coming back a fraction late is harmless, coming back early hits the limit.
std::chrono::milliseconds reset_of(const wire_headers& headers, const std::string& name,
                                   std::chrono::system_clock::time_point now) {
  auto* value = find_header(headers, name);
  auto left = value ? parse_rfc3339_reset(*value, now) : std::nullopt;
  return left ? std::chrono::ceil<std::chrono::milliseconds>(*left) : std::chrono::milliseconds{-1};
}

} // namespace

rate_limit_hint anthropic_rate_limits(const wire_headers& headers,
                                      std::chrono::system_clock::time_point now) {
  rate_limit_hint result;
  result.remaining_requests = integer_header(headers, "anthropic-ratelimit-requests-remaining");
  result.requests_reset = reset_of(headers, "anthropic-ratelimit-requests-reset", now);
  // The tokens-* figures are the most restrictive token limit in force; the input-token
  // ones are the next best thing when they are missing.
  std::string family = find_header(headers, "anthropic-ratelimit-tokens-remaining")
                           ? "anthropic-ratelimit-tokens"
                           : "anthropic-ratelimit-input-tokens";
  result.remaining_tokens = integer_header(headers, family + "-remaining");
  result.tokens_reset = reset_of(headers, family + "-reset", now);
  return result;
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

const json::array* array_field(const json::object* obj, std::string_view key) {
  if (obj == nullptr)
    return nullptr;
  auto* v = obj->if_contains(key);
  return v && v->is_array() ? &v->get_array() : nullptr;
}

} // namespace lps::wire
