#pragma once

// Requests and answers of the four provider dialects: validation the way each real API does
// it, the deterministic judgement, and the 200 bodies (good or deliberately broken). No state
// lives here (counters, faults, caches and the clock belong to mock_provider_server.cpp, the
// only includer), so every function maps a request or a decision to bytes.

#include "tools/mock_provider/mock_provider_wire.hpp"

#include "runtime/ids.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <memory>
#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lps::mock_wire {

// -- requests --------------------------------------------------------------------------------

/// One Anthropic cache_control breakpoint: the prefix up to and including its block.
struct cache_breakpoint {
  /// Hash of model and prefix text: the simulated cache's key.
  uint64_t key = 0;
  uint64_t tokens = 0;
  bool one_hour = false;
};

/// What the answer needs from a valid request.
struct parsed_call {
  std::string model;
  /// The text of the user turns, joined by blank lines: the judgement hash input.
  std::string prompt;
  /// Anthropic: the forced tool's name (else the first tool's, else comparison_result).
  std::string tool_name = "comparison_result";
  uint64_t prompt_tokens = 0;
  /// Anthropic only, in tools, system, messages order.
  std::vector<cache_breakpoint> breakpoints;
  /// Multi-prompt: the answer schema asks for a `results` array, one entry per
  /// `<comparison id="...">` block of the prompt (id, text), judged one by one.
  bool multi = false;
  std::vector<std::pair<std::string, std::string>> comparisons;
  /// A general chat call (not a comparison; tools/mock_provider/general_chat): its body.
  std::shared_ptr<const json::object> general;
};

/// Whether an answer schema (JSON Schema or Gemini Schema) asks for `results`: lps's
/// multi-prompt answer shape.
inline bool asks_for_results(const json::value* schema) {
  const auto* o = schema ? schema->if_object() : nullptr;
  const auto* props = o ? o->if_contains("properties") : nullptr;
  return props && props->is_object() && props->get_object().contains("results");
}

/// The `<comparison id="ID">\nTEXT\n</comparison>` blocks of a multi-prompt, in order.
inline std::vector<std::pair<std::string, std::string>> split_comparisons(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  constexpr std::string_view open = "<comparison id=\"", close = "</comparison>";
  size_t pos = 0;
  while ((pos = text.find(open, pos)) != std::string_view::npos) {
    auto id_end = text.find("\">", pos + open.size());
    auto end = id_end == std::string_view::npos ? id_end : text.find(close, id_end);
    if (end == std::string_view::npos)
      break;
    auto id = text.substr(pos + open.size(), id_end - pos - open.size());
    auto body = text.substr(id_end + 2, end - id_end - 2);
    if (body.starts_with('\n'))
      body.remove_prefix(1);
    if (body.ends_with('\n'))
      body.remove_suffix(1);
    out.emplace_back(std::string(id), std::string(body));
    pos = end + close.size();
  }
  return out;
}

/// Marks a call as multi-prompt when its answer schema asks for `results`.
inline void note_multi(parsed_call& call, const json::value* schema) {
  if (!asks_for_results(schema))
    return;
  call.multi = true;
  call.comparisons = split_comparisons(call.prompt);
}

inline void append_turn(std::string& prompt, std::string_view text) {
  if (!prompt.empty())
    prompt += "\n\n";
  prompt += text;
}

/// Text of an OpenAI message content (a string or an array of parts); nullopt if malformed.
inline std::optional<std::string> chat_content_text(const json::value& content) {
  if (const auto* s = content.if_string())
    return std::string(view(*s));
  const auto* parts = content.if_array();
  if (!parts)
    return std::nullopt;
  std::string out;
  for (const auto& p : *parts) {
    const auto* po = p.if_object();
    if (!po || !string_at(*po, "type"))
      return std::nullopt;
    if (view(*string_at(*po, "type")) != "text")
      continue;
    const auto* t = string_at(*po, "text");
    if (!t)
      return std::nullopt;
    out += view(*t);
  }
  return out;
}

