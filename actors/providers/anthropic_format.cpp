#include "actors/providers/anthropic_format.hpp"
#include "runtime/url.hpp"

#include "actors/providers/retry_policy.hpp"
#include "actors/providers/wire_common.hpp"

#include <algorithm>
#include <exception>
#include <optional>
#include <utility>

namespace lps {

namespace {

namespace json = boost::json;

/// The API rejects a request with more cache_control breakpoints than this.
constexpr size_t max_breakpoints = 4;

constexpr std::string_view single_tool_description =
    "Record the judgement of the comparison: the winning essay, a brief justification and a "
    "confidence from 1 to 5.";

constexpr std::string_view multi_tool_description =
    "Record the judgements of all comparisons: one entry per comparison id, each with the "
    "winning essay, a brief justification and a confidence from 1 to 5.";

// -- request --

/// One text block of `system` or of the user message, with its cache breakpoint.
struct text_block {
  std::string text;
  /// "" for no cache_control, else "5m" or "1h".
  std::string ttl;
};

/// A Messages body before it is written out, so the cache rules can work on it.
struct message_parts {
  std::string model;
  uint32_t max_tokens = wire::default_max_tokens;
  double temperature = wire::default_temperature;
  std::vector<text_block> system;
  std::vector<text_block> user;
  /// The forced tool.
  std::string_view tool_name;
  std::string_view tool_description;
  json::object tool_schema;
  /// The tool definition's breakpoint, "" for none.
  std::string tool_ttl;
  /// metadata.user_id, left out when empty.
  std::string user_id;
};

/// True when `text` has nothing but whitespace. The API rejects such text blocks ("text
/// content blocks must contain non-whitespace text"), so they are left out.
bool blank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos;
}

/// The API takes temperatures in 0..1 only, while intake accepts OpenAI's 0..2.
double temperature_of(const llm_overrides& ov) {
  return ov.has_temperature ? std::clamp(ov.temperature, 0.0, 1.0) : wire::default_temperature;
}

uint32_t max_tokens_of(const llm_overrides& ov) {
  return ov.max_tokens > 0 ? ov.max_tokens : wire::default_max_tokens;
}

/// The system prompt, then the caller's blocks (each to its target), each cacheable one with
/// its own breakpoint. With any cacheable block the tool and the last system block get one
/// too, so the shared head of the prompt (tools, then system: the API's prefix order) is
/// cached even when the caller marked only later blocks; its ttl is 1h as soon as any
/// block asks for 1h, so that head outlives the blocks after it.
void lay_out_prompt(const comparison_request& request, message_parts& parts) {
  auto system = wire::system_prompt_of(request);
  if (!blank(system))
    parts.system.push_back({std::move(system), ""});
  bool cacheable = false;
  bool one_hour = false;
  for (const auto& block : request.prompt_blocks) {
    if (blank(block.content) || (block.target != "system" && block.target != "user_content"))
      continue;
    // An absent ttl means the API's default, 5 minutes.
    std::string ttl = !block.cacheable ? "" : block.ttl == "1h" ? "1h" : "5m";
    cacheable = cacheable || block.cacheable;
    one_hour = one_hour || ttl == "1h";
    auto& target = block.target == "system" ? parts.system : parts.user;
    target.push_back({block.content, std::move(ttl)});
  }
  if (parts.user.empty())
    parts.user.push_back({request.user_prompt, ""});
  if (!cacheable)
    return;
  std::string head_ttl = one_hour ? "1h" : "5m";
  parts.tool_ttl = head_ttl;
  if (!parts.system.empty() && parts.system.back().ttl.empty())
    parts.system.back().ttl = head_ttl;
}

/// The breakpoints of `parts` in the order the API builds its cache prefix (tools, system,
/// messages); clearing a pointed-to ttl drops that breakpoint.
std::vector<std::string*> breakpoints(message_parts& parts) {
  std::vector<std::string*> result;
  auto add = [&result](std::string& ttl) {
    if (!ttl.empty())
      result.push_back(&ttl);
  };
  add(parts.tool_ttl);
  for (auto& block : parts.system)
    add(block.ttl);
  for (auto& block : parts.user)
    add(block.ttl);
  return result;
}

/// Drops every 1h breakpoint that follows a 5m one, which the API rejects (the longer-lived
/// entry would hang off a prefix that expires first). Intake refuses such block lists, but
/// "system" blocks move ahead of "user_content" blocks here, so an accepted list can still
/// produce the order; leaving one breakpoint out costs a cache write, a 400 costs the call.
void drop_misordered(message_parts& parts) {
  bool five_minutes = false;
  for (auto* ttl : breakpoints(parts)) {
    if (*ttl == "1h" && five_minutes)
      ttl->clear();
    five_minutes = five_minutes || *ttl == "5m";
  }
}

/// Keeps at most max_breakpoints. The tool's goes first: the tool definition alone is far
/// below the smallest cacheable prefix (1024 tokens), so its breakpoint never caches
/// anything; the prefixes of later breakpoints include it anyway. Then the last ones go: a
/// longer prefix is shared by fewer requests (in CJ prompts whatever follows the essays is
/// unique to one pair), so the earlier breakpoints are the ones that get cache hits.
void cap_breakpoints(message_parts& parts) {
  auto xs = breakpoints(parts);
  if (xs.size() <= max_breakpoints)
    return;
  if (!parts.tool_ttl.empty()) {
    parts.tool_ttl.clear();
    xs.erase(xs.begin());
  }
  for (; xs.size() > max_breakpoints; xs.pop_back())
    xs.back()->clear();
}

json::object cache_control(std::string_view ttl) {
  json::object result{{"type", "ephemeral"}};
  // 5m is the API's default; 1h has to be asked for.
  if (ttl == "1h")
    result["ttl"] = "1h";
  return result;
}

json::array text_blocks(const std::vector<text_block>& blocks) {
  json::array result;
  for (const auto& block : blocks) {
    json::object x{{"type", "text"}, {"text", block.text}};
    if (!block.ttl.empty())
      x["cache_control"] = cache_control(block.ttl);
    result.push_back(std::move(x));
  }
  return result;
}

/// The JSON body; first makes the breakpoints acceptable to the API.
json::object render(message_parts& parts) {
  drop_misordered(parts);
  cap_breakpoints(parts);
  json::object body;
  body["model"] = parts.model;
  body["max_tokens"] = parts.max_tokens;
  body["temperature"] = parts.temperature;
  if (!parts.system.empty())
    body["system"] = text_blocks(parts.system);
  json::object message{{"role", "user"}, {"content", text_blocks(parts.user)}};
  body["messages"] = json::array{std::move(message)};
  json::object tool{{"name", parts.tool_name},
                    {"description", parts.tool_description},
                    {"input_schema", std::move(parts.tool_schema)}};
  if (!parts.tool_ttl.empty())
    tool["cache_control"] = cache_control(parts.tool_ttl);
  body["tools"] = json::array{std::move(tool)};
  // Forced tool use is how the API gives structured output: the answer is the tool's input.
  body["tool_choice"] = json::object{{"type", "tool"}, {"name", parts.tool_name}};
  if (!parts.user_id.empty())
    body["metadata"] = json::object{{"user_id", parts.user_id}};
  return body;
}

message_parts single_parts(const comparison_request& request, const std::string& model) {
  message_parts parts;
  parts.model = model;
  parts.max_tokens = max_tokens_of(request.overrides);
  parts.temperature = temperature_of(request.overrides);
  lay_out_prompt(request, parts);
  parts.tool_name = wire::single_answer_name;
  parts.tool_description = single_tool_description;
  parts.tool_schema = wire::verdict_schema();
  parts.user_id = request.correlation_id;
  return parts;
}

/// The items share their settings, but if they differ the call takes the largest token
/// budget (it answers for all of them) and the first item's temperature and system prompt.
message_parts multi_parts(const std::vector<multi_item>& items, const std::string& model) {
  static const comparison_request no_request;
  const auto& first = !items.empty() && items.front().request ? *items.front().request : no_request;
  message_parts parts;
  parts.model = model;
  parts.max_tokens = max_tokens_of(first.overrides);
  for (const auto& item : items)
    if (item.request)
      parts.max_tokens = std::max(parts.max_tokens, max_tokens_of(item.request->overrides));
  parts.temperature = temperature_of(first.overrides);
  auto system = wire::system_prompt_of(first);
  std::string instructions = wire::multi_prompt_instructions;
  parts.system.push_back({blank(system) ? instructions : system + "\n\n" + instructions, ""});
  parts.user.push_back({wire::pack_multi_prompt(items), ""});
  parts.tool_name = wire::multi_answer_name;
  parts.tool_description = multi_tool_description;
  parts.tool_schema = wire::multi_verdict_schema();
  return parts;
}

// -- response --

/// The failure an error envelope `{"type":"error","error":{"type","message","details":
/// {"error_code"}}}` describes; a body that is not one (an HTML 502 from a proxy) is
/// classified by its status alone.
wire_response http_error(unsigned status, std::string_view body) {
  std::string type, code, message;
  json::error_code ec;
  auto doc = json::parse(body, ec);
  if (!ec && doc.is_object())
    if (auto* err = wire::object_field(&doc.get_object(), "error")) {
      type = wire::string_field(*err, "type");
      message = wire::string_field(*err, "message");
      // A spent monthly limit is a 429 like a rate limit; only this code tells them apart.
      if (auto* details = wire::object_field(err, "details"))
        code = wire::string_field(*details, "error_code");
    }
  auto verdict = classify(static_cast<int>(status), type, code);
  auto text = "Anthropic HTTP " + std::to_string(status) + ": " + std::string{verdict.reason};
  if (!message.empty())
    text += ": " + wire::quoted(message);
  return wire::failure(verdict.error_code, std::move(text), status,
                       verdict.kind == failure_class::retryable);
}

/// Usage as lps counts it: prompt_tokens is the whole prompt, cache reads and writes
/// included (the API reports them apart from input_tokens), because cost estimation takes
/// the cache reads out of prompt_tokens again.
token_usage usage_of(const json::object* usage) {
  token_usage result;
  result.cache_read_input_tokens = wire::count_field(usage, "cache_read_input_tokens");
  result.cache_creation_input_tokens = wire::count_field(usage, "cache_creation_input_tokens");
  result.prompt_tokens = wire::count_field(usage, "input_tokens") + result.cache_read_input_tokens
                         + result.cache_creation_input_tokens;
  result.completion_tokens = wire::count_field(usage, "output_tokens");
  result.total_tokens = result.prompt_tokens + result.completion_tokens;
  return result;
}

/// The `tool_use` content block named `name`, or nullptr.
const json::object* find_tool_use(const json::array& content, std::string_view name) {
  for (const auto& x : content) {
    auto* block = x.if_object();
    if (block && wire::string_field(*block, "type") == "tool_use"
        && wire::string_field(*block, "name") == name)
      return block;
  }
  return nullptr;
}

/// A 2xx message read up to the input of its forced tool.
struct tool_call {
  /// Set when the message is unusable.
  std::optional<wire_response> failure;
  /// The tool's input when there is no failure.
  json::value input;
  /// Whatever the message reported, failure or not (the tokens were spent).
  token_usage usage;
};

/// Why `message` holds no usable tool input, or nullopt when it does (then stored in
/// `input`).
std::optional<wire_response> take_tool_input(unsigned status, const json::object& message,
                                             std::string_view tool, json::value& input) {
  auto fail = [status](ec code, std::string text) {
    return wire::failure(code, "Anthropic " + std::move(text), status, false);
  };
  auto stop = wire::string_field(message, "stop_reason");
  // Cut off at the token limit: a tool input, if any, is incomplete.
  if (stop == "max_tokens" || stop == "model_context_window_exceeded")
    return fail(ec::parsing_error, "response truncated (stop_reason " + stop + ")");
  if (stop == "refusal") {
    auto verdict = classify(static_cast<int>(status), "content_filter", "");
    return wire::failure(verdict.error_code, "Anthropic refused the content", status,
                         verdict.kind == failure_class::retryable);
  }
  auto* content = wire::array_field(&message, "content");
  if (content == nullptr)
    return fail(ec::parsing_error, "response has no content array");
  auto* block = find_tool_use(*content, tool);
  auto* value = block ? block->if_contains("input") : nullptr;
  if (value == nullptr)
    return fail(ec::parsing_error, "response has no tool_use block named " + std::string{tool});
  input = *value;
  return std::nullopt;
}

tool_call read_tool_call(unsigned status, std::string_view body, std::string_view tool) {
  tool_call result;
  json::error_code ec;
  auto doc = json::parse(body, ec);
  if (ec || !doc.is_object()) {
    result.failure =
        wire::failure(ec::parsing_error, "Anthropic response body is not JSON", status, false);
    return result;
  }
  const auto& message = doc.get_object();
  // Not sent by the API with a 2xx today, but an error envelope must never pass as a message.
  if (wire::string_field(message, "type") == "error") {
    result.failure = http_error(status, body);
    return result;
  }
  result.usage = usage_of(wire::object_field(&message, "usage"));
  result.failure = take_tool_input(status, message, tool, result.input);
  return result;
}

wire_response read_single_body(unsigned status, std::string_view body) {
  if (!wire::is_success(status))
    return http_error(status, body);
  auto call = read_tool_call(status, body, wire::single_answer_name);
  wire_response result;
  if (call.failure)
    result = std::move(*call.failure);
  else if (!call.input.is_object())
    result = wire::failure(ec::parsing_error, "Anthropic tool input is not a JSON object", status,
                           false);
  else if (auto why = wire::check_verdict(call.input.get_object(), result.verdict); !why.empty())
    result = wire::failure(ec::invalid_response, "Anthropic " + why, status, false);
  else
    result.success = true;
  result.usage = call.usage;
  return result;
}

wire_multi_response read_multi_body(unsigned status, std::string_view body) {
  wire_multi_response result;
  if (!wire::is_success(status)) {
    result.call = http_error(status, body);
    return result;
  }
  auto call = read_tool_call(status, body, wire::multi_answer_name);
  if (call.failure) {
    result.call = std::move(*call.failure);
  } else {
    // Missing, repeated or invalid entries are simply absent: the caller retries those ids.
    result.call.success = true;
    result.answers = wire::read_multi_answers(call.input);
  }
  result.call.usage = call.usage;
  return result;
}

/// What every answer carries besides its verdict or error.
void add_call_facts(wire_response& result, unsigned status, const wire_headers& headers,
                    std::chrono::system_clock::time_point now) {
  result.http_status = static_cast<int32_t>(status);
  result.limits = wire::anthropic_rate_limits(headers, now);
  if (!result.success)
    result.retry_after = wire::retry_after_of(headers, now);
}

/// Only allocation failures can get here; report them rather than take down the actor.
wire_response unreadable(unsigned status, const std::exception& ex) {
  return wire::failure(ec::parsing_error,
                       std::string{"Anthropic response unreadable: "} + ex.what(), status, false);
}

} // namespace

