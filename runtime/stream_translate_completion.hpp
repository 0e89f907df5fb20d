#pragma once

// A finished OpenAI chat.completion body cut into the chat.completion.chunk objects a stream
// of it would carry (runtime/stream_translate_common.hpp): the role chunk, the content in
// pieces, each tool call whole, the chunk with the finish reason, and with include_usage the
// usage chunk. The built-in mock provider streams its answers this way.

#include "runtime/stream_translate_common.hpp"

#include <string_view>

namespace lps {

struct completion_chunks {
  std::vector<std::string> chunks;
  stream_usage usage;
};

/// The chunks of `completion` (a chat.completion JSON body); none when it is not one.
completion_chunks chunks_of_completion(std::string_view completion,
                                       const stream_translate_options& options);

} // namespace lps