inline bool contains_json_word(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text.find("json") != std::string::npos;
}

inline std::optional<provider_error> check_response_format(dialect d, const json::value& rf) {
  const auto* o = rf.if_object();
  if (!o)
    return invalid(d, "Invalid type for 'response_format': expected an object.", "response_format",
                   "invalid_type");
  const auto* type = string_at(*o, "type");
  if (!type)
    return invalid(d, "Missing required parameter: 'response_format.type'.", "response_format.type",
                   "missing_required_parameter");
  auto t = view(*type);
  if (t == "json_object" || t == "text")
    return std::nullopt;
  if (t != "json_schema")
    return invalid(d,
                   "Invalid value: '" + std::string(t)
                       + "'. Supported values are: 'json_object', 'json_schema', and 'text'.",
                   "response_format.type", "invalid_value");
  const auto* js = o->if_contains("json_schema");
  if (!js || !js->is_object())
    return invalid(d, "Missing required parameter: 'response_format.json_schema'.",
                   "response_format.json_schema", "missing_required_parameter");
  for (const char* key : {"name", "schema"}) {
    if (!js->get_object().if_contains(key))
      return invalid(
          d, std::string("Missing required parameter: 'response_format.json_schema.") + key + "'.",
          std::string("response_format.json_schema.") + key, "missing_required_parameter");
  }
  return std::nullopt;
}

/// The rules the gpt-5 (reasoning) family enforces on sampling and length parameters.
inline std::optional<provider_error> check_gpt5(const json::object& body) {
  if (const auto* t = body.if_contains("temperature")) {
    auto v = number_of(*t);
    if (v && *v != 1.0)
      return invalid(dialect::openai,
                     "Unsupported value: 'temperature' does not support " + json::serialize(*t)
                         + " with this model. Only the default (1) value is supported.",
                     "temperature", "unsupported_value");
  }
  if (body.contains("max_tokens"))
    return invalid(dialect::openai,
                   "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                   "'max_completion_tokens' instead.",
                   "max_tokens", "unsupported_parameter");
  return std::nullopt;
}

inline std::optional<provider_error> check_chat_message(dialect d, const json::value& m, size_t i,
                                                        parsed_call& call, std::string& all_text) {
  auto at = "messages[" + std::to_string(i) + "]";
  const auto* mo = m.if_object();
  if (!mo)
    return invalid(d, "Invalid type for '" + at + "': expected an object.", at, "invalid_type");
  const auto* role = string_at(*mo, "role");
  if (!role)
    return invalid(d, "Missing required parameter: '" + at + ".role'.", at + ".role",
                   "missing_required_parameter");
  auto r = view(*role);
  if (r != "system" && r != "developer" && r != "user" && r != "assistant" && r != "tool")
    return invalid(d,
                   "Invalid value: '" + std::string(r)
                       + "'. Supported values are: 'system', 'assistant', 'user', 'function', "
                         "'tool', and 'developer'.",
                   at + ".role", "invalid_value");
  const auto* content = mo->if_contains("content");
  // Only an assistant turn carrying tool calls may leave the content out.
  if (!content || content->is_null()) {
    if (r == "assistant" && mo->contains("tool_calls"))
      return std::nullopt;
    return invalid(d, "Missing required parameter: '" + at + ".content'.", at + ".content",
                   "missing_required_parameter");
  }
  auto text = chat_content_text(*content);
  if (!text)
    return invalid(d,
                   "Invalid type for '" + at
                       + ".content': expected a string or an array "
                         "of content parts.",
                   at + ".content", "invalid_type");
  all_text += *text;
  if (r == "user")
    append_turn(call.prompt, *text);
  return std::nullopt;
}

