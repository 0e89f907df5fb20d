#include "runtime/stream_translate_openai.hpp"
#include "runtime/stream_translate_chunk.hpp"

namespace lps {

namespace {

namespace json = boost::json;
using stream_chunk::count_at;
using stream_chunk::string_at;

class openai_translator final : public stream_translator {
public:
  explicit openai_translator(stream_translate_options o) : options_(std::move(o)) {}

  void on_event(const sse_event& e, std::vector<std::string>& out) override {
    if (complete_ || error_)
      return;
    if (e.data == "[DONE]") {
      complete_ = true;
      return;
    }
    // Parsed, rewritten and serialized within this call, so its nodes go on the stack (a
    // larger chunk spills over to the heap): no allocation per node for every event.
    unsigned char scratch[4096];
    json::monotonic_resource arena{scratch, sizeof scratch};
    auto chunk = stream_chunk::parse_object(e.data, &arena);
    if (!chunk)
      return fail("bad_stream", "an OpenAI stream chunk is not a JSON object");
    if (const auto* err = chunk->if_contains("error"); err && err->is_object())
      return on_error(err->get_object());
    const auto* u = chunk->if_contains("usage");
    if (u && u->is_object())
      take_usage(u->get_object());
    const auto* c = chunk->if_contains("choices");
    bool usage_only = c && c->is_array() && c->get_array().empty();
    if (usage_only && !options_.include_usage)
      return;
    if (options_.include_usage) {
      if (!u)
        (*chunk)["usage"] = nullptr;
    } else {
      chunk->erase("usage");
    }
    (*chunk)["model"] = options_.model;
    out.push_back(json::serialize(*chunk));
  }

  void on_end(std::vector<std::string>&) override {}

private:
  void fail(std::string type, std::string message) {
    error_ = stream_error{std::move(type), std::move(message)};
  }

  void on_error(const json::object& err) {
    auto type = string_at(err, "type");
    if (type.empty()) // OpenRouter's envelope has a numeric code instead
      type = "upstream_error";
    fail(std::string(type), std::string(string_at(err, "message")));
  }

  void take_usage(const json::object& u) {
    stream_usage s;
    s.prompt_tokens = count_at(u, "prompt_tokens");
    s.completion_tokens = count_at(u, "completion_tokens");
    s.total_tokens = count_at(u, "total_tokens");
    if (const auto* d = u.if_contains("prompt_tokens_details"); d && d->is_object())
      s.cached_tokens = count_at(d->get_object(), "cached_tokens");
    usage_ = s;
  }

  stream_translate_options options_;
};

} // namespace

std::unique_ptr<stream_translator> make_openai_stream_translator(stream_translate_options options) {
  return std::make_unique<openai_translator>(std::move(options));
}

} // namespace lps
