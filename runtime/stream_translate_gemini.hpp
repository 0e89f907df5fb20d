#pragma once

// Gemini streamGenerateContent (alt=sse) chunks -> OpenAI chat.completion.chunk objects
// (runtime/stream_translate_common.hpp). Each chunk is a whole GenerateContentResponse:
// text parts become content (thought parts are skipped), functionCall parts become complete
// tool calls in one delta, the first finishReason ends the answer. Usage comes from the
// latest usageMetadata; the usage chunk is sent at the end of the body (on_end), since
// Gemini has no end marker of its own. A chunk with "error" becomes error().

#include "runtime/stream_translate_common.hpp"

namespace lps {

std::unique_ptr<stream_translator> make_gemini_stream_translator(stream_translate_options options);

} // namespace lps
