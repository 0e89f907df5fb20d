#include "actors/mock_oracle.hpp"
#include "runtime/error_code.hpp"

#include "runtime/ids.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <string_view>

namespace lps {

namespace {

constexpr std::array<std::string_view, 5> essay_a_reasons{
    "Essay A presents a clearer thesis and supports it with more relevant evidence.",
    "Essay A is better organised, with paragraphs that build logically on each other.",
    "Essay A engages more directly with the prompt and sustains its argument throughout.",
    "Essay A uses more precise language and makes fewer errors in grammar and usage.",
    "Essay A develops its ideas in greater depth and draws a more convincing conclusion.",
};

constexpr std::array<std::string_view, 5> essay_b_reasons{
    "Essay B presents a clearer thesis and supports it with more relevant evidence.",
    "Essay B is better organised, with paragraphs that build logically on each other.",
    "Essay B engages more directly with the prompt and sustains its argument throughout.",
    "Essay B uses more precise language and makes fewer errors in grammar and usage.",
    "Essay B develops its ideas in greater depth and draws a more convincing conclusion.",
};

// Stable draws in [0, 1) keyed by "seed/correlation_id/salt". FNV-1a alone mixes the last
// bytes of a key poorly into its high bits, so a 64-bit finaliser (splitmix64) spreads them
// before the top 53 bits become the fraction.
class draw_source {
public:
  draw_source(uint64_t seed, const std::string& correlation_id) {
    char buf[24];
    auto res = std::to_chars(buf, buf + sizeof(buf), seed);
    key_.reserve(static_cast<size_t>(res.ptr - buf) + correlation_id.size() + 16);
    key_.append(buf, res.ptr);
    key_ += '/';
    key_ += correlation_id;
    key_ += '/';
    prefix_len_ = key_.size();
  }

  double operator()(std::string_view salt) {
    key_.resize(prefix_len_);
    key_ += salt;
    auto h = stable_hash(key_);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return static_cast<double>(h >> 11) * 0x1.0p-53;
  }

private:
  std::string key_;
  size_t prefix_len_ = 0;
};

// Index in [0, n) from a draw in [0, 1); the clamp guards n == 0 and rounding at the top.
size_t pick(double draw, size_t n) {
  if (n == 0)
    return 0;
  return std::min(static_cast<size_t>(draw * static_cast<double>(n)), n - 1);
}

constexpr bool is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Whitespace-separated words in one pass: a word starts where a non-space follows a space.
// Branch-free (table lookup and arithmetic), because the mock counts every 6 KB prompt and
// a branchy loop showed up at 5 % of the service's CPU in perf.
uint64_t count_words(std::string_view text) {
  static constexpr auto space_table = [] {
    std::array<uint8_t, 256> table{};
    for (int c = 0; c < 256; ++c)
      table[c] = is_space(static_cast<unsigned char>(c)) ? 1 : 0;
    return table;
  }();
  uint64_t words = 0;
  uint8_t previous_space = 1;
  for (char c : text) {
    uint8_t space = space_table[static_cast<unsigned char>(c)];
    words += previous_space & (space ^ 1);
    previous_space = space;
  }
  return words;
}

// ceil(words * 1.3) in integers, so the result never depends on floating-point rounding.
uint64_t tokens_for_words(uint64_t words) {
  return (words * 13 + 9) / 10;
}

void fill_failure(mock_answer& answer, const mock_settings& settings, double draw) {
  answer.success = false;
  answer.http_status = settings.error_codes.empty()
                           ? 503
                           : settings.error_codes[pick(draw, settings.error_codes.size())];
  answer.error_code =
      answer.http_status == 429 ? to_string(ec::rate_limit) : to_string(ec::external_service_error);
  answer.error_message = "mock provider simulated HTTP " + std::to_string(answer.http_status);
}

void fill_success(mock_answer& answer, draw_source& draw) {
  bool a_wins = draw("winner") < 0.5;
  answer.winner = a_wins ? "Essay A" : "Essay B";
  const auto& reasons = a_wins ? essay_a_reasons : essay_b_reasons;
  answer.justification = reasons[pick(draw("justification"), reasons.size())];
  // 3.0..5.0 in tenths: a mock judge that is never unsure keeps downstream ranking stable.
  answer.confidence = std::round((3.0 + draw("confidence") * 2.0) * 10.0) / 10.0;
}

} // namespace

mock_answer mock_judge(const mock_settings& settings, const std::string& correlation_id,
                       const std::string& user_prompt, uint32_t attempt,
                       std::string_view prompt_sha256) {
  draw_source draw{settings.seed, correlation_id};
  mock_answer answer;
  // Each decision has its own salt, so changing error_rate does not reshuffle winners.
  // Attempt 1 keeps the plain salt, so first-attempt answers stay as they always were.
  auto suffix = attempt <= 1 ? std::string{} : "#" + std::to_string(attempt);
  if (draw("error" + suffix) < settings.error_rate)
    fill_failure(answer, settings, draw("error_code" + suffix));
  else
    fill_success(answer, draw);

  auto jitter = std::max<int64_t>(settings.latency_jitter.count(), 0);
  auto extra = static_cast<int64_t>(std::floor(draw("latency") * static_cast<double>(jitter + 1)));
  answer.latency = settings.latency + std::chrono::milliseconds{std::min(extra, jitter)};

  answer.prompt_sha256 =
      prompt_sha256.empty() ? sha256_hex(user_prompt) : std::string{prompt_sha256};
  if (answer.success) {
    // A failed call bills nothing, as with a real provider's error response.
    answer.prompt_tokens = std::max<uint64_t>(tokens_for_words(count_words(user_prompt)), 1);
    answer.completion_tokens = tokens_for_words(count_words(answer.justification)) + 10;
  }
  return answer;
}

} // namespace lps
