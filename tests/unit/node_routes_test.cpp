// node_routes without actors: which node takes a provider's next bundle, the per-node cap,
// and the bundles of a node that is removed.

#include "actors/node_routes.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace lps;

namespace {

// Handles are only carried, never called, here.
std::map<std::string, provider_actor> serving(std::vector<std::string> providers) {
  std::map<std::string, provider_actor> result;
  for (auto& name : providers)
    result.emplace(std::move(name), provider_actor{});
  return result;
}

} // namespace

TEST_CASE("the node with the fewest bundles in flight below the cap takes the next one") {
  node_routes routes;
  REQUIRE(routes.add("node-1", serving({"mock", "openai"})));
  REQUIRE(routes.add("node-2", serving({"mock"})));
  CHECK_FALSE(routes.add("node-2", serving({"openai"}))); // already served: unchanged
  CHECK(routes.pick("mock", 2) == "node-1");              // a tie goes to the first name
  routes.start("b1", "node-1", "mock");
  CHECK(routes.pick("mock", 2) == "node-2");
  routes.start("b2", "node-2", "mock");
  routes.start("b3", "node-1", "mock");
  CHECK(routes.pick("mock", 2) == "node-2");
  routes.start("b4", "node-2", "mock");
  CHECK_FALSE(routes.pick("mock", 2)); // every node is at the cap
  CHECK(routes.pick("openai", 2) == "node-1");
  CHECK_FALSE(routes.pick("gemini", 2)); // no node serves it
  CHECK(routes.inflight("mock") == 4);
  CHECK(routes.inflight_of("node-2") == 2);
  auto done = routes.finish("b2");
  REQUIRE(done);
  CHECK(done->node == "node-2");
  CHECK(done->provider == "mock");
  CHECK(routes.pick("mock", 2) == "node-2");
  CHECK_FALSE(routes.finish("b2")); // once only
}

TEST_CASE("a removed node hands back its bundles, and their late answers are not tracked") {
  node_routes routes;
  routes.add("node-1", serving({"mock"}));
  routes.add("node-2", serving({"mock"}));
  routes.start("b1", "node-1", "mock");
  routes.start("b2", "node-2", "mock");
  routes.start("b3", "node-2", "mock");
  auto gone = routes.remove("node-2");
  std::sort(gone.begin(), gone.end());
  CHECK(gone == std::vector<std::string>{"b2", "b3"});
  CHECK_FALSE(routes.has("node-2"));
  CHECK(routes.remove("node-2").empty());
  CHECK_FALSE(routes.finish("b3")); // put back already: its answer is dropped
  CHECK(routes.inflight("mock") == 1);
  CHECK(routes.nodes() == std::vector<std::string>{"node-1"});
  // The node may join again (it came back): it starts with nothing in flight.
  CHECK(routes.add("node-2", serving({"mock"})));
  CHECK(routes.pick("mock", 1) == "node-2");
}

TEST_CASE("a retiring node takes no new bundle, and its bundles in flight finish there") {
  node_routes routes;
  REQUIRE(routes.add("node-1", serving({"mock"})));
  REQUIRE(routes.add("node-2", serving({"mock"})));
  routes.start("b1", "node-1", "mock");
  CHECK(routes.pick("mock", 4) == "node-2");
  routes.start("b2", "node-2", "mock");
  CHECK(routes.retire("node-2"));
  CHECK_FALSE(routes.retire("node-3")); // not served
  // node-2 has fewer in flight after b2 ends, yet node-1 takes every new bundle.
  auto done = routes.finish("b2");
  REQUIRE(done);
  CHECK(done->node == "node-2");
  CHECK(routes.inflight_of("node-2") == 0);
  CHECK(routes.pick("mock", 4) == "node-1");
  routes.start("b3", "node-1", "mock");
  routes.start("b4", "node-1", "mock");
  routes.start("b5", "node-1", "mock");
  CHECK_FALSE(routes.pick("mock", 4)); // node-1 at the cap; the retiring node-2 is no choice
  CHECK(routes.has("node-2"));         // still served until it is removed
  CHECK(routes.remove("node-2").empty());
}
