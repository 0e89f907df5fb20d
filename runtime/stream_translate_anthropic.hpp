#pragma once

// Anthropic Messages stream events -> OpenAI chat.completion.chunk objects
// (runtime/stream_translate_common.hpp). message_start opens the answer (role chunk, input
// usage), text deltas become content, tool_use blocks become tool_calls (id and name first,
// then input_json_delta pieces as arguments) except the json_schema's forced tool, whose
// input_json_delta pieces become content (finish_reason stop), message_delta gives the finish
// reason and the
// output usage, message_stop ends it (with the usage chunk when asked). `event: error`
// becomes error(); ping and thinking blocks yield nothing.

#include "runtime/stream_translate_common.hpp"

namespace lps {

std::unique_ptr<stream_translator>
make_anthropic_stream_translator(stream_translate_options options);

} // namespace lps