/// OpenAI and OpenRouter chat completions.
inline std::optional<provider_error> validate_chat(dialect d, const json::object& body,
                                                   parsed_call& call) {
  const auto* model = string_at(body, "model");
  if (!model || model->empty())
    return invalid(d, "you must provide a model parameter");
  call.model = std::string(view(*model));
  const auto* messages = body.if_contains("messages");
  if (!messages)
    return invalid(d, "Missing required parameter: 'messages'.", "messages",
                   "missing_required_parameter");
  const auto* list = messages->if_array();
  if (!list)
    return invalid(d, "Invalid type for 'messages': expected an array of objects.", "messages",
                   "invalid_type");
  if (list->empty())
    return invalid(d,
                   "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                   "but got an empty array instead.",
                   "messages", "empty_array");
  std::string all_text;
  for (size_t i = 0; i < list->size(); ++i)
    if (auto e = check_chat_message(d, (*list)[i], i, call, all_text))
      return e;
  if (const auto* rf = body.if_contains("response_format"); rf && !rf->is_null()) {
    if (auto e = check_response_format(d, *rf))
      return e;
    const auto* type = string_at(rf->get_object(), "type");
    if (view(*type) == "json_object" && !contains_json_word(all_text))
      return invalid(d,
                     "'messages' must contain the word 'json' in some form, to use "
                     "'response_format' of type 'json_object'.",
                     "messages");
    if (const auto* js = rf->get_object().if_contains("json_schema"); js && js->is_object())
      note_multi(call, js->get_object().if_contains("schema"));
  }
  // OpenRouter normalises parameters per upstream model instead of rejecting them.
  if (d == dialect::openai && call.model.rfind("gpt-5", 0) == 0)
    if (auto e = check_gpt5(body))
      return e;
  call.prompt_tokens = estimate_tokens(all_text.size()) + 3 * list->size();
  return std::nullopt;
}

/// Collects Anthropic text, checks cache_control and records breakpoints, in request order.
class anthropic_walk {
public:
  anthropic_walk(parsed_call& call) : call_(call) {}

  /// Adds one block's text; checks its cache_control (if any) at `path`.
  std::optional<provider_error> block(const json::object* o, std::string_view text,
                                      const std::string& path) {
    prefix_ += text;
    const auto* cc = o ? o->if_contains("cache_control") : nullptr;
    if (!cc || cc->is_null())
      return std::nullopt;
    const auto* cco = cc->if_object();
    const auto* type = cco ? string_at(*cco, "type") : nullptr;
    if (!type || view(*type) != "ephemeral")
      return invalid(dialect::anthropic, path + ".cache_control.type: Input should be 'ephemeral'");
    const auto* ttl = string_at(*cco, "ttl");
    bool one_hour = ttl && view(*ttl) == "1h";
    if (ttl && !one_hour && view(*ttl) != "5m")
      return invalid(dialect::anthropic, path + ".cache_control.ttl: Input should be '5m' or '1h'");
    if (one_hour && seen_five_minutes_)
      return invalid(dialect::anthropic,
                     path
                         + ": a ttl='1h' cache_control block must not come after a ttl='5m' "
                           "cache_control block. Note that blocks are processed in the "
                           "following order: `tools`, `system`, `messages`.");
    seen_five_minutes_ = seen_five_minutes_ || !one_hour;
    call_.breakpoints.push_back(
        {stable_hash(call_.model + '\n' + prefix_), estimate_tokens(prefix_.size()), one_hour});
    return std::nullopt;
  }

  size_t chars() const {
    return prefix_.size();
  }

private:
  parsed_call& call_;
  std::string prefix_;
  bool seen_five_minutes_ = false;
};

inline std::optional<provider_error> anthropic_tools(const json::object& body, anthropic_walk& walk,
                                                     std::vector<std::string>& names) {
  const auto* tools = body.if_contains("tools");
  if (!tools || tools->is_null())
    return std::nullopt;
  if (!tools->is_array())
    return invalid(dialect::anthropic, "tools: Input should be a valid list");
  const auto& list = tools->get_array();
  for (size_t i = 0; i < list.size(); ++i) {
    auto at = "tools." + std::to_string(i);
    const auto* t = list[i].if_object();
    if (!t)
      return invalid(dialect::anthropic, at + ": Input should be a valid dictionary");
    const auto* name = string_at(*t, "name");
    if (!name)
      return invalid(dialect::anthropic, at + ".name: Field required");
    // Server tools (web search, ...) carry a versioned type and no schema of ours.
    const auto* type = string_at(*t, "type");
    bool custom = !type || view(*type) == "custom";
    if (custom && !(t->if_contains("input_schema") && t->at("input_schema").is_object()))
      return invalid(dialect::anthropic, at + ".input_schema: Field required");
    names.emplace_back(view(*name));
    if (auto e = walk.block(t, json::serialize(*t), at))
      return e;
  }
  return std::nullopt;
}

