// The OpenAI chat/completions wire format against the implementation it replaced: request
// bodies byte for byte (pinned literals, and the former Boost.JSON DOM builder kept here as the
// reference over randomized inputs with a fixed seed), answers read result for result (the
// former two-parse reader kept here the same way), and a hidden micro-benchmark of both
// (`./openai_format_test "[.bench]"`).

#include "actors/providers/openai_format.hpp"
#include "actors/providers/rate_limiter.hpp"
#include "actors/providers/retry_policy.hpp"
#include "actors/providers/wire_common.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using namespace lps;
namespace json = boost::json;

namespace {

// -- the reference: the implementation before the direct writer and the single parse --

namespace reference {

json::object response_format(std::string_view name, json::object schema) {
  json::object js{{"name", name}, {"strict", true}};
  js["schema"] = std::move(schema);
  return json::object{{"type", "json_schema"}, {"json_schema", std::move(js)}};
}

json::array messages_of(const std::string& system, const std::string& user) {
  json::array messages;
  if (!system.empty())
    messages.push_back(json::object{{"role", "system"}, {"content", system}});
  messages.push_back(json::object{{"role", "user"}, {"content", user}});
  return messages;
}

void add_generation_settings(json::object& body, const llm_overrides& ov, uint32_t max_tokens,
                             const openai_model_flags& flags) {
  body[flags.uses_max_completion_tokens ? "max_completion_tokens" : "max_tokens"] = max_tokens;
  if (flags.supports_temperature)
    body["temperature"] = ov.has_temperature ? ov.temperature : wire::default_temperature;
  if (flags.supports_reasoning_controls) {
    if (!ov.reasoning_effort.empty())
      body["reasoning_effort"] = ov.reasoning_effort;
    if (!ov.output_verbosity.empty())
      body["verbosity"] = ov.output_verbosity;
  }
}

std::string single_body(const comparison_request& req, const std::string& model,
                        const openai_model_flags& flags) {
  const auto& ov = req.overrides;
  json::object body;
  body["model"] = model;
  body["messages"] = messages_of(wire::system_prompt_of(req), req.user_prompt);
  body["response_format"] = response_format(wire::single_answer_name, wire::verdict_schema());
  add_generation_settings(body, ov, ov.max_tokens > 0 ? ov.max_tokens : wire::default_max_tokens,
                          flags);
  return json::serialize(body);
}

std::string multi_body(const std::vector<multi_item>& items, const std::string& model,
                       const openai_model_flags& flags) {
  const auto& first = *items.front().request;
  uint32_t max_tokens = 0;
  for (const auto& item : items)
    max_tokens = std::max(max_tokens, item.request->overrides.max_tokens);
  json::object body;
  body["model"] = model;
  body["messages"] =
      messages_of(wire::system_prompt_of(first) + "\n\n" + wire::multi_prompt_instructions,
                  wire::pack_multi_prompt(items));
  body["response_format"] = response_format(wire::multi_answer_name, wire::multi_verdict_schema());
  add_generation_settings(body, first.overrides,
                          max_tokens > 0 ? max_tokens : wire::default_max_tokens, flags);
  return json::serialize(body);
}

rate_limit_hint limits_of(const wire_headers& headers) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  rate_limit_hint hint;
  hint.remaining_requests = wire::integer_header(headers, "x-ratelimit-remaining-requests");
  hint.remaining_tokens = wire::integer_header(headers, "x-ratelimit-remaining-tokens");
  if (auto* v = wire::find_header(headers, "x-ratelimit-reset-requests"))
    if (auto d = parse_openai_reset(*v))
      hint.requests_reset = duration_cast<milliseconds>(*d);
  if (auto* v = wire::find_header(headers, "x-ratelimit-reset-tokens"))
    if (auto d = parse_openai_reset(*v))
      hint.tokens_reset = duration_cast<milliseconds>(*d);
  return hint;
}

wire_response http_error(unsigned status, std::string_view body) {
  std::string type, code, message;
  json::error_code ec;
  auto doc = json::parse(body, ec);
  if (!ec && doc.is_object())
    if (auto* err = wire::object_field(&doc.get_object(), "error")) {
      type = wire::string_field(*err, "type");
      code = wire::string_field(*err, "code");
      message = wire::string_field(*err, "message");
    }
  auto verdict = classify(static_cast<int>(status), type, code);
  std::string text = "OpenAI HTTP " + std::to_string(status) + ": " + std::string{verdict.reason};
  if (!message.empty())
    text += ": " + wire::cut_utf8(message, 300);
  return wire::failure(verdict.error_code, std::move(text), status,
                       verdict.kind == failure_class::retryable);
}

struct envelope {
  wire_response result;
  std::string content;
};

token_usage usage_of(const json::object& root) {
  auto* usage = wire::object_field(&root, "usage");
  token_usage u;
  u.prompt_tokens = wire::count_field(usage, "prompt_tokens");
  u.completion_tokens = wire::count_field(usage, "completion_tokens");
  u.total_tokens = wire::count_field(usage, "total_tokens");
  if (u.total_tokens == 0)
    u.total_tokens = u.prompt_tokens + u.completion_tokens;
  u.cache_read_input_tokens =
      wire::count_field(wire::object_field(usage, "prompt_tokens_details"), "cached_tokens");
  return u;
}

envelope read_envelope(unsigned status, std::string_view body) {
  envelope e;
  json::error_code ec;
  auto doc = json::parse(body, ec);
  if (ec || !doc.is_object()) {
    e.result =
        wire::failure(lps::ec::parsing_error, "OpenAI response body is not JSON", status, false);
    return e;
  }
  const auto& root = doc.get_object();
  auto* choices = wire::array_field(&root, "choices");
  if (!choices || choices->empty() || !(*choices)[0].is_object()) {
    e.result =
        wire::failure(lps::ec::parsing_error, "OpenAI response has no choices", status, false);
    return e;
  }
  const auto& choice = (*choices)[0].get_object();
  auto finish = wire::string_field(choice, "finish_reason");
  auto* message = wire::object_field(&choice, "message");
  std::string refusal = message ? wire::string_field(*message, "refusal") : std::string{};
  auto* content = message ? message->if_contains("content") : nullptr;
  if (finish == "length") {
    e.result = wire::failure(lps::ec::parsing_error,
                             "OpenAI response truncated (finish_reason length)", status, false);
  } else if (finish == "content_filter" || !refusal.empty()) {
    auto verdict = classify(static_cast<int>(status), "content_filter", "");
    e.result = wire::failure(verdict.error_code, "OpenAI refused the content", status,
                             verdict.kind == failure_class::retryable);
  } else if (!content || !content->is_string()) {
    e.result = wire::failure(lps::ec::parsing_error, "OpenAI response has no message content",
                             status, false);
  } else {
    e.result.success = true;
    e.result.http_status = static_cast<int32_t>(status);
    e.content = std::string{content->get_string()};
  }
  e.result.usage = usage_of(root);
  return e;
}

wire_response read_verdict(envelope e, unsigned status) {
  json::error_code ec;
  auto doc = json::parse(e.content, ec);
  if (ec || !doc.is_object()) {
    auto usage = e.result.usage;
    e.result =
        wire::failure(lps::ec::parsing_error, "OpenAI content is not a JSON object", status, false);
    e.result.usage = usage;
    return std::move(e.result);
  }
  if (auto why = wire::check_verdict(doc.get_object(), e.result.verdict); !why.empty()) {
    auto usage = e.result.usage;
    e.result = wire::failure(lps::ec::invalid_response, "OpenAI " + why, status, false);
    e.result.usage = usage;
  }
  return std::move(e.result);
}

wire_response& call_of(wire_response& r) {
  return r;
}

wire_response& call_of(wire_multi_response& r) {
  return r.call;
}

template <class Result, class Read>
Result guarded(unsigned status, const wire_headers& headers,
               std::chrono::system_clock::time_point now, Read read) {
  Result out;
  try {
    out = read();
  } catch (const std::exception& ex) {
    out = Result{};
    call_of(out) =
        wire::failure(lps::ec::parsing_error,
                      std::string{"OpenAI response unreadable: "} + ex.what(), status, false);
  }
  auto& call = call_of(out);
  call.http_status = static_cast<int32_t>(status);
  call.limits = limits_of(headers);
  if (!call.success)
    call.retry_after = wire::retry_after_of(headers, now);
  return out;
}

wire_response parse_single(unsigned status, std::string_view body, const wire_headers& headers,
                           std::chrono::system_clock::time_point now) {
  return guarded<wire_response>(status, headers, now, [&] {
    if (!wire::is_success(status))
      return http_error(status, body);
    auto e = read_envelope(status, body);
    if (!e.result.success)
      return std::move(e.result);
    return read_verdict(std::move(e), status);
  });
}

wire_multi_response parse_multi(unsigned status, std::string_view body, const wire_headers& headers,
                                std::chrono::system_clock::time_point now) {
  return guarded<wire_multi_response>(status, headers, now, [&] {
    wire_multi_response out;
    if (!wire::is_success(status)) {
      out.call = http_error(status, body);
      return out;
    }
    auto e = read_envelope(status, body);
    out.call = std::move(e.result);
    if (out.call.success)
      out.answers = wire::read_multi_answers(json::string(e.content));
    return out;
  });
}

} // namespace reference

