#pragma once

// --mode=direct: the OpenAI chat/completions call lps would make for each request, sent
// straight to a provider (the mock), as the baseline for the gateway overhead.

#include "tools/loadgen/options.hpp"

namespace lps::loadgen {

/// Runs a whole direct-mode run and prints its summary; the exit code.
int run_direct(const options& opt);

} // namespace lps::loadgen