std::string build_anthropic_body(const comparison_request& request, const std::string& model) {
  auto parts = single_parts(request, model);
  return json::serialize(render(parts));
}

anthropic_wire::anthropic_wire(std::string version) : version_(std::move(version)) {
  // nop
}

std::string_view anthropic_wire::display_name() const {
  return "Anthropic";
}

std::string_view anthropic_wire::endpoint() const {
  return "/v1/messages";
}

http_client_request anthropic_wire::post(const wire_target& target, std::string body) const {
  http_client_request result;
  result.method = "POST";
  result.url = join_url(target.base_url, endpoint());
  result.headers = {{"x-api-key", target.api_key},
                    {"anthropic-version", version_},
                    {"content-type", "application/json"}};
  result.headers.insert(result.headers.end(), target.extra_headers.begin(),
                        target.extra_headers.end());
  result.body = std::move(body);
  result.timeout = target.timeout;
  return result;
}

http_client_request anthropic_wire::single_call(const wire_target& target,
                                                const comparison_request& request,
                                                const std::string& model) const {
  return post(target, build_anthropic_body(request, model));
}

http_client_request anthropic_wire::multi_call(const wire_target& target,
                                               const std::vector<multi_item>& items,
                                               const std::string& model) const {
  auto parts = multi_parts(items, model);
  return post(target, json::serialize(render(parts)));
}

wire_response anthropic_wire::read_single(unsigned status, std::string_view body,
                                          const wire_headers& headers,
                                          std::chrono::system_clock::time_point now) const {
  try {
    auto result = read_single_body(status, body);
    add_call_facts(result, status, headers, now);
    return result;
  } catch (const std::exception& ex) {
    return unreadable(status, ex);
  }
}

wire_multi_response anthropic_wire::read_multi(unsigned status, std::string_view body,
                                               const wire_headers& headers,
                                               std::chrono::system_clock::time_point now) const {
  try {
    auto result = read_multi_body(status, body);
    add_call_facts(result.call, status, headers, now);
    return result;
  } catch (const std::exception& ex) {
    wire_multi_response result;
    result.call = unreadable(status, ex);
    return result;
  }
}

} // namespace lps
