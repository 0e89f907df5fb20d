// lps-mock-provider: a local stand-in for OpenAI, OpenRouter, Anthropic and Gemini, for tests
// and benchmarks of lps (docs/mock-provider.md). Prints the URL it listens on, then serves
// until SIGINT or SIGTERM.

#include "tools/mock_provider/mock_provider_server.hpp"

#include <charconv>
#include <csignal>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pthread.h>

namespace {

constexpr const char* usage_text = R"(usage: lps-mock-provider [options]

Serves the providers' wire formats on one port:
  POST /v1/chat/completions                    OpenAI      OPENAI_BASE_URL=http://H:P/v1
  POST /api/v1/chat/completions                OpenRouter  OPENROUTER_BASE_URL=http://H:P/api/v1
  POST /v1/messages                            Anthropic   ANTHROPIC_BASE_URL=http://H:P
  POST /v1beta/models/{model}:generateContent  Gemini      GOOGLE_BASE_URL=http://H:P
  /v1/files, /v1/batches                       OpenAI Files + Batch API
  /v1/messages/batches                         Anthropic Message Batches
  POST /_mock/faults, GET /_mock/stats, POST /_mock/reset, GET /_mock/health,
  GET|POST /_mock/batches: control API

options:
  --host=ADDR            bind address (default 127.0.0.1)
  --port=N               port, 0 for any free port (default 0)
  --io-threads=N         I/O threads (default 1)
  --latency-ms=N         added to every provider answer (default 0)
  --jitter-ms=N          plus a uniform random 0..N ms (default 0)
  --error-rate=P         probability in [0,1] of a random error instead of an answer (default 0)
  --error-codes=LIST     statuses random errors draw from (default 429,500,503,529)
  --seed=N               judgement hash and random generator seed (default 42)
  --api-key=KEY          the key every dialect expects (default test-key)
  --rate-limit-requests=N  requests per minute advertised in rate-limit headers (default 10000)
  --rate-limit-tokens=N    tokens per minute advertised (default 2000000); both 0: no headers
  --tls-cert=PEM         serve HTTPS with this certificate chain (needs --tls-key)
  --tls-key=PEM          the private key of --tls-cert (unencrypted PEM)
  --batch-validating-ms=N        OpenAI batches stay `validating` this long (default 50)
  --batch-processing-ms=N        batch items finish spread over this time (default 200)
  --batch-cancel-ms=N            from a batch cancel to cancelled / ended (default 100)
  --batch-item-error-rate=P      fraction of batch items that fail (default 0)
  --batch-item-expire-rate=P     fraction of batch items that expire (default 0)
  --batch-fail-openai=N          the first N OpenAI batches fail as a whole (default 0)
  --help                 this text
)";

template <typename T>
std::optional<T> parse_number(std::string_view s) {
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size())
    return std::nullopt;
  return v;
}

std::optional<std::vector<unsigned>> parse_codes(std::string_view s) {
  std::vector<unsigned> out;
  while (!s.empty()) {
    auto comma = s.find(',');
    auto n = parse_number<unsigned>(s.substr(0, comma));
    if (!n)
      return std::nullopt;
    out.push_back(*n);
    s = comma == std::string_view::npos ? std::string_view{} : s.substr(comma + 1);
  }
  return out;
}

/// Applies one --name=value flag; false when the name or value is invalid.
bool apply_flag(std::string_view name, std::string_view value, lps::mock_provider_options& o) {
  if (name == "host") {
    o.host = std::string(value);
    return !value.empty();
  }
  if (name == "api-key") {
    o.api_key = std::string(value);
    return !value.empty();
  }
  if (name == "tls-cert") {
    o.tls_cert_file = std::string(value);
    return !value.empty();
  }
  if (name == "tls-key") {
    o.tls_key_file = std::string(value);
    return !value.empty();
  }
  if (name == "error-codes") {
    auto codes = parse_codes(value);
    if (codes)
      o.error_codes = *codes;
    return codes.has_value();
  }
  if (name == "error-rate" || name == "batch-item-error-rate" || name == "batch-item-expire-rate") {
    // from_chars for double is fine with libstdc++ 11+.
    auto v = parse_number<double>(value);
    if (v)
      (name == "error-rate"              ? o.error_rate
       : name == "batch-item-error-rate" ? o.batch.item_error_rate
                                         : o.batch.item_expire_rate) = *v;
    return v.has_value();
  }
  auto n = parse_number<uint64_t>(value);
  if (!n)
    return false;
  if (name == "port" && *n <= 65535)
    o.port = static_cast<uint16_t>(*n);
  else if (name == "io-threads" && *n >= 1 && *n <= 64)
    o.io_threads = static_cast<unsigned>(*n);
  else if (name == "latency-ms")
    o.latency = std::chrono::milliseconds{static_cast<int64_t>(*n)};
  else if (name == "jitter-ms")
    o.jitter = std::chrono::milliseconds{static_cast<int64_t>(*n)};
  else if (name == "rate-limit-requests")
    o.rate_limit_requests = *n;
  else if (name == "rate-limit-tokens")
    o.rate_limit_tokens = *n;
  else if (name == "seed")
    o.seed = *n;
  else if (name == "batch-validating-ms")
    o.batch.validating = std::chrono::milliseconds{static_cast<int64_t>(*n)};
  else if (name == "batch-processing-ms")
    o.batch.processing = std::chrono::milliseconds{static_cast<int64_t>(*n)};
  else if (name == "batch-cancel-ms")
    o.batch.cancel = std::chrono::milliseconds{static_cast<int64_t>(*n)};
  else if (name == "batch-fail-openai" && *n <= 10000)
    o.batch.fail_next_openai_batches = static_cast<uint32_t>(*n);
  else
    return false;
  return true;
}

/// 0: run, 1: --help shown, 2: bad arguments.
int parse_args(int argc, char** argv, lps::mock_provider_options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage_text, stdout);
      return 1;
    }
    auto eq = arg.find('=');
    if (arg.substr(0, 2) != "--" || eq == std::string_view::npos
        || !apply_flag(arg.substr(2, eq - 2), arg.substr(eq + 1), o)) {
      std::fprintf(stderr, "lps-mock-provider: invalid argument '%s' (see --help)\n", argv[i]);
      return 2;
    }
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  lps::mock_provider_options options;
  options.port = 0;
  if (int rc = parse_args(argc, argv, options); rc != 0)
    return rc == 1 ? 0 : 2;

  // Blocked before any thread starts, so every thread inherits the mask and only sigwait
  // below sees the signals: shutdown runs here, not in a handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  lps::mock_provider_server server;
  std::string error;
  if (!server.start(options, error)) {
    std::fprintf(stderr, "lps-mock-provider: cannot start: %s\n", error.c_str());
    return 1;
  }
  // The server refuses a certificate without a key, so one of them set means HTTPS.
  bool tls = !options.tls_cert_file.empty();
  std::printf("mock provider listening on %s://%s:%u\n", tls ? "https" : "http",
              options.host.c_str(), static_cast<unsigned>(server.port()));
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  server.stop();
  return 0;
}
