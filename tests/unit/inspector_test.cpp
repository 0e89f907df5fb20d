// The inspector: one status per registered actor.

#include "fixtures/pipeline.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace lps;
using namespace lps::test;

TEST_CASE("the inspector reports every actor") {
  pipeline_fixture fx;
  fx.start_bundler(queue_processing_mode::serial_bundle, 4);
  auto insp = fx.spawn(inspector, std::vector<status_client_actor>{fx.intake_hdl, fx.queue,
                                                                   fx.bundler_hdl, fx.metrics_hdl});
  auto rh = fx.self->request(insp, caf::infinite, atom::inspect_v);
  fx.settle();
  std::vector<actor_status> xs;
  rh.receive([&](std::vector<actor_status>& x) { xs = std::move(x); },
             [&](caf::error& err) { FAIL(caf::to_string(err)); });
  std::set<std::string> kinds;
  for (const auto& x : xs)
    kinds.insert(x.kind);
  CHECK(kinds
        == std::set<std::string>{"inspector", "intake", "queue_manager", "bundler", "metrics"});
}

TEST_CASE("the inspector reports the messages each actor handled, counted once on arrival") {
  pipeline_fixture fx;
  auto metrics_hdl = fx.spawn(metrics); // on its own: no peer records into it
  for (int i = 0; i < 2; ++i)
    fx.self->send(metrics_hdl, atom::record_v, std::vector<metric_sample>{});
  REQUIRE(fx.request<std::string>(metrics_hdl, atom::render_v));
  for (int i = 0; i < 3; ++i)
    fx.self->send(fx.intake_hdl, atom::stop_v);
  auto insp = fx.spawn(inspector, std::vector<status_client_actor>{metrics_hdl, fx.intake_hdl});
  auto inspect = [&] {
    auto xs = fx.request<std::vector<actor_status>>(insp, atom::inspect_v);
    REQUIRE(xs);
    std::map<std::string, uint64_t> result;
    for (const auto& x : *xs)
      result[x.kind] = x.messages_handled;
    return result;
  };
  // Each count includes the status question that reported it.
  CHECK(inspect()
        == std::map<std::string, uint64_t>{
            {"inspector", 1}, {"metrics", 2 + 1 + 1}, {"intake", 3 + 1}});
  // Asked again: one more inspect, and one more status each.
  CHECK(inspect()
        == std::map<std::string, uint64_t>{
            {"inspector", 2}, {"metrics", 2 + 1 + 2}, {"intake", 3 + 2}});
}
