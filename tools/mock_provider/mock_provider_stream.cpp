#include "tools/mock_provider/mock_provider_stream.hpp"

#include <algorithm>

namespace lps::mock_stream {

namespace {

namespace json = boost::json;
using steady = std::chrono::steady_clock;

/// Text and tool arguments go out in pieces of at most this many bytes (the real APIs send
/// a token or a few per event), so even a short answer takes several events.
constexpr size_t piece_bytes = 16;

constexpr std::string_view gemini_stream_suffix = ":streamGenerateContent";

/// `text` in pieces of at most piece_bytes, never splitting a UTF-8 sequence.
std::vector<std::string_view> pieces_of(std::string_view text) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t n = std::min(piece_bytes, text.size() - at);
    // Back off from continuation bytes (10xxxxxx) so the next piece starts a character.
    while (at + n < text.size() && n > 1
           && (static_cast<unsigned char>(text[at + n]) & 0xC0) == 0x80)
      --n;
    out.push_back(text.substr(at, n));
    at += n;
  }
  return out;
}

std::string data_event(const json::value& v) {
  return "data: " + json::serialize(v) + "\n\n";
}

std::string named_event(std::string_view name, const json::value& v) {
  return "event: " + std::string(name) + "\ndata: " + json::serialize(v) + "\n\n";
}

const json::object* object_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v ? v->if_object() : nullptr;
}

const json::array* array_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v ? v->if_array() : nullptr;
}

/// A copy of the field, null when the answer has none (every renderer may omit fields).
json::value field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v ? *v : json::value(nullptr);
}

std::string_view text_at(const json::object& o, std::string_view key) {
  const auto* s = mock_wire::string_at(o, key);
  return s ? mock_wire::view(*s) : std::string_view{};
}

// -- OpenAI / OpenRouter ------------------------------------------------------------------

class chat_chunks {
public:
  chat_chunks(const json::object& answer, dialect d, const stream_ask& ask)
      : answer_(answer), d_(d), ask_(ask) {}

  std::vector<std::string> render() {
    const auto* choices = array_at(answer_, "choices");
    const auto* choice = choices && !choices->empty() ? choices->front().if_object() : nullptr;
    const auto* message = choice ? object_at(*choice, "message") : nullptr;
    if (d_ == dialect::openrouter) // OpenRouter keeps the connection warm with comments
      events_.push_back(": OPENROUTER PROCESSING\n\n");
    chunk({{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}});
    if (message) {
      for (auto piece : pieces_of(text_at(*message, "content")))
        chunk({{"content", piece}});
      if (const auto* calls = array_at(*message, "tool_calls"))
        for (size_t i = 0; i < calls->size(); ++i)
          if (const auto* call = (*calls)[i].if_object())
            tool_call(i, *call);
    }
    auto finish = choice ? text_at(*choice, "finish_reason") : std::string_view{"stop"};
    chunk({}, finish);
    if (ask_.include_usage)
      if (const auto* usage = answer_.if_contains("usage"))
        events_.push_back(data_event(base(json::array{}, *usage)));
    events_.push_back("data: [DONE]\n\n");
    return std::move(events_);
  }

private:
  json::object base(json::array choices, json::value usage) const {
    json::object o{{"id", field(answer_, "id")},
                   {"object", "chat.completion.chunk"},
                   {"created", field(answer_, "created")},
                   {"model", field(answer_, "model")}};
    if (d_ == dialect::openrouter)
      o["provider"] = "Mock";
    o["choices"] = std::move(choices);
    if (ask_.include_usage)
      o["usage"] = std::move(usage);
    return o;
  }

  void chunk(json::object delta, std::string_view finish = {}) {
    json::object choice{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr}};
    choice["finish_reason"] = finish.empty() ? json::value(nullptr) : json::value(finish);
    events_.push_back(data_event(base(json::array{std::move(choice)}, nullptr)));
  }

  void tool_call(size_t index, const json::object& call) {
    const auto* fn = object_at(call, "function");
    auto arguments = fn ? text_at(*fn, "arguments") : std::string_view{};
    json::object first{
        {"index", index},
        {"id", text_at(call, "id")},
        {"type", "function"},
        {"function", json::object{{"name", fn ? text_at(*fn, "name") : ""}, {"arguments", ""}}}};
    chunk({{"tool_calls", json::array{std::move(first)}}});
    for (auto piece : pieces_of(arguments))
      chunk({{"tool_calls",
              json::array{json::object{{"index", index},
                                       {"function", json::object{{"arguments", piece}}}}}}});
  }

  const json::object& answer_;
  dialect d_;
  const stream_ask& ask_;
  std::vector<std::string> events_;
};

