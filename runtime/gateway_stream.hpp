#pragma once

// One streamed gateway answer (`stream: true`, docs/gateway.md "Streaming"): the route makes
// it with the client's responder, the provider actor feeds it the upstream's streamed body
// piece by piece (on the HTTP client's I/O thread, no actor hop per piece), and it writes
// OpenAI chat.completion.chunk events to the client as they come, then `data: [DONE]`.
// Nothing goes to the client before the first chunk: until then an attempt that fails can be
// retried, or answered as the JSON error a non-streamed call gets. The client going away
// (client_left(), from the HTTP server's close watch, or a write its stream refuses) cancels
// the upstream call. Thread-safe: pieces, the end and the client's stream arrive on different
// threads.

#include "runtime/gateway_translate.hpp"
#include "runtime/http_server.hpp"
#include "runtime/sse_parser.hpp"
#include "runtime/stream_translate_common.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lps {

struct gateway_request_info;

/// How a streamed call ended, for the gate, metrics and cost.
struct gateway_stream_outcome {
  /// The client got the stream's head (status 200 and events); else it still waits for an
  /// answer, which the route sends as JSON.
  bool committed = false;
  /// The upstream's answer arrived whole and the client got `data: [DONE]`.
  bool complete = false;
  /// The client went away before the end (the upstream call was cancelled).
  bool client_gone = false;
  /// Why the stream failed (upstream error event, cut, unreadable), empty when it did not.
  std::string error_type;
  std::string error_message;
  stream_usage usage;
};

class gateway_stream : public std::enable_shared_from_this<gateway_stream> {
public:
  /// `headers` go with the 200 head (x-lps-provider); `options` say the client's model and
  /// whether it asked for usage.
  gateway_stream(http_responder respond, std::vector<std::pair<std::string, std::string>> headers,
                 stream_translate_options options);

  /// The token of the upstream call; cancelled when the client is seen gone.
  std::shared_ptr<http_call_cancel> cancel_token() const {
    return cancel_;
  }

  /// An upstream attempt in `d`'s stream format starts: a fresh parser and translator.
  void begin_attempt(gateway_dialect d);

  /// The next piece of the upstream's 2xx body (client I/O thread; must not block).
  void on_piece(std::string_view piece);

  /// A whole chat.completion answered without an upstream stream (the built-in mock), cut
  /// into chunks (runtime/stream_translate_completion.hpp) and written; end() follows.
  void write_completion(std::string_view completion);

  /// The upstream call ended; `cut` when its body broke off (a transport error after the
  /// head). Once committed, ends the client's stream: `data: [DONE]` after a whole answer,
  /// else one error event (gateway_stream_error_event) and the end of the body.
  gateway_stream_outcome end(bool cut, std::string_view detail);

  /// Whether the client has been sent the stream's head.
  bool committed() const;

  /// The client closed its connection (before or during the stream): nothing more is sent
  /// and the upstream call is cancelled at once.
  void client_left();

private:
  void commit_locked();
  void send_locked(std::string text);
  void attach(std::shared_ptr<http_body_stream> out);

  mutable std::mutex mutex_;
  http_responder respond_;
  std::vector<std::pair<std::string, std::string>> headers_;
  stream_translate_options options_;
  std::shared_ptr<http_call_cancel> cancel_ = std::make_shared<http_call_cancel>();
  std::unique_ptr<sse_parser> parser_;
  std::unique_ptr<stream_translator> translator_;
  std::optional<stream_usage> usage_;
  bool committed_ = false;
  bool ended_ = false;
  bool client_gone_ = false;
  /// Events written before the client's stream is open (its head is still being sent).
  std::string pending_;
  bool finish_pending_ = false;
  std::shared_ptr<http_body_stream> out_;
};

/// Streamed calls on their way to their provider actor. The call message itself stays plain
/// (messages/gateway.hpp): the route files its stream here under the identity of the actor
/// that asks the provider (the route's request bridge, one per call: its CAF control block),
/// the provider actor takes it by the sender of the call, and the route forgets it when the
/// call ends (one that never reached a provider).
class gateway_stream_registry {
public:
  void add(const void* asker, std::shared_ptr<gateway_stream> stream);
  /// The stream filed under `asker`, removed; null for a call answered whole.
  std::shared_ptr<gateway_stream> take(const void* asker);
  /// The stream filed under `asker`, left filed.
  std::shared_ptr<gateway_stream> find(const void* asker);
  void forget(const gateway_stream* stream);

private:
  std::mutex mutex_;
  std::map<const void*, std::shared_ptr<gateway_stream>> streams_;
};

/// The process's registry.
gateway_stream_registry& gateway_streams();

/// The cancel tokens of non-streamed calls, filed as gateway_stream_registry files streams
/// (under the asking bridge), so the provider actor can give its upstream request the token
/// the route cancels when the client leaves.
class gateway_cancel_registry {
public:
  void add(const void* asker, std::shared_ptr<http_call_cancel> token);
  /// The token filed under `asker`, removed; null when none is.
  std::shared_ptr<http_call_cancel> take(const void* asker);
  void forget(const http_call_cancel* token);

private:
  std::mutex mutex_;
  std::map<const void*, std::shared_ptr<http_call_cancel>> tokens_;
};

/// The process's registry of non-streamed calls' tokens.
gateway_cancel_registry& gateway_cancels();

/// The streamed form of gateway_upstream_request (`stream: true`): OpenAI and OpenRouter with
/// `stream` and `stream_options.include_usage` (always: the usage chunk gives the cost),
/// Anthropic with `stream`, Gemini's `:streamGenerateContent?alt=sse`. `as_is`: the body names
/// `model` and has those two fields already (gateway_request_info's sendable_as_is), so an
/// OpenAI or OpenRouter request is the body as it is.
gateway_upstream gateway_upstream_stream_request(gateway_dialect d, const gateway_target& target,
                                                 std::string_view body, const std::string& model,
                                                 bool as_is = false);

/// The client's stream options, from what the route's check read of its body (no second
/// parse): `model` and `created` as given, stream_options.include_usage, and the json_schema's
/// tool name (Anthropic's forced tool).
stream_translate_options gateway_stream_options(const gateway_request_info& info, std::string model,
                                                int64_t created);

/// The result of one attempt of a streamed call, from its HTTP answer `resp` (read by `sink`
/// as it came): 200 when the stream arrived whole; 499 when the client left; an error answer
/// read whole as for any call (`request` and `model`: the client's body and model); a
/// transport failure before anything reached the client (retryable, as for any call); or
/// 502 for a stream that broke off after its head, whose client got an error event. Ends the
/// client's stream once it is committed.
gateway_result gateway_stream_attempt_result(gateway_stream& sink, gateway_dialect d,
                                             std::string_view provider,
                                             const http_client_response& resp,
                                             std::string_view request, const std::string& model);

/// The event a committed stream ends with when the upstream failed mid-way:
/// `data: {"error":{"message","type","param":null,"code"}}` and a blank line (OpenAI's SDKs
/// raise it as an APIError).
std::string gateway_stream_error_event(std::string_view type, std::string_view message);

} // namespace lps