// -- helpers --

/// 2024-05-01T12:00:00Z, so Retry-After dates are stable.
const auto fixed_now = std::chrono::system_clock::from_time_t(1714564800);

/// Every character class that JSON escaping treats differently: quotes, backslashes, the
/// solidus (not escaped by Boost.JSON), every control character, DEL, 2-, 3- and 4-byte UTF-8,
/// U+2028 (not escaped either), and bytes that are not UTF-8 at all.
constexpr std::string_view tricky = "\"quoted\" back\\slash a/b \b\f\n\r\t \x01\x1f\x7f "
                                    "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE2\x80\xA8 "
                                    "\xFF\xC3 end";

comparison_request make_request(std::string prompt) {
  comparison_request req;
  req.queue_id = "q-1";
  req.correlation_id = "c-1";
  req.user_prompt = std::move(prompt);
  return req;
}

/// Up to `max_len` bytes of text; with `any_bytes`, also bytes that are not UTF-8 at all.
std::string random_text(std::mt19937_64& rng, size_t max_len, bool any_bytes = true) {
  static const std::vector<std::string_view> pieces = {// escaped by Boost.JSON
                                                       "\"",
                                                       "\\",
                                                       "\n",
                                                       "\n\n",
                                                       "\t",
                                                       "\r",
                                                       "\b",
                                                       "\f",
                                                       "\x01",
                                                       "\x1f",
                                                       {"\0", 1},
                                                       // passed through as they are
                                                       "a",
                                                       "Essay",
                                                       " ",
                                                       "/",
                                                       "\x7f",
                                                       "\xC3\xA9",
                                                       "\xE2\x82\xAC",
                                                       "\xF0\x9F\x98\x80",
                                                       "\xE2\x80\xA8",
                                                       "<comparison id=\"c1\">",
                                                       "\\u0041",
                                                       "}",
                                                       "]"};
  // A UTF-16 surrogate and an overlong encoding: not UTF-8, also passed through.
  static const std::vector<std::string_view> invalid = {"\xED\xA0\x80", "\xC0\xAF"};
  std::uniform_int_distribution<size_t> len(0, max_len);
  std::uniform_int_distribution<size_t> pick(0, pieces.size() + (any_bytes ? 4 : 0) - 1);
  std::string text;
  auto n = len(rng);
  while (text.size() < n) {
    auto i = pick(rng);
    if (i < pieces.size())
      text += pieces[i];
    else if (i < pieces.size() + invalid.size())
      text += invalid[i - pieces.size()];
    else
      text += static_cast<char>(rng()); // any byte
  }
  return text;
}