// -- Anthropic ----------------------------------------------------------------------------

void anthropic_block(size_t index, const json::object& block, std::vector<std::string>& out) {
  auto type = text_at(block, "type");
  json::object start{{"type", type}};
  std::string body;
  std::string_view delta_type;
  std::string_view delta_field;
  if (type == "tool_use") {
    start["id"] = field(block, "id");
    start["name"] = field(block, "name");
    start["input"] = json::object{};
    const auto* input = block.if_contains("input");
    body = input ? json::serialize(*input) : "{}";
    delta_type = "input_json_delta";
    delta_field = "partial_json";
  } else {
    start["text"] = "";
    body = std::string(text_at(block, "text"));
    delta_type = "text_delta";
    delta_field = "text";
  }
  out.push_back(named_event(
      "content_block_start",
      json::object{{"type", "content_block_start"}, {"index", index}, {"content_block", start}}));
  for (auto piece : pieces_of(body))
    out.push_back(named_event(
        "content_block_delta",
        json::object{{"type", "content_block_delta"},
                     {"index", index},
                     {"delta", json::object{{"type", delta_type}, {delta_field, piece}}}}));
  out.push_back(named_event("content_block_stop",
                            json::object{{"type", "content_block_stop"}, {"index", index}}));
}

std::vector<std::string> anthropic_events(const json::object& answer) {
  std::vector<std::string> out;
  json::object message = answer;
  message["content"] = json::array{};
  message["stop_reason"] = nullptr;
  json::object usage;
  if (const auto* u = object_at(answer, "usage"))
    usage = *u;
  auto output_tokens = usage.contains("output_tokens") ? usage.at("output_tokens") : json::value(0);
  auto start_usage = usage;
  start_usage["output_tokens"] = 1; // the real API reports a token or so at the start
  message["usage"] = std::move(start_usage);
  out.push_back(
      named_event("message_start", json::object{{"type", "message_start"}, {"message", message}}));
  out.push_back("event: ping\ndata: {\"type\": \"ping\"}\n\n");
  if (const auto* content = array_at(answer, "content"))
    for (size_t i = 0; i < content->size(); ++i)
      if (const auto* block = (*content)[i].if_object())
        anthropic_block(i, *block, out);
  json::object delta{{"stop_reason", answer.contains("stop_reason") ? answer.at("stop_reason")
                                                                    : json::value(nullptr)},
                     {"stop_sequence", nullptr}};
  out.push_back(named_event(
      "message_delta", json::object{{"type", "message_delta"},
                                    {"delta", std::move(delta)},
                                    {"usage", json::object{{"output_tokens", output_tokens}}}}));
  out.push_back(named_event("message_stop", json::object{{"type", "message_stop"}}));
  return out;
}

// -- Gemini -------------------------------------------------------------------------------

class gemini_chunks {
public:
  explicit gemini_chunks(const json::object& answer) : answer_(answer) {}

  std::vector<json::object> render() {
    const auto* candidates = array_at(answer_, "candidates");
    const auto* candidate =
        candidates && !candidates->empty() ? candidates->front().if_object() : nullptr;
    const auto* content = candidate ? object_at(*candidate, "content") : nullptr;
    const auto* parts = content ? array_at(*content, "parts") : nullptr;
    if (parts)
      for (const auto& part : *parts)
        if (const auto* p = part.if_object())
          add_part(*p);
    if (chunks_.empty())
      chunks_.push_back(chunk(json::array{}));
    // The last chunk carries the finish reason and the full usage.
    auto& last = chunks_.back();
    auto& last_candidate = last["candidates"].as_array().front().as_object();
    if (candidate && candidate->contains("finishReason"))
      last_candidate["finishReason"] = candidate->at("finishReason");
    if (const auto* usage = answer_.if_contains("usageMetadata"))
      last["usageMetadata"] = *usage;
    return std::move(chunks_);
  }

private:
  void add_part(const json::object& part) {
    if (!part.contains("text") || part.contains("thought")) { // functionCall: one whole part
      chunks_.push_back(chunk(json::array{part}));
      return;
    }
    for (auto piece : pieces_of(text_at(part, "text")))
      chunks_.push_back(chunk(json::array{json::object{{"text", piece}}}));
  }

