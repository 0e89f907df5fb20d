#include "actors/metrics_registry.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

using namespace lps;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

bool has_line(const std::string& text, const std::string& line) {
  auto lines = lines_of(text);
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

const metric_definition* find_definition(const std::string& name) {
  for (const auto& def : metric_definitions())
    if (def.name == name)
      return &def;
  return nullptr;
}

struct expected_metric {
  std::string name;
  metric_kind kind;
  std::vector<std::string> labels;
  std::vector<double> buckets;
};

// CONTRACTS.md section 4 plus lps' own metrics, as the brief specifies them.
const std::vector<expected_metric>& expected_metrics() {
  using k = metric_kind;
  static const std::vector<expected_metric> all{
      {"llm_provider_requests_total", k::counter, {"provider", "model", "status"}, {}},
      {"llm_provider_http_calls_total", k::counter, {"provider", "endpoint", "status_code"}, {}},
      {"llm_provider_serial_bundle_calls_total", k::counter, {"provider", "model"}, {}},
      {"llm_provider_serial_bundle_items_per_call",
       k::histogram,
       {"provider", "model"},
       {1, 2, 4, 8, 16, 32, 64}},
      {"llm_provider_queue_depth", k::gauge, {"status"}, {}},
      {"llm_provider_queue_wait_time_seconds",
       k::histogram,
       {"queue_processing_mode", "result"},
       {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}},
      {"llm_provider_response_duration_seconds",
       k::histogram,
       {"provider", "model"},
       {0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}},
      {"llm_provider_tokens_used_total", k::counter, {"provider", "model", "token_type"}, {}},
      {"llm_provider_cost_dollars_total", k::counter, {"provider", "model"}, {}},
      {"llm_provider_comparison_callbacks_total",
       k::counter,
       {"queue_processing_mode", "result"},
       {}},
      {"llm_provider_circuit_breaker_state", k::gauge, {"provider"}, {}},
      {"llm_provider_batch_api_jobs_total", k::counter, {"provider", "model", "status"}, {}},
      {"llm_provider_batch_api_items_per_job",
       k::histogram,
       {"provider", "model"},
       {1, 10, 100, 1000, 10000, 50000, 100000}},
      {"llm_provider_batch_api_job_duration_seconds",
       k::histogram,
       {"provider", "model"},
       {60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400}},
      {"llm_provider_bundles_total",
       k::counter,
       {"provider", "model", "queue_processing_mode"},
       {}},
      {"llm_provider_callback_deliveries_total", k::counter, {"result"}, {}},
      {"llm_provider_requests_accepted_total", k::counter, {}, {}},
      {"llm_provider_requests_rejected_total", k::counter, {"reason"}, {}},
      {"llm_provider_queue_expiry_total", k::counter, {"queue_processing_mode"}, {}},
      {"llm_provider_store_commits_total", k::counter, {}, {}},
      {"llm_provider_store_up", k::gauge, {}, {}},
      {"llm_provider_store_reconnects_total", k::counter, {}, {}},
      {"llm_provider_inflight_provider_calls", k::gauge, {"provider"}, {}},
      {"llm_provider_calls_waiting_for_connection", k::gauge, {"provider"}, {}},
      {"llm_provider_inflight_bundles", k::gauge, {"provider"}, {}},
  };
  return all;
}

const char* type_word(metric_kind kind) {
  switch (kind) {
  case metric_kind::counter:
    return "counter";
  case metric_kind::gauge:
    return "gauge";
  case metric_kind::histogram:
    return "histogram";
  }
  return "";
}

// A plausible label value for each label name, so the sample exposition reads like production.
std::string sample_label(const std::string& label_name, int variant) {
  if (label_name == "provider")
    return variant == 0 ? "openai" : "mock";
  if (label_name == "model")
    return variant == 0 ? "gpt-4o-mini" : "mock-model-v1";
  if (label_name == "status")
    return variant == 0 ? "queued" : "completed";
  if (label_name == "endpoint")
    return "/v1/chat/completions";
  if (label_name == "status_code")
    return variant == 0 ? "200" : "429";
  if (label_name == "queue_processing_mode")
    return variant == 0 ? "per_request" : "serial_bundle";
  if (label_name == "result")
    return variant == 0 ? "success" : "failure";
  if (label_name == "token_type")
    return variant == 0 ? "prompt" : "completion";
  if (label_name == "reason")
    return variant == 0 ? "queue_full" : "invalid_request";
  return "x";
}

} // namespace