inline std::optional<provider_error> anthropic_system(const json::object& body,
                                                      anthropic_walk& walk) {
  const auto* system = body.if_contains("system");
  if (!system || system->is_null())
    return std::nullopt;
  if (const auto* s = system->if_string())
    return walk.block(nullptr, view(*s), "system");
  if (!system->is_array())
    return invalid(dialect::anthropic, "system: Input should be a valid list");
  const auto& blocks = system->get_array();
  for (size_t i = 0; i < blocks.size(); ++i) {
    auto at = "system." + std::to_string(i);
    const auto* b = blocks[i].if_object();
    const auto* type = b ? string_at(*b, "type") : nullptr;
    if (!type || view(*type) != "text")
      return invalid(dialect::anthropic, at + ".type: Input should be 'text'");
    const auto* text = string_at(*b, "text");
    if (!text)
      return invalid(dialect::anthropic, at + ".text: Field required");
    if (auto e = walk.block(b, view(*text), at))
      return e;
  }
  return std::nullopt;
}

inline std::optional<provider_error> anthropic_message(const json::value& m, size_t i,
                                                       anthropic_walk& walk, parsed_call& call) {
  auto at = "messages." + std::to_string(i);
  const auto* mo = m.if_object();
  const auto* role = mo ? string_at(*mo, "role") : nullptr;
  if (!role || (view(*role) != "user" && view(*role) != "assistant"))
    return invalid(dialect::anthropic, at + ".role: Input should be 'user' or 'assistant'");
  bool user = view(*role) == "user";
  const auto* content = mo->if_contains("content");
  if (!content)
    return invalid(dialect::anthropic, at + ".content: Field required");
  if (const auto* s = content->if_string()) {
    if (user)
      append_turn(call.prompt, view(*s));
    return walk.block(nullptr, view(*s), at + ".content");
  }
  if (!content->is_array())
    return invalid(dialect::anthropic, at + ".content: Input should be a valid list");
  const auto& blocks = content->get_array();
  for (size_t j = 0; j < blocks.size(); ++j) {
    auto bat = at + ".content." + std::to_string(j);
    const auto* b = blocks[j].if_object();
    const auto* type = b ? string_at(*b, "type") : nullptr;
    if (!type)
      return invalid(dialect::anthropic, bat + ".type: Field required");
    if (view(*type) != "text") {
      if (auto e = walk.block(b, json::serialize(*b), bat))
        return e;
      continue;
    }
    const auto* text = string_at(*b, "text");
    if (!text)
      return invalid(dialect::anthropic, bat + ".text: Field required");
    if (user)
      append_turn(call.prompt, view(*text));
    if (auto e = walk.block(b, view(*text), bat))
      return e;
  }
  return std::nullopt;
}

inline std::optional<provider_error> anthropic_tool_choice(const json::object& body,
                                                           const std::vector<std::string>& names,
                                                           parsed_call& call) {
  if (!names.empty())
    call.tool_name = names.front();
  const auto* choice = body.if_contains("tool_choice");
  if (!choice || choice->is_null())
    return std::nullopt;
  const auto* co = choice->if_object();
  const auto* type = co ? string_at(*co, "type") : nullptr;
  auto t = type ? view(*type) : std::string_view{};
  if (t != "auto" && t != "any" && t != "tool" && t != "none")
    return invalid(dialect::anthropic,
                   "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'");
  if (t != "tool")
    return std::nullopt;
  const auto* name = string_at(*co, "name");
  if (!name)
    return invalid(dialect::anthropic, "tool_choice.name: Field required");
  if (std::find(names.begin(), names.end(), view(*name)) == names.end())
    return invalid(dialect::anthropic, "tool_choice.name: Tool '" + std::string(view(*name))
                                           + "' not found in provided tools");
  call.tool_name = std::string(view(*name));
  return std::nullopt;
}

