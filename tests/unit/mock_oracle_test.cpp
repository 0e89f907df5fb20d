#include "actors/mock_oracle.hpp"

#include "runtime/ids.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <set>

using namespace lps;
using namespace std::chrono_literals;

namespace {

std::string id_for(int i) {
  return "corr-" + std::to_string(i);
}

bool same_answer(const mock_answer& a, const mock_answer& b) {
  return a.success == b.success && a.winner == b.winner && a.justification == b.justification
         && a.confidence == b.confidence && a.http_status == b.http_status
         && a.error_code == b.error_code && a.error_message == b.error_message
         && a.latency == b.latency && a.prompt_tokens == b.prompt_tokens
         && a.completion_tokens == b.completion_tokens && a.prompt_sha256 == b.prompt_sha256;
}

} // namespace

TEST_CASE("same inputs give the same answer") {
  mock_settings settings;
  settings.latency_jitter = 200ms;
  settings.error_rate = 0.3;
  for (int i = 0; i < 200; ++i) {
    auto a = mock_judge(settings, id_for(i), "Compare these two essays.");
    auto b = mock_judge(settings, id_for(i), "Compare these two essays.");
    CHECK(same_answer(a, b));
  }
}

TEST_CASE("answers are pinned across processes and builds") {
  // stable_hash is FNV-1a: this exact answer must hold on every run, so a fixed
  // expectation catches any drift to std::hash or unseeded randomness.
  mock_settings settings;
  settings.latency_jitter = 1000ms;
  auto first = mock_judge(settings, "6f1c2e9a-0000-4000-8000-000000000001", "x");
  CHECK(first.success);
  CHECK(first.winner == "Essay A");
  CHECK(first.justification
        == "Essay A is better organised, with paragraphs that build logically on each other.");
  CHECK(first.confidence == 3.2);
  CHECK(first.latency == 196ms);
  auto second = mock_judge(settings, "pinned-2", "x");
  CHECK(second.confidence == 4.7);
  CHECK(second.latency == 189ms);
  settings.error_rate = 1.0;
  CHECK(mock_judge(settings, "pinned-3", "x").http_status == 429);
  settings.error_rate = 0.0;
  // Changing the seed is a different oracle.
  std::set<std::string> by_seed;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    settings.seed = seed;
    auto a = mock_judge(settings, "same-id", "x");
    by_seed.insert(a.winner + std::to_string(a.latency.count()));
  }
  CHECK(by_seed.size() > 10);
}

TEST_CASE("different correlation ids vary") {
  mock_settings settings;
  settings.latency_jitter = 500ms;
  std::set<std::string> winners;
  std::set<std::string> justifications;
  std::set<double> confidences;
  std::set<int64_t> latencies;
  for (int i = 0; i < 200; ++i) {
    auto a = mock_judge(settings, id_for(i), "prompt");
    winners.insert(a.winner);
    justifications.insert(a.justification);
    confidences.insert(a.confidence);
    latencies.insert(a.latency.count());
  }
  CHECK(winners.size() == 2);
  CHECK(justifications.size() >= 8);
  CHECK(confidences.size() >= 10);
  CHECK(latencies.size() >= 100);
}

TEST_CASE("error rate 0 never fails") {
  mock_settings settings;
  settings.error_rate = 0.0;
  for (int i = 0; i < 1000; ++i) {
    auto a = mock_judge(settings, id_for(i), "prompt");
    REQUIRE(a.success);
    CHECK(a.http_status == 0);
    CHECK(a.error_code.empty());
  }
}

TEST_CASE("error rate 1 always fails with a configured code") {
  mock_settings settings;
  settings.error_rate = 1.0;
  std::set<int32_t> seen;
  for (int i = 0; i < 1000; ++i) {
    auto a = mock_judge(settings, id_for(i), "prompt");
    REQUIRE_FALSE(a.success);
    seen.insert(a.http_status);
    CHECK(a.winner.empty());
    CHECK(a.error_message == "mock provider simulated HTTP " + std::to_string(a.http_status));
    if (a.http_status == 429)
      CHECK(a.error_code == "RATE_LIMIT");
    else
      CHECK(a.error_code == "EXTERNAL_SERVICE_ERROR");
  }
  CHECK(seen == std::set<int32_t>{429, 500, 503});
}

TEST_CASE("error codes map to error kinds") {
  mock_settings settings;
  settings.error_rate = 1.0;
  auto only = [&](int32_t code) {
    settings.error_codes = {code};
    return mock_judge(settings, "id", "prompt");
  };
  CHECK(only(429).error_code == "RATE_LIMIT");
  CHECK(only(500).error_code == "EXTERNAL_SERVICE_ERROR");
  CHECK(only(503).error_code == "EXTERNAL_SERVICE_ERROR");
  CHECK(only(503).http_status == 503);
  CHECK(only(502).error_code == "EXTERNAL_SERVICE_ERROR");
  settings.error_codes.clear();
  auto fallback = mock_judge(settings, "id", "prompt");
  CHECK(fallback.http_status == 503);
  CHECK(fallback.error_code == "EXTERNAL_SERVICE_ERROR");
  CHECK(fallback.error_message == "mock provider simulated HTTP 503");
}

TEST_CASE("partial error rate fails about that often") {
  mock_settings settings;
  settings.error_rate = 0.25;
  int failures = 0;
  for (int i = 0; i < 4000; ++i)
    failures += mock_judge(settings, id_for(i), "p").success ? 0 : 1;
  CHECK(failures > 800);
  CHECK(failures < 1200);
}

