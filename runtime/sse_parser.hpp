#pragma once

// An incremental parser of server-sent events (text/event-stream), per the WHATWG HTML
// standard's "event stream interpretation": bytes arrive in any chunking (a line, even a
// CRLF pair, may be split between two reads) and complete events come out. Used on provider
// streams (OpenAI, Anthropic, Gemini all frame their streams as SSE). No I/O, no JSON.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lps {

/// One dispatched event.
struct sse_event {
  /// The `event:` field; "message" when the event named none.
  std::string event = "message";
  /// The `data:` lines joined with '\n' (without a trailing newline).
  std::string data;
  /// The last event id seen so far in the stream (the `id:` field persists across events).
  std::string id;

  bool operator==(const sse_event&) const = default;
};

class sse_parser {
public:
  /// Bytes of one line or one event's data beyond this fail the stream (a peer that never
  /// sends a line end must not grow memory without bound).
  static constexpr size_t default_max_event_bytes = size_t{16} << 20;

  explicit sse_parser(size_t max_event_bytes = default_max_event_bytes)
      : max_event_bytes_(max_event_bytes) {}

  /// Parses `bytes` (the next piece of the stream) and appends every event it completes to
  /// `out`. After a failure it ignores further input.
  void feed(std::string_view bytes, std::vector<sse_event>& out);

  /// The stream exceeded the size limit; the message says how.
  bool failed() const {
    return !error_.empty();
  }
  const std::string& error() const {
    return error_;
  }

  /// The latest valid `retry:` field (milliseconds), if any.
  std::optional<unsigned long long> retry() const {
    return retry_;
  }

  /// True when bytes of an unfinished event are buffered: a stream that ends now loses them
  /// (the standard drops an event not ended by a blank line).
  bool pending() const {
    return !line_.empty() || has_data_ || !event_type_.empty();
  }

private:
  void take_line(std::vector<sse_event>& out);
  /// Splits a field line at its first ':' (one space after it is not part of the value).
  void take_field(std::string_view line);
  void take_field(std::string_view name, std::string_view value);
  void dispatch(std::vector<sse_event>& out);

  size_t max_event_bytes_;
  std::string line_;
  std::string data_;
  bool has_data_ = false;
  std::string event_type_;
  std::string last_id_;
  std::optional<unsigned long long> retry_;
  /// The previous piece ended in CR: a LF at the start of the next one belongs to it.
  bool after_cr_ = false;
  /// The UTF-8 byte order mark is skipped once, at the very start.
  size_t bom_seen_ = 0;
  bool started_ = false;
  std::string error_;
};

} // namespace lps
