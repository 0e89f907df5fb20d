// lps-loadgen: drives a running lps with comparison requests and prints throughput, latency
// and delivery-correctness figures (one result event per accepted request). A benchmark tool
// used by tools/bench.sh and tools/gateway_bench.sh, not a test. Run with --help for the
// options. --mode=direct skips lps and sends the OpenAI chat/completions call lps would make
// for each request straight to a provider (the mock), as the baseline for the gateway overhead.
// --rate=N makes the load open-loop: POSTs (or calls) start on a fixed schedule, N a second,
// instead of each answer freeing a slot for the next, so both paths can get the same load.
//
// It shares the CPU with the server under test, so the per-request work is kept small: essay
// texts come from one corpus built at start, request bodies are built with plain string
// appends, and every figure is kept in one tracker behind one mutex.

#include "runtime/http_client.hpp"
#include "runtime/http_server.hpp"
#include "runtime/ids.hpp"
#include "runtime/json_codec.hpp"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <queue>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

namespace {

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

// -- options -------------------------------------------------------------------------------------

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
  // Any mode: POST here every reset_interval_ms during the run (empty: never).
  std::string reset_url;
  uint64_t reset_interval_ms = 100;
};

constexpr const char* usage_text = R"(usage: lps-loadgen [--key=value ...]

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
  } else {
    throw std::invalid_argument("unknown option --" + std::string(key));
  }
}

/// Returns nullopt when --help was asked for.
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

// -- essay texts ---------------------------------------------------------------------------------

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// A long English-like text built once from a small grammar; each essay is a window of it,
/// so prompts differ per request without per-request generation cost. The text is kept
/// JSON-escaped, so a passage goes into a request body with a plain copy.
class essay_corpus {
public:
  essay_corpus(uint64_t seed, size_t essay_bytes) : rng_(seed) {
    auto target = std::max<size_t>(256 * 1024, 8 * essay_bytes + 4096);
    while (text_.size() < target)
      append_paragraph();
    auto quoted = lps::json_quote(text_);
    text_ = quoted.substr(1, quoted.size() - 2);
  }

  /// Whole sentences, JSON-escaped, about `bytes` bytes, from a place chosen by `pick`.
  std::string_view passage(uint64_t pick, size_t bytes) const {
    // The corpus is at least 8 essays long and sentences are short, so both finds succeed;
    // a '.' never sits inside an escape sequence, so cuts there keep the JSON valid.
    auto limit = text_.size() - bytes - 1024;
    auto start = skip_blanks(text_.find('.', pick % limit) + 1);
    auto end = text_.find('.', start + bytes) + 1;
    return std::string_view(text_).substr(start, end - start);
  }

private:
  template <size_t N>
  std::string_view any(const std::string_view (&words)[N]) {
    return words[rng_() % N];
  }

  void append_noun_phrase() {
    static constexpr std::string_view adjectives[] = {
        "clear",      "weak",     "strong",     "careful", "important", "recent",
        "historical", "personal", "surprising", "limited", "detailed",  "broad",
        "convincing", "simple",   "familiar",   "modern"};
    static constexpr std::string_view nouns[] = {
        "example",          "reason",      "point",       "idea",       "problem",    "solution",
        "policy",           "experience",  "result",      "change",     "difference", "trend",
        "community",        "library",     "environment", "technology", "school day", "homework",
        "sports programme", "bus service", "city park",   "budget",     "survey",     "debate",
        "tradition",        "decision"};
    text_ += rng_() % 2 ? "the " : "a ";
    if (rng_() % 3 != 0) {
      text_ += any(adjectives);
      text_ += ' ';
    }
    text_ += any(nouns);
  }

  void append_clause() {
    static constexpr std::string_view subjects[] = {
        "the author",        "this essay",           "the writer",     "the argument",
        "the evidence",      "the second paragraph", "the conclusion", "our school",
        "the local council", "the reader",           "each student",   "the headteacher"};
    static constexpr std::string_view verbs[] = {
        "suggests", "shows",   "argues for", "questions", "explains",  "describes",
        "supports", "ignores", "highlights", "compares",  "considers", "depends on"};
    static constexpr std::string_view prepositions[] = {
        "in", "for", "about", "because of", "despite", "through", "across", "without"};
    text_ += any(subjects);
    text_ += ' ';
    text_ += any(verbs);
    text_ += ' ';
    append_noun_phrase();
    if (rng_() % 2 == 0) {
      text_ += ' ';
      text_ += any(prepositions);
      text_ += ' ';
      append_noun_phrase();
    }
  }

  void append_sentence() {
    static constexpr std::string_view openers[] = {
        "However, ",       "In addition, ",       "For example, ",
        "As a result, ",   "On the other hand, ", "Furthermore, ",
        "In my opinion, ", "Overall, ",           "At the same time, "};
    static constexpr std::string_view joins[] = {", and ", ", but ", ", although ", ", because ",
                                                 ", which means that "};
    auto begin = text_.size();
    if (rng_() % 3 == 0)
      text_ += any(openers);
    else
      capitalize_ = begin;
    append_clause();
    if (rng_() % 2 == 0) {
      text_ += any(joins);
      append_clause();
    }
    text_ += ". ";
    if (capitalize_ == begin)
      text_[begin] = static_cast<char>(std::toupper(static_cast<unsigned char>(text_[begin])));
  }

  /// Skips spaces and escaped line breaks ("\\n").
  size_t skip_blanks(size_t pos) const {
    for (;;) {
      if (text_[pos] == ' ')
        ++pos;
      else if (text_.compare(pos, 2, "\\n") == 0)
        pos += 2;
      else
        return pos;
    }
  }

  void append_paragraph() {
    auto sentences = 4 + rng_() % 4;
    for (uint64_t i = 0; i < sentences; ++i)
      append_sentence();
    text_.back() = '\n';
    text_ += '\n';
  }

  std::mt19937_64 rng_;
  std::string text_;
  size_t capitalize_ = SIZE_MAX;
};

// -- request bodies ------------------------------------------------------------------------------

constexpr std::string_view rubric =
    "You are an experienced examiner. Compare the two student essays below against the rubric "
    "(clarity of argument, use of evidence, organisation, and accuracy of language) and decide "
    "which essay is stronger overall.";

/// Builds request JSON with string appends (no DOM): cheap enough to run on the I/O thread.
class body_builder {
public:
  body_builder(const options& opt, const essay_corpus& corpus, std::string callback_url)
      : opt_(opt), corpus_(corpus), callback_url_(std::move(callback_url)),
        rubric_quoted_(lps::json_quote(rubric)) {
    build_openai_frame();
  }

  std::string single(uint64_t index) const {
    std::string out;
    out.reserve(2 * opt_.essay_bytes + 1024);
    append_request(out, index);
    return out;
  }

  std::string bulk(const std::vector<uint64_t>& indices) const {
    std::string out;
    out.reserve(indices.size() * (2 * opt_.essay_bytes + 1024) + 16);
    out += "{\"requests\":[";
    for (size_t i = 0; i < indices.size(); ++i) {
      if (i > 0)
        out += ',';
      append_request(out, indices[i]);
    }
    out += "]}";
    return out;
  }