TEST_CASE("winner is about evenly split") {
  mock_settings settings;
  int a_wins = 0;
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    auto a = mock_judge(settings, stable_uuid("mock-test", id_for(i)), "prompt");
    REQUIRE((a.winner == "Essay A" || a.winner == "Essay B"));
    // The justification argues for the winner.
    CHECK(a.justification.find(a.winner) != std::string::npos);
    a_wins += a.winner == "Essay A" ? 1 : 0;
  }
  CHECK(a_wins > n * 40 / 100);
  CHECK(a_wins < n * 60 / 100);
}

TEST_CASE("confidence stays within bounds in tenths") {
  mock_settings settings;
  for (int i = 0; i < 2000; ++i) {
    auto a = mock_judge(settings, id_for(i), "prompt");
    CHECK(a.confidence >= 1.0);
    CHECK(a.confidence <= 5.0);
    CHECK(std::abs(a.confidence * 10 - std::round(a.confidence * 10)) < 1e-9);
  }
}

TEST_CASE("latency is base plus bounded jitter") {
  mock_settings settings;
  settings.latency = 100ms;
  settings.latency_jitter = 50ms;
  std::set<int64_t> seen;
  for (int i = 0; i < 2000; ++i) {
    auto a = mock_judge(settings, id_for(i), "prompt");
    CHECK(a.latency >= 100ms);
    CHECK(a.latency <= 150ms);
    seen.insert(a.latency.count());
  }
  // Both ends of [latency, latency + jitter] are reachable.
  CHECK(seen.count(100) == 1);
  CHECK(seen.count(150) == 1);

  settings.latency_jitter = 0ms;
  for (int i = 0; i < 100; ++i)
    CHECK(mock_judge(settings, id_for(i), "prompt").latency == 100ms);

  settings.error_rate = 1.0;
  settings.latency_jitter = 10ms;
  auto failed = mock_judge(settings, "id", "prompt");
  CHECK(failed.latency >= 100ms);
  CHECK(failed.latency <= 110ms);
}

TEST_CASE("token counts follow the word heuristic") {
  mock_settings settings;
  // Ten words split by mixed whitespace: ceil(10 * 1.3) = 13.
  auto a = mock_judge(settings, "id", "  one two\tthree\nfour  five six\r\nseven eight nine ten ");
  REQUIRE(a.success);
  CHECK(a.prompt_tokens == 13);
  // Every justification has 13 or 14 words: ceil(n * 1.3) + 10.
  auto words = [](const std::string& s) {
    uint64_t n = 0;
    bool in = false;
    for (char c : s) {
      bool sp = c == ' ';
      n += (!sp && !in) ? 1 : 0;
      in = !sp;
    }
    return n;
  };
  auto expected_completion = static_cast<uint64_t>(std::ceil(words(a.justification) * 1.3)) + 10;
  CHECK(a.completion_tokens == expected_completion);
  // Three words: ceil(3.9) = 4; one word: ceil(1.3) = 2; none: at least 1.
  CHECK(mock_judge(settings, "id", "a b c").prompt_tokens == 4);
  CHECK(mock_judge(settings, "id", "word").prompt_tokens == 2);
  CHECK(mock_judge(settings, "id", "").prompt_tokens == 1);
  CHECK(mock_judge(settings, "id", " \n\t ").prompt_tokens == 1);
  // A long essay-sized prompt: 1000 words -> 1300 tokens.
  std::string big;
  for (int i = 0; i < 1000; ++i)
    big += "lorem ";
  CHECK(mock_judge(settings, "id", big).prompt_tokens == 1300);
}

TEST_CASE("failed calls bill no tokens") {
  mock_settings settings;
  settings.error_rate = 1.0;
  auto a = mock_judge(settings, "id", "some prompt words");
  CHECK(a.prompt_tokens == 0);
  CHECK(a.completion_tokens == 0);
}

TEST_CASE("prompt sha matches sha256_hex") {
  mock_settings settings;
  const std::string prompt = "Which essay is better?\nEssay A: ...\nEssay B: ...";
  auto a = mock_judge(settings, "id", prompt);
  CHECK(a.prompt_sha256 == sha256_hex(prompt));
  CHECK(a.prompt_sha256.size() == 64);
  CHECK(mock_judge(settings, "id", "").prompt_sha256
        == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("errors are drawn per attempt so retries can succeed") {
  lps::mock_settings settings;
  settings.error_rate = 0.5;
  size_t failed_first = 0;
  size_t recovered = 0;
  for (int i = 0; i < 400; ++i) {
    auto id = "attempt-" + std::to_string(i);
    auto first = lps::mock_judge(settings, id, "x", 1);
    CHECK(first.success == lps::mock_judge(settings, id, "x").success); // default is attempt 1
    if (!first.success) {
      ++failed_first;
      auto again = lps::mock_judge(settings, id, "x", 2);
      CHECK(again.success == lps::mock_judge(settings, id, "x", 2).success); // deterministic
      recovered += again.success ? 1 : 0;
    }
  }
  // About half of the failed first attempts succeed on the second (independent draws).
  CHECK(failed_first > 100);
  CHECK(recovered > failed_first / 4);
  CHECK(recovered < failed_first * 3 / 4);
}
