#include "runtime/stream_translate_anthropic.hpp"
#include "runtime/stream_translate_chunk.hpp"

#include <map>
#include <set>

namespace lps {

namespace {

namespace json = boost::json;
using stream_chunk::count_at;
using stream_chunk::string_at;

/// Anthropic's stop_reason in OpenAI's finish_reason terms.
std::string_view finish_reason_of(std::string_view stop_reason) {
  if (stop_reason == "max_tokens")
    return "length";
  if (stop_reason == "tool_use")
    return "tool_calls";
  if (stop_reason == "refusal")
    return "content_filter";
  return "stop"; // end_turn, stop_sequence, pause_turn
}

class anthropic_translator final : public stream_translator {
public:
  explicit anthropic_translator(stream_translate_options o)
      : schema_tool_(std::move(o.schema_tool)) {
    head_.model = std::move(o.model);
    head_.created = o.created;
    head_.include_usage = o.include_usage;
  }

  void on_event(const sse_event& e, std::vector<std::string>& out) override {
    if (complete_ || error_)
      return;
    auto body = stream_chunk::parse_object(e.data);
    if (!body)
      return fail("bad_stream", "an Anthropic stream event is not a JSON object");
    // The data's "type" is authoritative; the SSE event name repeats it.
    auto type = string_at(*body, "type");
    if (type == "message_start")
      return on_message_start(*body, out);
    if (type == "content_block_start")
      return on_block_start(*body, out);
    if (type == "content_block_delta")
      return on_block_delta(*body, out);
    if (type == "message_delta")
      return on_message_delta(*body, out);
    if (type == "message_stop")
      return on_message_stop(out);
    if (type == "error")
      return on_error(*body);
    // ping, content_block_stop and event types added later carry nothing for the client.
  }

  void on_end(std::vector<std::string>&) override {}

private:
  void fail(std::string type, std::string message) {
    error_ = stream_error{std::move(type), std::move(message)};
  }

  void on_message_start(const json::object& body, std::vector<std::string>& out) {
    const auto* m = body.if_contains("message");
    const auto* message = m ? m->if_object() : nullptr;
    if (!message)
      return fail("bad_stream", "message_start without a message");
    head_.id = "chatcmpl-" + std::string(string_at(*message, "id"));
    if (const auto* u = message->if_contains("usage"); u && u->is_object())
      take_usage(u->get_object());
    started_ = true;
    out.push_back(stream_chunk::choice_chunk(head_, {{"role", "assistant"}, {"content", ""}}));
  }

  void on_block_start(const json::object& body, std::vector<std::string>& out) {
    const auto* b = body.if_contains("content_block");
    const auto* block = b ? b->if_object() : nullptr;
    if (!started_ || !block)
      return fail("bad_stream", "content_block_start before message_start or without a block");
    auto type = string_at(*block, "type");
    auto index = count_at(body, "index");
    if (type == "text") {
      // A block may open with text already in it (it never does today, but the type allows it).
      if (auto text = string_at(*block, "text"); !text.empty())
        out.push_back(stream_chunk::choice_chunk(head_, {{"content", text}}));
    } else if (type == "tool_use" && !schema_tool_.empty()
               && string_at(*block, "name") == schema_tool_) {
      schema_blocks_.insert(index); // the json_schema answer: its input is the content
    } else if (type == "tool_use") {
      auto call = tool_calls_.size();
      tool_calls_[index] = call;
      out.push_back(stream_chunk::choice_chunk(
          head_, stream_chunk::tool_call_start(call, string_at(*block, "id"),
                                               string_at(*block, "name"), "")));
    }
    // thinking / redacted_thinking / server tool blocks: nothing in OpenAI's chunk shape.
  }