  /// The chat/completions body lps's OpenAI provider sends for request `index` (no
  /// overrides): what actors/providers/openai_format.cpp build_openai_request serializes,
  /// byte for byte, for the same user_prompt as single() carries.
  std::string openai(uint64_t index) const {
    std::string out;
    out.reserve(openai_head_.size() + 2 * opt_.essay_bytes + 512 + openai_tail_.size());
    out += openai_head_;
    append_prompt(out, index, essay_id(index, 'a'), essay_id(index, 'b'));
    out += openai_tail_;
    return out;
  }

private:
  /// Everything of the OpenAI body but the user message's text. Key order and number
  /// formatting follow Boost.JSON's serializer, as lps uses it.
  void build_openai_frame() {
    // lps::wire::default_system_prompt (actors/providers/wire_common.cpp).
    static constexpr std::string_view system_prompt =
        "You are an LLM comparison engine. Follow the caller-supplied instructions and answer "
        "only with a JSON object that satisfies the required schema: winner (\"Essay A\" or "
        "\"Essay B\"), justification (one concise paragraph) and confidence (1 to 5).";
    openai_head_ = "{\"model\":" + lps::json_quote(opt_.model)
                   + ",\"messages\":[{\"role\":\"system\",\"content\":"
                   + lps::json_quote(system_prompt) + "},{\"role\":\"user\",\"content\":";
    openai_tail_ =
        "}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{"
        "\"name\":\"comparison_result\",\"strict\":true,\"schema\":{\"type\":\"object\","
        "\"properties\":{\"winner\":{\"type\":\"string\",\"enum\":[\"Essay A\",\"Essay B\"]},"
        "\"justification\":{\"type\":\"string\"},\"confidence\":{\"type\":\"number\"}},"
        "\"required\":[\"winner\",\"justification\",\"confidence\"],"
        "\"additionalProperties\":false}}},";
    // openai_model_flags_for: the GPT-5 family takes max_completion_tokens and no
    // temperature; lps's defaults are 4096 tokens and temperature 0.1.
    if (opt_.model.starts_with("gpt-5"))
      openai_tail_ += "\"max_completion_tokens\":4096}";
    else
      openai_tail_ += "\"max_tokens\":4096,\"temperature\":"
                      + boost::json::serialize(boost::json::value(0.1)) + "}";
  }

  std::string essay_id(uint64_t index, char side) const {
    return "essay-" + std::to_string(opt_.seed) + "-" + std::to_string(index) + side;
  }

  /// The user_prompt value as a JSON string literal (passages are already escaped).
  void append_prompt(std::string& out, uint64_t index, const std::string& a_id,
                     const std::string& b_id) const {
    auto mix = splitmix64(opt_.seed * 0x100000001b3ULL + index);
    auto a = corpus_.passage(mix, opt_.essay_bytes);
    auto b = corpus_.passage(splitmix64(mix), opt_.essay_bytes);
    out.append(rubric_quoted_, 0, rubric_quoted_.size() - 1); // without the closing quote
    out.append("\\n\\nEssay A (").append(a_id).append("):\\n").append(a);
    out.append("\\n\\nEssay B (").append(b_id).append("):\\n").append(b);
    out.append("\\n\\nAnswer with the stronger essay, a short justification and your "
               "confidence.\"");
  }

  void append_request(std::string& out, uint64_t index) const {
    auto a_id = essay_id(index, 'a');
    auto b_id = essay_id(index, 'b');
    out += "{\"user_prompt\":";
    append_prompt(out, index, a_id, b_id);
    out += ",\"correlation_id\":\"";
    out += lps::new_uuid();
    out += '"';
    if (!callback_url_.empty()) {
      out += ",\"callback_url\":";
      out += lps::json_quote(callback_url_);
    }
    if (!opt_.provider.empty()) {
      out += ",\"llm_config_overrides\":{\"provider_override\":";
      out += lps::json_quote(opt_.provider);
      out += '}';
    }
    out += ",\"metadata\":{\"essay_a_id\":\"" + a_id + "\",\"essay_b_id\":\"" + b_id
           + "\",\"bos_batch_id\":\"bos-" + std::to_string(opt_.seed) + "-"
           + std::to_string(index / 1000) + "\"}}";
  }

  const options& opt_;
  const essay_corpus& corpus_;
  std::string callback_url_;
  std::string rubric_quoted_;
  std::string openai_head_;
  std::string openai_tail_;
};

// -- result events -------------------------------------------------------------------------------

struct event_info {
  std::string queue_id;
  std::string event_id;
  bool error = false;
  /// data.response_time_ms: lps's own timing of the provider call (whole ms, rounded down);
  /// -1 when absent.
  int64_t provider_ms = -1;
  /// data.completed_at - data.requested_at (ms resolution): enqueue to final result inside
  /// lps; -1 when absent or unreadable.
  int64_t inside_ms = -1;
};

/// Milliseconds of "YYYY-MM-DDTHH:MM:SS.mmmZ" since 1970 (lps::iso8601's format).
std::optional<int64_t> iso8601_ms(std::string_view t) {
  if (t.size() != 24 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':'
      || t[19] != '.' || t[23] != 'Z')
    return std::nullopt;
  auto num = [&](size_t at, size_t len, int64_t& out) {
    auto [end, ec] = std::from_chars(t.data() + at, t.data() + at + len, out);
    return ec == std::errc{} && end == t.data() + at + len;
  };
  int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, ms = 0;
  if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi)
      || !num(17, 2, sec) || !num(20, 3, ms))
    return std::nullopt;
  // Days from civil (H. Hinnant).
  y -= mo <= 2 ? 1 : 0;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = era * 146097 + doe - 719468;
  return ((days * 24 + h) * 60 + mi) * 60'000 + sec * 1000 + ms;
}

/// Just the fields the checks need; nullopt when the body is not a result event.
std::optional<event_info> parse_event(std::string_view body) {
  unsigned char scratch[16 * 1024];
  boost::json::monotonic_resource resource(scratch, sizeof(scratch));
  boost::json::parse_options parse_opts;
  parse_opts.max_depth = 256; // caller metadata nests below data.request_metadata
  boost::system::error_code ec;
  auto doc = boost::json::parse(body, ec, &resource, parse_opts);
  const auto* root = ec ? nullptr : doc.if_object();
  const auto* event_id = root ? root->if_contains("event_id") : nullptr;
  const auto* data = root ? root->if_contains("data") : nullptr;
  const auto* data_obj = data ? data->if_object() : nullptr;
  const auto* request_id = data_obj ? data_obj->if_contains("request_id") : nullptr;
  if (!event_id || !event_id->is_string() || !request_id || !request_id->is_string())
    return std::nullopt;
  const auto* detail = data_obj->if_contains("error_detail");
  event_info info{std::string(request_id->get_string()), std::string(event_id->get_string()),
                  detail != nullptr && !detail->is_null()};
  if (const auto* rt = data_obj->if_contains("response_time_ms"); rt && rt->is_int64())
    info.provider_ms = rt->get_int64();
  const auto* requested = data_obj->if_contains("requested_at");
  const auto* completed = data_obj->if_contains("completed_at");
  if (requested && requested->is_string() && completed && completed->is_string()) {
    auto from = iso8601_ms(requested->get_string());
    auto to = iso8601_ms(completed->get_string());
    if (from && to && *to >= *from)
      info.inside_ms = *to - *from;
  }
  return info;
}