  json::object chunk(json::array parts) const {
    json::object candidate{
        {"content", json::object{{"parts", std::move(parts)}, {"role", "model"}}}, {"index", 0}};
    json::object o{{"candidates", json::array{std::move(candidate)}}};
    // Until the last chunk Gemini reports the prompt only.
    if (const auto* usage = object_at(answer_, "usageMetadata")) {
      auto prompt =
          usage->contains("promptTokenCount") ? usage->at("promptTokenCount") : json::value(0);
      o["usageMetadata"] = json::object{{"promptTokenCount", prompt}, {"totalTokenCount", prompt}};
    }
    for (const char* key : {"modelVersion", "responseId"})
      if (const auto* v = answer_.if_contains(key))
        o[key] = *v;
    return o;
  }

  const json::object& answer_;
  std::vector<json::object> chunks_;
};

std::vector<std::string> gemini_events(const json::object& answer, const stream_ask& ask) {
  auto chunks = gemini_chunks(answer).render();
  std::vector<std::string> out;
  if (!ask.sse) { // ?alt=json (the default): one JSON array of the chunks
    json::array all;
    for (auto& c : chunks)
      all.push_back(std::move(c));
    out.push_back(json::serialize(all));
    return out;
  }
  // CRLF line ends, so clients' handling of them is exercised.
  for (const auto& c : chunks)
    out.push_back("data: " + json::serialize(c) + "\r\n\r\n");
  return out;
}

} // namespace

bool is_gemini_stream_path(std::string_view path) {
  return path.size() > gemini_stream_suffix.size()
         && path.substr(path.size() - gemini_stream_suffix.size()) == gemini_stream_suffix;
}

stream_ask ask_of(dialect d, std::string_view path, std::string_view query, std::string_view body) {
  stream_ask ask;
  if (d == dialect::gemini) {
    ask.stream = is_gemini_stream_path(path);
    ask.sse = query == "alt=sse" || query.starts_with("alt=sse&")
              || query.find("&alt=sse") != std::string_view::npos;
    return ask;
  }
  if (body.find("\"stream\"") == std::string_view::npos) // most calls: no second parse
    return ask;
  boost::system::error_code ec;
  auto doc = json::parse(body, ec);
  const auto* o = ec ? nullptr : doc.if_object();
  const auto* stream = o ? o->if_contains("stream") : nullptr;
  ask.stream = stream && stream->is_bool() && stream->get_bool();
  const auto* options = o ? object_at(*o, "stream_options") : nullptr;
  const auto* usage = options ? options->if_contains("include_usage") : nullptr;
  ask.include_usage = usage && usage->is_bool() && usage->get_bool();
  return ask;
}

std::vector<std::string> render_events(dialect d, std::string_view complete_body,
                                       const stream_ask& ask) {
  boost::system::error_code ec;
  auto doc = json::parse(complete_body, ec);
  if (ec || !doc.is_object()) // the malformed fault: its broken JSON in one event
    return {"data: " + std::string(complete_body) + "\n\n"};
  const auto& answer = doc.get_object();
  switch (d) {
  case dialect::openai:
  case dialect::openrouter:
    return chat_chunks(answer, d, ask).render();
  case dialect::anthropic:
    return anthropic_events(answer);
  case dialect::gemini:
    return gemini_events(answer, ask);
  }
  return {};
}

// -- streamer -----------------------------------------------------------------------------

/// Streamed answers counted since the start or the last reset.
struct streamer::counter_block {
  mutable std::mutex mutex;
  mock_stream_counts counts; // guarded by mutex