inline std::optional<provider_error> anthropic_basics(const json::object& body, parsed_call& call) {
  const auto* model = string_at(body, "model");
  if (!model || model->empty())
    return invalid(dialect::anthropic, "model: Field required");
  call.model = std::string(view(*model));
  const auto* max_tokens = body.if_contains("max_tokens");
  if (!max_tokens)
    return invalid(dialect::anthropic, "max_tokens: Field required");
  if (!max_tokens->is_int64() && !max_tokens->is_uint64())
    return invalid(dialect::anthropic, "max_tokens: Input should be a valid integer");
  if (max_tokens->is_int64() && max_tokens->get_int64() < 1)
    return invalid(dialect::anthropic, "max_tokens: Input should be greater than or equal to 1");
  const auto* messages = body.if_contains("messages");
  if (!messages)
    return invalid(dialect::anthropic, "messages: Field required");
  if (!messages->is_array())
    return invalid(dialect::anthropic, "messages: Input should be a valid list");
  if (messages->get_array().empty())
    return invalid(dialect::anthropic, "messages: at least one message is required");
  return std::nullopt;
}

/// Anthropic messages. Blocks are walked in the order the API builds its cache prefix.
inline std::optional<provider_error> validate_anthropic(const json::object& body,
                                                        parsed_call& call) {
  if (auto e = anthropic_basics(body, call))
    return e;
  anthropic_walk walk{call};
  std::vector<std::string> names;
  if (auto e = anthropic_tools(body, walk, names))
    return e;
  if (auto e = anthropic_system(body, walk))
    return e;
  const auto& messages = body.at("messages").get_array();
  for (size_t i = 0; i < messages.size(); ++i)
    if (auto e = anthropic_message(messages[i], i, walk, call))
      return e;
  if (call.breakpoints.size() > 4)
    return invalid(dialect::anthropic,
                   "A maximum of 4 blocks with cache_control may be provided. Found "
                       + std::to_string(call.breakpoints.size()) + ".");
  if (auto e = anthropic_tool_choice(body, names, call))
    return e;
  if (const auto* tools = body.if_contains("tools"); tools && tools->is_array())
    for (const auto& t : tools->get_array())
      if (const auto* name = string_at(t.get_object(), "name");
          name && view(*name) == call.tool_name)
        note_multi(call, t.get_object().if_contains("input_schema"));
  call.prompt_tokens = estimate_tokens(walk.chars()) + 3 * messages.size();
  return std::nullopt;
}

inline provider_error gemini_invalid(const std::string& field, const std::string& what) {
  return invalid(dialect::gemini, "* GenerateContentRequest." + field + ": " + what + "\n");
}

inline std::optional<provider_error> gemini_config(const json::object& body) {
  const auto* config = body.if_contains("generationConfig");
  if (!config || config->is_null())
    return std::nullopt;
  if (!config->is_object())
    return gemini_invalid("generation_config", "must be an object");
  const auto& c = config->get_object();
  if (!c.contains("responseSchema") && !c.contains("responseJsonSchema"))
    return std::nullopt;
  const auto* mime = string_at(c, "responseMimeType");
  if (!mime || view(*mime) != "application/json")
    return gemini_invalid("generation_config.response_mime_type",
                          "a response schema requires response_mime_type application/json");
  return std::nullopt;
}

