#include "runtime/stream_translate_gemini.hpp"
#include "runtime/stream_translate_chunk.hpp"

namespace lps {

namespace {

namespace json = boost::json;
using stream_chunk::count_at;
using stream_chunk::string_at;

/// Gemini's finishReason in OpenAI's terms.
std::string_view finish_reason_of(std::string_view reason, bool called_tools) {
  if (reason == "MAX_TOKENS")
    return "length";
  if (reason == "SAFETY" || reason == "RECITATION" || reason == "BLOCKLIST"
      || reason == "PROHIBITED_CONTENT" || reason == "SPII" || reason == "IMAGE_SAFETY")
    return "content_filter";
  return called_tools ? "tool_calls" : "stop";
}

class gemini_translator final : public stream_translator {
public:
  explicit gemini_translator(stream_translate_options o) {
    head_.model = std::move(o.model);
    head_.created = o.created;
    head_.include_usage = o.include_usage;
  }

  void on_event(const sse_event& e, std::vector<std::string>& out) override {
    if (complete_ || error_)
      return;
    auto body = stream_chunk::parse_object(e.data);
    if (!body)
      return fail("bad_stream", "a Gemini stream chunk is not a JSON object");
    if (const auto* err = body->if_contains("error"); err && err->is_object())
      return fail(std::string(string_at(err->get_object(), "status")),
                  std::string(string_at(err->get_object(), "message")));
    if (!started_)
      start(*body, out);
    if (const auto* u = body->if_contains("usageMetadata"); u && u->is_object())
      take_usage(u->get_object());
    const auto* c = body->if_contains("candidates");
    const auto* candidates = c ? c->if_array() : nullptr;
    if (!candidates || candidates->empty() || !candidates->front().is_object())
      return; // a usage-only chunk, or the prompt was blocked (promptFeedback)
    on_candidate(candidates->front().get_object(), out);
  }

  void on_end(std::vector<std::string>& out) override {
    if (!complete_ || error_)
      return;
    if (head_.include_usage && usage_)
      out.push_back(stream_chunk::usage_chunk(head_, *usage_));
  }

private:
  void fail(std::string type, std::string message) {
    error_ = stream_error{std::move(type), std::move(message)};
  }

  void start(const json::object& body, std::vector<std::string>& out) {
    started_ = true;
    head_.id = "chatcmpl-" + std::string(string_at(body, "responseId"));
    out.push_back(stream_chunk::choice_chunk(head_, {{"role", "assistant"}, {"content", ""}}));
  }

  void on_candidate(const json::object& candidate, std::vector<std::string>& out) {
    const auto* ct = candidate.if_contains("content");
    const auto* parts = ct && ct->is_object() ? ct->get_object().if_contains("parts") : nullptr;
    if (parts && parts->is_array())
      for (const auto& p : parts->get_array())
        if (p.is_object())
          on_part(p.get_object(), out);
    auto reason = string_at(candidate, "finishReason");
    if (!reason.empty()) {
      complete_ = true;
      out.push_back(
          stream_chunk::choice_chunk(head_, {}, finish_reason_of(reason, tool_calls_ > 0)));
    }
  }

  void on_part(const json::object& part, std::vector<std::string>& out) {
    if (const auto* t = part.if_contains("thought"); t && t->is_bool() && t->get_bool())
      return; // a thought summary is not part of the answer
    if (const auto* fc = part.if_contains("functionCall"); fc && fc->is_object()) {
      const auto& call = fc->get_object();
      const auto* args = call.if_contains("args");
      auto arguments = args ? json::serialize(*args) : std::string("{}");
      // Gemini ids its calls only sometimes; OpenAI clients need one to answer the call.
      auto id = std::string(string_at(call, "id"));
      if (id.empty())
        id = "call_" + std::to_string(tool_calls_);
      out.push_back(stream_chunk::choice_chunk(
          head_,
          stream_chunk::tool_call_start(tool_calls_++, id, string_at(call, "name"), arguments)));
      return;
    }
    if (auto text = string_at(part, "text"); !text.empty())
      out.push_back(stream_chunk::choice_chunk(head_, {{"content", text}}));
  }

  void take_usage(const json::object& u) {
    stream_usage s;
    s.prompt_tokens = count_at(u, "promptTokenCount");
    // Thinking tokens are billed as output, as OpenAI's reasoning tokens are.
    s.completion_tokens = count_at(u, "candidatesTokenCount") + count_at(u, "thoughtsTokenCount");
    s.total_tokens = u.contains("totalTokenCount") ? count_at(u, "totalTokenCount")
                                                   : s.prompt_tokens + s.completion_tokens;
    s.cached_tokens = count_at(u, "cachedContentTokenCount");
    usage_ = s;
  }

  stream_chunk::chunk_head head_;
  bool started_ = false;
  size_t tool_calls_ = 0;
};

} // namespace

std::unique_ptr<stream_translator> make_gemini_stream_translator(stream_translate_options options) {
  return std::make_unique<gemini_translator>(std::move(options));
}

} // namespace lps
