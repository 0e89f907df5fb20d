#include "runtime/gateway_stream.hpp"

#include "runtime/stream_translate_anthropic.hpp"
#include "runtime/stream_translate_completion.hpp"
#include "runtime/stream_translate_gemini.hpp"
#include "runtime/stream_translate_openai.hpp"

namespace lps {

namespace {

std::unique_ptr<stream_translator> translator_for(gateway_dialect d,
                                                  const stream_translate_options& options) {
  switch (d) {
  case gateway_dialect::anthropic:
    return make_anthropic_stream_translator(options);
  case gateway_dialect::gemini:
    return make_gemini_stream_translator(options);
  default:
    return make_openai_stream_translator(options);
  }
}

std::string data_event(std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 8);
  out.append("data: ").append(payload).append("\n\n");
  return out;
}

/// The events of `chunks` in one write: a piece of the upstream body often completes several
/// events, and each write costs the client's connection a post and a send.
std::string data_events(const std::vector<std::string>& chunks) {
  std::string out;
  for (const auto& c : chunks)
    out += data_event(c);
  return out;
}

constexpr std::string_view done_event = "data: [DONE]\n\n";

/// The status lps records for a call whose client left before its end (nginx's "client
/// closed request"); the client never sees it.
constexpr unsigned client_closed_status = 499;

/// How a streamed call ended, as a result: 200 when whole; an error the route still answers
/// as JSON when nothing was sent (retryable: no byte reached the client); else the status
/// recorded for a stream that failed after its head (the client got an error event).
gateway_result stream_result(const gateway_stream_outcome& o, std::string_view provider) {
  gateway_result r;
  r.prompt_tokens = o.usage.prompt_tokens;
  r.completion_tokens = o.usage.completion_tokens;
  if (o.complete)
    return r;
  if (o.client_gone) {
    r.status = client_closed_status;
    return r;
  }
  r.status = 502;
  r.provider_failure = true;
  r.retryable = !o.committed;
  r.body = render_gateway_error(
      {502, std::string{provider} + ": " + o.error_message, "upstream_error", "", o.error_type});
  return r;
}

} // namespace

gateway_result gateway_stream_attempt_result(gateway_stream& sink, gateway_dialect d,
                                             std::string_view provider,
                                             const http_client_response& resp,
                                             std::string_view request, const std::string& model) {
  // A cut or a cancel before anything reached the client is an ordinary transport failure.
  bool streamed = resp.error == transport_error::none ? resp.status >= 200 && resp.status < 300
                                                      : sink.committed();
  if (!streamed && resp.error != transport_error::none)
    return gateway_transport_failure(provider, resp.error, resp.error_message);
  if (!streamed)
    return gateway_read_upstream(d, resp.status, resp.body, resp.headers, request, model,
                                 std::chrono::system_clock::now());
  auto detail = std::string{to_string(resp.error)}
                + (resp.error_message.empty() ? "" : ": " + resp.error_message);
  auto result = stream_result(sink.end(resp.error != transport_error::none, detail), provider);
  result.limits = gateway_rate_limits(d, resp.headers, std::chrono::system_clock::now());
  return result;
}

std::string gateway_stream_error_event(std::string_view type, std::string_view message) {
  return data_event(
      render_gateway_error({502, std::string{message}, "upstream_error", "", std::string{type}}));
}

gateway_stream::gateway_stream(http_responder respond,
                               std::vector<std::pair<std::string, std::string>> headers,
                               stream_translate_options options)
    : respond_(std::move(respond)), headers_(std::move(headers)), options_(std::move(options)) {
  // nop
}

void gateway_stream::begin_attempt(gateway_dialect d) {
  std::lock_guard<std::mutex> lock{mutex_};
  parser_ = std::make_unique<sse_parser>();
  translator_ = translator_for(d, options_);
  usage_.reset();
}

void gateway_stream::on_piece(std::string_view piece) {
  std::lock_guard<std::mutex> lock{mutex_};
  if (ended_ || client_gone_ || !parser_)
    return;
  std::vector<sse_event> events;
  parser_->feed(piece, events);
  std::vector<std::string> chunks;
  for (const auto& e : events)
    translator_->on_event(e, chunks);
  if (!chunks.empty())
    send_locked(data_events(chunks));
}

void gateway_stream::write_completion(std::string_view completion) {
  std::lock_guard<std::mutex> lock{mutex_};
  auto whole = chunks_of_completion(completion, options_);
  if (!whole.chunks.empty())
    send_locked(data_events(whole.chunks));
  usage_ = whole.usage;
}