TEST_CASE("counters add across samples") {
  metrics_registry reg;
  CHECK(reg.apply({"llm_provider_requests_total", {"mock", "m1", "queued"}, 1}));
  CHECK(reg.apply({"llm_provider_requests_total", {"mock", "m1", "queued"}, 2}));
  CHECK(reg.apply({"llm_provider_requests_total", {"mock", "m1", "failed"}, 1}));
  CHECK(reg.apply({"llm_provider_cost_dollars_total", {"openai", "gpt"}, 0.25}));
  CHECK(reg.apply({"llm_provider_requests_accepted_total", {}, 1}));
  CHECK(reg.apply({"llm_provider_requests_accepted_total", {}, 0}));
  CHECK(reg.value("llm_provider_requests_total", {"mock", "m1", "queued"}) == 3);
  CHECK(reg.value("llm_provider_requests_total", {"mock", "m1", "failed"}) == 1);
  CHECK(reg.value("llm_provider_requests_total", {"mock", "m2", "queued"}) == 0);
  CHECK(reg.value("llm_provider_requests_accepted_total", {}) == 1);
  CHECK(reg.rejected() == 0);
  auto text = reg.render();
  const std::string requests = "llm_provider_requests_total";
  CHECK(has_line(text, requests + R"({provider="mock",model="m1",status="queued"} 3)"));
  CHECK(has_line(text, requests + R"({provider="mock",model="m1",status="failed"} 1)"));
  CHECK(has_line(text, R"(llm_provider_cost_dollars_total{provider="openai",model="gpt"} 0.25)"));
  CHECK(has_line(text, "llm_provider_requests_accepted_total 1"));
}

TEST_CASE("series are sorted deterministically") {
  metrics_registry a;
  metrics_registry b;
  std::vector<metric_sample> samples{
      {"llm_provider_queue_depth", {"queued"}, 5},
      {"llm_provider_queue_depth", {"processing"}, 2},
      {"llm_provider_circuit_breaker_state", {"openai"}, 0},
      {"llm_provider_queue_depth", {"completed"}, 9},
  };
  for (const auto& s : samples)
    a.apply(s);
  for (auto it = samples.rbegin(); it != samples.rend(); ++it)
    b.apply(*it);
  auto text = a.render();
  CHECK(text == b.render());
  auto completed = text.find(R"(llm_provider_queue_depth{status="completed"})");
  auto processing = text.find(R"(llm_provider_queue_depth{status="processing"})");
  auto queued = text.find(R"(llm_provider_queue_depth{status="queued"})");
  REQUIRE(completed != std::string::npos);
  CHECK(completed < processing);
  CHECK(processing < queued);
}

TEST_CASE("gauges are set not added") {
  metrics_registry reg;
  CHECK(reg.apply({"llm_provider_queue_depth", {"queued"}, 7}));
  CHECK(reg.apply({"llm_provider_queue_depth", {"queued"}, 3}));
  CHECK(reg.apply({"llm_provider_inflight_provider_calls", {"mock"}, 4}));
  CHECK(reg.apply({"llm_provider_inflight_provider_calls", {"mock"}, 0}));
  // A gauge may go below zero (e.g. a delta-tracked value); only counters refuse it.
  CHECK(reg.apply({"llm_provider_circuit_breaker_state", {"openai"}, -1}));
  CHECK(reg.value("llm_provider_queue_depth", {"queued"}) == 3);
  CHECK(reg.value("llm_provider_inflight_provider_calls", {"mock"}) == 0);
  auto text = reg.render();
  CHECK(has_line(text, R"(llm_provider_queue_depth{status="queued"} 3)"));
  CHECK(has_line(text, R"(llm_provider_inflight_provider_calls{provider="mock"} 0)"));
  CHECK(has_line(text, R"(llm_provider_circuit_breaker_state{provider="openai"} -1)"));
}