/// Gemini generateContent; `model` comes from the path.
inline std::optional<provider_error> validate_gemini(const json::object& body,
                                                     const std::string& model, parsed_call& call) {
  call.model = model;
  const auto* contents = body.if_contains("contents");
  const auto* list = contents ? contents->if_array() : nullptr;
  if (!list || list->empty())
    return gemini_invalid("contents", "contents is not specified");
  size_t chars = 0;
  for (size_t i = 0; i < list->size(); ++i) {
    auto at = "contents[" + std::to_string(i) + "]";
    const auto* c = (*list)[i].if_object();
    const auto* parts = c ? c->if_contains("parts") : nullptr;
    if (!parts || !parts->is_array() || parts->get_array().empty())
      return gemini_invalid(at + ".parts", "contents.parts must not be empty.");
    const auto* role = string_at(*c, "role");
    if (role && view(*role) != "user" && view(*role) != "model")
      return invalid(dialect::gemini, "Please use a valid role: user, model.");
    bool user = !role || view(*role) == "user";
    for (const auto& p : parts->get_array()) {
      const auto* po = p.if_object();
      const auto* text = po ? string_at(*po, "text") : nullptr;
      if (!text)
        continue;
      chars += text->size();
      if (user)
        append_turn(call.prompt, view(*text));
    }
  }
  if (auto e = gemini_config(body))
    return e;
  if (const auto* config = body.if_contains("generationConfig"); config && config->is_object()) {
    const auto& c = config->get_object();
    note_multi(call, c.contains("responseSchema") ? c.if_contains("responseSchema")
                                                  : c.if_contains("responseJsonSchema"));
  }
  call.prompt_tokens = estimate_tokens(chars);
  return std::nullopt;
}

// -- answers ---------------------------------------------------------------------------------

/// The structured answer the mock gives.
struct judgement {
  std::string winner;
  std::string justification;
  int confidence = 3;
};

/// Deterministic in (seed, prompt): the same essays always get the same verdict.
inline judgement judge(uint64_t seed, std::string_view prompt) {
  static constexpr const char* reasons[] = {
      "argues more clearly and stays on topic.", "supports its claims with better evidence.",
      "is better organised and more coherent.",  "addresses the task more fully.",
      "uses more precise and varied language.",
  };
  auto h = stable_hash("lps-mock-provider/" + std::to_string(seed) + "\n" + std::string(prompt));
  judgement j;
  j.winner = (h & 1) == 0 ? "Essay A" : "Essay B";
  j.justification = j.winner + " " + reasons[(h >> 8) % 5];
  j.confidence = static_cast<int>(1 + (h >> 16) % 5);
  return j;
}

/// How a 200 answer deviates from a good one.
enum class answer_kind { normal, truncated, no_tool_use, bad_winner };

/// Token counts of one answer.
struct usage {
  uint64_t input = 0;
  uint64_t output = 0;
  uint64_t cache_read = 0;
  uint64_t cache_write_5m = 0;
  uint64_t cache_write_1h = 0;
};

/// The pieces of a 200 answer the server decides (ids, clock, usage).
struct answer {
  answer_kind kind = answer_kind::normal;
  judgement verdict;
  usage tokens;
  /// chatcmpl-..., gen-..., msg_..., or the Gemini responseId.
  std::string id;
  /// Anthropic tool_use id.
  std::string tool_id;
  /// Multi-prompt: one verdict per comparison id, in prompt order.
  std::vector<std::pair<std::string, judgement>> results;
  bool multi = false;
  int64_t created = 0;
};

inline json::object verdict_object(const judgement& j) {
  return {{"winner", j.winner}, {"justification", j.justification}, {"confidence", j.confidence}};
}

/// The structured answer: one verdict, or `results` for a multi-prompt call.
inline json::object answer_object(const answer& a) {
  if (!a.multi)
    return verdict_object(a.verdict);
  json::array results;
  for (const auto& [id, j] : a.results) {
    auto entry = verdict_object(j);
    entry["comparison_id"] = id;
    results.push_back(std::move(entry));
  }
  return {{"results", std::move(results)}};
}

/// The text a chat or Gemini answer carries: JSON, cut JSON, or prose without structure.
inline std::string answer_text(const answer& a) {
  if (a.kind == answer_kind::no_tool_use)
    return "After comparing both essays, I find that " + a.verdict.justification;
  auto text = json::serialize(answer_object(a));
  if (a.kind == answer_kind::truncated)
    text.resize(text.size() / 2);
  return text;
}