double random_temperature(std::mt19937_64& rng) {
  using limits = std::numeric_limits<double>;
  static const std::vector<double> fixed = {
      // ordinary values
      0.0, -0.0, 0.1, 0.7, 1.0, 2.0, 1.0 / 3.0, 1e-7, 1e21, 123456789.125, -1.5,
      // extremes
      limits::denorm_min(), limits::max(), limits::min(), limits::infinity(), limits::quiet_NaN()};
  switch (std::uniform_int_distribution<int>(0, 2)(rng)) {
  case 0:
    return fixed[std::uniform_int_distribution<size_t>(0, fixed.size() - 1)(rng)];
  case 1:
    return std::uniform_real_distribution<double>(0.0, 2.0)(rng);
  default:
    return std::bit_cast<double>(rng()); // any bit pattern
  }
}

uint32_t random_max_tokens(std::mt19937_64& rng) {
  static const std::vector<uint32_t> fixed = {
      0, 1, 9, 10, 900, 4096, 65535, std::numeric_limits<uint32_t>::max()};
  if (rng() % 2 == 0)
    return fixed[rng() % fixed.size()];
  return static_cast<uint32_t>(rng());
}

std::string random_choice(std::mt19937_64& rng, std::vector<std::string> xs) {
  return xs[rng() % xs.size()];
}

llm_overrides random_overrides(std::mt19937_64& rng) {
  llm_overrides ov;
  ov.has_temperature = rng() % 2 == 0;
  ov.temperature = random_temperature(rng);
  ov.has_system_prompt = rng() % 2 == 0;
  ov.system_prompt = rng() % 4 == 0 ? std::string{} : random_text(rng, 300);
  ov.max_tokens = random_max_tokens(rng);
  ov.reasoning_effort =
      rng() % 3 == 0 ? random_text(rng, 12) : random_choice(rng, {"", "minimal", "low", "high"});
  ov.output_verbosity =
      rng() % 3 == 0 ? random_text(rng, 12) : random_choice(rng, {"", "low", "medium", "high"});
  return ov;
}

openai_model_flags flags_of(unsigned bits) {
  openai_model_flags flags;
  flags.uses_max_completion_tokens = (bits & 1) != 0;
  flags.supports_temperature = (bits & 2) != 0;
  flags.supports_reasoning_controls = (bits & 4) != 0;
  return flags;
}

/// The first field where two results differ, or "" when they are the same.
std::string difference(const wire_response& a, const wire_response& b) {
  if (a.success != b.success)
    return "success";
  if (a.verdict.winner != b.verdict.winner || a.verdict.justification != b.verdict.justification
      || std::bit_cast<uint64_t>(a.verdict.confidence)
             != std::bit_cast<uint64_t>(b.verdict.confidence))
    return "verdict";
  if (!(a.usage == b.usage))
    return "usage";
  if (a.error_code != b.error_code)
    return "error_code: " + a.error_code + " vs " + b.error_code;
  if (a.error_message != b.error_message)
    return "error_message: " + a.error_message + " vs " + b.error_message;
  if (a.http_status != b.http_status)
    return "http_status";
  if (a.retryable != b.retryable)
    return "retryable";
  if (a.retry_after != b.retry_after)
    return "retry_after";
  if (!(a.limits == b.limits))
    return "limits";
  return {};
}