// -- bookkeeping ---------------------------------------------------------------------------------

int64_t now_ns(clock_type::time_point origin) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - origin).count();
}

struct progress_figures {
  uint64_t submitted = 0;
  uint64_t accepted = 0;
  uint64_t refused = 0;
  uint64_t not_accepted = 0;
  uint64_t completed = 0;
};

/// Every figure of the run, behind one mutex (callers: client threads, the callback receiver,
/// the main thread). Times are nanoseconds since the start of the run.
class tracker {
public:
  explicit tracker(uint64_t count) : slots_(count) {}

  void sent(const std::vector<uint64_t>& indices, int64_t at) {
    std::lock_guard<std::mutex> lock{mutex_};
    first_sent_ = std::min(first_sent_, at);
    for (auto i : indices) {
      if (slots_[i].sent_ns < 0) {
        slots_[i].sent_ns = at;
        ++submitted_;
      }
    }
  }

  void post_answered(double latency_ms) {
    std::lock_guard<std::mutex> lock{mutex_};
    accept_ms_.push_back(latency_ms);
  }

  void accepted(uint64_t index, const std::string& queue_id, int64_t at) {
    std::lock_guard<std::mutex> lock{mutex_};
    ++accepted_;
    last_accept_ = std::max(last_accept_, at);
    by_queue_id_.emplace(queue_id, index);
    // The result may have overtaken the 202 (a fast server answers before we read the 202).
    auto early = early_.find(queue_id);
    if (early == early_.end())
      return;
    for (auto& [event, when] : early->second)
      record(index, event, when);
    early_.erase(early);
  }

  /// `key` names the reason ("503", "transport", "item:QUEUE_FULL"); `final` = not retried.
  void refused(const std::string& key, size_t n, bool final) {
    std::lock_guard<std::mutex> lock{mutex_};
    refusals_[key] += n;
    refused_ += n;
    (final ? not_accepted_ : retries_) += n;
  }

  void result(const event_info& event, int64_t at) {
    std::lock_guard<std::mutex> lock{mutex_};
    auto it = by_queue_id_.find(event.queue_id);
    if (it == by_queue_id_.end())
      early_[event.queue_id].emplace_back(event, at);
    else
      record(it->second, event, at);
  }

  void bad_event() {
    std::lock_guard<std::mutex> lock{mutex_};
    ++bad_events_;
  }

  progress_figures progress() const {
    std::lock_guard<std::mutex> lock{mutex_};
    return {submitted_, accepted_, refused_, not_accepted_, completed_};
  }

  void print_summary(const options& opt, double elapsed_s) const;

private:
  struct slot {
    int64_t sent_ns = -1;
    int64_t result_ns = -1;
    int64_t provider_ms = -1;
    int64_t inside_ms = -1;
    std::string event_id;
  };

  void record(uint64_t index, const event_info& event, int64_t at) {
    auto& s = slots_[index];
    if (s.result_ns >= 0) {
      ++(s.event_id == event.event_id ? redeliveries_ : conflicting_);
      return;
    }
    s.result_ns = at;
    s.provider_ms = event.provider_ms;
    s.inside_ms = event.inside_ms;
    s.event_id = event.event_id;
    ++completed_;
    ++(event.error ? errors_ : successes_);
    last_result_ = std::max(last_result_, at);
  }

  std::vector<double> e2e_latencies_ms() const;
  /// `field` (provider_ms or inside_ms) of every completed request that carried it.
  std::vector<double> event_figures_ms(int64_t slot::*field) const;

  mutable std::mutex mutex_;
  std::vector<slot> slots_;
  std::unordered_map<std::string, uint64_t> by_queue_id_;
  std::unordered_map<std::string, std::vector<std::pair<event_info, int64_t>>> early_;
  std::map<std::string, uint64_t> refusals_;
  std::vector<double> accept_ms_;
  uint64_t submitted_ = 0;
  uint64_t accepted_ = 0;
  uint64_t refused_ = 0;
  uint64_t retries_ = 0;
  uint64_t not_accepted_ = 0;
  uint64_t completed_ = 0;
  uint64_t successes_ = 0;
  uint64_t errors_ = 0;
  uint64_t redeliveries_ = 0;
  uint64_t conflicting_ = 0;
  uint64_t bad_events_ = 0;
  int64_t first_sent_ = INT64_MAX;
  int64_t last_accept_ = 0;
  int64_t last_result_ = 0;

  friend int exit_code(const tracker&, const options&);
};

// -- delayed work and bounded concurrency --------------------------------------------------------

/// Runs functions at a time or after a delay on one thread (Retry-After waits, poll back-off,
/// --rate pacing). It runs them without holding its lock, so they may schedule again.
class scheduler {
public:
  scheduler() : thread_([this] { run(); }) {}

  ~scheduler() {
    stop();
  }

  void after(milliseconds delay, std::function<void()> fn) {
    at(clock_type::now() + delay, std::move(fn));
  }

  void at(clock_type::time_point when, std::function<void()> fn) {
    std::lock_guard<std::mutex> lock{mutex_};
    if (stopped_)
      return;
    items_.push({when, next_seq_++, std::move(fn)});
    wake_.notify_one();
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock{mutex_};
      stopped_ = true;
      wake_.notify_one();
    }
    if (thread_.joinable())
      thread_.join();
  }

