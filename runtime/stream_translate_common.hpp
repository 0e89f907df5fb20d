#pragma once

// Stream translation for the OpenAI-compatible gateway: a provider's streamed answer, one
// server-sent event at a time (runtime/sse_parser.hpp), becomes OpenAI
// `chat.completion.chunk` objects, the `data:` payloads the gateway writes to its client
// (followed by its own `data: [DONE]`). One translator per upstream call:
// stream_translate_openai.hpp (OpenAI and OpenRouter: passed through, model rewritten),
// stream_translate_anthropic.hpp (Messages events), stream_translate_gemini.hpp
// (streamGenerateContent chunks). No I/O, no CAF or Beast; Boost.JSON stays in the .cpp files.

#include "runtime/sse_parser.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lps {

/// What the client asked for, which every chunk reflects.
struct stream_translate_options {
  /// The model name the client sent (every chunk says it, whatever the upstream calls it).
  std::string model;
  /// stream_options.include_usage: every chunk carries "usage": null and a last chunk with
  /// empty choices carries the usage. Off: no usage in any chunk (the translator still
  /// records it, for cost accounting).
  bool include_usage = false;
  /// "created" of the chunks (seconds since the epoch) when the upstream gives none
  /// (Anthropic, Gemini); OpenAI chunks keep their own.
  int64_t created = 0;
  /// Anthropic: the forced tool a json_schema response_format became (named after the
  /// schema; empty: none). Its input streams as content, as the non-streamed answer's does.
  std::string schema_tool;
};

/// Token usage of the whole answer, as OpenAI reports it.
struct stream_usage {
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  uint64_t total_tokens = 0;
  /// Of prompt_tokens, read from a prompt cache.
  uint64_t cached_tokens = 0;

  bool operator==(const stream_usage&) const = default;
};

/// An error the upstream reported inside its stream (after the 200 head), or a stream the
/// translator could not read.
struct stream_error {
  /// The upstream's error type ("overloaded_error", "server_error", "RESOURCE_EXHAUSTED"),
  /// or "bad_stream" for unreadable events.
  std::string type;
  std::string message;

  bool operator==(const stream_error&) const = default;
};

class stream_translator {
public:
  virtual ~stream_translator() = default;

  /// Takes the next upstream event and appends the chunk objects (serialized JSON) it
  /// yields to `out`. Events after the end or after an error are ignored.
  virtual void on_event(const sse_event& e, std::vector<std::string>& out) = 0;

  /// The upstream body ended cleanly (no transport error): appends what only the end can
  /// give (Gemini's usage chunk). complete() then says whether the answer was whole.
  virtual void on_end(std::vector<std::string>& out) = 0;

  /// The upstream's own end marker was seen ([DONE], message_stop, a finish reason); a
  /// body that ends before it was cut.
  bool complete() const {
    return complete_;
  }

  /// Set once the upstream reported an error in the stream or sent an unreadable event;
  /// no chunks follow it.
  const std::optional<stream_error>& error() const {
    return error_;
  }

  /// The answer's usage, once the upstream reported it.
  const std::optional<stream_usage>& usage() const {
    return usage_;
  }

protected:
  bool complete_ = false;
  std::optional<stream_error> error_;
  std::optional<stream_usage> usage_;
};

} // namespace lps
