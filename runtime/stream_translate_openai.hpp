#pragma once

// OpenAI (and OpenRouter) chat completion streams -> the same chunks for lps's client
// (runtime/stream_translate_common.hpp): every chunk passes through with its model replaced
// by the name the client asked for. The gateway always asks upstream for usage
// (stream_options.include_usage), so the translator records it; a client that did not ask
// gets neither the usage chunk nor "usage": null fields. `data: [DONE]` ends the answer
// (the gateway sends its own); a chunk with "error" becomes error().

#include "runtime/stream_translate_common.hpp"

namespace lps {

std::unique_ptr<stream_translator> make_openai_stream_translator(stream_translate_options options);

} // namespace lps