private:
  struct item {
    clock_type::time_point at;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const item& other) const {
      return std::tie(at, seq) > std::tie(other.at, other.seq);
    }
  };

  void run() {
    std::unique_lock<std::mutex> lock{mutex_};
    while (!stopped_) {
      if (items_.empty()) {
        wake_.wait(lock);
        continue;
      }
      if (clock_type::now() < items_.top().at) {
        wake_.wait_until(lock, items_.top().at);
        continue;
      }
      auto fn = std::move(const_cast<item&>(items_.top()).fn);
      items_.pop();
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::priority_queue<item, std::vector<item>, std::greater<>> items_;
  uint64_t next_seq_ = 0;
  bool stopped_ = false;
  std::thread thread_;
};

/// How far a paced run kept to its schedule (--rate).
struct pacing_figures {
  uint64_t started = 0;
  /// Units that started more than 1 ms after their due time (every slot was busy, or the
  /// thread that starts them did not get the CPU in time).
  uint64_t late = 0;
  /// The latest start of any unit, relative to its due time.
  clock_type::duration late_max{};
};

/// The open-loop schedule of fresh units: unit k is due at start + k / rate seconds, the
/// start being the first question asked. The schedule never slips, so after a stall the
/// overdue units go at once (an open loop's offered load does not wait for the server).
/// Rate 0: every unit is due at once (closed loop). Not synchronized: the caller locks.
class pacer {
public:
  explicit pacer(uint64_t rate) : rate_(rate) {}

  bool paced() const {
    return rate_ > 0;
  }

  /// Whether the next fresh unit may start at `now`.
  bool due(clock_type::time_point now) {
    if (!paced())
      return true;
    if (!start_)
      start_ = now;
    return now >= next_due();
  }

  /// When the next fresh unit is due (only after due() was asked once).
  clock_type::time_point next_due() const {
    // Whole nanoseconds: --count (<= 1e8) times 1e9 stays within 64 bits.
    return *start_ + std::chrono::nanoseconds{figures_.started * 1'000'000'000 / rate_};
  }

  /// Records that the next fresh unit starts at `now` (after due() said it may).
  void started(clock_type::time_point now) {
    if (paced()) {
      auto late = now - next_due();
      figures_.late += late > milliseconds{1} ? 1 : 0;
      figures_.late_max = std::max(figures_.late_max, late);
    }
    ++figures_.started;
  }

  const pacing_figures& figures() const {
    return figures_;
  }

private:
  uint64_t rate_;
  std::optional<clock_type::time_point> start_;
  pacing_figures figures_;
};

/// Keeps at most `limit` units in flight: units due again (retries, polls) go first, then
/// fresh ones from `fresh` when `rate` (per second, 0: no pacing) says one is due. `launch`
/// must eventually call done() once per unit. `sched` (needed when rate > 0) wakes the window
/// when the next fresh unit falls due, as no answer may arrive to do it.
template <class Unit>
class window {
public:
  window(size_t limit, std::function<std::optional<Unit>()> fresh, std::function<void(Unit)> launch,
         uint64_t rate = 0, scheduler* sched = nullptr)
      : limit_(limit), fresh_(std::move(fresh)), launch_(std::move(launch)), pace_(rate),
        sched_(sched) {
    if (rate > 0 && !sched)
      throw std::logic_error("a paced window needs a scheduler");
  }

  void push(Unit unit) {
    {
      std::lock_guard<std::mutex> lock{mutex_};
      ready_.push_back(std::move(unit));
    }
    pump();
  }

  void done() {
    {
      std::lock_guard<std::mutex> lock{mutex_};
      --inflight_;
    }
    pump();
  }

  /// Launches nothing more (before the client stops: its failures would relaunch at once).
  void close() {
    std::lock_guard<std::mutex> lock{mutex_};
    closed_ = true;
  }

  void pump() {
    for (;;) {
      std::optional<Unit> unit;
      {
        std::lock_guard<std::mutex> lock{mutex_};
        if (closed_ || inflight_ >= limit_)
          return;
        unit = next_unit();
        if (!unit)
          return;
        ++inflight_;
      }
      launch_(std::move(*unit));
    }
  }

  pacing_figures pacing() const {
    std::lock_guard<std::mutex> lock{mutex_};
    return pace_.figures();
  }

private:
  /// Called under the lock: a unit due again, else a fresh one if one is due.
  std::optional<Unit> next_unit() {
    if (!ready_.empty()) {
      auto unit = std::move(ready_.front());
      ready_.pop_front();
      return unit;
    }
    if (!fresh_)
      return std::nullopt;
    auto now = clock_type::now();
    if (!pace_.due(now)) {
      wake_when_due();
      return std::nullopt;
    }
    auto unit = fresh_();
    if (unit)
      pace_.started(now);
    return unit;
  }

  /// Called under the lock (safe: the scheduler runs its functions without its own lock).
  /// Every answer pumps, so one pending wake-up is enough however many find nothing due.
  void wake_when_due() {
    if (wake_pending_)
      return;
    wake_pending_ = true;
    sched_->at(pace_.next_due(), [this] {
      {
        std::lock_guard<std::mutex> lock{mutex_};
        wake_pending_ = false;
      }
      pump();
    });
  }

  size_t limit_;
  std::function<std::optional<Unit>()> fresh_;
  std::function<void(Unit)> launch_;
  mutable std::mutex mutex_;
  std::deque<Unit> ready_;
  size_t inflight_ = 0;
  bool closed_ = false;
  pacer pace_;
  scheduler* sched_;
  bool wake_pending_ = false;
};

/// Everything the submitter and the poller share.
struct run_context {
  const options& opt;
  tracker& track;
  scheduler& sched;
  clock_type::time_point origin;
  milliseconds http_timeout;
};

lps::http_client_options client_options(uint64_t connections) {
  lps::http_client_options o;
  o.io_threads = 1;
  o.max_connections_per_origin = connections;
  return o;
}

std::string header(const lps::http_client_response& r, std::string_view name) {
  for (const auto& [key, value] : r.headers)
    if (key == name)
      return value;
  return {};
}

/// Retry-After in seconds (capped); `fallback` when absent or unreadable.
milliseconds retry_delay(const lps::http_client_response& r, milliseconds fallback) {
  auto text = header(r, "retry-after");
  uint64_t seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size())
    return fallback;
  return milliseconds{std::min<uint64_t>(seconds, 60) * 1000};
}

std::string refusal_key(const lps::http_client_response& r) {
  return r.status == 0 ? std::string("transport_") + lps::to_string(r.error)
                       : std::to_string(r.status);
}

// -- polling -------------------------------------------------------------------------------------

struct poll_item {
  uint64_t index = 0;
  std::string queue_id;
  uint32_t attempts = 0;
};

/// GET /api/v1/results/{id} until 200, backing off per request (10 ms doubling to 1 s).
class poller {
public:
  explicit poller(run_context& ctx)
      : ctx_(ctx), client_(client_options(ctx.opt.concurrency)),
        window_(ctx.opt.concurrency, nullptr, [this](poll_item x) { launch(std::move(x)); }) {}

  void watch(uint64_t index, const std::string& queue_id) {
    schedule(poll_item{index, queue_id, 0});
  }

  void stop() {
    window_.close();
    client_.stop();
  }

private:
  void schedule(poll_item x) {
    auto delay = milliseconds{std::min<uint64_t>(1000, uint64_t{10} << std::min(x.attempts, 7u))};
    ctx_.sched.after(delay, [this, x = std::move(x)]() mutable { window_.push(std::move(x)); });
  }

  void launch(poll_item x) {
    lps::http_client_request req;
    req.method = "GET";
    req.url = ctx_.opt.url + "/api/v1/results/" + x.queue_id;
    req.timeout = ctx_.http_timeout;
    client_.send(std::move(req), [this, x = std::move(x)](lps::http_client_response r) mutable {
      on_answer(std::move(x), r);
      window_.done();
    });
  }

  void on_answer(poll_item x, const lps::http_client_response& r) {
    if (r.status == 200) {
      if (auto event = parse_event(r.body))
        return ctx_.track.result(*event, now_ns(ctx_.origin));
      ctx_.track.bad_event();
    }
    ++x.attempts;
    schedule(std::move(x));
  }

  run_context& ctx_;
  lps::http_client client_;
  window<poll_item> window_;
};

// -- submission ----------------------------------------------------------------------------------

/// One POST worth of requests (one index in single mode).
using unit = std::vector<uint64_t>;

/// Sends every request once, retrying refusals that come with Retry-After (QUEUE_FULL).
class submitter {
public:
  submitter(run_context& ctx, const body_builder& bodies, poller* polls)
      : ctx_(ctx), bodies_(bodies), polls_(polls),
        per_post_(ctx.opt.mode == submit_mode::bulk ? ctx.opt.bulk_size : 1),
        client_(client_options(ctx.opt.concurrency)),
        window_(
            ctx.opt.concurrency, [this] { return next_unit(); },
            [this](unit u) { launch(std::move(u)); }, ctx.opt.rate, &ctx.sched) {}

  void start() {
    window_.pump();
  }

  pacing_figures pacing() const {
    return window_.pacing();
  }

  void stop() {
    window_.close();
    client_.stop();
  }

private:
  /// Called under the window's lock.
  std::optional<unit> next_unit() {
    if (next_ >= ctx_.opt.count)
      return std::nullopt;
    unit u;
    for (auto end = std::min(ctx_.opt.count, next_ + per_post_); next_ < end; ++next_)
      u.push_back(next_);
    return u;
  }

  void launch(unit u) {
    bool bulk = ctx_.opt.mode == submit_mode::bulk;
    lps::http_client_request req;
    req.url = ctx_.opt.url + (bulk ? "/api/v1/comparisons" : "/api/v1/comparison");
    req.headers = {{"Content-Type", "application/json"}};
    req.body = bulk ? bodies_.bulk(u) : bodies_.single(u.front());
    req.timeout = ctx_.http_timeout;
    auto sent = now_ns(ctx_.origin);
    ctx_.track.sent(u, sent);
    client_.send(std::move(req), [this, u = std::move(u), sent](lps::http_client_response r) {
      auto at = now_ns(ctx_.origin);
      if (r.status != 0)
        ctx_.track.post_answered(double(at - sent) / 1e6);
      on_answer(u, r, at);
      window_.done();
    });
  }

  void accept(uint64_t index, const std::string& queue_id, int64_t at) {
    ctx_.track.accepted(index, queue_id, at);
    if (polls_)
      polls_->watch(index, queue_id);
  }

  void retry_later(unit u, milliseconds delay) {
    ctx_.sched.after(delay, [this, u = std::move(u)]() mutable { window_.push(std::move(u)); });
  }

  /// A refusal of the whole POST: retried when the server said when, else final.
  void refuse_post(unit u, const lps::http_client_response& r) {
    bool retry = (r.status == 503 || r.status == 429) && !header(r, "retry-after").empty();
    ctx_.track.refused(refusal_key(r), u.size(), !retry);
    if (retry)
      retry_later(std::move(u), retry_delay(r, milliseconds{1000}));
  }

  /// Handles both endpoints: a single 202 is {"queue_id"}, a bulk 202 is {"results": [...]}.
  void on_answer(const unit& u, const lps::http_client_response& r, int64_t at) {
    if (r.status != 202)
      return refuse_post(u, r);
    boost::system::error_code ec;
    auto doc = boost::json::parse(r.body, ec);
    const auto* root = ec ? nullptr : doc.if_object();
    if (!root) {
      ctx_.track.refused("bad_202_body", u.size(), true);
      return;
    }
    if (ctx_.opt.mode == submit_mode::single)
      return item_answer(u.front(), *root, r, at, nullptr);
    const auto* results = root->if_contains("results");
    const auto* items = results ? results->if_array() : nullptr;
    if (!items || items->size() != u.size()) {
      ctx_.track.refused("bad_202_body", u.size(), true);
      return;
    }
    static const boost::json::object no_fields;
    unit again;
    for (size_t i = 0; i < u.size(); ++i) {
      const auto* item = (*items)[i].if_object();
      item_answer(u[i], item ? *item : no_fields, r, at, &again);
    }
    if (!again.empty())
      retry_later(std::move(again), retry_delay(r, milliseconds{1000}));
  }

  /// One accepted or refused entry; per-item QUEUE_FULL goes into `again` (bulk only).
  void item_answer(uint64_t index, const boost::json::object& item,
                   const lps::http_client_response& r, int64_t at, unit* again) {
    const auto* qid = item.if_contains("queue_id");
    if (qid && qid->is_string())
      return accept(index, std::string(qid->get_string()), at);
    std::string code = "unknown";
    if (const auto* err = item.if_contains("error"); err && err->is_object())
      if (const auto* c = err->get_object().if_contains("code"); c && c->is_string())
        code = std::string(c->get_string());
    bool retry = again && code == "QUEUE_FULL";
    ctx_.track.refused((again ? "item_" : std::to_string(r.status) + "_") + code, 1, !retry);
    if (retry)
      again->push_back(index);
  }

  run_context& ctx_;
  const body_builder& bodies_;
  poller* polls_;
  uint64_t per_post_;
  uint64_t next_ = 0; // guarded by the window's lock (next_unit)
  lps::http_client client_;
  window<unit> window_;
};

// -- callback receiver ---------------------------------------------------------------------------

/// Starts the local receiver for result events; returns its callback URL.
std::string start_receiver(lps::http_server& server, run_context& ctx) {
  lps::http_server_options o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.io_threads = 1;
  o.max_body_bytes = 16 << 20;
  auto handler = [&ctx](lps::http_request&& req, lps::http_responder respond) {
    auto at = now_ns(ctx.origin);
    // Answer first: the server's delivery slots are the scarce resource, not our parsing.
    respond({200, "", "", {}});
    if (auto event = parse_event(req.body))
      ctx.track.result(*event, at);
    else
      ctx.track.bad_event();
  };
  std::string error;
  if (!server.start(o, handler, error))
    throw std::runtime_error("cannot start the callback receiver: " + error);
  return "http://127.0.0.1:" + std::to_string(server.port()) + "/lps-callback";
}

// -- summary -------------------------------------------------------------------------------------

double percentile(std::vector<double>& xs, double p) {
  if (xs.empty())
    return 0;
  auto k = static_cast<size_t>(p * double(xs.size() - 1) + 0.5);
  std::nth_element(xs.begin(), xs.begin() + static_cast<std::ptrdiff_t>(k), xs.end());
  return xs[k];
}

double mean(const std::vector<double>& xs) {
  double sum = 0;
  for (auto x : xs)
    sum += x;
  return xs.empty() ? 0.0 : sum / double(xs.size());
}

double per_second(uint64_t n, int64_t from_ns, int64_t to_ns) {
  return to_ns > from_ns ? double(n) * 1e9 / double(to_ns - from_ns) : 0.0;
}

void line(const char* key, const std::string& value) {
  std::printf("%-19s %s\n", key, value.c_str());
}

std::string fixed(double x, int digits = 1) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, x);
  return buf;
}

