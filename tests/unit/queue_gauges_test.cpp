// The queue gauges by provider and model (actors/queue_gauges): values from the queue
// table, 0 once a series' requests are gone, and a bounded number of model series.

#include "actors/metrics_registry.hpp"
#include "actors/queue_gauges.hpp"

#include <catch2/catch.hpp>

using namespace lps;

namespace {

status_row row(const std::string& provider, const std::string& model, double waiting,
               double oldest) {
  return {{{"waiting", waiting}, {"oldest_age_seconds", oldest}},
          {{"provider", provider}, {"model", model}}};
}

// The registry after applying `samples`: what /metrics would show.
metrics_registry applied(const std::vector<metric_sample>& samples) {
  metrics_registry registry;
  for (const auto& s : samples)
    REQUIRE(registry.apply(s));
  return registry;
}

} // namespace

TEST_CASE("queue gauges carry the waiting requests and the oldest age per provider and model") {
  queue_gauges gauges;
  auto first = applied(gauges.update(
      {row("openai", "gpt-5-mini", 7, 12.5), row("mock", "", 3, 2), row("mock", "m1", 1, 0.25)}));
  CHECK(first.value("llm_provider_queue_waiting", {"openai", "gpt-5-mini"}) == 7);
  CHECK(first.value("llm_provider_queue_oldest_age_seconds", {"openai", "gpt-5-mini"}) == 12.5);
  // A cold request's model is not known yet.
  CHECK(first.value("llm_provider_queue_waiting", {"mock", "unknown"}) == 3);
  CHECK(first.value("llm_provider_queue_oldest_age_seconds", {"mock", "m1"}) == 0.25);

  // The openai requests left: its series stays, at 0, so a graph drops to nothing.
  auto samples = gauges.update({row("mock", "m1", 2, 1.25)});
  CHECK(samples.size() == 6); // three series, two gauges each
  auto second = applied(samples);
  CHECK(second.value("llm_provider_queue_waiting", {"openai", "gpt-5-mini"}) == 0);
  CHECK(second.value("llm_provider_queue_oldest_age_seconds", {"openai", "gpt-5-mini"}) == 0);
  CHECK(second.value("llm_provider_queue_waiting", {"mock", "unknown"}) == 0);
  CHECK(second.value("llm_provider_queue_waiting", {"mock", "m1"}) == 2);
  CHECK(second.render().find("llm_provider_queue_waiting{provider=\"mock\",model=\"m1\"} 2\n")
        != std::string::npos);
}

TEST_CASE("queue gauges count a provider's models beyond the limit as model other") {
  queue_gauges gauges;
  std::vector<status_row> rows;
  for (size_t i = 0; i < queue_gauges::models_per_provider + 5; ++i)
    rows.push_back(row("mock", "model-" + std::to_string(100 + i), 1, double(i)));
  rows.push_back(row("openai", "gpt", 4, 1));
  auto samples = gauges.update(rows);
  // Ten models and "other" for mock, one for openai: two gauges each.
  CHECK(samples.size() == 2 * (queue_gauges::models_per_provider + 1 + 1));
  auto registry = applied(samples);
  CHECK(registry.value("llm_provider_queue_waiting", {"mock", "model-100"}) == 1);
  CHECK(registry.value("llm_provider_queue_waiting", {"mock", "other"}) == 5);
  CHECK(registry.value("llm_provider_queue_oldest_age_seconds", {"mock", "other"}) == 14);
  CHECK(registry.value("llm_provider_queue_waiting", {"openai", "gpt"}) == 4);

  // New models later still go to "other": the series exported stay bounded for good.
  auto later = gauges.update({row("mock", "brand-new", 9, 3)});
  CHECK(later.size() == samples.size());
  CHECK(applied(later).value("llm_provider_queue_waiting", {"mock", "other"}) == 9);
}
