// OpenAI chat.completion <-> Anthropic Messages (docs/gateway.md, "Translation"). A
// json_schema response_format becomes a forced tool of that name whose input is the answer
// (the way lps's own comparisons ask Anthropic for structured output), read back as the
// message content.

#include "runtime/gateway_wire.hpp"

#include "actors/providers/wire_common.hpp"
#include "runtime/url.hpp"

#include <algorithm>

namespace lps::gateway_wire {

namespace {

constexpr std::string_view anthropic_version = "2023-06-01";
constexpr uint64_t default_max_tokens = 4096;

json::array text_blocks(const json::value* content) {
  json::array out;
  if (content == nullptr)
    return out;
  if (const auto* s = content->if_string()) {
    if (!s->empty())
      out.push_back(json::object{{"type", "text"}, {"text", *s}});
    return out;
  }
  if (const auto* parts = content->if_array())
    for (const auto& p : *parts)
      if (auto text = text_of(p.if_object(), "text"); !text.empty())
        out.push_back(json::object{{"type", "text"}, {"text", text}});
  return out;
}

/// Appends a turn, merging it into the previous one of the same role (Anthropic wants the
/// tool results of one assistant turn in one user message).
void add_turn(json::array& messages, const char* role, json::array blocks) {
  if (blocks.empty())
    return;
  if (!messages.empty() && text_of(messages.back().if_object(), "role") == role) {
    auto& content = messages.back().get_object()["content"].get_array();
    for (auto& b : blocks)
      content.push_back(std::move(b));
    return;
  }
  messages.push_back(json::object{{"role", role}, {"content", std::move(blocks)}});
}

/// An assistant turn's tool calls as tool_use blocks; nullopt when an argument string is not
/// a JSON object (Anthropic takes objects only).
std::optional<std::string> add_tool_uses(const json::object& m, json::array& blocks,
                                         const std::string& at) {
  const auto* calls = m.if_contains("tool_calls");
  if (calls == nullptr || !calls->is_array())
    return std::nullopt;
  for (size_t i = 0; i < calls->get_array().size(); ++i) {
    const auto& c = calls->get_array()[i].get_object();
    const auto* fn = wire::object_field(&c, "function");
    boost::system::error_code ec;
    auto input = json::parse(text_of(fn, "arguments"), ec);
    if (ec || !input.is_object())
      return at + ".tool_calls[" + std::to_string(i) + "].function.arguments";
    blocks.push_back(json::object{{"type", "tool_use"},
                                  {"id", text_of(&c, "id")},
                                  {"name", text_of(fn, "name")},
                                  {"input", std::move(input)}});
  }
  return std::nullopt;
}

json::array anthropic_tools(const json::object& body) {
  json::array out;
  if (const auto* tools = wire::array_field(&body, "tools"))
    for (const auto& t : *tools) {
      const auto* fn = wire::object_field(t.if_object(), "function");
      json::object tool{{"name", text_of(fn, "name")}};
      if (auto d = text_of(fn, "description"); !d.empty())
        tool["description"] = d;
      const auto* params = fn ? fn->if_contains("parameters") : nullptr;
      tool["input_schema"] =
          params && params->is_object()
              ? *params
              : json::value(json::object{{"type", "object"}, {"properties", json::object{}}});
      out.push_back(std::move(tool));
    }
  return out;
}

json::value anthropic_tool_choice(const json::value& choice) {
  if (const auto* s = choice.if_string()) {
    if (*s == "required")
      return json::object{{"type", "any"}};
    return json::object{{"type", *s}}; // "auto" and "none" are the same words
  }
  return json::object{
      {"type", "tool"},
      {"name", text_of(wire::object_field(choice.if_object(), "function"), "name")}};
}

} // namespace

gateway_upstream anthropic_request(const gateway_target& target, const json::object& body,
                                   const std::string& model) {
  std::string system;
  json::array messages;
  const auto& list = body.at("messages").get_array();
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& m = list[i].get_object();
    auto role = text_of(&m, "role");
    auto at = "messages[" + std::to_string(i) + "]";
    if (role == "system" || role == "developer") {
      auto text = content_text(m.if_contains("content"));
      system += (system.empty() ? "" : "\n\n") + text;
    } else if (role == "tool") {
      add_turn(messages, "user",
               json::array{json::object{{"type", "tool_result"},
                                        {"tool_use_id", text_of(&m, "tool_call_id")},
                                        {"content", content_text(m.if_contains("content"))}}});
    } else {
      auto blocks = text_blocks(m.if_contains("content"));
      if (role == "assistant")
        if (auto bad = add_tool_uses(m, blocks, at))
          return untranslatable("Anthropic takes tool call arguments that are a JSON object only",
                                *bad);
      add_turn(messages, role == "assistant" ? "assistant" : "user", std::move(blocks));
    }
  }
  if (messages.empty() || text_of(messages.front().if_object(), "role") != "user")
    return untranslatable("Anthropic needs the first non-system message to be a user message",
                          "messages");
  auto max_tokens = max_tokens_of(body);
  json::object out{{"model", model},
                   {"max_tokens", max_tokens > 0 ? max_tokens : default_max_tokens},
                   {"messages", std::move(messages)}};
  if (!system.empty())
    out["system"] = system;
  // Anthropic's temperature runs 0..1, OpenAI's 0..2: higher values are capped at 1.
  if (const auto* t = body.if_contains("temperature"); t && t->is_number())
    out["temperature"] = std::min(1.0, t->to_number<double>());
  if (const auto* p = body.if_contains("top_p"); p && p->is_number())
    out["top_p"] = *p;
  if (const auto* stop = body.if_contains("stop"); stop && !stop->is_null())
    out["stop_sequences"] = stop->is_string() ? json::value(json::array{*stop}) : *stop;
  auto tools = anthropic_tools(body);
  if (const auto* schema = response_schema(body)) {
    auto name = response_schema_name(body);
    tools.push_back(json::object{{"name", name},
                                 {"description", "Give the answer in this structured form."},
                                 {"input_schema", *schema}});
    out["tool_choice"] = json::object{{"type", "tool"}, {"name", name}};
  } else if (const auto* choice = body.if_contains("tool_choice"); choice && !choice->is_null()) {
    out["tool_choice"] = anthropic_tool_choice(*choice);
  }
  if (!tools.empty())
    out["tools"] = std::move(tools);
  gateway_upstream u;
  u.request.url = join_url(target.base_url, "/v1/messages");
  u.request.headers = {{"x-api-key", target.api_key},
                       {"anthropic-version", std::string{anthropic_version}},
                       {"content-type", "application/json"}};
  u.request.body = json::serialize(out);
  u.request.timeout = target.timeout;
  return u;
}

