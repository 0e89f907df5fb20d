// runtime/metric_batch.hpp: samples handed over at most once per interval, nothing lost, and
// take() drains what is gathered.

#include "runtime/metric_batch.hpp"

#include <catch2/catch.hpp>

using namespace lps;
using namespace std::chrono_literals;

namespace {

std::vector<metric_sample> one(const std::string& name, double value) {
  return {{name, {"openai"}, value}};
}

double sum(const std::vector<metric_sample>& xs) {
  double total = 0;
  for (const auto& x : xs)
    total += x.value;
  return total;
}

} // namespace

TEST_CASE("a metric batch hands samples over at most once per interval", "[metric_batch]") {
  metric_batch batch{100ms};
  auto t0 = metric_batch::clock::time_point{} + 1h;
  auto first = batch.add(one("a", 1), t0);
  REQUIRE(first); // nothing handed over yet: the first goes at once
  CHECK(sum(*first) == 1);
  CHECK_FALSE(batch.add(one("a", 2), t0 + 10ms));
  CHECK_FALSE(batch.add(one("b", 3), t0 + 99ms));
  auto second = batch.add(one("a", 4), t0 + 100ms);
  REQUIRE(second);
  CHECK(second->size() == 3);
  CHECK(sum(*second) == 9);
  CHECK(second->at(1).name == "b");
  CHECK(batch.take().empty());
}

TEST_CASE("take() drains a metric batch between hand-overs", "[metric_batch]") {
  metric_batch batch{100ms};
  auto t0 = metric_batch::clock::time_point{} + 1h;
  REQUIRE(batch.add(one("a", 1), t0));
  CHECK_FALSE(batch.add(one("a", 2), t0 + 1ms));
  CHECK_FALSE(batch.add(one("a", 5), t0 + 2ms));
  auto taken = batch.take();
  CHECK(sum(taken) == 7);
  CHECK(batch.take().empty());
  // The interval still counts from the last hand-over, not from take().
  CHECK_FALSE(batch.add(one("a", 1), t0 + 50ms));
  CHECK(sum(batch.take()) == 1);
}
