#include "actors/providers/gemini_format.hpp"
#include "runtime/url.hpp"

#include "actors/providers/retry_policy.hpp"
#include "actors/providers/wire_common.hpp"

#include <algorithm>
#include <array>
#include <initializer_list>
#include <optional>

namespace lps {

namespace {

namespace json = boost::json;
using wire::array_field;
using wire::count_field;
using wire::object_field;
using wire::string_field;

// -- request --

/// The verdict fields in Gemini's Schema dialect (an OpenAPI 3.0 subset with upper-case type
/// names; JSON Schema's lower-case names and additionalProperties are not part of it).
json::object verdict_properties() {
  json::object props;
  props["winner"] = json::object{
      {"type", "STRING"}, {"format", "enum"}, {"enum", json::array{"Essay A", "Essay B"}}};
  props["justification"] = json::object{{"type", "STRING"}};
  props["confidence"] = json::object{{"type", "NUMBER"}, {"minimum", 1}, {"maximum", 5}};
  return props;
}

/// An OBJECT whose listed properties are all required. propertyOrdering is given too because
/// Gemini otherwise generates the keys alphabetically (confidence first); the model commits to
/// them in the order it writes them, so they follow the order of the other providers' schemas.
json::object object_schema(json::object props, std::initializer_list<std::string_view> names) {
  json::array ordered;
  for (auto name : names)
    ordered.emplace_back(name);
  json::object schema{{"type", "OBJECT"}, {"properties", std::move(props)}};
  schema["required"] = ordered;
  schema["propertyOrdering"] = std::move(ordered);
  return schema;
}

json::object single_schema() {
  return object_schema(verdict_properties(), {"winner", "justification", "confidence"});
}

json::object multi_schema() {
  auto props = verdict_properties();
  props["comparison_id"] = json::object{{"type", "STRING"}};
  auto entry =
      object_schema(std::move(props), {"comparison_id", "winner", "justification", "confidence"});
  json::object results{{"type", "ARRAY"}, {"items", std::move(entry)}};
  return object_schema(json::object{{"results", std::move(results)}}, {"results"});
}

/// What one generateContent body carries; single and multi-prompt calls differ only here.
struct call_settings {
  std::string system;
  std::string user_text;
  json::object schema;
  double temperature = wire::default_temperature;
  uint32_t max_tokens = wire::default_max_tokens;
};

json::array text_parts(std::string text) {
  return json::array{json::object{{"text", std::move(text)}}};
}

std::string body_of(call_settings s) {
  json::object body;
  // An empty system prompt is the caller's explicit choice: send no instruction at all.
  if (!s.system.empty())
    body["systemInstruction"] = json::object{{"parts", text_parts(std::move(s.system))}};
  body["contents"] =
      json::array{json::object{{"role", "user"}, {"parts", text_parts(std::move(s.user_text))}}};
  json::object config;
  config["responseMimeType"] = "application/json";
  config["responseSchema"] = std::move(s.schema);
  config["temperature"] = s.temperature;
  config["maxOutputTokens"] = s.max_tokens;
  body["generationConfig"] = std::move(config);
  return json::serialize(body);
}

double temperature_of(const comparison_request& request) {
  const auto& ov = request.overrides;
  return ov.has_temperature ? ov.temperature : wire::default_temperature;
}

uint32_t max_tokens_of(const comparison_request& request) {
  const auto& ov = request.overrides;
  return ov.max_tokens > 0 ? ov.max_tokens : wire::default_max_tokens;
}

/// The model as one URL path segment. A resource name ("models/gemini-2.5-flash") loses its
/// prefix, which the path already has; anything outside RFC 3986's unreserved characters is
/// percent-encoded so a stray '/', ':' or '?' cannot change the endpoint.
std::string model_segment(std::string_view model) {
  constexpr std::string_view prefix = "models/";
  if (model.starts_with(prefix))
    model.remove_prefix(prefix.size());
  return wire::path_segment(model);
}

http_client_request request_of(const wire_target& target, const std::string& model,
                               std::string body) {
  http_client_request req;
  req.method = "POST";
  req.url =
      join_url(target.base_url, "/v1beta/models/" + model_segment(model) + ":generateContent");
  // The header, not the ?key= parameter: URLs are logged, headers are not.
  req.headers.emplace_back("x-goog-api-key", target.api_key);
  req.headers.emplace_back("content-type", "application/json");
  for (const auto& header : target.extra_headers)
    req.headers.push_back(header);
  req.body = std::move(body);
  req.timeout = target.timeout;
  return req;
}

// -- errors --

/// Google's error envelope, as far as classification needs it.
struct google_error {
  /// google.rpc.Code name, e.g. RESOURCE_EXHAUSTED.
  std::string status;
  std::string message;
  json::array details;
};

google_error google_error_of(std::string_view body) {
  google_error result;
  json::error_code ec;
  auto doc = json::parse(body, ec);
  if (ec)
    return result;
  const json::value* root = &doc;
  // Some Google front ends wrap the envelope in a one-element array.
  if (root->is_array() && !root->get_array().empty())
    root = &root->get_array()[0];
  auto* err = root->is_object() ? object_field(&root->get_object(), "error") : nullptr;
  if (err == nullptr)
    return result;
  result.status = string_field(*err, "status");
  result.message = string_field(*err, "message");
  if (auto* details = array_field(err, "details"))
    result.details = *details;
  return result;
}

/// The first google.rpc detail of type `name` ("QuotaFailure"), or nullptr.
const json::object* find_detail(const json::array& details, std::string_view name) {
  for (const auto& detail : details) {
    if (!detail.is_object())
      continue;
    auto type = string_field(detail.get_object(), "@type");
    if (type.ends_with("google.rpc." + std::string{name}))
      return &detail.get_object();
  }
  return nullptr;
}

bool contains_lower(std::string text, std::string_view needle) {
  std::transform(text.begin(), text.end(), text.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return text.find(needle) != std::string::npos;
}

/// Whether every violation of a QuotaFailure names a per-minute (or per-second) quota. Google
/// reports its ordinary rate limits this way, with the same "exceeded your current quota"
/// text as a spent daily quota; only the quotaId tells them apart.
bool only_short_windows(const json::object& quota_failure) {
  auto* violations = array_field(&quota_failure, "violations");
  if (violations == nullptr || violations->empty())
    return false;
  return std::all_of(violations->begin(), violations->end(), [](const json::value& v) {
    auto id = v.is_object() ? string_field(v.get_object(), "quotaId") : std::string{};
    return contains_lower(id, "perminute") || contains_lower(id, "persecond");
  });
}

/// True when the quota is used up for longer than a retry can wait (a day's requests or
/// tokens, a billing limit), as opposed to a rate limit. "Resource has been exhausted (e.g.
/// check quota)" is Google's plain rate-limit text and does not count.
bool quota_exhausted(const google_error& e) {
  if (auto* quota_failure = find_detail(e.details, "QuotaFailure"))
    return !only_short_windows(*quota_failure);
  return contains_lower(e.message, "exceeded your current quota")
         || contains_lower(e.message, "quota exceeded");
}

/// Gemini answers a wrong or expired key with 400 INVALID_ARGUMENT and an ErrorInfo reason
/// API_KEY_INVALID; classify that like the 401 it means.
bool key_rejected(const google_error& e) {
  auto* info = find_detail(e.details, "ErrorInfo");
  return info != nullptr && string_field(*info, "reason").starts_with("API_KEY_");
}

/// RetryInfo's retryDelay, a protobuf Duration in JSON ("30s", "1.5s"); 0 when absent.
std::chrono::milliseconds retry_delay_of(const json::array& details,
                                         std::chrono::system_clock::time_point now) {
  auto* info = find_detail(details, "RetryInfo");
  auto delay = info ? string_field(*info, "retryDelay") : std::string{};
  if (!delay.ends_with('s'))
    return std::chrono::milliseconds{0};
  delay.pop_back();
  auto parsed = parse_retry_after(delay, now);
  return parsed ? std::chrono::duration_cast<std::chrono::milliseconds>(*parsed)
                : std::chrono::milliseconds{0};
}

wire_response http_error(unsigned status, std::string_view body, const wire_headers& headers,
                         std::chrono::system_clock::time_point now) {
  auto err = google_error_of(body);
  // error.status is Gemini's error type; the code only carries what classify() must see and
  // the status cannot say (a 429 can be an empty quota or a rate limit).
  auto code = quota_exhausted(err) ? "quota_exhausted" : "";
  auto status_for_class = key_rejected(err) ? 401 : static_cast<int>(status);
  auto verdict = classify(status_for_class, err.status, code);
  auto text = "Gemini HTTP " + std::to_string(status) + ": " + std::string{verdict.reason};
  if (!err.message.empty())
    text += ": " + wire::cut_utf8(err.message, 300);
  auto result = wire::failure(verdict.error_code, std::move(text), status,
                              verdict.kind == failure_class::retryable);
  result.retry_after = wire::retry_after_of(headers, now);
  if (result.retry_after.count() == 0)
    result.retry_after = retry_delay_of(err.details, now);
  return result;
}

// -- answers --

/// finishReason / blockReason values meaning the provider withheld the answer on policy
/// grounds: retrying the same essays will not change that.
bool is_policy_stop(std::string_view reason) {
  constexpr std::array<std::string_view, 6> policy{
      "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"};
  return std::find(policy.begin(), policy.end(), reason) != policy.end();
}

wire_response refused(unsigned status, std::string what) {
  // The same path as OpenAI's content_filter, so every provider's refusal is classified alike.
  auto verdict = classify(static_cast<int>(status), "content_filter", "");
  return wire::failure(verdict.error_code, "Gemini " + std::move(what), status,
                       verdict.kind == failure_class::retryable);
}

/// The text of a candidate's parts, skipping thought summaries (not part of the answer).
std::string parts_text(const json::object* content) {
  std::string text;
  if (auto* parts = array_field(content, "parts"))
    for (const auto& part : *parts) {
      if (!part.is_object())
        continue;
      auto* thought = part.get_object().if_contains("thought");
      if (thought && thought->is_bool() && thought->get_bool())
        continue;
      text += string_field(part.get_object(), "text");
    }
  return text;
}

token_usage usage_of(const json::object& root) {
  auto* meta = object_field(&root, "usageMetadata");
  token_usage usage;
  usage.prompt_tokens = count_field(meta, "promptTokenCount");
  // Thinking tokens are billed as output but reported apart from the candidates.
  usage.completion_tokens =
      count_field(meta, "candidatesTokenCount") + count_field(meta, "thoughtsTokenCount");
  usage.total_tokens = count_field(meta, "totalTokenCount");
  if (usage.total_tokens == 0)
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  usage.cache_read_input_tokens = count_field(meta, "cachedContentTokenCount");
  return usage;
}

/// " (finishReason X)" for an unusual finish, so a broken answer says why it may be broken.
std::string finish_note(const std::string& finish) {
  return finish.empty() || finish == "STOP" ? std::string{} : " (finishReason " + finish + ")";
}

/// What the first candidate says.
struct candidate_answer {
  std::string text;
  std::string finish;
};

/// The first candidate's answer text into `out`; on a blocked, cut or empty answer a result
/// with an error code instead.
wire_response candidate_text(unsigned status, const json::object& root, candidate_answer& out) {
  auto* feedback = object_field(&root, "promptFeedback");
  if (auto block = feedback ? string_field(*feedback, "blockReason") : ""; !block.empty())
    return refused(status, "blocked the prompt (blockReason " + block + ")");
  auto* candidates = array_field(&root, "candidates");
  if (candidates == nullptr || candidates->empty() || !(*candidates)[0].is_object())
    return wire::failure(ec::parsing_error, "Gemini response has no candidates", status, false);
  const auto& candidate = (*candidates)[0].get_object();
  out.finish = string_field(candidate, "finishReason");
  if (out.finish == "MAX_TOKENS")
    return wire::failure(ec::parsing_error, "Gemini response truncated (finishReason MAX_TOKENS)",
                         status, false);
  if (is_policy_stop(out.finish))
    return refused(status, "refused the content (finishReason " + out.finish + ")");
  out.text = parts_text(object_field(&candidate, "content"));
  if (out.text.empty())
    return wire::failure(ec::parsing_error, "Gemini response has no text" + finish_note(out.finish),
                         status, false);
  wire_response result;
  result.http_status = static_cast<int32_t>(status);
  return result;
}

/// Reads a 2xx body down to the answer object. The result has usage and status, and an error
/// code when the answer is missing, cut, refused or not a JSON object; `answer` is set
/// otherwise (success is left for the caller, which still has to check the answer).
wire_response read_answer(unsigned status, std::string_view body, json::object& answer) {
  json::error_code ec;
  auto doc = json::parse(body, ec);
  if (ec || !doc.is_object())
    return wire::failure(ec::parsing_error, "Gemini response body is not JSON", status, false);
  const auto& root = doc.get_object();
  candidate_answer candidate;
  auto result = candidate_text(status, root, candidate);
  result.usage = usage_of(root);
  if (!result.error_code.empty())
    return result;
  auto parsed = json::parse(candidate.text, ec);
  if (ec || !parsed.is_object()) {
    result.error_code = to_string(lps::ec::parsing_error);
    result.error_message = "Gemini answer is not a JSON object" + finish_note(candidate.finish);
    return result;
  }
  answer = std::move(parsed.get_object());
  return result;
}

wire_response single_answer(unsigned status, std::string_view body) {
  json::object answer;
  auto result = read_answer(status, body, answer);
  if (!result.error_code.empty())
    return result;
  if (auto why = wire::check_verdict(answer, result.verdict); !why.empty()) {
    result.error_code = to_string(ec::invalid_response);
    result.error_message = "Gemini answer: " + why;
    return result;
  }
  result.success = true;
  return result;
}

wire_multi_response multi_answer(unsigned status, std::string_view body) {
  wire_multi_response result;
  json::object answer;
  result.call = read_answer(status, body, answer);
  if (!result.call.error_code.empty())
    return result;
  // Missing, repeated or invalid entries only drop their ids; the call itself went fine.
  result.call.success = true;
  result.answers = wire::read_multi_answers(answer);
  return result;
}

wire_response unreadable(unsigned status, const std::exception& ex) {
  // Only allocation failures can get here; report them rather than take down the actor.
  return wire::failure(ec::parsing_error, std::string{"Gemini response unreadable: "} + ex.what(),
                       status, false);
}

/// The first item's request; a default one for an empty list, so that misuse builds a
/// useless call instead of reading out of bounds.
const comparison_request& first_request(const std::vector<multi_item>& items) {
  static const comparison_request none;
  return items.empty() ? none : *items.front().request;
}

} // namespace

std::string build_gemini_body(const comparison_request& request, const std::string& /*model*/) {
  call_settings s;
  s.system = wire::system_prompt_of(request);
  s.user_text = request.user_prompt;
  s.schema = single_schema();
  s.temperature = temperature_of(request);
  s.max_tokens = max_tokens_of(request);
  return body_of(std::move(s));
}

std::string_view gemini_wire::display_name() const {
  return "Gemini";
}

std::string_view gemini_wire::endpoint() const {
  return ":generateContent";
}

http_client_request gemini_wire::single_call(const wire_target& target,
                                             const comparison_request& request,
                                             const std::string& model) const {
  return request_of(target, model, build_gemini_body(request, model));
}

wire_response gemini_wire::read_single(unsigned status, std::string_view body,
                                       const wire_headers& headers,
                                       std::chrono::system_clock::time_point now) const {
  try {
    return wire::is_success(status) ? single_answer(status, body)
                                    : http_error(status, body, headers, now);
  } catch (const std::exception& ex) {
    return unreadable(status, ex);
  }
}

http_client_request gemini_wire::multi_call(const wire_target& target,
                                            const std::vector<multi_item>& items,
                                            const std::string& model) const {
  const auto& first = first_request(items);
  call_settings s;
  s.system = wire::system_prompt_of(first);
  s.system += s.system.empty() ? "" : "\n\n";
  s.system += wire::multi_prompt_instructions;
  s.user_text = wire::pack_multi_prompt(items);
  s.schema = multi_schema();
  s.temperature = temperature_of(first);
  s.max_tokens = max_tokens_of(first);
  for (const auto& item : items)
    s.max_tokens = std::max(s.max_tokens, max_tokens_of(*item.request));
  return request_of(target, model, body_of(std::move(s)));
}

wire_multi_response gemini_wire::read_multi(unsigned status, std::string_view body,
                                            const wire_headers& headers,
                                            std::chrono::system_clock::time_point now) const {
  try {
    if (wire::is_success(status))
      return multi_answer(status, body);
    wire_multi_response result;
    result.call = http_error(status, body, headers, now);
    return result;
  } catch (const std::exception& ex) {
    wire_multi_response result;
    result.call = unreadable(status, ex);
    return result;
  }
}

} // namespace lps
