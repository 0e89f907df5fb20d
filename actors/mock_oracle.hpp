#pragma once

// The built-in mock provider's judgement, as a pure function: the same seed and
// correlation_id give the same answer in every process (stable hashes only, never
// std::hash or unseeded randomness).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lps {

/// Knobs of the mock (MOCK_* configuration keys).
struct mock_settings {
  uint64_t seed = 42;
  std::chrono::milliseconds latency{0};
  std::chrono::milliseconds latency_jitter{0};
  /// Probability 0..1 that a call fails with one of error_codes.
  double error_rate = 0.0;
  std::vector<int32_t> error_codes{429, 503, 500};
  /// Model reported when the request names none.
  std::string default_model = "mock-model-v1";
};

/// What the mock answers for one comparison.
struct mock_answer {
  bool success = true;
  /// Success: "Essay A" or "Essay B", a justification, confidence 1..5.
  std::string winner;
  std::string justification;
  double confidence = 0.0;
  /// Failure: the simulated HTTP status (one of error_codes) and the error code
  /// (429 -> RATE_LIMIT, 5xx -> EXTERNAL_SERVICE_ERROR), always retryable.
  int32_t http_status = 0;
  std::string error_code;
  std::string error_message;
  /// Simulated latency (latency + a stable draw in [0, jitter]).
  std::chrono::milliseconds latency{0};
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  /// sha256 of the user prompt.
  std::string prompt_sha256;
};

/// Judges one comparison deterministically from (seed, correlation_id, user_prompt).
/// Whether the call fails is drawn per attempt (1 = first), so a retry can succeed as it
/// would against a real provider; the judgement itself is the same on every attempt.
/// `prompt_sha256`, when given, is used instead of hashing the prompt again.
mock_answer mock_judge(const mock_settings& settings, const std::string& correlation_id,
                       const std::string& user_prompt, uint32_t attempt = 1,
                       std::string_view prompt_sha256 = {});

} // namespace lps
