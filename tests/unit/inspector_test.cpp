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