gateway_stream_outcome gateway_stream::end(bool cut, std::string_view detail) {
  std::lock_guard<std::mutex> lock{mutex_};
  gateway_stream_outcome o;
  bool whole = usage_.has_value(); // chunks written whole (the built-in mock)
  if (translator_) {
    if (!cut && !translator_->error()) {
      std::vector<std::string> tail;
      translator_->on_end(tail);
      if (!tail.empty())
        send_locked(data_events(tail));
    }
    whole = !cut && translator_->complete() && !translator_->error() && !parser_->failed();
    if (translator_->usage())
      usage_ = translator_->usage();
    if (const auto& e = translator_->error()) {
      o.error_type = e->type;
      o.error_message = "the provider's stream reported an error: " + e->message;
    } else if (parser_->failed()) {
      o.error_type = "bad_stream";
      o.error_message = "the provider's stream could not be read: " + parser_->error();
    } else if (!whole) {
      o.error_type = cut ? "upstream_stream_cut" : "upstream_stream_incomplete";
      o.error_message =
          cut ? "the provider's stream broke off before its end (" + std::string{detail} + ")"
              : "the provider's stream ended without its end marker";
    }
  }
  o.client_gone = client_gone_;
  o.complete = whole && !client_gone_;
  o.usage = usage_.value_or(stream_usage{});
  if (whole && !committed_ && !client_gone_)
    commit_locked(); // an empty answer still gets its head and [DONE]
  o.committed = committed_;
  if (!committed_ || client_gone_ || ended_)
    return o;
  ended_ = true;
  send_locked(whole ? std::string{done_event}
                    : gateway_stream_error_event(o.error_type, o.error_message));
  if (out_)
    out_->finish();
  else
    finish_pending_ = true;
  return o;
}

bool gateway_stream::committed() const {
  std::lock_guard<std::mutex> lock{mutex_};
  return committed_;
}

void gateway_stream::client_left() {
  std::lock_guard<std::mutex> lock{mutex_};
  client_gone_ = true;
  cancel_->cancel(); // only posts to the upstream's strand, so it may run under this lock
}

void gateway_stream::commit_locked() {
  committed_ = true;
  auto headers = headers_;
  headers.emplace_back("Cache-Control", "no-cache");
  http_response head{200, "", "text/event-stream", std::move(headers)};
  head.stream = [self = shared_from_this()](std::shared_ptr<http_body_stream> out) {
    self->attach(std::move(out));
  };
  respond_(std::move(head));
}

void gateway_stream::send_locked(std::string text) {
  if (!committed_)
    commit_locked();
  if (client_gone_)
    return;
  if (!out_) {
    pending_ += text;
    return;
  }
  if (!out_->write(std::move(text))) {
    // The client went away: the rest of the answer is not wanted. cancel() only posts to
    // the client's strand, so it may run under this lock.
    client_gone_ = true;
    cancel_->cancel();
  }
}

void gateway_stream::attach(std::shared_ptr<http_body_stream> out) {
  std::lock_guard<std::mutex> lock{mutex_};
  out_ = std::move(out);
  if (!pending_.empty() && !out_->write(std::exchange(pending_, {}))) {
    client_gone_ = true;
    cancel_->cancel();
  }
  if (finish_pending_)
    out_->finish();
}

void gateway_stream_registry::add(const void* asker, std::shared_ptr<gateway_stream> stream) {
  std::lock_guard<std::mutex> lock{mutex_};
  streams_[asker] = std::move(stream);
}

std::shared_ptr<gateway_stream> gateway_stream_registry::take(const void* asker) {
  std::lock_guard<std::mutex> lock{mutex_};
  auto i = streams_.find(asker);
  if (i == streams_.end())
    return nullptr;
  auto stream = std::move(i->second);
  streams_.erase(i);
  return stream;
}

std::shared_ptr<gateway_stream> gateway_stream_registry::find(const void* asker) {
  std::lock_guard<std::mutex> lock{mutex_};
  auto i = streams_.find(asker);
  return i == streams_.end() ? nullptr : i->second;
}

void gateway_stream_registry::forget(const gateway_stream* stream) {
  std::lock_guard<std::mutex> lock{mutex_};
  std::erase_if(streams_, [&](const auto& entry) { return entry.second.get() == stream; });
}

gateway_stream_registry& gateway_streams() {
  static gateway_stream_registry registry;
  return registry;
}

void gateway_cancel_registry::add(const void* asker, std::shared_ptr<http_call_cancel> token) {
  std::lock_guard<std::mutex> lock{mutex_};
  tokens_[asker] = std::move(token);
}

std::shared_ptr<http_call_cancel> gateway_cancel_registry::take(const void* asker) {
  std::lock_guard<std::mutex> lock{mutex_};
  auto i = tokens_.find(asker);
  if (i == tokens_.end())
    return nullptr;
  auto token = std::move(i->second);
  tokens_.erase(i);
  return token;
}

void gateway_cancel_registry::forget(const http_call_cancel* token) {
  std::lock_guard<std::mutex> lock{mutex_};
  std::erase_if(tokens_, [&](const auto& entry) { return entry.second.get() == token; });
}

gateway_cancel_registry& gateway_cancels() {
  static gateway_cancel_registry registry;
  return registry;
}

} // namespace lps
