#include "tools/mock_provider/general_chat.hpp"

#include "runtime/gateway_translate.hpp"

#include <cctype>
#include <set>

namespace lps::mock_general {

namespace json = boost::json;
using mock_wire::dialect;
using mock_wire::invalid;
using mock_wire::provider_error;

namespace {

std::string str(const json::object* o, std::string_view key) {
  const auto* v = o ? o->if_contains(key) : nullptr;
  return v && v->is_string() ? std::string{v->get_string()} : std::string{};
}

const json::object* obj(const json::object* o, std::string_view key) {
  const auto* v = o ? o->if_contains(key) : nullptr;
  return v ? v->if_object() : nullptr;
}

const json::array* arr(const json::object* o, std::string_view key) {
  const auto* v = o ? o->if_contains(key) : nullptr;
  return v ? v->if_array() : nullptr;
}

/// lps's comparison answers are objects with a `winner` (or multi-prompt `results`).
bool is_verdict_schema(const json::object* schema) {
  const auto* props = obj(schema, "properties");
  return props && (props->contains("winner") || props->contains("results"));
}

/// Function and tool names the three APIs accept: ^[a-zA-Z0-9_-]{1,64}$.
bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64)
    return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-')
      return false;
  return true;
}

std::optional<double> number(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_number() ? std::optional{v->to_number<double>()} : std::nullopt;
}

/// OpenAI strict structured output: every object closes its properties and requires each.
std::optional<std::string> strict_schema_problem(const json::value& schema, const std::string& at) {
  const auto* o = schema.if_object();
  if (o == nullptr)
    return std::nullopt;
  if (const auto* props = obj(o, "properties")) {
    const auto* extra = o->if_contains("additionalProperties");
    if (!extra || !extra->is_bool() || extra->get_bool())
      return "In context=" + at
             + ", 'additionalProperties' is required to be supplied and to be false.";
    std::set<std::string> required;
    if (const auto* r = arr(o, "required"))
      for (const auto& x : *r)
        if (x.is_string())
          required.emplace(x.get_string());
    for (const auto& [name, sub] : *props) {
      if (!required.count(std::string{name}))
        return "In context=" + at
               + ", 'required' is required to be supplied and to be an array including every "
                 "key in properties. Missing '"
               + std::string{name} + "'.";
      if (auto p = strict_schema_problem(sub, at + ".properties." + std::string{name}))
        return p;
    }
  }
  if (const auto* items = o->if_contains("items"))
    return strict_schema_problem(*items, at + ".items");
  return std::nullopt;
}

// -- OpenAI and OpenRouter --

std::optional<provider_error> check_chat_tools(dialect d, const json::object& body,
                                               std::set<std::string>& names) {
  if (const auto* tools = arr(&body, "tools"))
    for (size_t i = 0; i < tools->size(); ++i) {
      auto at = "tools[" + std::to_string(i) + "]";
      const auto* t = (*tools)[i].if_object();
      if (str(t, "type") != "function")
        return invalid(d, "Invalid value for '" + at + ".type': expected 'function'.", at + ".type",
                       "invalid_value");
      auto name = str(obj(t, "function"), "name");
      if (!valid_name(name))
        return invalid(d,
                       "Invalid '" + at
                           + ".function.name': string does not match pattern. "
                             "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                       at + ".function.name", "invalid_value");
      names.insert(name);
    }
  if (const auto* choice = obj(&body, "tool_choice")) {
    auto name = str(obj(choice, "function"), "name");
    if (!names.count(name))
      return invalid(d,
                     "Invalid value for 'tool_choice': tool '" + name + "' not found in 'tools'.",
                     "tool_choice", "invalid_value");
  }
  return std::nullopt;
}

std::optional<provider_error> check_chat_turns(dialect d, const json::object& body) {
  std::set<std::string> open_calls;
  const auto& messages = body.at("messages").get_array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto* m = messages[i].if_object();
    auto role = str(m, "role");
    auto at = "messages[" + std::to_string(i) + "]";
    if (role == "tool") {
      auto id = str(m, "tool_call_id");
      if (!open_calls.count(id))
        return invalid(d,
                       "Invalid parameter: messages with role 'tool' must be a response to a "
                       "preceeding message with 'tool_calls'.",
                       at + ".role");
      open_calls.erase(id);
      continue;
    }
    if (!open_calls.empty())
      return invalid(d,
                     "An assistant message with 'tool_calls' must be followed by tool messages "
                     "responding to each 'tool_call_id'. The following tool_call_ids did not "
                     "have response messages: "
                         + *open_calls.begin(),
                     "messages.[" + std::to_string(i) + "].role");
    if (const auto* calls = arr(m, "tool_calls"))
      for (const auto& c : *calls) {
        const auto* co = c.if_object();
        if (str(co, "id").empty() || str(co, "type") != "function"
            || str(obj(co, "function"), "name").empty()
            || !obj(co, "function")->if_contains("arguments")
            || !obj(co, "function")->at("arguments").is_string())
          return invalid(d,
                         "Invalid '" + at
                             + ".tool_calls': each needs id, type 'function' "
                               "and function.name and function.arguments (a string).",
                         at + ".tool_calls", "invalid_value");
        open_calls.insert(str(co, "id"));
      }
  }
  return std::nullopt;
}