/// CPU seconds (user + system) of one /proc/.../stat file, with the thread or process name.
std::optional<double> stat_cpu_seconds(const std::string& path, std::string* name = nullptr) {
  std::ifstream in{path};
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The name sits in parentheses and may hold spaces; the numbers follow the last ')'.
  auto open = text.find('(');
  auto close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open)
    return std::nullopt;
  if (name)
    *name = text.substr(open + 1, close - open - 1);
  std::istringstream fields{text.substr(close + 1)};
  std::string skip;
  for (int i = 0; i < 11; ++i) // state .. cmajflt: fields 3 to 13
    fields >> skip;
  double utime = 0;
  double stime = 0;
  if (!(fields >> utime >> stime))
    return std::nullopt;
  return (utime + stime) / double(sysconf(_SC_CLK_TCK));
}

/// CPU seconds per thread of a process, keyed "tid:name" (threads that ended are gone).
std::map<std::string, double> thread_cpu_seconds(uint64_t pid) {
  std::map<std::string, double> result;
  std::error_code ec;
  auto dir = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name;
    auto tid = entry.path().filename().string();
    if (auto secs = stat_cpu_seconds(entry.path().string() + "/stat", &name))
      result[tid + ":" + name] = *secs;
  }
  return result;
}

/// Where the server's CPU went during the run: per thread and per request.
void print_server_cpu(const std::map<std::string, double>& before, uint64_t pid, uint64_t n) {
  auto after = thread_cpu_seconds(pid);
  double total = 0;
  std::string threads;
  for (const auto& [key, secs] : after) {
    auto it = before.find(key);
    auto used = secs - (it == before.end() ? 0.0 : it->second);
    total += used;
    threads += (threads.empty() ? "" : " ") + key + "=" + fixed(used, 2);
  }
  line("server_cpu_s",
       fixed(total, 2) + " (" + fixed(n ? total * 1e6 / double(n) : 0, 0) + " us/request)");
  line("server_cpu_threads", threads);
}

