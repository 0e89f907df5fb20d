#include "runtime/stream_translate_completion.hpp"
#include "runtime/stream_translate_chunk.hpp"

namespace lps {

namespace {

namespace json = boost::json;
using stream_chunk::count_at;
using stream_chunk::string_at;

/// Content goes out in pieces of about this many bytes, cut after a space where there is one,
/// so a client sees several content chunks as from a real model.
constexpr size_t piece_bytes = 16;

std::vector<std::string_view> pieces_of(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    auto n = std::min(text.size(), piece_bytes);
    if (auto space = text.find(' ', n);
        n < text.size() && space != std::string_view::npos && space < n + piece_bytes)
      n = space + 1;
    // Never split a UTF-8 sequence: move back over continuation bytes.
    while (n < text.size() && n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80)
      --n;
    out.push_back(text.substr(0, n));
    text.remove_prefix(n);
  }
  return out;
}

stream_usage usage_of(const json::object& completion) {
  stream_usage u;
  const auto* v = completion.if_contains("usage");
  if (v == nullptr || !v->is_object())
    return u;
  const auto& o = v->get_object();
  u.prompt_tokens = count_at(o, "prompt_tokens");
  u.completion_tokens = count_at(o, "completion_tokens");
  u.total_tokens = count_at(o, "total_tokens");
  return u;
}

void add_tool_calls(const stream_chunk::chunk_head& head, const json::object& message,
                    std::vector<std::string>& out) {
  const auto* calls = message.if_contains("tool_calls");
  if (calls == nullptr || !calls->is_array())
    return;
  size_t index = 0;
  for (const auto& c : calls->get_array()) {
    const auto* call = c.if_object();
    const auto* fn = call ? call->if_contains("function") : nullptr;
    if (fn == nullptr || !fn->is_object())
      continue;
    out.push_back(stream_chunk::choice_chunk(
        head, stream_chunk::tool_call_start(index++, string_at(*call, "id"),
                                            string_at(fn->get_object(), "name"),
                                            string_at(fn->get_object(), "arguments"))));
  }
}

} // namespace

completion_chunks chunks_of_completion(std::string_view completion,
                                       const stream_translate_options& options) {
  completion_chunks result;
  auto doc = stream_chunk::parse_object(completion);
  const auto* choices = doc ? doc->if_contains("choices") : nullptr;
  if (choices == nullptr || !choices->is_array() || choices->get_array().empty()
      || !choices->get_array().front().is_object())
    return result;
  const auto& choice = choices->get_array().front().get_object();
  const auto* message = choice.if_contains("message");
  if (message == nullptr || !message->is_object())
    return result;
  auto created = count_at(*doc, "created");
  stream_chunk::chunk_head head{std::string{string_at(*doc, "id")},
                                created > 0 ? int64_t(created) : options.created, options.model,
                                options.include_usage};
  auto& out = result.chunks;
  out.push_back(stream_chunk::choice_chunk(head, {{"role", "assistant"}, {"content", ""}}));
  for (auto piece : pieces_of(string_at(message->get_object(), "content")))
    out.push_back(stream_chunk::choice_chunk(head, {{"content", piece}}));
  add_tool_calls(head, message->get_object(), out);
  auto finish = string_at(choice, "finish_reason");
  out.push_back(stream_chunk::choice_chunk(head, {}, finish.empty() ? "stop" : finish));
  result.usage = usage_of(*doc);
  if (options.include_usage)
    out.push_back(stream_chunk::usage_chunk(head, result.usage));
  return result;
}

} // namespace lps