std::optional<provider_error> check_chat(dialect d, const json::object& body) {
  if (auto t = number(body, "temperature"); t && (*t < 0 || *t > 2))
    return invalid(d, "Invalid 'temperature': decimal above maximum value. Expected a value <= 2.",
                   "temperature", "decimal_above_max_value");
  std::set<std::string> names;
  if (auto e = check_chat_tools(d, body, names))
    return e;
  if (auto e = check_chat_turns(d, body))
    return e;
  const auto* js = obj(obj(&body, "response_format"), "json_schema");
  const auto* strict = js ? js->if_contains("strict") : nullptr;
  if (strict && strict->is_bool() && strict->get_bool())
    if (auto p = strict_schema_problem(js->at("schema"), "response_format"))
      return invalid(d, "Invalid schema for response_format '" + str(js, "name") + "': " + *p,
                     "response_format", "invalid_value");
  return std::nullopt;
}

// -- Anthropic --

std::optional<provider_error> check_anthropic(const json::object& body) {
  const auto d = dialect::anthropic;
  if (auto t = number(body, "temperature"); t && (*t < 0 || *t > 1))
    return invalid(d, "temperature: range: 0..1");
  if (const auto* tools = arr(&body, "tools"))
    for (size_t i = 0; i < tools->size(); ++i)
      if (!valid_name(str((*tools)[i].if_object(), "name")))
        return invalid(d, "tools." + std::to_string(i)
                              + ".custom.name: String should match pattern "
                                "'^[a-zA-Z0-9_-]{1,128}$'");
  const auto& messages = body.at("messages").get_array();
  if (str(messages.front().if_object(), "role") != "user")
    return invalid(d, "messages: first message must use the \"user\" role");
  std::set<std::string> open_uses;
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto* m = messages[i].if_object();
    const auto* blocks = arr(m, "content");
    std::set<std::string> uses;
    for (size_t j = 0; blocks && j < blocks->size(); ++j) {
      const auto* b = (*blocks)[j].if_object();
      auto at = "messages." + std::to_string(i) + ".content." + std::to_string(j);
      auto type = str(b, "type");
      if (type == "tool_use") {
        if (str(b, "id").empty() || str(b, "name").empty() || !obj(b, "input"))
          return invalid(d, at + ".tool_use: id, name and input (an object) are required");
        uses.insert(str(b, "id"));
      } else if (type == "tool_result") {
        if (!open_uses.count(str(b, "tool_use_id")))
          return invalid(d, at + ": unexpected `tool_use_id` found in `tool_result` blocks: "
                                + str(b, "tool_use_id")
                                + ". Each `tool_result` block must have a corresponding "
                                  "`tool_use` block in the previous message.");
      }
    }
    open_uses = std::move(uses);
  }
  return std::nullopt;
}

// -- Gemini --

std::optional<provider_error> gemini_bad(const std::string& field, const std::string& what) {
  return invalid(dialect::gemini, "* GenerateContentRequest." + field + ": " + what + "\n");
}

