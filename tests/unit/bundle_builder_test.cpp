// Bundle formation rules: compatibility, size limits, enrichment, nothing lost.

#include "actors/bundle_builder.hpp"

#include <catch2/catch.hpp>

using namespace lps;

namespace {

bundle_policy serial(uint32_t max_items = 4) {
  bundle_policy p;
  p.mode = queue_processing_mode::serial_bundle;
  p.max_items = max_items;
  p.default_provider = "mock";
  p.default_models = {{"mock", "mock-model-v1"}, {"openai", "gpt-5-mini"}};
  return p;
}

queued_request make(std::string id, std::string provider = "", std::string model = "") {
  queued_request x;
  x.request.queue_id = std::move(id);
  x.request.overrides.provider = std::move(provider);
  x.request.overrides.model = std::move(model);
  return x;
}

queued_request with_hint(queued_request x, std::string hint) {
  x.request.has_cj_batching_mode = true;
  x.request.cj_batching_mode = std::move(hint);
  return x;
}

} // namespace

TEST_CASE("resolution uses overrides then configured defaults") {
  bundle_builder b{serial()};
  CHECK(b.resolve(make("1").request) == resolved_target{"mock", "mock-model-v1"});
  CHECK(b.resolve(make("2", "openai").request) == resolved_target{"openai", "gpt-5-mini"});
  CHECK(b.resolve(make("3", "openai", "gpt-4o").request) == resolved_target{"openai", "gpt-4o"});
}

TEST_CASE("compatibility needs the same provider model overrides and batching hint") {
  bundle_builder b{serial()};
  auto plain = make("a");
  CHECK(b.compatible(plain.request, make("b").request));
  // An explicit override naming the default resolves to the same target.
  CHECK(b.compatible(plain.request, make("c", "mock", "mock-model-v1").request));
  CHECK_FALSE(b.compatible(plain.request, make("d", "openai").request));
  CHECK_FALSE(b.compatible(plain.request, make("e", "mock", "other-model").request));
  auto hot = make("f");
  hot.request.overrides.has_temperature = true;
  hot.request.overrides.temperature = 0.2;
  CHECK_FALSE(b.compatible(plain.request, hot.request));
  // Hint present on one and absent on the other: incompatible; absent on both: compatible.
  CHECK_FALSE(b.compatible(plain.request, with_hint(make("g"), "serial_bundle").request));
  CHECK(b.compatible(with_hint(make("h"), "serial_bundle").request,
                     with_hint(make("i"), "serial_bundle").request));
  CHECK_FALSE(b.compatible(with_hint(make("j"), "serial_bundle").request,
                           with_hint(make("k"), "per_request").request));
}

TEST_CASE("a serial bundle takes compatible requests up to its limit") {
  bundle_builder b{serial(3)};
  b.start(make("1"));
  auto x2 = make("2");
  auto x3 = make("3");
  auto x4 = make("4");
  CHECK(b.offer(x2));
  CHECK_FALSE(b.full());
  CHECK(b.offer(x3));
  CHECK(b.full());
  CHECK_FALSE(b.offer(x4)); // full: the caller keeps it for the next bundle
  CHECK(x4.request.queue_id == "4");
  auto out = b.finish("bundle-1");
  CHECK(b.empty());
  REQUIRE(out.items.size() == 3);
  CHECK(out.items[0].entry.request.queue_id == "1");
  CHECK(out.items[2].entry.request.queue_id == "3");
}

TEST_CASE("an incompatible request is refused and stays with the caller") {
  bundle_builder b{serial(4)};
  b.start(make("1"));
  auto other = make("2", "openai");
  CHECK_FALSE(b.offer(other));
  CHECK(other.request.queue_id == "2");
  CHECK(b.size() == 1);
}

TEST_CASE("per_request bundles hold exactly one request") {
  auto p = serial(4);
  p.mode = queue_processing_mode::per_request;
  bundle_builder b{p};
  b.start(make("1"));
  CHECK(b.full());
  auto x = make("2");
  CHECK_FALSE(b.offer(x));
  CHECK(b.finish("b").queue_processing_mode == "per_request");
}

TEST_CASE("finish enriches every item after provider selection") {
  bundle_builder b{serial(4)};
  b.start(make("1", "openai"));
  auto x = make("2", "openai");
  REQUIRE(b.offer(x));
  auto out = b.finish("bundle-7");
  CHECK(out.provider == "openai");
  CHECK(out.model == "gpt-5-mini");
  for (const auto& item : out.items) {
    CHECK(item.enrichment.resolved_provider == "openai");
    CHECK(item.enrichment.resolved_model == "gpt-5-mini");
    CHECK(item.enrichment.queue_processing_mode == "serial_bundle");
    CHECK(item.enrichment.bundle_id == "bundle-7");
    CHECK(item.enrichment.bundle_size == 2);
  }
}