TEST_CASE("histogram buckets are cumulative") {
  metrics_registry reg;
  const std::string name = "llm_provider_serial_bundle_items_per_call";
  for (double v : {1.0, 2.0, 3.0, 3.0, 64.0, 100.0})
    CHECK(reg.apply({name, {"mock", "m"}, v}));
  CHECK(reg.count(name, {"mock", "m"}) == 6);
  CHECK(reg.count(name, {"mock", "other"}) == 0);
  auto lines = lines_of(reg.render());
  auto first =
      std::find(lines.begin(), lines.end(), "# HELP " + name + " " + find_definition(name)->help);
  REQUIRE(first != lines.end());
  std::vector<std::string> got(first, std::min(first + 13, lines.end()));
  std::vector<std::string> expected{
      "# HELP " + name + " " + find_definition(name)->help,
      "# TYPE " + name + " histogram",
      name + R"(_bucket{provider="mock",model="m",le="1"} 1)",
      name + R"(_bucket{provider="mock",model="m",le="2"} 2)",
      name + R"(_bucket{provider="mock",model="m",le="4"} 4)",
      name + R"(_bucket{provider="mock",model="m",le="8"} 4)",
      name + R"(_bucket{provider="mock",model="m",le="16"} 4)",
      name + R"(_bucket{provider="mock",model="m",le="32"} 4)",
      name + R"(_bucket{provider="mock",model="m",le="64"} 5)",
      name + R"(_bucket{provider="mock",model="m",le="+Inf"} 6)",
      name + R"(_sum{provider="mock",model="m"} 173)",
      name + R"(_count{provider="mock",model="m"} 6)",
  };
  got.resize(expected.size());
  CHECK(got == expected);
}

TEST_CASE("histogram renders fractional bounds and sums") {
  metrics_registry reg;
  const std::string name = "llm_provider_response_duration_seconds";
  CHECK(reg.apply({name, {"mock", "m"}, 0.001}));
  CHECK(reg.apply({name, {"mock", "m"}, 0.2}));
  CHECK(reg.apply({name, {"mock", "m"}, 0.3}));
  auto text = reg.render();
  CHECK(has_line(text, name + R"(_bucket{provider="mock",model="m",le="0.001"} 1)"));
  CHECK(has_line(text, name + R"(_bucket{provider="mock",model="m",le="0.1"} 1)"));
  CHECK(has_line(text, name + R"(_bucket{provider="mock",model="m",le="0.25"} 2)"));
  CHECK(has_line(text, name + R"(_bucket{provider="mock",model="m",le="2.5"} 3)"));
  CHECK(has_line(text, name + R"(_bucket{provider="mock",model="m",le="300"} 3)"));
  // 0.001 + 0.2 + 0.3 in double arithmetic, written as the shortest round-trip text.
  CHECK(has_line(text, name + R"(_sum{provider="mock",model="m"} 0.501)"));
  CHECK(has_line(text, name + R"(_count{provider="mock",model="m"} 3)"));
}

TEST_CASE("numbers use integer text when integral and round-trip text otherwise") {
  metrics_registry reg;
  const std::string jobs = "llm_provider_batch_api_items_per_job";
  CHECK(reg.apply({jobs, {"openai", "m"}, 50001}));
  CHECK(reg.apply({"llm_provider_cost_dollars_total", {"openai", "a"}, 0.1}));
  CHECK(reg.apply({"llm_provider_cost_dollars_total", {"openai", "b"}, 1e-9}));
  CHECK(reg.apply({"llm_provider_cost_dollars_total", {"openai", "c"}, 1e15}));
  CHECK(reg.apply({"llm_provider_cost_dollars_total", {"openai", "d"}, 1e21}));
  CHECK(reg.apply({"llm_provider_queue_depth", {"odd"}, NAN}));
  auto text = reg.render();
  // A bucket bound is label text: 100000, never 1e+05 or 100000.0.
  CHECK(has_line(text, jobs + R"(_bucket{provider="openai",model="m",le="100000"} 1)"));
  CHECK(has_line(text, jobs + R"(_bucket{provider="openai",model="m",le="50000"} 0)"));
  CHECK(has_line(text, jobs + R"(_sum{provider="openai",model="m"} 50001)"));
  const std::string cost = "llm_provider_cost_dollars_total";
  CHECK(has_line(text, cost + R"({provider="openai",model="a"} 0.1)"));
  CHECK(has_line(text, cost + R"({provider="openai",model="b"} 1e-09)"));
  CHECK(has_line(text, cost + R"({provider="openai",model="c"} 1000000000000000)"));
  CHECK(has_line(text, cost + R"({provider="openai",model="d"} 1e+21)"));
  CHECK(has_line(text, R"(llm_provider_queue_depth{status="odd"} NaN)"));
}