std::string difference(const wire_multi_response& a, const wire_multi_response& b) {
  if (auto call = difference(a.call, b.call); !call.empty())
    return call;
  if (a.answers.size() != b.answers.size())
    return "answer count";
  for (auto i = a.answers.begin(), j = b.answers.begin(); i != a.answers.end(); ++i, ++j) {
    wire_response x, y;
    x.verdict = i->second;
    y.verdict = j->second;
    if (i->first != j->first || !difference(x, y).empty())
      return "answer " + i->first;
  }
  return {};
}

/// A chat/completions body built field by field from random choices. Half are well formed
/// (a valid envelope around a valid verdict), so success is common; the other half are
/// damaged at random levels, so every branch of the reader and the parser's errors (through
/// byte-level damage) are reached.
std::string random_answer(std::mt19937_64& rng, bool multi) {
  bool damaged = rng() % 2 == 0;
  // `hit(n)`: damage with probability 1/n, in damaged answers only; `one_in(n)`: a harmless
  // variation with probability 1/n.
  auto hit = [&](unsigned n) { return damaged && rng() % n == 0; };
  auto one_in = [&](unsigned n) { return rng() % n == 0; };
  auto damage = [&](unsigned n) { return damaged ? rng() % n : n; }; // n: no damage
  auto random_number = [&]() -> json::value {
    switch (rng() % 6) {
    case 0:
      return static_cast<int64_t>(rng() % 7) - 1;
    case 1:
      return std::uniform_real_distribution<double>(0.0, 6.0)(rng);
    case 2:
      return static_cast<uint64_t>(rng());
    case 3:
      return -static_cast<int64_t>(rng() % 1000);
    case 4:
      return "3";
    default:
      return nullptr;
    }
  };
  auto random_verdict = [&]() {
    json::object v;
    if (!hit(8))
      v["winner"] = hit(4) ? json::value(random_text(rng, 10))
                           : json::value(random_choice(rng, {"Essay A", "Essay B"}));
    if (!hit(8))
      v["justification"] = hit(8) ? json::value(42) : json::value(random_text(rng, 700, false));
    if (!hit(8))
      v["confidence"] = hit(2) ? random_number()
                        : one_in(2)
                            ? json::value(static_cast<int64_t>(rng() % 5) + 1)
                            : json::value(std::uniform_real_distribution<double>(1, 5)(rng));
    if (one_in(4))
      v["extra"] = random_text(rng, 10, false);
    return v;
  };
  std::string content;
  if (multi) {
    json::array results;
    auto n = rng() % 5;
    for (size_t i = 0; i < n; ++i) {
      auto v = random_verdict();
      if (!hit(6))
        v["comparison_id"] = hit(6) ? random_text(rng, 3) : "c" + std::to_string(rng() % 6 + 1);
      results.push_back(std::move(v));
    }
    if (hit(10))
      results.push_back(7);
    content =
        hit(10) ? json::serialize(results) : json::serialize(json::object{{"results", results}});
  } else {
    content = json::serialize(random_verdict());
  }
  switch (damage(8)) {
  case 0:
    content = random_text(rng, 40);
    break;
  case 1:
    content.resize(rng() % (content.size() + 1));
    break;
  case 2:
    content += "x";
    break;
  case 3:
    content = "[1,2]";
    break;
  default:
    if (one_in(4))
      content = " \n" + content + "\n "; // whitespace around is fine
    break;
  }
  json::object message{{"role", "assistant"}};
  switch (damage(6)) {
  case 0:
    break; // no content
  case 1:
    message["content"] = nullptr;
    break;
  case 2:
    message["content"] = json::array{content};
    break;
  default:
    message["content"] = content;
  }
  if (hit(3))
    message["refusal"] = one_in(2) ? json::value("I cannot help") : json::value("");
  else if (one_in(2))
    message["refusal"] = nullptr;
  json::object choice{{"index", 0}};
  if (!hit(10))
    choice["message"] = hit(12) ? json::value("text") : json::value(message);
  if (!hit(6))
    choice["finish_reason"] =
        hit(8) ? json::value(nullptr)
               : json::value(
                   damaged ? random_choice(rng, {"stop", "length", "content_filter", "tool_calls"})
                           : std::string{"stop"});
  json::object root{{"id", "chatcmpl-1"}, {"object", "chat.completion"}};
  switch (damage(6)) {
  case 0:
    break; // no choices
  case 1:
    root["choices"] = json::array{};
    break;
  case 2:
    root["choices"] = json::array{"x", choice};
    break;
  case 3:
    root["choices"] = choice;
    break;
  default:
    root["choices"] = one_in(4) ? json::array{choice, choice} : json::array{choice};
  }
  if (!one_in(5)) {
    json::object usage{{"prompt_tokens", random_number()}, {"completion_tokens", random_number()}};
    if (one_in(2))
      usage["total_tokens"] = random_number();
    if (one_in(2))
      usage["prompt_tokens_details"] = json::object{{"cached_tokens", random_number()}};
    root["usage"] = one_in(10) ? json::value(3) : json::value(usage);
  }
  auto text = json::serialize(root);
  switch (damage(10)) {
  case 0:
    text.resize(rng() % (text.size() + 1)); // cut anywhere
    break;
  case 1:
    text[rng() % text.size()] = static_cast<char>(rng()); // one damaged byte
    break;
  case 2:
    text += random_choice(rng, {"x", "{}", "\xEF\xBB\xBF"});
    break;
  case 3:
    text = "\xEF\xBB\xBF" + text;
    break;
  case 4:
    text = "[" + text + "]";
    break;
  case 5:
    text = random_choice(rng, {"", "null", "42", "\"str\"", "{", "{}", "<html>bad gateway</html>",
                               std::string(40, '[') + std::string(40, ']'),
                               "{\"choices\":[{\"message\":{\"content\":\"{}\"}}]} /* c */"});
    break;
  default:
    if (one_in(4))
      text += random_choice(rng, {" ", "\n"}); // trailing whitespace is fine
    break;
  }
  return text;
}