std::optional<provider_error> check_gemini(const json::object& body) {
  const auto* config = obj(&body, "generationConfig");
  if (auto t = config ? number(*config, "temperature") : std::nullopt; t && (*t < 0 || *t > 2))
    return gemini_bad("generation_config.temperature", "must be between 0 and 2");
  if (auto mime = str(config, "responseMimeType");
      !mime.empty() && mime != "text/plain" && mime != "application/json" && mime != "text/x.enum")
    return gemini_bad("generation_config.response_mime_type", "unsupported mime type " + mime);
  std::set<std::string> declared;
  if (const auto* tools = arr(&body, "tools"))
    for (const auto& t : *tools)
      if (const auto* fns = arr(t.if_object(), "functionDeclarations"))
        for (const auto& f : *fns) {
          const auto* fo = f.if_object();
          if (!valid_name(str(fo, "name")))
            return gemini_bad("tools[0].function_declarations[0].name",
                              "Invalid function name. Must start with a letter or an underscore.");
          if (fo->contains("parameters") && fo->contains("parametersJsonSchema"))
            return gemini_bad("tools[0].function_declarations[0]",
                              "parameters and parameters_json_schema are mutually exclusive");
          declared.insert(str(fo, "name"));
        }
  if (const auto* fcc = obj(obj(&body, "toolConfig"), "functionCallingConfig")) {
    auto mode = str(fcc, "mode");
    if (mode != "AUTO" && mode != "ANY" && mode != "NONE" && mode != "VALIDATED")
      return gemini_bad("tool_config.function_calling_config.mode", "invalid value " + mode);
    if (fcc->contains("allowedFunctionNames") && mode != "ANY")
      return gemini_bad("tool_config.function_calling_config.allowed_function_names",
                        "allowed_function_names may only be set when mode is ANY");
  }
  std::set<std::string> called;
  for (const auto& c : body.at("contents").get_array())
    if (const auto* parts = arr(c.if_object(), "parts"))
      for (const auto& p : *parts) {
        const auto* po = p.if_object();
        if (const auto* call = obj(po, "functionCall")) {
          if (!declared.count(str(call, "name")))
            return gemini_bad("contents",
                              "function call " + str(call, "name") + " names no declared function");
          called.insert(str(call, "name"));
        }
        if (const auto* response = obj(po, "functionResponse"))
          if (!called.count(str(response, "name")))
            return gemini_bad("contents", "function response " + str(response, "name")
                                              + " answers no earlier function call");
      }
  return std::nullopt;
}

// -- answers --

/// The text of the last user turn, in any dialect.
std::string last_user_text(dialect d, const json::object& body) {
  const auto* list = arr(&body, d == dialect::gemini ? "contents" : "messages");
  if (list == nullptr)
    return "";
  for (auto m = list->rbegin(); m != list->rend(); ++m) {
    const auto* mo = m->if_object();
    if (str(mo, "role") != "user" && !(d == dialect::gemini && str(mo, "role").empty()))
      continue;
    const auto* content = mo->if_contains(d == dialect::gemini ? "parts" : "content");
    if (content && content->is_string())
      return std::string{content->get_string()};
    std::string text;
    if (content && content->is_array())
      for (const auto& part : content->get_array())
        text += str(part.if_object(), "text");
    if (!text.empty())
      return text;
  }
  return "";
}

std::string answer_text(dialect d, const json::object& body) {
  auto asked = last_user_text(d, body);
  if (asked.size() > 200)
    asked.resize(200); // byte cut: the mock's texts are ASCII
  return "Mock answer to: " + asked;
}

/// The tool to call: name and the JSON Schema of its input, or nullopt.
struct tool_call {
  std::string name;
  std::string schema;
};

std::optional<tool_call> chat_tool(const json::object& body) {
  const auto* tools = arr(&body, "tools");
  const auto* messages = arr(&body, "messages");
  if (!tools || tools->empty() || str(messages->back().if_object(), "role") == "tool")
    return std::nullopt;
  const auto* choice = body.if_contains("tool_choice");
  if (choice && choice->is_string() && choice->get_string() == "none")
    return std::nullopt;
  auto wanted = choice && choice->is_object() ? str(obj(&choice->get_object(), "function"), "name")
                                              : std::string{};
  for (const auto& t : *tools) {
    const auto* fn = obj(t.if_object(), "function");
    if (wanted.empty() || str(fn, "name") == wanted)
      return tool_call{str(fn, "name"), fn->contains("parameters")
                                            ? json::serialize(fn->at("parameters"))
                                            : std::string{"{}"}};
  }
  return std::nullopt;
}

