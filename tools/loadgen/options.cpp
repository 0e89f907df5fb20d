#include "tools/loadgen/options.hpp"

#include <charconv>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

namespace lps::loadgen {

const char* const usage_text = R"(usage: lps-loadgen [--key=value ...]

Sends comparison requests to a running lps and prints throughput, latency and
delivery-correctness figures (summary on stdout, progress on stderr).

  --url=URL               lps base URL (default http://127.0.0.1:8090); with --mode=direct
                          the provider's OpenAI base URL, as OPENAI_BASE_URL
                          (e.g. http://127.0.0.1:PORT/v1)
  --count=N               requests to send (default 10000)
  --mode=single|bulk|direct
                          POST /api/v1/comparison per request, or
                          POST /api/v1/comparisons with --bulk-size requests (default single),
                          or no lps at all: POST {url}/chat/completions per request with the
                          body lps's OpenAI provider would send for it (Bearer --api-key,
                          model, system + user messages, json_schema response format), one
                          call per request, no retries; figures are per call
  --bulk-size=N           requests per bulk POST (default 100)
  --concurrency=N         POSTs in flight; also the connection count (default 64); with
                          --rate the cap on POSTs in flight
  --rate=N                open loop: start N POSTs a second on a fixed schedule, whatever
                          the answers (POST k at start + k/N s; bulk mode: N bulk POSTs
                          of --bulk-size requests; direct mode: N calls). A POST due while
                          all --concurrency slots are busy starts when one frees up, late;
                          the summary's rate_late counts the POSTs that started more than
                          1 ms after their due time (all slots busy, or this process short
                          of CPU) and rate_late_max_ms shows the worst: a saturated run.
                          Retries and polls are not paced. 0 (default): closed loop, each
                          answer frees a slot for the next POST at once. At most 1000000
  --essay-bytes=N         bytes per essay, two essays per prompt (default 3000)
  --wait=callback|poll|none
                          how results are collected: a local callback receiver (default),
                          polling GET /api/v1/results/{id}, or not at all
  --timeout-seconds=N     give up after this long (default 600)
  --pid=PID               lps process id: report its peak and current RSS at the end
  --provider=NAME         send llm_config_overrides.provider_override=NAME
  --seed=N                varies the essay texts (default 1)
  --api-key=KEY           direct mode: the Bearer key (default test-key)
  --model=NAME            direct mode: the model (default gpt-5-mini-2025-08-07, lps's
                          OPENAI_DEFAULT_MODEL; gpt-5* models get max_completion_tokens
                          and no temperature, as lps sends them)
  --header=NAME:VALUE     direct mode: one more request header (repeatable), e.g. another
                          gateway's routing headers (tools/gateway_compare.sh)
  --stream=true|false     direct mode: streamed calls (`stream: true`, include_usage), each
                          timed to its first chunk and to its end (data: [DONE])
  --reset-url=URL         POST to URL (empty body) every --reset-interval-ms during the run,
                          e.g. the mock provider's /_mock/reset so that its simulated
                          rate-limit window never runs out (tools/gateway_bench.sh);
                          reports how many and the longest gap between two
  --reset-interval-ms=N   (default 100)
  --help                  this text

Exit code: 0 when every request was accepted, every accepted request got exactly one
result (missing 0, no conflicting duplicates) (direct mode: every call answered 200 with
a valid verdict); 1 otherwise; 2 for bad options.
)";

namespace {

uint64_t parse_number(std::string_view key, std::string_view text, uint64_t lo, uint64_t hi) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < lo || value > hi)
    throw std::invalid_argument("--" + std::string(key) + " must be a whole number in "
                                + std::to_string(lo) + ".." + std::to_string(hi) + ", got '"
                                + std::string(text) + "'");
  return value;
}

template <class Enum>
Enum parse_choice(std::string_view key, std::string_view text,
                  const std::vector<std::pair<std::string_view, Enum>>& choices) {
  std::string allowed;
  for (const auto& [name, value] : choices) {
    if (name == text)
      return value;
    allowed += (allowed.empty() ? "" : "|") + std::string(name);
  }
  throw std::invalid_argument("--" + std::string(key) + " must be " + allowed + ", got '"
                              + std::string(text) + "'");
}

