#pragma once

// What lps-loadgen sends: essay texts from one corpus built at start, and request bodies
// (lps's single and bulk requests, and the OpenAI call lps would make for direct mode) built
// with plain string appends.

#include "runtime/ids.hpp"
#include "runtime/json_codec.hpp"
#include "tools/loadgen/options.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace lps::loadgen {

inline uint64_t splitmix64(uint64_t x) {
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

inline constexpr std::string_view rubric =
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

} // namespace lps::loadgen