std::optional<tool_call> anthropic_tool(const json::object& body) {
  const auto* tools = arr(&body, "tools");
  const auto& messages = body.at("messages").get_array();
  const auto* last = arr(messages.back().if_object(), "content");
  if (!tools || tools->empty() || str(obj(&body, "tool_choice"), "type") == "none")
    return std::nullopt;
  if (last && !last->empty() && str(last->back().if_object(), "type") == "tool_result")
    return std::nullopt;
  auto wanted = str(obj(&body, "tool_choice"), "name");
  for (const auto& t : *tools) {
    const auto* schema = t.if_object() ? t.get_object().if_contains("input_schema") : nullptr;
    if (wanted.empty() || str(t.if_object(), "name") == wanted)
      return tool_call{str(t.if_object(), "name"), schema ? json::serialize(*schema) : "{}"};
  }
  return std::nullopt;
}

std::optional<tool_call> gemini_tool(const json::object& body) {
  const auto* tools = arr(&body, "tools");
  const auto& contents = body.at("contents").get_array();
  const auto* last = arr(contents.back().if_object(), "parts");
  const auto* fcc = obj(obj(&body, "toolConfig"), "functionCallingConfig");
  if (!tools || tools->empty() || str(fcc, "mode") == "NONE")
    return std::nullopt;
  if (last && !last->empty() && obj(last->back().if_object(), "functionResponse"))
    return std::nullopt;
  std::string wanted;
  if (const auto* allowed = arr(fcc, "allowedFunctionNames"); allowed && !allowed->empty())
    wanted = allowed->front().is_string() ? std::string{allowed->front().get_string()} : "";
  for (const auto& t : *tools)
    if (const auto* fns = arr(t.if_object(), "functionDeclarations"))
      for (const auto& f : *fns) {
        const auto* fo = f.if_object();
        if (!wanted.empty() && str(fo, "name") != wanted)
          continue;
        const auto* schema = fo->contains("parametersJsonSchema")
                                 ? fo->if_contains("parametersJsonSchema")
                                 : fo->if_contains("parameters");
        return tool_call{str(fo, "name"), schema ? json::serialize(*schema) : "{}"};
      }
  return std::nullopt;
}

json::value parsed(const std::string& text) {
  return json::parse(text);
}

std::string render_chat(const json::object& body, const std::string& model, const std::string& id,
                        uint64_t input_tokens, int64_t created, uint64_t& output_tokens) {
  json::object message{{"role", "assistant"}, {"content", nullptr}, {"refusal", nullptr}};
  std::string finish = "stop";
  std::string produced;
  if (auto tool = chat_tool(body)) {
    produced = example_json_for_schema(tool->schema);
    message["tool_calls"] = json::array{
        json::object{{"id", "call_" + id.substr(id.size() > 24 ? id.size() - 24 : 0)},
                     {"type", "function"},
                     {"function", json::object{{"name", tool->name}, {"arguments", produced}}}}};
    finish = "tool_calls";
  } else if (const auto* js = obj(obj(&body, "response_format"), "json_schema")) {
    produced = example_json_for_schema(json::serialize(js->at("schema")));
    message["content"] = produced;
  } else if (str(obj(&body, "response_format"), "type") == "json_object") {
    produced = json::serialize(json::object{{"answer", answer_text(dialect::openai, body)}});
    message["content"] = produced;
  } else {
    produced = answer_text(dialect::openai, body);
    message["content"] = produced;
  }
  output_tokens = mock_wire::estimate_tokens(produced.size());
  return json::serialize(
      json::object{{"id", id},
                   {"object", "chat.completion"},
                   {"created", created},
                   {"model", model},
                   {"choices", json::array{json::object{{"index", 0},
                                                        {"message", std::move(message)},
                                                        {"logprobs", nullptr},
                                                        {"finish_reason", finish}}}},
                   {"usage", json::object{{"prompt_tokens", input_tokens},
                                          {"completion_tokens", output_tokens},
                                          {"total_tokens", input_tokens + output_tokens}}}});
}