  void started() {
    std::lock_guard<std::mutex> lock{mutex};
    ++counts.started;
    ++counts.open;
  }

  void ended(bool by_client) {
    std::lock_guard<std::mutex> lock{mutex};
    counts.open -= counts.open > 0 ? 1 : 0;
    counts.cancelled += by_client ? 1 : 0;
  }
};

/// One streamed answer on its way out.
struct streamer::paced {
  std::shared_ptr<http_body_stream> out;
  std::vector<std::string> events;
  size_t next = 0;
  /// Events to send before the end (all of them, or the cut point).
  size_t end = 0;
  bool cut = false;
  std::chrono::milliseconds gap{0};
  std::shared_ptr<counter_block> counters;

  /// Sends the next event; false when the stream is over (ended here, or by the client: seen
  /// by a refused write).
  bool step() {
    if (next < end && !out->write(std::move(events[next++]))) {
      counters->ended(true);
      return false;
    }
    if (next < end)
      return true;
    counters->ended(false);
    if (cut)
      out->cut();
    else
      out->finish();
    return false;
  }
};

streamer::streamer() : counters_(std::make_shared<counter_block>()) {
  // nop
}

streamer::~streamer() {
  stop();
}

mock_stream_counts streamer::counts() const {
  std::lock_guard<std::mutex> lock{counters_->mutex};
  return counters_->counts;
}

void streamer::reset_counts() {
  std::lock_guard<std::mutex> lock{counters_->mutex};
  counters_->counts = {0, counters_->counts.open, 0};
}

void streamer::start() {
  thread_ = std::thread([this] { run(); });
}

void streamer::stop() {
  {
    std::lock_guard<std::mutex> lock{mutex_};
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable())
    thread_.join();
  std::vector<entry> rest;
  std::lock_guard<std::mutex> lock{mutex_};
  rest.swap(heap_);
}

void streamer::make_streamed(http_response& r, dialect d, const stream_ask& ask,
                             const delivery& how) {
  auto events = render_events(d, r.body, ask);
  r.body.clear();
  if (d == dialect::gemini && !ask.sse) { // a JSON array, sent whole
    r.body = std::move(events.front());
    return;
  }
  r.content_type = d == dialect::gemini ? "text/event-stream" : "text/event-stream; charset=utf-8";
  auto p = std::make_shared<paced>();
  p->events = std::move(events);
  p->end = p->events.size();
  p->cut = how.cut;
  if (how.cut)
    p->end = std::min(p->end, how.cut_after.value_or(std::max<size_t>(1, p->end / 2)));
  p->gap = how.gap;
  p->counters = counters_;
  r.stream = [this, p](std::shared_ptr<http_body_stream> out) {
    p->out = std::move(out);
    p->counters->started();
    begin(p);
  };
}

/// The first event goes at once; the rest at once too, or paced by the gap.
void streamer::begin(std::shared_ptr<paced> p) {
  if (p->gap.count() <= 0) {
    while (p->step()) {
    }
    return;
  }
  if (p->step())
    schedule(std::move(p));
}

bool streamer::later(const entry& a, const entry& b) {
  return a.when != b.when ? a.when > b.when : a.seq > b.seq;
}

void streamer::schedule(std::shared_ptr<paced> p) {
  {
    std::lock_guard<std::mutex> lock{mutex_};
    if (stopping_)
      return;
    heap_.push_back({steady::now() + p->gap, seq_++, std::move(p)});
    std::push_heap(heap_.begin(), heap_.end(), later);
  }
  cv_.notify_one();
}

void streamer::run() {
  std::unique_lock<std::mutex> lock{mutex_};
  while (!stopping_) {
    if (heap_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto when = heap_.front().when;
    if (steady::now() < when) {
      cv_.wait_until(lock, when);
      continue;
    }
    std::pop_heap(heap_.begin(), heap_.end(), later);
    auto p = std::move(heap_.back().stream);
    heap_.pop_back();
    lock.unlock();
    // Outside the lock: writing posts to an I/O thread, and schedule() takes the lock.
    if (p->step())
      schedule(std::move(p));
    lock.lock();
  }
}

} // namespace lps::mock_stream