  void on_block_delta(const json::object& body, std::vector<std::string>& out) {
    const auto* d = body.if_contains("delta");
    const auto* delta = d ? d->if_object() : nullptr;
    if (!started_ || !delta)
      return fail("bad_stream", "content_block_delta before message_start or without a delta");
    auto type = string_at(*delta, "type");
    if (type == "text_delta") {
      out.push_back(stream_chunk::choice_chunk(head_, {{"content", string_at(*delta, "text")}}));
    } else if (type == "input_json_delta" && schema_blocks_.count(count_at(body, "index")) > 0) {
      if (auto piece = string_at(*delta, "partial_json"); !piece.empty())
        out.push_back(stream_chunk::choice_chunk(head_, {{"content", piece}}));
    } else if (type == "input_json_delta") {
      auto it = tool_calls_.find(count_at(body, "index"));
      if (it == tool_calls_.end())
        return fail("bad_stream", "input_json_delta for a block that is not a tool_use");
      auto piece = string_at(*delta, "partial_json");
      if (!piece.empty())
        out.push_back(stream_chunk::choice_chunk(
            head_, stream_chunk::tool_call_arguments(it->second, piece)));
    }
  }

  void on_message_delta(const json::object& body, std::vector<std::string>& out) {
    if (!started_)
      return fail("bad_stream", "message_delta before message_start");
    // Its usage is cumulative: output_tokens so far, sometimes the input figures again.
    if (const auto* u = body.if_contains("usage"); u && u->is_object())
      take_usage(u->get_object());
    const auto* d = body.if_contains("delta");
    const auto* delta = d ? d->if_object() : nullptr;
    auto stop = delta ? string_at(*delta, "stop_reason") : std::string_view{};
    // tool_use for the json_schema's tool alone is a whole answer in content: stop.
    if (stop == "tool_use" && tool_calls_.empty())
      stop = "end_turn";
    if (!stop.empty())
      out.push_back(stream_chunk::choice_chunk(head_, {}, finish_reason_of(stop)));
  }

  void on_message_stop(std::vector<std::string>& out) {
    if (!started_)
      return fail("bad_stream", "message_stop before message_start");
    complete_ = true;
    usage_ = usage_of();
    if (head_.include_usage)
      out.push_back(stream_chunk::usage_chunk(head_, *usage_));
  }

  void on_error(const json::object& body) {
    const auto* e = body.if_contains("error");
    const auto* err = e ? e->if_object() : nullptr;
    if (!err)
      return fail("api_error", "the upstream stream reported an error");
    fail(std::string(string_at(*err, "type")), std::string(string_at(*err, "message")));
  }

  /// Later figures replace earlier ones; absent fields keep theirs.
  void take_usage(const json::object& u) {
    const std::pair<std::string_view, uint64_t*> fields[] = {
        {"input_tokens", &input_},
        {"output_tokens", &output_},
        {"cache_read_input_tokens", &cache_read_},
        {"cache_creation_input_tokens", &cache_write_}};
    for (const auto& [key, field] : fields)
      if (u.contains(key))
        *field = count_at(u, key);
  }

  /// Anthropic counts cached input apart; OpenAI's prompt_tokens include it.
  stream_usage usage_of() const {
    stream_usage u;
    u.prompt_tokens = input_ + cache_read_ + cache_write_;
    u.completion_tokens = output_;
    u.total_tokens = u.prompt_tokens + u.completion_tokens;
    u.cached_tokens = cache_read_;
    return u;
  }

  stream_chunk::chunk_head head_;
  std::string schema_tool_;
  /// Content block indexes of the json_schema's tool (its input streams as content).
  std::set<uint64_t> schema_blocks_;
  bool started_ = false;
  /// Anthropic content block index -> OpenAI tool call index (0, 1, ... in order).
  std::map<uint64_t, size_t> tool_calls_;
  uint64_t input_ = 0;
  uint64_t output_ = 0;
  uint64_t cache_read_ = 0;
  uint64_t cache_write_ = 0;
};

} // namespace

std::unique_ptr<stream_translator>
make_anthropic_stream_translator(stream_translate_options options) {
  return std::make_unique<anthropic_translator>(std::move(options));
}

} // namespace lps