gateway_result anthropic_read(unsigned status, std::string_view body,
                              const gateway_headers& headers, const json::object& request,
                              const std::string& model, std::chrono::system_clock::time_point now) {
  auto doc = parse_object(body);
  if (!wire::is_success(status)) {
    const auto* err = wire::object_field(&doc, "error");
    return upstream_error("Anthropic", status, text_of(err, "type"), text_of(err, "message"),
                          headers, now);
  }
  const auto* content = wire::array_field(&doc, "content");
  if (content == nullptr)
    return unreadable("Anthropic", "no content in a 2xx answer");
  chat_answer a;
  a.id = text_of(&doc, "id");
  a.created = unix_seconds(now);
  // The json_schema answer comes as a call of the tool named after the schema.
  auto schema_tool = response_schema(request) ? response_schema_name(request) : std::string{};
  for (const auto& block : *content) {
    const auto* b = block.if_object();
    auto type = text_of(b, "type");
    if (type == "text")
      a.text += text_of(b, "text");
    else if (type == "tool_use" && !schema_tool.empty() && text_of(b, "name") == schema_tool)
      a.text = json::serialize(b->at("input"));
    else if (type == "tool_use")
      a.tool_calls.push_back(json::object{
          {"id", text_of(b, "id")},
          {"type", "function"},
          {"function",
           json::object{{"name", text_of(b, "name")},
                        {"arguments", json::serialize(b->contains("input") ? b->at("input")
                                                                           : json::object{})}}}});
  }
  auto stop = text_of(&doc, "stop_reason");
  a.finish_reason = stop == "max_tokens"                          ? "length"
                    : stop == "tool_use" && !a.tool_calls.empty() ? "tool_calls"
                    : stop == "refusal"                           ? "content_filter"
                                                                  : "stop";
  const auto* usage = wire::object_field(&doc, "usage");
  a.prompt_tokens = wire::count_field(usage, "input_tokens")
                    + wire::count_field(usage, "cache_read_input_tokens")
                    + wire::count_field(usage, "cache_creation_input_tokens");
  a.completion_tokens = wire::count_field(usage, "output_tokens");
  return completion(a, model);
}

} // namespace lps::gateway_wire