/// "Name: value" (spaces after the colon dropped) as a header; throws on anything that
/// could not be sent as one.
std::pair<std::string, std::string> parse_header(std::string_view text) {
  auto colon = text.find(':');
  auto name = text.substr(0, colon);
  if (colon == std::string_view::npos || name.empty()
      || name.find_first_of(" \t\r\n") != std::string_view::npos
      || text.find_first_of("\r\n") != std::string_view::npos)
    throw std::invalid_argument("--header must be NAME:VALUE (a name without spaces, no line "
                                "breaks), got '"
                                + std::string(text) + "'");
  auto value = text.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
    value.remove_prefix(1);
  return {std::string(name), std::string(value)};
}

void apply_option(options& opt, std::string_view key, std::string_view value) {
  if (key == "url") {
    if (value.substr(0, 7) != "http://")
      throw std::invalid_argument("--url must start with http://, got '" + std::string(value)
                                  + "'");
    opt.url = std::string(value);
    while (opt.url.size() > 7 && opt.url.back() == '/')
      opt.url.pop_back();
  } else if (key == "count") {
    opt.count = parse_number(key, value, 1, 100'000'000);
  } else if (key == "mode") {
    opt.mode = parse_choice<submit_mode>(key, value,
                                         {{"single", submit_mode::single},
                                          {"bulk", submit_mode::bulk},
                                          {"direct", submit_mode::direct}});
  } else if (key == "bulk-size") {
    opt.bulk_size = parse_number(key, value, 1, 10'000);
  } else if (key == "concurrency") {
    opt.concurrency = parse_number(key, value, 1, 10'000);
  } else if (key == "rate") {
    opt.rate = parse_number(key, value, 0, 1'000'000);
  } else if (key == "essay-bytes") {
    opt.essay_bytes = parse_number(key, value, 16, 400'000);
  } else if (key == "wait") {
    opt.wait = parse_choice<wait_mode>(
        key, value,
        {{"callback", wait_mode::callback}, {"poll", wait_mode::poll}, {"none", wait_mode::none}});
  } else if (key == "timeout-seconds") {
    opt.timeout_seconds = parse_number(key, value, 1, 7 * 86'400);
  } else if (key == "pid") {
    opt.pid = parse_number(key, value, 1, 1u << 30);
  } else if (key == "provider") {
    opt.provider = std::string(value);
  } else if (key == "seed") {
    opt.seed = parse_number(key, value, 0, UINT64_MAX);
  } else if (key == "reset-url") {
    if (value.substr(0, 7) != "http://")
      throw std::invalid_argument("--reset-url must start with http://, got '" + std::string(value)
                                  + "'");
    opt.reset_url = std::string(value);
  } else if (key == "reset-interval-ms") {
    opt.reset_interval_ms = parse_number(key, value, 1, 60'000);
  } else if (key == "api-key") {
    opt.api_key = std::string(value);
  } else if (key == "model") {
    if (value.empty())
      throw std::invalid_argument("--model must not be empty");
    opt.model = std::string(value);
  } else if (key == "header") {
    opt.headers.push_back(parse_header(value));
  } else if (key == "stream") {
    opt.stream = parse_choice<bool>(key, value, {{"true", true}, {"false", false}});
  } else {
    throw std::invalid_argument("unknown option --" + std::string(key));
  }
}

} // namespace

std::optional<options> parse_options(int argc, char** argv) {
  options opt;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h")
      return std::nullopt;
    auto eq = arg.find('=');
    if (arg.substr(0, 2) != "--" || eq == std::string_view::npos)
      throw std::invalid_argument("expected --key=value, got '" + std::string(arg) + "'");
    apply_option(opt, arg.substr(2, eq - 2), arg.substr(eq + 1));
  }
  return opt;
}

} // namespace lps::loadgen
