#pragma once

// A local stand-in for the LLM providers lps calls. One HTTP server speaks four wire formats,
// chosen by path: OpenAI chat completions, OpenRouter (the same, under /api/v1), Anthropic
// messages and Gemini generateContent. It checks keys and request bodies the way the real
// APIs do, answers with a deterministic judgement (a stable hash of the seed and the prompt),
// and injects faults: scripted through a JSON control API under /_mock/ or at random by an
// error rate. docs/mock-provider.md has the details. Boost.JSON stays in the .cpp.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lps {

/// Start-up settings (the lps-mock-provider flags map onto these one to one).
struct mock_provider_options {
  std::string host = "127.0.0.1";
  /// 0: any free port (see mock_provider_server::port()).
  uint16_t port = 0;
  unsigned io_threads = 1;
  /// Every provider answer waits latency + U(0, jitter); the I/O thread does not block.
  std::chrono::milliseconds latency{0};
  std::chrono::milliseconds jitter{0};
  /// Probability in [0, 1] that a call that would succeed gets an error instead.
  double error_rate = 0.0;
  /// The statuses random errors draw from (uniformly), each in 400..599.
  std::vector<unsigned> error_codes{429, 500, 503, 529};
  /// Feeds the judgement hash and the random generator (jitter, random errors, ids).
  uint64_t seed = 42;
  /// The one key every dialect accepts.
  std::string api_key = "test-key";
  /// HTTPS: certificate chain and private key (PEM files), both or neither (plain HTTP).
  std::string tls_cert_file;
  std::string tls_key_file;
};

/// Call counters. Control API calls (/_mock/...) are not counted.
struct mock_provider_stats {
  /// Every provider call, including rejected ones and unknown paths.
  uint64_t calls = 0;
  /// Keyed by "openai", "openrouter", "anthropic", "gemini", "unknown".
  std::map<std::string, uint64_t> by_dialect;
  /// Keyed by outcome: "ok", "unauthorized", "invalid_request", "not_found", "rate_limited",
  /// "quota_exhausted", "server_error", "unavailable", "overloaded", "error_<status>",
  /// "malformed", "truncated", "no_tool_use", "bad_winner", "dropped", "delayed" (a delay
  /// fault: answered normally, later).
  std::map<std::string, uint64_t> by_outcome;
  /// by_dialect x by_outcome.
  std::map<std::string, std::map<std::string, uint64_t>> by_dialect_outcome;
  /// Calls that consumed a scripted fault (faults apply only to calls that pass the key and
  /// request checks).
  uint64_t scripted_faults = 0;
  /// Calls that got a random error from error_rate.
  uint64_t random_errors = 0;
  /// Calls still covered by the fault script.
  uint64_t pending_faults = 0;
};

class mock_provider_server {
public:
  mock_provider_server();
  ~mock_provider_server();
  mock_provider_server(const mock_provider_server&) = delete;
  mock_provider_server& operator=(const mock_provider_server&) = delete;

  /// Checks the options, binds and starts serving. Returns false with `error` on failure.
  bool start(const mock_provider_options& options, std::string& error);

  /// The bound port (useful with port 0); 0 before start().
  uint16_t port() const;

  /// Stops serving: connections close, answers still waiting for their latency and
  /// connections held by "drop" are abandoned. Idempotent; the server cannot start again.
  void stop();

  /// A snapshot of the counters.
  mock_provider_stats stats() const;

  /// Appends scripted faults; `json` is the body POST /_mock/faults takes.
  bool add_faults(std::string_view json, std::string& error);

  /// Clears counters, the fault script, the simulated caches and the rate-limit windows (what
  /// POST /_mock/reset does). Connections held by "drop" faults stay held until stop().
  void reset();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace lps