void print_own_cpu(uint64_t n) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto secs = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  double total = secs(usage.ru_utime) + secs(usage.ru_stime);
  line("loadgen_cpu_s",
       fixed(total, 2) + " (" + fixed(n ? total * 1e6 / double(n) : 0, 0) + " us/request)");
}

/// VmHWM and VmRSS of a process in MiB (nullopt when unreadable).
std::optional<std::pair<double, double>> read_rss_mib(const std::string& pid) {
  std::ifstream in{"/proc/" + pid + "/status"};
  std::string key;
  double hwm = -1;
  double rss = -1;
  while (in >> key) {
    double kib = 0;
    if ((key == "VmHWM:" || key == "VmRSS:") && (in >> kib))
      (key == "VmHWM:" ? hwm : rss) = kib / 1024.0;
    in.ignore(1 << 20, '\n');
  }
  if (hwm < 0 || rss < 0)
    return std::nullopt;
  return std::make_pair(hwm, rss);
}

std::vector<double> tracker::e2e_latencies_ms() const {
  std::vector<double> xs;
  xs.reserve(completed_);
  for (const auto& s : slots_)
    if (s.result_ns >= 0 && s.sent_ns >= 0)
      xs.push_back(double(s.result_ns - s.sent_ns) / 1e6);
  return xs;
}

std::vector<double> tracker::event_figures_ms(int64_t slot::*field) const {
  std::vector<double> xs;
  xs.reserve(completed_);
  for (const auto& s : slots_)
    if (s.result_ns >= 0 && s.*field >= 0)
      xs.push_back(double(s.*field));
  return xs;
}

void tracker::print_summary(const options& opt, double elapsed_s) const {
  std::lock_guard<std::mutex> lock{mutex_};
  bool waited = opt.wait != wait_mode::none;
  auto na = std::string("n/a");
  line("mode", opt.mode == submit_mode::bulk ? "bulk" : "single");
  line("wait", opt.wait == wait_mode::callback ? "callback"
               : opt.wait == wait_mode::poll   ? "poll"
                                               : "none");
  line("concurrency", std::to_string(opt.concurrency));
  line("rate", std::to_string(opt.rate));
  line("bulk_size", opt.mode == submit_mode::bulk ? std::to_string(opt.bulk_size) : na);
  line("requests", std::to_string(slots_.size()));
  line("accepted", std::to_string(accepted_));
  line("not_accepted", std::to_string(slots_.size() - accepted_));
  line("refused", std::to_string(refused_) + " (retried " + std::to_string(retries_) + ")");
  for (const auto& [key, n] : refusals_)
    line(("refused_" + key).c_str(), std::to_string(n));
  line("completed", waited ? std::to_string(completed_) + " (success " + std::to_string(successes_)
                                 + ", error " + std::to_string(errors_) + ")"
                           : na);
  line("missing", waited ? std::to_string(accepted_ - completed_) : na);
  line("duplicates", std::to_string(redeliveries_ + conflicting_) + " (same event_id "
                         + std::to_string(redeliveries_) + ", different event_id "
                         + std::to_string(conflicting_) + ")");
  size_t unexpected = 0;
  for (const auto& [qid, events] : early_)
    unexpected += events.size();
  line("unexpected_results", std::to_string(unexpected));
  line("bad_events", std::to_string(bad_events_));
  line("elapsed_s", fixed(elapsed_s, 2));
  line("accepted_per_s", fixed(per_second(accepted_, first_sent_, last_accept_)));
  line("completed_per_s", waited ? fixed(per_second(completed_, first_sent_, last_result_)) : na);
  auto accept = accept_ms_;
  line("accept_p50_ms", fixed(percentile(accept, 0.50), 2));
  line("accept_p99_ms", fixed(percentile(accept, 0.99), 2));
  line("accept_max_ms", fixed(percentile(accept, 1.0), 2));
  auto e2e = e2e_latencies_ms();
  line("e2e_mean_ms", waited ? fixed(mean(e2e), 2) : na);
  line("e2e_p50_ms", waited ? fixed(percentile(e2e, 0.50), 2) : na);
  line("e2e_p90_ms", waited ? fixed(percentile(e2e, 0.90), 2) : na);
  line("e2e_p99_ms", waited ? fixed(percentile(e2e, 0.99), 2) : na);
  line("e2e_max_ms", waited ? fixed(percentile(e2e, 1.0), 2) : na);
  // lps's own view, from the result events (whole milliseconds: lps rounds down).
  auto figures = [&](const char* prefix, std::vector<double> xs) {
    auto key = [&](const char* suffix) { return std::string(prefix) + suffix; };
    bool have = waited && !xs.empty();
    line(key("_mean_ms").c_str(), have ? fixed(mean(xs), 2) : na);
    line(key("_p50_ms").c_str(), have ? fixed(percentile(xs, 0.50), 0) : na);
    line(key("_p99_ms").c_str(), have ? fixed(percentile(xs, 0.99), 0) : na);
    line(key("_max_ms").c_str(), have ? fixed(percentile(xs, 1.0), 0) : na);
  };
  figures("event_provider", event_figures_ms(&slot::provider_ms));
  figures("event_inside", event_figures_ms(&slot::inside_ms));
}

int exit_code(const tracker& t, const options& opt) {
  std::lock_guard<std::mutex> lock{t.mutex_};
  bool missing = opt.wait != wait_mode::none && t.completed_ < t.accepted_;
  bool ok = t.accepted_ == t.slots_.size() && !missing && t.conflicting_ == 0;
  return ok ? 0 : 1;
}