std::string random_error_body(std::mt19937_64& rng) {
  json::object err{{"message", random_text(rng, 400)}};
  err["type"] = random_choice(rng, {"", "requests", "tokens", "insufficient_quota", "server_error",
                                    "invalid_request_error"});
  err["code"] = rng() % 4 == 0
                    ? json::value(429)
                    : json::value(random_choice(
                        rng, {"", "rate_limit_exceeded", "insufficient_quota", "invalid_api_key"}));
  auto text = json::serialize(json::object{{"error", err}});
  if (rng() % 5 == 0)
    text.resize(rng() % (text.size() + 1));
  return text;
}

wire_headers random_headers(std::mt19937_64& rng) {
  wire_headers headers;
  if (rng() % 2 == 0)
    headers.emplace_back("retry-after", random_choice(rng, {"2", "0", "-1", "abc",
                                                            "Wed, 01 May 2024 12:00:30 GMT"}));
  if (rng() % 3 == 0)
    headers.emplace_back("retry-after-ms", random_choice(rng, {"1500", "x"}));
  if (rng() % 2 == 0) {
    headers.emplace_back("x-ratelimit-remaining-requests", std::to_string(rng() % 100));
    headers.emplace_back("x-ratelimit-remaining-tokens", random_choice(rng, {"1000", "-3", ""}));
    headers.emplace_back("x-ratelimit-reset-requests", random_choice(rng, {"6m0s", "12ms", "bad"}));
    headers.emplace_back("x-ratelimit-reset-tokens", random_choice(rng, {"1s", "1h2m3.5s"}));
  }
  return headers;
}

unsigned random_status(std::mt19937_64& rng) {
  static const std::vector<unsigned> statuses = {200, 200, 200, 200, 200, 201, 299, 300, 400, 401,
                                                 403, 404, 408, 409, 429, 500, 502, 503, 0};
  return statuses[rng() % statuses.size()];
}

} // namespace

// -- request bodies: pinned bytes ---------------------------------------------------------

// These literals are the bytes the DOM-based builder produced before it was replaced (captured
// by running it); they must never change without a deliberate wire change.

namespace {

constexpr std::string_view pinned_single_format =
    R"({"type":"json_schema","json_schema":{"name":"comparison_result","strict":true,"schema":)"
    R"({"type":"object","properties":{"winner":{"type":"string","enum":["Essay A","Essay B"]},)"
    R"("justification":{"type":"string"},"confidence":{"type":"number"}},"required":["winner",)"
    R"("justification","confidence"],"additionalProperties":false}}})";

constexpr std::string_view pinned_multi_format =
    R"({"type":"json_schema","json_schema":{"name":"comparison_results","strict":true,"schema":)"
    R"({"type":"object","properties":{"results":{"type":"array","items":{"type":"object",)"
    R"("properties":{"winner":{"type":"string","enum":["Essay A","Essay B"]},"justification":)"
    R"({"type":"string"},"confidence":{"type":"number"},"comparison_id":{"type":"string"}},)"
    R"("required":["comparison_id","winner","justification","confidence"],)"
    R"("additionalProperties":false}}},"required":["results"],"additionalProperties":false}}})";

/// `tricky` as Boost.JSON escapes it.
constexpr std::string_view pinned_tricky =
    R"("\"quoted\" back\\slash a/b \b\f\n\r\t \u0001\u001f)"
    "\x7f caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE2\x80\xA8 \xFF\xC3 end\"";

std::string pinned_default_system() {
  return json::serialize(json::string_view{wire::default_system_prompt});
}

} // namespace

