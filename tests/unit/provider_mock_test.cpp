// The mock provider actor: one outcome per bundle item, failures isolated.

#include "fixtures/pipeline.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace lps;
using namespace lps::test;

TEST_CASE("process_comparison_batch answers one outcome per item and isolates failures") {
  test::deterministic_fixture fx;
  mock_settings settings;
  settings.error_rate = 0.5;
  auto provider = fx.spawn(provider_mock, settings);
  bundle b{"b1", "mock", "mock-model-v1", "serial_bundle", {}};
  for (int i = 0; i < 30; ++i) {
    queued_request q;
    q.request = make_request("essay pair " + std::to_string(i));
    q.request.queue_id = "q" + std::to_string(i);
    b.items.push_back({q, {"mock", "mock-model-v1", "serial_bundle", "b1", 30, {}}});
  }
  auto outcomes = fx.request<std::vector<comparison_outcome>>(provider, atom::process_v, b);
  REQUIRE(outcomes);
  REQUIRE(outcomes->size() == 30);
  size_t failures = 0;
  for (size_t i = 0; i < 30; ++i) {
    const auto& o = (*outcomes)[i];
    CHECK(o.queue_id == "q" + std::to_string(i));
    // Each item's outcome is what that item alone would get: neighbours do not matter.
    CHECK(o == mock_process_comparison(settings, b.items[i]));
    failures += o.success ? 0 : 1;
    if (!o.success)
      CHECK(o.retryable);
  }
  CHECK(failures > 0);
  CHECK(failures < 30);
}
