// OpenAI chat.completion <-> Gemini generateContent (docs/gateway.md, "Translation"). Tool
// results are matched to their function by the tool_call_id of the assistant turn that called
// it, because Gemini names function responses, not call ids.

#include "runtime/gateway_wire.hpp"

#include "actors/providers/wire_common.hpp"
#include "runtime/url.hpp"

#include <map>

namespace lps::gateway_wire {

namespace {

json::object text_part(std::string text) {
  return json::object{{"text", std::move(text)}};
}

void add_content(json::array& contents, const char* role, json::array parts) {
  if (parts.empty())
    return;
  if (!contents.empty() && text_of(contents.back().if_object(), "role") == role) {
    auto& existing = contents.back().get_object()["parts"].get_array();
    for (auto& p : parts)
      existing.push_back(std::move(p));
    return;
  }
  contents.push_back(json::object{{"role", role}, {"parts", std::move(parts)}});
}

json::array gemini_tools(const json::object& body) {
  json::array declarations;
  if (const auto* tools = wire::array_field(&body, "tools"))
    for (const auto& t : *tools) {
      const auto* fn = wire::object_field(t.if_object(), "function");
      json::object d{{"name", text_of(fn, "name")}};
      if (auto desc = text_of(fn, "description"); !desc.empty())
        d["description"] = desc;
      if (const auto* params = fn ? fn->if_contains("parameters") : nullptr)
        d["parametersJsonSchema"] = *params;
      declarations.push_back(std::move(d));
    }
  if (declarations.empty())
    return {};
  return json::array{json::object{{"functionDeclarations", std::move(declarations)}}};
}

json::object tool_config(const json::value& choice) {
  json::object config;
  if (const auto* s = choice.if_string())
    config["mode"] = *s == "required" ? "ANY" : *s == "none" ? "NONE" : "AUTO";
  else {
    config["mode"] = "ANY";
    config["allowedFunctionNames"] =
        json::array{text_of(wire::object_field(choice.if_object(), "function"), "name")};
  }
  return json::object{{"functionCallingConfig", std::move(config)}};
}

json::object generation_config(const json::object& body) {
  json::object config;
  if (const auto* t = body.if_contains("temperature"); t && t->is_number())
    config["temperature"] = *t;
  if (const auto* p = body.if_contains("top_p"); p && p->is_number())
    config["topP"] = *p;
  if (auto max = max_tokens_of(body); max > 0)
    config["maxOutputTokens"] = max;
  if (const auto* stop = body.if_contains("stop"); stop && !stop->is_null())
    config["stopSequences"] = stop->is_string() ? json::value(json::array{*stop}) : *stop;
  if (const auto* schema = response_schema(body)) {
    config["responseMimeType"] = "application/json";
    config["responseJsonSchema"] = *schema;
  } else if (text_of(wire::object_field(&body, "response_format"), "type") == "json_object") {
    config["responseMimeType"] = "application/json";
  }
  return config;
}

} // namespace

gateway_upstream gemini_request(const gateway_target& target, const json::object& body,
                                const std::string& model) {
  std::string system;
  json::array contents;
  std::map<std::string, std::string> function_of_call; // tool_call_id -> function name
  for (const auto& v : body.at("messages").get_array()) {
    const auto& m = v.get_object();
    auto role = text_of(&m, "role");
    auto text = content_text(m.if_contains("content"));
    if (role == "system" || role == "developer") {
      system += (system.empty() ? "" : "\n\n") + text;
      continue;
    }
    json::array parts;
    if (role == "tool") {
      auto id = text_of(&m, "tool_call_id");
      auto fn = function_of_call.find(id);
      if (fn == function_of_call.end())
        return untranslatable("tool_call_id '" + wire::quoted(id)
                                  + "' answers no earlier assistant tool call",
                              "messages");
      parts.push_back(json::object{
          {"functionResponse",
           json::object{{"name", fn->second}, {"response", json::object{{"content", text}}}}}});
      add_content(contents, "user", std::move(parts));
      continue;
    }
    if (!text.empty())
      parts.push_back(text_part(text));
    if (const auto* calls = m.if_contains("tool_calls"); calls && calls->is_array())
      for (const auto& c : calls->get_array()) {
        const auto* fn = wire::object_field(c.if_object(), "function");
        boost::system::error_code ec;
        auto args = json::parse(text_of(fn, "arguments"), ec);
        if (ec || !args.is_object())
          return untranslatable("Gemini takes tool call arguments that are a JSON object only",
                                "messages");
        function_of_call[text_of(c.if_object(), "id")] = text_of(fn, "name");
        parts.push_back(json::object{
            {"functionCall", json::object{{"name", text_of(fn, "name")}, {"args", args}}}});
      }
    add_content(contents, role == "assistant" ? "model" : "user", std::move(parts));
  }
  if (contents.empty())
    return untranslatable("Gemini needs at least one user or assistant message", "messages");
  json::object out{{"contents", std::move(contents)}};
  if (!system.empty())
    out["systemInstruction"] = json::object{{"parts", json::array{text_part(system)}}};
  if (auto config = generation_config(body); !config.empty())
    out["generationConfig"] = std::move(config);
  if (auto tools = gemini_tools(body); !tools.empty())
    out["tools"] = std::move(tools);
  if (const auto* choice = body.if_contains("tool_choice"); choice && !choice->is_null())
    out["toolConfig"] = tool_config(*choice);
  auto segment = std::string_view{model}.starts_with("models/") ? model.substr(7) : model;
  gateway_upstream u;
  u.request.url = join_url(target.base_url,
                           "/v1beta/models/" + wire::path_segment(segment) + ":generateContent");
  // The header, not the ?key= parameter: URLs are logged, headers are not.
  u.request.headers = {{"x-goog-api-key", target.api_key}, {"content-type", "application/json"}};
  u.request.body = json::serialize(out);
  u.request.timeout = target.timeout;
  return u;
}

gateway_result gemini_read(unsigned status, std::string_view body, const gateway_headers& headers,
                           const std::string& model, std::chrono::system_clock::time_point now) {
  auto doc = parse_object(body);
  if (!wire::is_success(status)) {
    const auto* err = wire::object_field(&doc, "error");
    return upstream_error("Gemini", status, text_of(err, "status"), text_of(err, "message"),
                          headers, now);
  }
  const auto* candidates = wire::array_field(&doc, "candidates");
  chat_answer a;
  a.id = "chatcmpl-" + text_of(&doc, "responseId");
  a.created = unix_seconds(now);
  const auto* usage = wire::object_field(&doc, "usageMetadata");
  a.prompt_tokens = wire::count_field(usage, "promptTokenCount");
  a.completion_tokens = wire::count_field(usage, "candidatesTokenCount")
                        + wire::count_field(usage, "thoughtsTokenCount");
  if (candidates == nullptr || candidates->empty()) {
    if (wire::object_field(&doc, "promptFeedback") == nullptr)
      return unreadable("Gemini", "no candidates in a 2xx answer");
    a.finish_reason = "content_filter"; // the prompt itself was blocked
    return completion(a, model);
  }
  const auto* first = candidates->front().if_object();
  const auto* parts = wire::array_field(wire::object_field(first, "content"), "parts");
  if (parts != nullptr)
    for (const auto& p : *parts) {
      const auto* po = p.if_object();
      if (const auto* call = wire::object_field(po, "functionCall")) {
        auto id = text_of(call, "id");
        a.tool_calls.push_back(json::object{
            {"id", id.empty() ? "call_" + std::to_string(a.tool_calls.size() + 1) : id},
            {"type", "function"},
            {"function", json::object{{"name", text_of(call, "name")},
                                      {"arguments", json::serialize(call->contains("args")
                                                                        ? call->at("args")
                                                                        : json::object{})}}}});
      } else if (!po || !po->contains("thought")) {
        a.text += text_of(po, "text");
      }
    }
  auto reason = text_of(first, "finishReason");
  a.finish_reason = reason == "MAX_TOKENS"               ? "length"
                    : !a.tool_calls.empty()              ? "tool_calls"
                    : reason == "STOP" || reason.empty() ? "stop"
                                                         : "content_filter";
  return completion(a, model);
}

} // namespace lps::gateway_wire