TEST_CASE("openai request bytes are pinned: gpt-4o defaults with a tricky prompt") {
  auto req = make_request(std::string{tricky});
  auto body = build_openai_request(req, "gpt-4o", openai_model_flags_for("gpt-4o"));
  auto expected = R"({"model":"gpt-4o","messages":[{"role":"system","content":)"
                  + pinned_default_system() + R"(},{"role":"user","content":)"
                  + std::string{pinned_tricky} + R"(}],"response_format":)"
                  + std::string{pinned_single_format} + R"(,"max_tokens":4096,"temperature":1E-1})";
  CHECK(body == expected);
}

TEST_CASE("openai request bytes are pinned: gpt-5 with reasoning controls and a custom system") {
  auto req = make_request("Compare A and B.");
  req.overrides.has_system_prompt = true;
  req.overrides.system_prompt = std::string{tricky};
  req.overrides.has_temperature = true;
  req.overrides.temperature = 0.3; // not sent: GPT-5 rejects temperatures
  req.overrides.max_tokens = 900;
  req.overrides.reasoning_effort = "low";
  req.overrides.output_verbosity = "high";
  auto body = build_openai_request(req, "gpt-5.1", openai_model_flags_for("gpt-5.1"));
  auto expected = R"({"model":"gpt-5.1","messages":[{"role":"system","content":)"
                  + std::string{pinned_tricky}
                  + R"(},{"role":"user","content":"Compare A and B."}],"response_format":)"
                  + std::string{pinned_single_format}
                  + R"(,"max_completion_tokens":900,"reasoning_effort":"low","verbosity":"high"})";
  CHECK(body == expected);
}

TEST_CASE("openai request bytes are pinned: empty system override and odd temperatures") {
  auto req = make_request("");
  req.overrides.has_system_prompt = true; // an explicitly empty override sends no system message
  req.overrides.has_temperature = true;
  openai_model_flags flags;
  flags.uses_max_completion_tokens = true;
  flags.supports_reasoning_controls = true; // but no effort or verbosity given: nothing sent
  // Boost.JSON's shortest round-trip form, with its exponent style.
  const std::vector<std::pair<double, std::string>> temperatures = {
      {0.7, "7E-1"},
      {1.0, "1E0"},
      {0.0, "0E0"},
      {1.0 / 3.0, "3.333333333333333E-1"},
      {1e21, "1E21"}};
  for (const auto& [t, text] : temperatures) {
    req.overrides.temperature = t;
    auto expected = R"({"model":"m","messages":[{"role":"user","content":""}],"response_format":)"
                    + std::string{pinned_single_format}
                    + R"(,"max_completion_tokens":4096,"temperature":)" + text + "}";
    CHECK(build_openai_request(req, "m", flags) == expected);
  }
}

TEST_CASE("openai multi-prompt body bytes are pinned") {
  auto a = make_request("First \"essay\" pair");
  a.overrides.max_tokens = 300;
  auto b = make_request("Second\npair");
  b.overrides.max_tokens = 700;
  std::vector<multi_item> items{{"c1", &a}, {"c2", &b}};
  wire_target target;
  target.base_url = "https://api.openai.com/v1";
  auto request = openai_wire{}.multi_call(target, items, "gpt-4o-mini");
  auto system = json::serialize(json::string_view{std::string{wire::default_system_prompt} + "\n\n"
                                                  + wire::multi_prompt_instructions});
  auto expected = R"({"model":"gpt-4o-mini","messages":[{"role":"system","content":)" + system
                  + R"(},{"role":"user","content":"<comparison id=\"c1\">\nFirst \"essay\" )"
                    R"(pair\n</comparison>\n\n<comparison id=\"c2\">\nSecond\npair\n)"
                    R"(</comparison>"}],"response_format":)"
                  + std::string{pinned_multi_format} + R"(,"max_tokens":700,"temperature":1E-1})";
  CHECK(request.body == expected);
  CHECK(request.url == "https://api.openai.com/v1/chat/completions");
  // A base URL given with a trailing slash gets one slash, as for the other providers.
  target.base_url = "https://api.openai.com/v1/";
  CHECK(openai_wire{}.multi_call(target, items, "gpt-4o-mini").url
        == "https://api.openai.com/v1/chat/completions");
}

// -- request bodies: against the reference ------------------------------------------------

TEST_CASE("openai request bodies equal the DOM reference for every flag combination") {
  std::mt19937_64 rng{20240501};
  for (int i = 0; i < 4000; ++i) {
    auto req = make_request(random_text(rng, i % 50 == 0 ? 9000 : 400));
    req.overrides = random_overrides(rng);
    auto model = rng() % 4 == 0 ? random_text(rng, 20) : random_choice(rng, {"gpt-4o", "gpt-5.1"});
    auto flags = flags_of(static_cast<unsigned>(i % 8));
    auto expected = reference::single_body(req, model, flags);
    auto body = build_openai_request(req, model, flags);
    INFO("case " << i);
    REQUIRE(body == expected);
  }
}

