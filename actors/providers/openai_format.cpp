#include "actors/providers/openai_format.hpp"
#include "runtime/url.hpp"

#include "actors/providers/retry_policy.hpp"
#include "actors/providers/wire_common.hpp"

namespace lps {

namespace json = boost::json;
using namespace wire;

namespace {

// -- request --

json::object response_format(std::string_view name, json::object schema) {
  json::object js{{"name", name}, {"strict", true}};
  js["schema"] = std::move(schema);
  return json::object{{"type", "json_schema"}, {"json_schema", std::move(js)}};
}

/// The response_format of a single and of a multi-prompt call as JSON text, built once: they
/// never change, and building the schema DOM per call cost more than the rest of the body.
const std::string& single_format() {
  static const std::string text =
      json::serialize(response_format(single_answer_name, verdict_schema()));
  return text;
}

const std::string& multi_format() {
  static const std::string text =
      json::serialize(response_format(multi_answer_name, multi_verdict_schema()));
  return text;
}

/// Appends what `sr` was reset to, exactly as json::serialize writes it (strings escaped,
/// numbers in Boost.JSON's own format), through a stack buffer so nothing is copied twice.
void append_serialized(std::string& out, json::serializer& sr) {
  char buffer[4096];
  while (!sr.done()) {
    auto part = sr.read(buffer);
    out.append(part.data(), part.size());
  }
}

void append_string(std::string& out, json::serializer& sr, std::string_view text) {
  sr.reset(json::string_view{text.data(), text.size()});
  append_serialized(out, sr);
}

void append_number(std::string& out, json::serializer& sr, const json::value& number) {
  sr.reset(&number);
  append_serialized(out, sr);
}

/// The chat/completions body, written straight into one string: the same bytes, in the same
/// key order, as the json::object lps used to build and serialize (openai_format_test keeps
/// that builder and compares), without copying the prompts into a DOM first. `format` is
/// JSON text; generation settings are sent as the model accepts them.
std::string chat_body(std::string_view model, std::string_view system, std::string_view user,
                      std::string_view format, const llm_overrides& ov, uint32_t max_tokens,
                      const openai_model_flags& flags) {
  // Fixed text and numbers take under 256 bytes; escapes (newlines, quotes) add some more.
  auto texts = model.size() + system.size() + user.size() + ov.reasoning_effort.size()
               + ov.output_verbosity.size();
  std::string out;
  out.reserve(format.size() + texts + texts / 16 + 256);
  json::serializer sr;
  out += R"({"model":)";
  append_string(out, sr, model);
  out += R"(,"messages":[)";
  if (!system.empty()) {
    out += R"({"role":"system","content":)";
    append_string(out, sr, system);
    out += "},";
  }
  out += R"({"role":"user","content":)";
  append_string(out, sr, user);
  out += R"(}],"response_format":)";
  out += format;
  out += flags.uses_max_completion_tokens ? R"(,"max_completion_tokens":)" : R"(,"max_tokens":)";
  append_number(out, sr, json::value(max_tokens));
  if (flags.supports_temperature) {
    out += R"(,"temperature":)";
    append_number(out, sr, json::value(ov.has_temperature ? ov.temperature : default_temperature));
  }
  if (flags.supports_reasoning_controls) {
    if (!ov.reasoning_effort.empty()) {
      out += R"(,"reasoning_effort":)";
      append_string(out, sr, ov.reasoning_effort);
    }
    if (!ov.output_verbosity.empty()) {
      out += R"(,"verbosity":)";
      append_string(out, sr, ov.output_verbosity);
    }
  }
  out += '}';
  return out;
}

http_client_request post(const wire_target& target, std::string body) {
  http_client_request req;
  req.method = "POST";
  req.url = join_url(target.base_url, "/chat/completions");
  req.timeout = target.timeout;
  req.headers = {{"Authorization", "Bearer " + target.api_key},
                 {"Content-Type", "application/json"}};
  for (const auto& h : target.extra_headers)
    req.headers.push_back(h);
  req.body = std::move(body);
  return req;
}

// -- response --

wire_response http_error(unsigned status, std::string_view body) {
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
  return failure(verdict.error_code, std::move(text), status,
                 verdict.kind == failure_class::retryable);
}

/// Room for the DOMs of a typical answer, envelope and verdict together (a 560-byte answer
/// needs about 1.7 KB), so reading one allocates nothing; a larger one spills to the heap.
constexpr size_t answer_arena_bytes = 4096;

/// `text` parsed into `arena`; null when it is not JSON.
json::value parse_into(std::string_view text, json::monotonic_resource& arena) {
  json::error_code ec;
  auto doc = json::parse(text, ec, &arena);
  if (ec)
    return nullptr;
  return doc;
}

/// A 2xx answer's first choice: its message content when the call produced a full answer,
/// else the failure; usage is read either way.
struct envelope {
  wire_response result;
  /// The message content, a string, when result.success; points into the parsed answer.
  const json::value* content = nullptr;
};

token_usage usage_of(const json::object& root) {
  auto* usage = object_field(&root, "usage");
  token_usage u;
  u.prompt_tokens = count_field(usage, "prompt_tokens");
  u.completion_tokens = count_field(usage, "completion_tokens");
  u.total_tokens = count_field(usage, "total_tokens");
  if (u.total_tokens == 0)
    u.total_tokens = u.prompt_tokens + u.completion_tokens;
  u.cache_read_input_tokens =
      count_field(object_field(usage, "prompt_tokens_details"), "cached_tokens");
  return u;
}

/// Reads the parsed 2xx answer `doc` (null when the body is not JSON).
envelope read_envelope(unsigned status, const json::value& doc) {
  envelope e;
  if (!doc.is_object()) {
    e.result = failure(ec::parsing_error, "OpenAI response body is not JSON", status, false);
    return e;
  }
  const auto& root = doc.get_object();
  auto* choices = array_field(&root, "choices");
  if (!choices || choices->empty() || !(*choices)[0].is_object()) {
    e.result = failure(ec::parsing_error, "OpenAI response has no choices", status, false);
    return e;
  }
  const auto& choice = (*choices)[0].get_object();
  auto finish = string_field(choice, "finish_reason");
  auto* message = object_field(&choice, "message");
  std::string refusal = message ? string_field(*message, "refusal") : std::string{};
  auto* content = message ? message->if_contains("content") : nullptr;
  if (finish == "length") {
    e.result = failure(ec::parsing_error, "OpenAI response truncated (finish_reason length)",
                       status, false);
  } else if (finish == "content_filter" || !refusal.empty()) {
    auto verdict = classify(static_cast<int>(status), "content_filter", "");
    e.result = failure(verdict.error_code, "OpenAI refused the content", status,
                       verdict.kind == failure_class::retryable);
  } else if (!content || !content->is_string()) {
    e.result = failure(ec::parsing_error, "OpenAI response has no message content", status, false);
  } else {
    e.result.success = true;
    e.result.http_status = static_cast<int32_t>(status);
    e.content = content;
  }
  e.result.usage = usage_of(root);
  return e;
}

/// The verdict JSON inside the message content, parsed into `arena` and checked field by
/// field.
wire_response read_verdict(envelope e, unsigned status, json::monotonic_resource& arena) {
  auto doc = parse_into(e.content->get_string(), arena);
  if (!doc.is_object()) {
    auto usage = e.result.usage;
    e.result = failure(ec::parsing_error, "OpenAI content is not a JSON object", status, false);
    e.result.usage = usage;
    return std::move(e.result);
  }
  if (auto why = check_verdict(doc.get_object(), e.result.verdict); !why.empty()) {
    auto usage = e.result.usage;
    e.result = failure(ec::invalid_response, "OpenAI " + why, status, false);
    e.result.usage = usage;
  }
  return std::move(e.result);
}

/// The call-level result inside a single or a multi-prompt answer.
wire_response& call_of(wire_response& r) {
  return r;
}

wire_response& call_of(wire_multi_response& r) {
  return r.call;
}

/// Runs `read`, adding what every answer carries (limits, Retry-After) and turning an
/// unexpected exception (only allocation failure can throw) into a PARSING_ERROR.
template <class Result, class Read>
Result guarded(unsigned status, const wire_headers& headers,
               std::chrono::system_clock::time_point now, Read read) {
  Result out;
  try {
    out = read();
  } catch (const std::exception& ex) {
    out = Result{};
    call_of(out) = failure(ec::parsing_error,
                           std::string{"OpenAI response unreadable: "} + ex.what(), status, false);
  }
  auto& call = call_of(out);
  call.http_status = static_cast<int32_t>(status);
  call.limits = openai_rate_limits(headers);
  if (!call.success)
    call.retry_after = retry_after_of(headers, now);
  return out;
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

openai_model_flags openai_model_flags_for(std::string_view model, const openai_flags_table& table) {
  if (auto i = table.find(model); i != table.end())
    return i->second;
  return openai_model_flags_for(model);
}

std::string build_openai_request(const comparison_request& req, const std::string& model,
                                 const openai_model_flags& flags) {
  const auto& ov = req.overrides;
  return chat_body(model, system_prompt_of(req), req.user_prompt, single_format(), ov,
                   ov.max_tokens > 0 ? ov.max_tokens : default_max_tokens, flags);
}

wire_response parse_openai_response(unsigned status, std::string_view body,
                                    const wire_headers& headers,
                                    std::chrono::system_clock::time_point now) {
  return guarded<wire_response>(status, headers, now, [&] {
    if (!is_success(status))
      return http_error(status, body);
    unsigned char buffer[answer_arena_bytes];
    json::monotonic_resource arena{buffer};
    auto doc = parse_into(body, arena);
    auto e = read_envelope(status, doc);
    if (!e.result.success)
      return std::move(e.result);
    return read_verdict(std::move(e), status, arena);
  });
}

std::string_view openai_wire::display_name() const {
  return openrouter_ ? "OpenRouter" : "OpenAI";
}

std::string_view openai_wire::endpoint() const {
  return "/chat/completions";
}

http_client_request openai_wire::single_call(const wire_target& target,
                                             const comparison_request& request,
                                             const std::string& model) const {
  return post(target, build_openai_request(request, model, openai_model_flags_for(model, flags_)));
}

wire_response openai_wire::read_single(unsigned status, std::string_view body,
                                       const wire_headers& headers,
                                       std::chrono::system_clock::time_point now) const {
  return parse_openai_response(status, body, headers, now);
}

http_client_request openai_wire::multi_call(const wire_target& target,
                                            const std::vector<multi_item>& items,
                                            const std::string& model) const {
  const auto& first = *items.front().request;
  uint32_t max_tokens = 0;
  for (const auto& item : items)
    max_tokens = std::max(max_tokens, item.request->overrides.max_tokens);
  auto body = chat_body(model, system_prompt_of(first) + "\n\n" + multi_prompt_instructions,
                        pack_multi_prompt(items), multi_format(), first.overrides,
                        max_tokens > 0 ? max_tokens : default_max_tokens,
                        openai_model_flags_for(model, flags_));
  return post(target, std::move(body));
}

wire_multi_response openai_wire::read_multi(unsigned status, std::string_view body,
                                            const wire_headers& headers,
                                            std::chrono::system_clock::time_point now) const {
  return guarded<wire_multi_response>(status, headers, now, [&] {
    wire_multi_response out;
    if (!is_success(status)) {
      out.call = http_error(status, body);
      return out;
    }
    unsigned char buffer[answer_arena_bytes];
    json::monotonic_resource arena{buffer};
    auto doc = parse_into(body, arena);
    auto e = read_envelope(status, doc);
    out.call = std::move(e.result);
    if (out.call.success)
      out.answers = read_multi_answers(*e.content);
    return out;
  });
}

} // namespace lps
