#pragma once

// Internal to the stream translators (runtime/stream_translate_*.cpp): builds OpenAI
// chat.completion.chunk objects. Includes Boost.JSON, so only those .cpp files include it.

#include "runtime/stream_translate_common.hpp"

#include <boost/json.hpp>

#include <string>
#include <string_view>

namespace lps::stream_chunk {

namespace json = boost::json;

/// The fixed fields of every chunk of one answer.
struct chunk_head {
  std::string id;
  int64_t created = 0;
  std::string model;
  bool include_usage = false;
};

/// A chunk with one choice: `delta` and `finish_reason` (empty: null).
std::string choice_chunk(const chunk_head& h, json::object delta,
                         std::string_view finish_reason = {});

/// The last chunk of an include_usage stream: no choices, the usage.
std::string usage_chunk(const chunk_head& h, const stream_usage& u);

/// OpenAI's usage object.
json::object usage_object(const stream_usage& u);

/// The tool call delta that opens tool call `index`.
json::object tool_call_start(size_t index, std::string_view id, std::string_view name,
                             std::string_view arguments);

/// A piece of tool call `index`'s arguments.
json::object tool_call_arguments(size_t index, std::string_view piece);

/// An unsigned number at `key`, 0 when absent or not a non-negative integer.
uint64_t count_at(const json::object& o, std::string_view key);

/// A string at `key`, empty when absent or not a string.
std::string_view string_at(const json::object& o, std::string_view key);

/// Parses an event's data as a JSON object; nullopt for anything else. The object lives in
/// `storage` (default: the heap); one that lives on the caller's stack must not outlive it.
std::optional<json::object> parse_object(std::string_view data, json::storage_ptr storage = {});

} // namespace lps::stream_chunk
