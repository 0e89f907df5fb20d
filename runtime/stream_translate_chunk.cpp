#include "runtime/stream_translate_chunk.hpp"

namespace lps::stream_chunk {

std::string choice_chunk(const chunk_head& h, json::object delta, std::string_view finish_reason) {
  json::object choice{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr}};
  if (finish_reason.empty())
    choice["finish_reason"] = nullptr;
  else
    choice["finish_reason"] = finish_reason;
  json::object o{{"id", h.id},
                 {"object", "chat.completion.chunk"},
                 {"created", h.created},
                 {"model", h.model},
                 {"choices", json::array{std::move(choice)}}};
  if (h.include_usage)
    o["usage"] = nullptr;
  return json::serialize(o);
}

json::object usage_object(const stream_usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.total_tokens},
          {"prompt_tokens_details", json::object{{"cached_tokens", u.cached_tokens}}}};
}

std::string usage_chunk(const chunk_head& h, const stream_usage& u) {
  json::object o{
      {"id", h.id},       {"object", "chat.completion.chunk"}, {"created", h.created},
      {"model", h.model}, {"choices", json::array{}},          {"usage", usage_object(u)}};
  return json::serialize(o);
}

json::object tool_call_start(size_t index, std::string_view id, std::string_view name,
                             std::string_view arguments) {
  json::object call{{"index", index},
                    {"id", id},
                    {"type", "function"},
                    {"function", json::object{{"name", name}, {"arguments", arguments}}}};
  return {{"tool_calls", json::array{std::move(call)}}};
}

json::object tool_call_arguments(size_t index, std::string_view piece) {
  json::object call{{"index", index}, {"function", json::object{{"arguments", piece}}}};
  return {{"tool_calls", json::array{std::move(call)}}};
}

uint64_t count_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v)
    return 0;
  if (const auto* u = v->if_uint64())
    return *u;
  if (const auto* i = v->if_int64())
    return *i > 0 ? static_cast<uint64_t>(*i) : 0;
  return 0;
}

std::string_view string_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  const auto* s = v ? v->if_string() : nullptr;
  return s ? std::string_view{s->data(), s->size()} : std::string_view{};
}

std::optional<json::object> parse_object(std::string_view data, json::storage_ptr storage) {
  boost::system::error_code ec;
  auto v = json::parse(data, ec, std::move(storage));
  if (ec || !v.is_object())
    return std::nullopt;
  return std::move(v.get_object());
}

} // namespace lps::stream_chunk