TEST_CASE("openai request bodies equal the reference for strings that escape heavily") {
  // Every byte 0..255 on its own, and long runs of 6-byte escapes that overflow any buffer.
  for (int c = 0; c < 256; ++c) {
    auto req = make_request(std::string(1, static_cast<char>(c)));
    auto flags = flags_of(7);
    req.overrides.reasoning_effort = std::string(1, static_cast<char>(c));
    INFO("byte " << c);
    REQUIRE(build_openai_request(req, "m", flags) == reference::single_body(req, "m", flags));
  }
  for (size_t n : {1, 100, 4095, 4096, 4097, 20000}) {
    auto req = make_request(std::string(n, '\x01'));
    req.overrides.has_system_prompt = true;
    req.overrides.system_prompt = std::string(n, '"');
    INFO("length " << n);
    REQUIRE(build_openai_request(req, std::string(n, '\\'), flags_of(2))
            == reference::single_body(req, std::string(n, '\\'), flags_of(2)));
  }
}

TEST_CASE("openai multi-prompt bodies equal the DOM reference") {
  std::mt19937_64 rng{7};
  for (int i = 0; i < 1500; ++i) {
    std::vector<comparison_request> reqs;
    auto n = 1 + rng() % 4;
    for (size_t k = 0; k < n; ++k) {
      reqs.push_back(make_request(random_text(rng, 300)));
      reqs.back().overrides = random_overrides(rng);
    }
    std::vector<multi_item> items;
    for (size_t k = 0; k < n; ++k)
      items.push_back(
          {rng() % 5 == 0 ? random_text(rng, 5) : "c" + std::to_string(k + 1), &reqs[k]});
    auto model = random_choice(rng, {"gpt-4o", "gpt-5-mini", "listed"});
    openai_flags_table table{{"listed", flags_of(static_cast<unsigned>(rng() % 8))}};
    openai_wire wire{rng() % 2 == 0, table};
    wire_target target;
    target.base_url = "https://openrouter.ai/api/v1";
    auto request = wire.multi_call(target, items, model);
    INFO("case " << i);
    REQUIRE(request.body
            == reference::multi_body(items, model, openai_model_flags_for(model, table)));
  }
}

// -- answers: against the reference -------------------------------------------------------

TEST_CASE("openai answers read exactly as the two-parse reference reads them") {
  std::mt19937_64 rng{42};
  for (int i = 0; i < 20000; ++i) {
    auto status = random_status(rng);
    auto body = wire::is_success(status) || rng() % 3 == 0 ? random_answer(rng, false)
                                                           : random_error_body(rng);
    auto headers = random_headers(rng);
    auto expected = reference::parse_single(status, body, headers, fixed_now);
    auto result = parse_openai_response(status, body, headers, fixed_now);
    INFO("case " << i << " status " << status << " body " << body);
    REQUIRE(difference(result, expected).empty());
  }
}

TEST_CASE("openai multi-prompt answers read exactly as the reference reads them") {
  std::mt19937_64 rng{43};
  openai_wire wire;
  int answered = 0;
  for (int i = 0; i < 10000; ++i) {
    auto status = random_status(rng);
    auto body = wire::is_success(status) ? random_answer(rng, true) : random_error_body(rng);
    auto headers = random_headers(rng);
    auto expected = reference::parse_multi(status, body, headers, fixed_now);
    auto result = wire.read_multi(status, body, headers, fixed_now);
    INFO("case " << i << " status " << status << " body " << body);
    REQUIRE(difference(result, expected).empty());
    answered += result.answers.empty() ? 0 : 1;
  }
  CHECK(answered > 100); // the generator still produces valid multi-prompt answers
}

TEST_CASE("openai answers: the random cases reach every outcome") {
  // Guards the comparison above against a generator that stopped producing some outcome.
  std::mt19937_64 rng{42};
  std::vector<wire_response> results;
  for (int i = 0; i < 20000; ++i) {
    auto status = random_status(rng);
    auto body = wire::is_success(status) || rng() % 3 == 0 ? random_answer(rng, false)
                                                           : random_error_body(rng);
    auto headers = random_headers(rng);
    results.push_back(parse_openai_response(status, body, headers, fixed_now));
  }
  auto count = [&](std::string_view code, std::string_view message) {
    return std::count_if(results.begin(), results.end(), [&](const wire_response& r) {
      return r.error_code == code && r.error_message.starts_with(message);
    });
  };
  CHECK(count("", "") > 0); // success
  CHECK(count("PARSING_ERROR", "OpenAI response body is not JSON") > 0);
  CHECK(count("PARSING_ERROR", "OpenAI response has no choices") > 0);
  CHECK(count("PARSING_ERROR", "OpenAI response truncated") > 0);
  CHECK(count("PARSING_ERROR", "OpenAI response has no message content") > 0);
  CHECK(count("PARSING_ERROR", "OpenAI content is not a JSON object") > 0);
  CHECK(count("INVALID_RESPONSE", "OpenAI winner") > 0);
  CHECK(count("INVALID_RESPONSE", "OpenAI justification") > 0);
  CHECK(count("INVALID_RESPONSE", "OpenAI confidence") > 0);
  CHECK(std::count_if(
            results.begin(), results.end(),
            [](const wire_response& r) { return r.error_message == "OpenAI refused the content"; })
        > 0);
  CHECK(count("RATE_LIMIT", "OpenAI HTTP 429") > 0);
}