TEST_CASE("label values and help are escaped") {
  metrics_registry reg;
  CHECK(reg.apply({"llm_provider_requests_rejected_total", {"a\"b\\c\nd"}, 1}));
  CHECK(reg.apply({"llm_provider_requests_rejected_total", {"caf\xC3\xA9"}, 1}));
  CHECK(reg.apply({"llm_provider_requests_rejected_total", {"bad\xFFutf8"}, 1}));
  auto text = reg.render();
  CHECK(has_line(text, R"(llm_provider_requests_rejected_total{reason="a\"b\\c\nd"} 1)"));
  CHECK(has_line(text, "llm_provider_requests_rejected_total{reason=\"caf\xC3\xA9\"} 1"));
  // Invalid UTF-8 would make Prometheus drop the whole scrape: it becomes U+FFFD.
  CHECK(has_line(text, "llm_provider_requests_rejected_total{reason=\"bad\xEF\xBF\xBDutf8\"} 1"));
  // Help text is ours: no raw newline may split a HELP line.
  for (const auto& def : metric_definitions())
    CHECK(def.help.find('\n') == std::string::npos);
}

TEST_CASE("invalid samples are rejected and change nothing") {
  metrics_registry reg;
  auto before = reg.render();
  CHECK_FALSE(reg.apply({"llm_provider_no_such_metric_total", {}, 1}));
  CHECK_FALSE(reg.apply({"llm_provider_requests_total", {"mock", "m"}, 1}));
  CHECK_FALSE(reg.apply({"llm_provider_requests_total", {"mock", "m", "queued", "x"}, 1}));
  CHECK_FALSE(reg.apply({"llm_provider_requests_accepted_total", {"x"}, 1}));
  CHECK_FALSE(reg.apply({"llm_provider_requests_total", {"mock", "m", "queued"}, -1}));
  CHECK_FALSE(reg.apply({"llm_provider_requests_total", {"mock", "m", "queued"}, NAN}));
  CHECK_FALSE(reg.apply({"llm_provider_requests_total", {"mock", "m", "queued"}, INFINITY}));
  CHECK_FALSE(reg.apply({"llm_provider_response_duration_seconds", {"mock", "m"}, NAN}));
  CHECK(reg.rejected() == 8);
  CHECK(reg.render() == before);
  CHECK(reg.value("llm_provider_requests_total", {"mock", "m", "queued"}) == 0);
}

TEST_CASE("every contract metric is declared with its labels and buckets") {
  for (const auto& want : expected_metrics()) {
    INFO(want.name);
    const auto* def = find_definition(want.name);
    REQUIRE(def != nullptr);
    CHECK(def->kind == want.kind);
    CHECK(def->label_names == want.labels);
    CHECK(def->buckets == want.buckets);
  }
}

TEST_CASE("definitions follow Prometheus naming rules") {
  std::set<std::string> names;
  const std::regex label_re{"[a-z_][a-z0-9_]*"};
  // lps' own metrics carry the contract's prefix; the process ones the names every
  // Prometheus client library uses.
  const std::regex name_re{"(llm_provider|process)_[a-z0-9_]+"};
  for (const auto& def : metric_definitions()) {
    INFO(def.name);
    CHECK(names.insert(def.name).second);
    CHECK(std::regex_match(def.name, name_re));
    CHECK_FALSE(def.help.empty());
    bool total = def.name.size() > 6 && def.name.ends_with("_total");
    CHECK(total == (def.kind == metric_kind::counter));
    CHECK(def.buckets.empty() == (def.kind != metric_kind::histogram));
    CHECK(std::is_sorted(def.buckets.begin(), def.buckets.end()));
    for (const auto& label : def.label_names) {
      CHECK(std::regex_match(label, label_re));
      CHECK_FALSE(label.starts_with("__"));
      CHECK(label != "le");
    }
  }
}