std::string render_anthropic(const json::object& body, const std::string& model,
                             const std::string& id, uint64_t input_tokens,
                             uint64_t& output_tokens) {
  json::array content;
  std::string stop = "end_turn";
  std::string produced;
  if (auto tool = anthropic_tool(body)) {
    produced = example_json_for_schema(tool->schema);
    content.push_back(
        json::object{{"type", "tool_use"},
                     {"id", "toolu_" + id.substr(id.size() > 24 ? id.size() - 24 : 0)},
                     {"name", tool->name},
                     {"input", parsed(produced)}});
    stop = "tool_use";
  } else {
    produced = answer_text(dialect::anthropic, body);
    content.push_back(json::object{{"type", "text"}, {"text", produced}});
  }
  output_tokens = mock_wire::estimate_tokens(produced.size());
  return json::serialize(json::object{
      {"id", id},
      {"type", "message"},
      {"role", "assistant"},
      {"model", model},
      {"content", std::move(content)},
      {"stop_reason", stop},
      {"stop_sequence", nullptr},
      {"usage", json::object{{"input_tokens", input_tokens}, {"output_tokens", output_tokens}}}});
}

std::string render_gemini(const json::object& body, const std::string& model, const std::string& id,
                          uint64_t input_tokens, uint64_t& output_tokens) {
  json::array parts;
  std::string produced;
  const auto* config = obj(&body, "generationConfig");
  const auto* schema =
      config ? (config->contains("responseJsonSchema") ? config->if_contains("responseJsonSchema")
                                                       : config->if_contains("responseSchema"))
             : nullptr;
  if (auto tool = gemini_tool(body)) {
    produced = example_json_for_schema(tool->schema);
    parts.push_back(json::object{
        {"functionCall", json::object{{"name", tool->name}, {"args", parsed(produced)}}}});
  } else if (schema) {
    produced = example_json_for_schema(json::serialize(*schema));
    parts.push_back(json::object{{"text", produced}});
  } else if (str(config, "responseMimeType") == "application/json") {
    produced = json::serialize(json::object{{"answer", answer_text(dialect::gemini, body)}});
    parts.push_back(json::object{{"text", produced}});
  } else {
    produced = answer_text(dialect::gemini, body);
    parts.push_back(json::object{{"text", produced}});
  }
  output_tokens = mock_wire::estimate_tokens(produced.size());
  return json::serialize(json::object{
      {"candidates",
       json::array{json::object{{"content", json::object{{"role", "model"}, {"parts", parts}}},
                                {"finishReason", "STOP"},
                                {"index", 0}}}},
      {"usageMetadata", json::object{{"promptTokenCount", input_tokens},
                                     {"candidatesTokenCount", output_tokens},
                                     {"totalTokenCount", input_tokens + output_tokens}}},
      {"modelVersion", model},
      {"responseId", id}});
}

} // namespace

bool is_general(dialect d, const json::object& body) {
  switch (d) {
  case dialect::openai:
  case dialect::openrouter: {
    if (const auto* tools = arr(&body, "tools"); tools && !tools->empty())
      return true;
    const auto* format = obj(&body, "response_format");
    auto type = str(format, "type");
    if (type == "json_object") // how lps asks OpenRouter for a verdict
      return false;
    return type != "json_schema" || !is_verdict_schema(obj(obj(format, "json_schema"), "schema"));
  }
  case dialect::anthropic: {
    if (const auto* tools = arr(&body, "tools"))
      for (const auto& t : *tools)
        if (is_verdict_schema(obj(t.if_object(), "input_schema")))
          return false;
    return true;
  }
  case dialect::gemini: {
    const auto* config = obj(&body, "generationConfig");
    return !is_verdict_schema(obj(config, "responseSchema"))
           && !is_verdict_schema(obj(config, "responseJsonSchema"));
  }
  }
  return true;
}

std::optional<provider_error> check(dialect d, const json::object& body) {
  switch (d) {
  case dialect::openai:
  case dialect::openrouter:
    return check_chat(d, body);
  case dialect::anthropic:
    return check_anthropic(body);
  case dialect::gemini:
    return check_gemini(body);
  }
  return std::nullopt;
}

std::string render(dialect d, const json::object& body, const std::string& model,
                   const std::string& id, uint64_t input_tokens, int64_t created,
                   uint64_t& output_tokens) {
  switch (d) {
  case dialect::openai:
  case dialect::openrouter:
    return render_chat(body, model, id, input_tokens, created, output_tokens);
  case dialect::anthropic:
    return render_anthropic(body, model, id, input_tokens, output_tokens);
  case dialect::gemini:
    return render_gemini(body, model, id, input_tokens, output_tokens);
  }
  return "{}";
}

} // namespace lps::mock_general