// -- micro-benchmark (hidden): ./openai_format_test "[.bench]" -----------------------------

namespace {

/// A ~3,000-byte essay: words, paragraphs, quotes and some non-ASCII, like real submissions.
std::string essay(char tag) {
  std::string text;
  const std::string sentence = std::string{"The author of essay "} + tag
                               + " argues that \"renewable energy\" is cheaper \xE2\x80\x94 a "
                                 "claim supported by caf\xC3\xA9-table data. ";
  while (text.size() < 3000) {
    text += sentence;
    if (text.size() % 5 == 0)
      text += "\n\n";
  }
  text.resize(3000);
  return text;
}

template <class F>
double micro_seconds_per_call(int n, F f) {
  size_t sink = 0;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i)
    sink += f();
  auto elapsed = std::chrono::steady_clock::now() - start;
  REQUIRE(sink > 0);
  return std::chrono::duration<double, std::micro>(elapsed).count() / n;
}

} // namespace

TEST_CASE("openai format bench: 100,000 builds and parses, reference vs current", "[.bench]") {
  constexpr int n = 100000;
  // Instructions (~600 bytes) and two 3,000-byte essays: ~6.6 KB, a typical comparison.
  std::string instructions =
      "You are judging two student essays written for the same assignment. Read both essays "
      "carefully. Decide which essay argues its position better, considering the clarity of "
      "the thesis, the quality and relevance of the evidence, the handling of counter-arguments, "
      "the logical structure of the paragraphs, and the precision of the language. Do not "
      "reward length for its own sake, and ignore minor spelling mistakes unless they obscure "
      "the meaning. Answer with the winner (\"Essay A\" or \"Essay B\"), a one-paragraph "
      "justification that cites specific passages, and your confidence from 1 (a coin flip) to "
      "5 (no doubt at all).\n\n";
  auto req = make_request(instructions + "Essay A:\n" + essay('A') + "\n\nEssay B:\n" + essay('B'));
  auto flags = openai_model_flags_for("gpt-4o");
  REQUIRE(build_openai_request(req, "gpt-4o", flags)
          == reference::single_body(req, "gpt-4o", flags));
  auto old_build = micro_seconds_per_call(
      n, [&] { return reference::single_body(req, "gpt-4o", flags).size(); });
  auto new_build =
      micro_seconds_per_call(n, [&] { return build_openai_request(req, "gpt-4o", flags).size(); });
  // The floor: Boost.JSON escaping the prompt alone, which both builders must do.
  auto escape_only = micro_seconds_per_call(
      n, [&] { return json::serialize(json::string_view{req.user_prompt}).size(); });
  auto answer = json::serialize(json::object{
      {"id", "chatcmpl-AbC123"},
      {"object", "chat.completion"},
      {"created", 1714564800},
      {"model", "gpt-4o-2024-08-06"},
      {"choices",
       json::array{json::object{
           {"index", 0},
           {"message",
            json::object{
                {"role", "assistant"},
                {"content", json::serialize(json::object{
                                {"winner", "Essay B"},
                                {"justification",
                                 "Essay B supports its claim with data and addresses the strongest "
                                 "counter-argument; essay A asserts more than it shows."},
                                {"confidence", 4}})},
                {"refusal", nullptr}}},
           {"logprobs", nullptr},
           {"finish_reason", "stop"}}}},
      {"usage", json::object{{"prompt_tokens", 1650},
                             {"completion_tokens", 48},
                             {"total_tokens", 1698},
                             {"prompt_tokens_details", json::object{{"cached_tokens", 1024}}}}},
      {"system_fingerprint", "fp_abc123"}});
  wire_headers headers{{"x-ratelimit-remaining-requests", "499"},
                       {"x-ratelimit-remaining-tokens", "29000"},
                       {"x-ratelimit-reset-requests", "120ms"},
                       {"x-ratelimit-reset-tokens", "2s"}};
  REQUIRE(parse_openai_response(200, answer, headers, fixed_now).success);
  auto old_parse = micro_seconds_per_call(n, [&] {
    return reference::parse_single(200, answer, headers, fixed_now).verdict.justification.size();
  });
  auto new_parse = micro_seconds_per_call(n, [&] {
    return parse_openai_response(200, answer, headers, fixed_now).verdict.justification.size();
  });
  std::printf("openai format bench (%d calls, %zu-byte prompt, %zu-byte body, %zu-byte answer):\n"
              "  build: reference %.2f us, current %.2f us per call (escaping the prompt "
              "alone: %.2f us)\n"
              "  parse: reference %.2f us, current %.2f us per call\n",
              n, req.user_prompt.size(), build_openai_request(req, "gpt-4o", flags).size(),
              answer.size(), old_build, new_build, escape_only, old_parse, new_parse);
}