TEST_CASE("empty registry renders HELP and TYPE for every metric") {
  metrics_registry reg;
  auto lines = lines_of(reg.render());
  CHECK(lines.size() == 2 * metric_definitions().size());
  for (const auto& def : metric_definitions()) {
    INFO(def.name);
    CHECK(std::find(lines.begin(), lines.end(), "# HELP " + def.name + " " + def.help)
          != lines.end());
    CHECK(std::find(lines.begin(), lines.end(), "# TYPE " + def.name + " " + type_word(def.kind))
          != lines.end());
  }
}

TEST_CASE("render sample exposition", "[.render]") {
  const char* out_path = std::getenv("LPS_METRICS_OUT");
  REQUIRE(out_path != nullptr);
  metrics_registry reg;
  for (const auto& def : metric_definitions()) {
    for (int variant = 0; variant < 2; ++variant) {
      std::vector<std::string> labels;
      for (const auto& name : def.label_names)
        labels.push_back(sample_label(name, variant));
      if (def.kind == metric_kind::histogram) {
        // One observation per bucket plus one above the last, so every line is non-trivial.
        for (double bound : def.buckets)
          REQUIRE(reg.apply({def.name, labels, bound * 0.9}));
        REQUIRE(reg.apply({def.name, labels, def.buckets.back() * 2}));
      } else {
        REQUIRE(reg.apply({def.name, labels, def.kind == metric_kind::gauge ? 2 : 1.5}));
      }
    }
  }
  // Tricky label values: quote, backslash, newline, UTF-8 and invalid bytes.
  REQUIRE(reg.apply({"llm_provider_requests_rejected_total", {"quote\"back\\slash\nnewline"}, 1}));
  REQUIRE(reg.apply({"llm_provider_requests_rejected_total", {"caf\xC3\xA9 \xFF"}, 1}));
  REQUIRE(reg.apply({"llm_provider_requests_rejected_total", {""}, 1}));
  REQUIRE(reg.apply({"llm_provider_tokens_used_total", {"mock", "we\\ird\"model\n", "prompt"}, 3}));
  REQUIRE(reg.apply({"llm_provider_queue_wait_time_seconds", {"a\"b", "c\\d\n"}, 0.07}));
  REQUIRE(reg.apply({"llm_provider_queue_depth", {"nan"}, NAN}));
  REQUIRE(reg.apply({"llm_provider_cost_dollars_total", {"openai", "tiny"}, 1e-9}));
  REQUIRE(reg.apply({"llm_provider_cost_dollars_total", {"openai", "huge"}, 1e21}));
  std::ofstream out{out_path, std::ios::binary | std::ios::trunc};
  REQUIRE(out.good());
  out << reg.render();
  out.close();
  REQUIRE(out.good());
}

TEST_CASE("cumulative buckets sum a histogram's series by bound, as /metrics writes them") {
  metrics_registry reg;
  const std::string name = "llm_provider_queue_wait_time_seconds";
  CHECK(reg.apply({name, {"serial_bundle", "success"}, 0.03}));
  CHECK(reg.apply({name, {"serial_bundle", "success"}, 0.7}));
  CHECK(reg.apply({name, {"serial_bundle", "failure"}, 0.04}));
  CHECK(reg.apply({name, {"per_request", "success"}, 5000}));
  auto xs = reg.cumulative_buckets(name);
  REQUIRE(xs.size() == find_definition(name)->buckets.size() + 1);
  CHECK(xs[0] == std::pair<std::string, uint64_t>{"0.01", 0});
  CHECK(xs[1] == std::pair<std::string, uint64_t>{"0.05", 2});
  CHECK(xs[3] == std::pair<std::string, uint64_t>{"0.5", 2});
  CHECK(xs[4] == std::pair<std::string, uint64_t>{"1", 3});
  CHECK(xs[xs.size() - 2] == std::pair<std::string, uint64_t>{"3600", 3});
  CHECK(xs.back() == std::pair<std::string, uint64_t>{"+Inf", 4});
  CHECK(reg.cumulative_buckets("llm_provider_requests_total").empty());
  CHECK(reg.cumulative_buckets("no_such_metric").empty());
}
