#pragma once

// Streamed answers of the mock provider server (docs/mock-provider.md, "Streaming"): a call
// with `"stream": true` (OpenAI, OpenRouter, Anthropic) or to Gemini's
// `:streamGenerateContent` gets the answer the non-streamed call would get, cut into the
// provider's server-sent events: OpenAI `chat.completion.chunk` lines ending with
// `data: [DONE]`, Anthropic's message_start ... message_stop events, Gemini's
// GenerateContentResponse chunks. The stream is made from the finished answer body, so any
// answer the server renders (judgements, general chat) streams the same way. Fault knobs:
// a cut stream (the connection closes before the end) and a gap between events; an error
// before the first byte is an ordinary error answer (status faults).

#include "runtime/http_server.hpp"
#include "tools/mock_provider/mock_provider_server.hpp"
#include "tools/mock_provider/mock_provider_wire.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace lps::mock_stream {

using mock_wire::dialect;

/// What a call asks of its answer's form.
struct stream_ask {
  bool stream = false;
  /// OpenAI stream_options.include_usage: a last chunk with the usage.
  bool include_usage = false;
  /// Gemini: alt=sse; without it the chunks come as one JSON array (not streamed).
  bool sse = true;
};

/// True for `/v1beta/models/{model}:streamGenerateContent`.
bool is_gemini_stream_path(std::string_view path);

/// Reads the ask from the body's "stream" (and "stream_options"), or Gemini's path and query.
stream_ask ask_of(dialect d, std::string_view path, std::string_view query, std::string_view body);

/// The streamed form of a complete answer body, one element per event, byte for byte as
/// sent (e.g. "event: ping\ndata: {\"type\": \"ping\"}\n\n"). A body that is not JSON (the
/// malformed fault) becomes one data event holding it.
std::vector<std::string> render_events(dialect d, std::string_view complete_body,
                                       const stream_ask& ask);

/// How one streamed answer is delivered (fault knobs).
struct delivery {
  /// Close the connection without the end of the body after `cut_after` events (nullopt:
  /// half of them, at least one).
  bool cut = false;
  std::optional<size_t> cut_after;
  /// Wait between two events.
  std::chrono::milliseconds gap{0};
};

/// Writes streamed answers; one thread paces those with a gap, so no I/O thread waits.
class streamer {
public:
  streamer();
  streamer(const streamer&) = delete;
  streamer& operator=(const streamer&) = delete;
  ~streamer();

  void start();
  /// Joins the thread; streams still being paced are dropped (call after the HTTP server
  /// stopped, so they have no connection left).
  void stop();

  /// Turns `r`, a complete 200 answer of dialect `d`, into its streamed form.
  void make_streamed(http_response& r, dialect d, const stream_ask& ask, const delivery& how);

  mock_stream_counts counts() const;
  /// Zeroes the counts but `open`.
  void reset_counts();

private:
  struct counter_block;
  struct paced;
  void begin(std::shared_ptr<paced> p);
  void schedule(std::shared_ptr<paced> p);
  void run();

  struct entry {
    std::chrono::steady_clock::time_point when;
    uint64_t seq = 0;
    std::shared_ptr<paced> stream;
  };
  /// Heap order: earliest first, equal times in scheduling order.
  static bool later(const entry& a, const entry& b);

  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<entry> heap_; // guarded by mutex_; earliest first (std::push_heap)
  uint64_t seq_ = 0;        // guarded by mutex_
  bool stopping_ = false;   // guarded by mutex_
  std::thread thread_;
  std::shared_ptr<counter_block> counters_;
};

} // namespace lps::mock_stream
