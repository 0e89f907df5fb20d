#pragma once

// lps-loadgen's options (--key=value), and the clock every part of it times with.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lps::loadgen {

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

enum class submit_mode { single, bulk, direct };
enum class wait_mode { callback, poll, none };

struct options {
  std::string url = "http://127.0.0.1:8090";
  uint64_t count = 10000;
  submit_mode mode = submit_mode::single;
  uint64_t bulk_size = 100;
  uint64_t concurrency = 64;
  // Fresh POSTs (direct mode: calls) started per second on a fixed schedule; 0: closed loop.
  uint64_t rate = 0;
  uint64_t essay_bytes = 3000;
  wait_mode wait = wait_mode::callback;
  uint64_t timeout_seconds = 600;
  uint64_t pid = 0;
  std::string provider;
  uint64_t seed = 1;
  // --mode=direct only: what lps's OpenAI provider sends (OPENAI_API_KEY, OPENAI_DEFAULT_MODEL).
  std::string api_key = "test-key";
  std::string model = "gpt-5-mini-2025-08-07";
  // --mode=direct only: extra request headers (--header), e.g. a gateway's routing headers.
  std::vector<std::pair<std::string, std::string>> headers;
  // --mode=direct only: `stream: true` calls, timed to the first chunk and to the end.
  bool stream = false;
  // Any mode: POST here every reset_interval_ms during the run (empty: never).
  std::string reset_url;
  uint64_t reset_interval_ms = 100;
};

/// The --help text.
extern const char* const usage_text;

/// The options of a command line; nullopt when --help was asked for. Throws
/// std::invalid_argument naming the bad option.
std::optional<options> parse_options(int argc, char** argv);

} // namespace lps::loadgen