inline std::string render_chat(dialect d, const parsed_call& call, const answer& a) {
  auto text = answer_text(a);
  json::object message{{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
  json::object choice{{"index", 0},
                      {"message", std::move(message)},
                      {"logprobs", nullptr},
                      {"finish_reason", a.kind == answer_kind::truncated ? "length" : "stop"}};
  json::object usage{{"prompt_tokens", a.tokens.input},
                     {"completion_tokens", a.tokens.output},
                     {"total_tokens", a.tokens.input + a.tokens.output},
                     {"prompt_tokens_details", json::object{{"cached_tokens", 0}}},
                     {"completion_tokens_details", json::object{{"reasoning_tokens", 0}}}};
  json::object o{{"id", a.id},
                 {"object", "chat.completion"},
                 {"created", a.created},
                 {"model", call.model},
                 {"choices", json::array{std::move(choice)}},
                 {"usage", std::move(usage)}};
  if (d == dialect::openrouter)
    o["provider"] = "Mock";
  return json::serialize(o);
}

inline std::string render_anthropic(const parsed_call& call, const answer& a) {
  json::array content;
  std::string stop = "tool_use";
  if (a.kind == answer_kind::truncated) {
    stop = "max_tokens"; // cut before the tool call was complete: no tool_use block at all
  } else if (a.kind == answer_kind::no_tool_use) {
    stop = "end_turn";
    content.push_back(json::object{{"type", "text"}, {"text", answer_text(a)}});
  } else {
    content.push_back(json::object{{"type", "tool_use"},
                                   {"id", a.tool_id},
                                   {"name", call.tool_name},
                                   {"input", answer_object(a)}});
  }
  const auto& t = a.tokens;
  json::object usage{
      {"input_tokens", t.input},
      {"output_tokens", t.output},
      {"cache_creation_input_tokens", t.cache_write_5m + t.cache_write_1h},
      {"cache_read_input_tokens", t.cache_read},
      {"cache_creation", json::object{{"ephemeral_5m_input_tokens", t.cache_write_5m},
                                      {"ephemeral_1h_input_tokens", t.cache_write_1h}}},
      {"service_tier", "standard"}};
  json::object o{{"id", a.id},
                 {"type", "message"},
                 {"role", "assistant"},
                 {"model", call.model},
                 {"content", content},
                 {"stop_reason", stop},
                 {"stop_sequence", nullptr},
                 {"usage", std::move(usage)}};
  return json::serialize(o);
}

inline std::string render_gemini(const parsed_call& call, const answer& a) {
  json::object content{{"parts", json::array{json::object{{"text", answer_text(a)}}}},
                       {"role", "model"}};
  json::object candidate{{"content", std::move(content)},
                         {"finishReason", a.kind == answer_kind::truncated ? "MAX_TOKENS" : "STOP"},
                         {"index", 0}};
  json::object usage{{"promptTokenCount", a.tokens.input},
                     {"candidatesTokenCount", a.tokens.output},
                     {"totalTokenCount", a.tokens.input + a.tokens.output}};
  json::object o{{"candidates", json::array{std::move(candidate)}},
                 {"usageMetadata", std::move(usage)},
                 {"modelVersion", call.model},
                 {"responseId", a.id}};
  return json::serialize(o);
}

/// Output tokens of the answer `a` would carry (a cut answer counts what was generated).
inline uint64_t output_tokens(const answer& a) {
  return std::max<uint64_t>(1, estimate_tokens(answer_text(a).size()));
}

inline std::string render_answer(dialect d, const parsed_call& call, const answer& a) {
  switch (d) {
  case dialect::openai:
  case dialect::openrouter:
    return render_chat(d, call, a);
  case dialect::anthropic:
    return render_anthropic(call, a);
  case dialect::gemini:
    return render_gemini(call, a);
  }
  return {};
}

} // namespace lps::mock_wire