/// rate_late and rate_late_max_ms: how far a paced run (--rate) fell behind its schedule.
void print_pacing(const options& opt, const pacing_figures& pace) {
  auto na = std::string("n/a");
  line("rate_late", opt.rate == 0
                        ? na
                        : std::to_string(pace.late) + " of " + std::to_string(pace.started)
                              + " started > 1 ms after their due time");
  auto max_ms = std::chrono::duration<double, std::milli>(pace.late_max).count();
  line("rate_late_max_ms", opt.rate == 0 ? na : fixed(max_ms, 2));
}

void print_rss(const options& opt) {
  if (opt.pid != 0) {
    auto server = read_rss_mib(std::to_string(opt.pid));
    line("server_peak_rss_mib", server ? fixed(server->first) : "unreadable");
    line("server_rss_mib", server ? fixed(server->second) : "unreadable");
  }
  auto self = read_rss_mib("self");
  line("loadgen_peak_rss_mib", self ? fixed(self->first) : "unreadable");
}

// -- periodic POST (--reset-url) ----------------------------------------------------------------

/// POSTs an empty body to one URL every interval on its own thread and connection, until
/// stopped; counts the answers and the longest gap between two successful ones.
class periodic_poster {
public:
  explicit periodic_poster(const options& opt)
      : url_(opt.reset_url), interval_(opt.reset_interval_ms), client_(client_options(1)) {
    if (!url_.empty())
      thread_ = std::thread([this] { loop(); });
  }

  ~periodic_poster() {
    stop();
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock{mutex_};
      if (stopped_)
        return;
      stopped_ = true;
      wake_.notify_all();
    }
    if (thread_.joinable())
      thread_.join();
    client_.stop();
  }

  void print() const {
    if (url_.empty())
      return;
    std::lock_guard<std::mutex> lock{mutex_};
    line("resets", std::to_string(ok_) + " ok, " + std::to_string(failed_) + " failed (every "
                       + std::to_string(interval_.count()) + " ms to " + url_ + ")");
    line("reset_max_gap_ms", fixed(double(max_gap_ns_) / 1e6, 1));
  }

private:
  void loop() {
    std::unique_lock<std::mutex> lock{mutex_};
    auto next = clock_type::now();
    while (!stopped_) {
      lock.unlock();
      lps::http_client_request req;
      req.url = url_;
      req.timeout = milliseconds{2000};
      client_.send(std::move(req), [this](lps::http_client_response r) { answered(r.status); });
      lock.lock();
      next += interval_;
      wake_.wait_until(lock, next, [this] { return stopped_; });
    }
  }

  void answered(unsigned status) {
    auto now = clock_type::now();
    std::lock_guard<std::mutex> lock{mutex_};
    if (stopped_)
      return; // cancelled by stop(), or answered after the run: neither counts
    if (status < 200 || status > 299) {
      ++failed_;
      return;
    }
    ++ok_;
    if (last_ok_)
      max_gap_ns_ = std::max<int64_t>(
          max_gap_ns_,
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - *last_ok_).count());
    last_ok_ = now;
  }

  std::string url_;
  milliseconds interval_;
  lps::http_client client_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopped_ = false;
  uint64_t ok_ = 0;
  uint64_t failed_ = 0;
  std::optional<clock_type::time_point> last_ok_;
  int64_t max_gap_ns_ = 0;
  std::thread thread_;
};

// -- direct mode: the provider without lps -------------------------------------------------------

/// Reads a chat/completions answer as lps does (parse_openai_response): the first choice's
/// message content must be a JSON object whose winner is "Essay A" or "Essay B". Returns ""
/// when it is, else a short reason.
std::string check_openai_answer(std::string_view body) {
  boost::system::error_code ec;
  auto doc = boost::json::parse(body, ec);
  const auto* root = ec ? nullptr : doc.if_object();
  const auto* choices = root ? root->if_contains("choices") : nullptr;
  const auto* list = choices ? choices->if_array() : nullptr;
  const auto* choice = list && !list->empty() ? (*list)[0].if_object() : nullptr;
  const auto* message = choice ? choice->if_contains("message") : nullptr;
  const auto* fields = message ? message->if_object() : nullptr;
  const auto* content = fields ? fields->if_contains("content") : nullptr;
  if (!content || !content->is_string())
    return "no_content";
  auto verdict = boost::json::parse(content->get_string(), ec);
  const auto* answer = ec ? nullptr : verdict.if_object();
  const auto* winner = answer ? answer->if_contains("winner") : nullptr;
  if (!winner || !winner->is_string()
      || (winner->get_string() != "Essay A" && winner->get_string() != "Essay B"))
    return "bad_verdict";
  return {};
}

/// Sends one chat/completions call per request straight to the provider, --concurrency in
/// flight over as many keep-alive connections, and times each call (send → answer read).
class direct_caller {
public:
  direct_caller(const options& opt, const body_builder& bodies, clock_type::time_point origin,
                milliseconds timeout, scheduler& sched)
      : opt_(opt), bodies_(bodies), origin_(origin), timeout_(timeout),
        client_(client_options(opt.concurrency)),
        window_(
            opt.concurrency, [this] { return next_call(); }, [this](uint64_t i) { launch(i); },
            opt.rate, &sched) {
    latencies_ms_.reserve(opt.count);
  }

  void start() {
    window_.pump();
  }

  pacing_figures pacing() const {
    return window_.pacing();
  }

  void stop() {
    window_.close();
    client_.stop();
  }

  uint64_t answered() const {
    std::lock_guard<std::mutex> lock{mutex_};
    return answered_;
  }

  bool all_ok() const {
    std::lock_guard<std::mutex> lock{mutex_};
    return ok_ == opt_.count;
  }

  void print_summary(double elapsed_s) const {
    std::lock_guard<std::mutex> lock{mutex_};
    line("mode", "direct");
    line("url", opt_.url + "/chat/completions");
    line("model", opt_.model);
    line("concurrency", std::to_string(opt_.concurrency));
    line("rate", std::to_string(opt_.rate));
    line("requests", std::to_string(opt_.count));
    line("answered", std::to_string(answered_));
    line("ok", std::to_string(ok_));
    line("failed", std::to_string(answered_ - ok_));
    for (const auto& [key, n] : failures_)
      line(("failed_" + key).c_str(), std::to_string(n));
    line("elapsed_s", fixed(elapsed_s, 2));
    line("calls_per_s", fixed(per_second(ok_, first_sent_, last_answer_)));
    auto xs = latencies_ms_;
    line("call_mean_ms", fixed(mean(xs), 2));
    line("call_p50_ms", fixed(percentile(xs, 0.50), 2));
    line("call_p90_ms", fixed(percentile(xs, 0.90), 2));
    line("call_p99_ms", fixed(percentile(xs, 0.99), 2));
    line("call_max_ms", fixed(percentile(xs, 1.0), 2));
  }

private:
  /// Called under the window's lock.
  std::optional<uint64_t> next_call() {
    if (next_ >= opt_.count)
      return std::nullopt;
    return next_++;
  }

  void launch(uint64_t index) {
    lps::http_client_request req;
    req.url = opt_.url + "/chat/completions";
    req.headers = {{"Authorization", "Bearer " + opt_.api_key},
                   {"Content-Type", "application/json"}};
    req.body = bodies_.openai(index);
    req.timeout = timeout_;
    auto sent = now_ns(origin_);
    {
      std::lock_guard<std::mutex> lock{mutex_};
      first_sent_ = std::min(first_sent_, sent);
    }
    client_.send(std::move(req), [this, sent](lps::http_client_response r) {
      auto at = now_ns(origin_);
      std::string why = r.status == 0     ? std::string("transport_") + lps::to_string(r.error)
                        : r.status != 200 ? std::to_string(r.status)
                                          : check_openai_answer(r.body);
      record(sent, at, why);
      window_.done();
    });
  }

  void record(int64_t sent, int64_t at, const std::string& why) {
    std::lock_guard<std::mutex> lock{mutex_};
    ++answered_;
    latencies_ms_.push_back(double(at - sent) / 1e6);
    last_answer_ = std::max(last_answer_, at);
    if (why.empty())
      ++ok_;
    else
      ++failures_[why];
  }

  const options& opt_;
  const body_builder& bodies_;
  clock_type::time_point origin_;
  milliseconds timeout_;
  mutable std::mutex mutex_;
  std::vector<double> latencies_ms_;
  std::map<std::string, uint64_t> failures_;
  uint64_t answered_ = 0;
  uint64_t ok_ = 0;
  int64_t first_sent_ = INT64_MAX;
  int64_t last_answer_ = 0;
  uint64_t next_ = 0; // guarded by the window's lock (next_call)
  lps::http_client client_;
  window<uint64_t> window_;
};

int run_direct(const options& opt) {
  essay_corpus corpus(opt.seed, opt.essay_bytes);
  body_builder bodies(opt, corpus, "");
  auto origin = clock_type::now();
  auto http_timeout = milliseconds{std::min<uint64_t>(opt.timeout_seconds, 120) * 1000};
  scheduler sched; // wakes the caller's window when a paced call falls due
  direct_caller caller(opt, bodies, origin, http_timeout, sched);
  std::map<std::string, double> server_cpu_before;
  if (opt.pid != 0)
    server_cpu_before = thread_cpu_seconds(opt.pid);
  periodic_poster resets(opt);
  caller.start();
  auto deadline = origin + std::chrono::seconds{opt.timeout_seconds};
  auto next_progress = origin + std::chrono::seconds{1};
  while (caller.answered() < opt.count && clock_type::now() < deadline) {
    std::this_thread::sleep_for(milliseconds{20});
    if (clock_type::now() >= next_progress) {
      std::fprintf(stderr, "[%7.1fs] answered %llu\n", double(now_ns(origin)) / 1e9,
                   static_cast<unsigned long long>(caller.answered()));
      next_progress += std::chrono::seconds{1};
    }
  }
  auto elapsed = double(now_ns(origin)) / 1e9;
  if (caller.answered() < opt.count)
    std::fprintf(stderr, "lps-loadgen: timed out after %.1f s\n", elapsed);
  resets.stop();
  sched.stop(); // before the caller goes: a pending wake-up pumps its window
  caller.stop();
  caller.print_summary(elapsed);
  print_pacing(opt, caller.pacing());
  resets.print();
  print_rss(opt);
  if (opt.pid != 0)
    print_server_cpu(server_cpu_before, opt.pid, opt.count);
  print_own_cpu(opt.count);
  auto rc = caller.all_ok() ? 0 : 1;
  line("result", rc == 0 ? "OK" : "FAIL");
  std::fflush(stdout);
  return rc;
}

// -- main loop -----------------------------------------------------------------------------------

bool finished(const tracker& t, const options& opt) {
  auto p = t.progress();
  bool submitted = p.accepted + p.not_accepted >= opt.count;
  return submitted && (opt.wait == wait_mode::none || p.completed >= p.accepted);
}

void print_progress(const tracker& t, double seconds) {
  auto p = t.progress();
  std::fprintf(
      stderr, "[%7.1fs] submitted %llu accepted %llu refused %llu completed %llu\n", seconds,
      static_cast<unsigned long long>(p.submitted), static_cast<unsigned long long>(p.accepted),
      static_cast<unsigned long long>(p.refused), static_cast<unsigned long long>(p.completed));
}

/// Waits for the run to finish or time out, printing progress about once per second.
/// Returns the elapsed seconds.
double wait_for_run(const run_context& ctx) {
  auto deadline = ctx.origin + std::chrono::seconds{ctx.opt.timeout_seconds};
  auto next_progress = ctx.origin + std::chrono::seconds{1};
  while (!finished(ctx.track, ctx.opt) && clock_type::now() < deadline) {
    std::this_thread::sleep_for(milliseconds{20});
    if (clock_type::now() >= next_progress) {
      print_progress(ctx.track, double(now_ns(ctx.origin)) / 1e9);
      next_progress += std::chrono::seconds{1};
    }
  }
  auto elapsed = double(now_ns(ctx.origin)) / 1e9;
  if (!finished(ctx.track, ctx.opt))
    std::fprintf(stderr, "lps-loadgen: timed out after %.1f s\n", elapsed);
  return elapsed;
}

int run(const options& opt) {
  essay_corpus corpus(opt.seed, opt.essay_bytes);
  tracker track(opt.count);
  scheduler sched;
  auto http_timeout = milliseconds{std::min<uint64_t>(opt.timeout_seconds, 120) * 1000};
  run_context ctx{opt, track, sched, clock_type::now(), http_timeout};
  lps::http_server receiver;
  std::string callback_url;
  if (opt.wait == wait_mode::callback)
    callback_url = start_receiver(receiver, ctx);
  body_builder bodies(opt, corpus, callback_url);
  std::optional<poller> polls;
  if (opt.wait == wait_mode::poll)
    polls.emplace(ctx);
  submitter sub(ctx, bodies, polls ? &*polls : nullptr);
  std::map<std::string, double> server_cpu_before;
  if (opt.pid != 0)
    server_cpu_before = thread_cpu_seconds(opt.pid);
  periodic_poster resets(opt);
  sub.start();
  auto elapsed = wait_for_run(ctx);
  // A short linger catches redeliveries of results we already have.
  if (opt.wait == wait_mode::callback)
    std::this_thread::sleep_for(milliseconds{500});
  resets.stop();
  sched.stop();
  sub.stop();
  if (polls)
    polls->stop();
  receiver.stop();
  print_progress(track, elapsed);
  track.print_summary(opt, elapsed);
  print_pacing(opt, sub.pacing());
  resets.print();
  print_rss(opt);
  if (opt.pid != 0)
    print_server_cpu(server_cpu_before, opt.pid, opt.count);
  print_own_cpu(opt.count);
  auto rc = exit_code(track, opt);
  line("result", rc == 0 ? "OK" : "FAIL");
  std::fflush(stdout);
  return rc;
}

} // namespace

int main(int argc, char** argv) {
  std::optional<options> opt;
  try {
    opt = parse_options(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lps-loadgen: %s (see --help)\n", e.what());
    return 2;
  }
  if (!opt) {
    std::fputs(usage_text, stdout);
    return 0;
  }
  spdlog::set_level(spdlog::level::warn);
  try {
    return opt->mode == submit_mode::direct ? run_direct(*opt) : run(*opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lps-loadgen: %s\n", e.what());
    return 1;
  }
}
