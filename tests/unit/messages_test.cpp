// Every message type survives CAF's binary serialization, because the cluster sends them.

#include "fixtures/deterministic.hpp"
#include "messages/type_ids.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <catch2/catch.hpp>

using namespace lps;

namespace {

template <class T>
T roundtrip(caf::actor_system& sys, T x) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  REQUIRE(!sink(x));
  T y;
  caf::binary_deserializer source{sys, buf};
  REQUIRE(!source(y));
  return y;
}

comparison_request sample_request() {
  comparison_request x;
  x.queue_id = "q1";
  x.correlation_id = "c1";
  x.user_prompt = "Compare **Essay A** and **Essay B** \xc3\xa4";
  x.prompt_blocks = {{"system", "rubric", true, "1h"}, {"user_content", "essay", false, ""}};
  x.callback_url = "http://127.0.0.1:9/cb";
  x.overrides.provider = "mock";
  x.overrides.has_temperature = true;
  x.overrides.temperature = 0.25;
  x.overrides.max_tokens = 512;
  x.metadata_json = R"({"essay_a_id":"a"})";
  x.has_cj_batching_mode = true;
  x.cj_batching_mode = "serial_bundle";
  x.priority = 7;
  x.queued_at = caf::make_timestamp();
  x.prompt_sha256 = "0123abcd";
  return x;
}

} // namespace

TEST_CASE("every message round-trips through binary serialization") {
  test::deterministic_fixture fx;
  auto req = sample_request();
  CHECK(roundtrip(fx.sys, req) == req);
  queued_request q{req, queue_status::processing, 3, 1234};
  CHECK(roundtrip(fx.sys, q) == q);
  comparison_outcome o;
  o.queue_id = "q1";
  o.success = true;
  o.winner = "Essay B";
  o.confidence = 4.5;
  o.usage = {10, 20, 30, 1, 2};
  o.response_time = std::chrono::milliseconds{17};
  o.enrichment = {"mock", "mock-model-v1", "serial_bundle", "b1", 4, {}};
  CHECK(roundtrip(fx.sys, o) == o);
  bundle b{"b1", "mock", "mock-model-v1", "serial_bundle", {{q, o.enrichment}}};
  CHECK(roundtrip(fx.sys, b) == b);
  actor_status s{"bundler", "bundler", 3, 9, {{"bundles_total", 2.0}}, {{"mode", "x"}}};
  s.node = "host-1";
  s.processing_time_counts = {0, 4, 1};
  s.last_error = "lost the reply";
  s.tables["recent_bundles"] = {status_row{{{"items", 4.0}}, {{"provider", "mock"}}}};
  CHECK(roundtrip(fx.sys, s) == s);
  inspection_snapshot snapshot{
      3, caf::make_timestamp(), "host-1", {{s, false, 2.5, 0.008, 0.016, 1.024}}};
  node_figures peer{"host-2", 7, caf::make_timestamp(), 4, 12, 1, "no answer within 500 ms"};
  CHECK(roundtrip(fx.sys, peer) == peer);
  snapshot.peers = {peer};
  CHECK(roundtrip(fx.sys, snapshot) == snapshot);
  provider_status p{"openai", "open", 2, 1, std::chrono::milliseconds{1500}, "AUTH_ERROR"};
  CHECK(roundtrip(fx.sys, p) == p);
  delivery d{"q1", "http://x", "{}", 2};
  CHECK(roundtrip(fx.sys, d) == d);
  metric_sample m{"llm_provider_requests_total", {"mock", "m", "completed"}, 1};
  CHECK(roundtrip(fx.sys, m) == m);
  enqueue_outcome e{false, "q", "c", "QUEUE_FULL", "full", 5};
  CHECK(roundtrip(fx.sys, e) == e);
}

TEST_CASE("lps errors render with their context") {
  auto err = make_error(ec::queue_full, "1000 waiting");
  CHECK(render_error(err) == "QUEUE_FULL: 1000 waiting");
  CHECK(std::string{to_string(ec::service_unavailable)} == "SERVICE_UNAVAILABLE");
  CHECK(std::string{to_string(queue_status::expired)} == "expired");
}

TEST_CASE("cancel messages round-trip through binary serialization") {
  test::deterministic_fixture fx;
  cancel_target target{"", "run-1"};
  CHECK(roundtrip(fx.sys, target) == target);
  cancel_summary summary{3, 2, 1, 0};
  CHECK(roundtrip(fx.sys, summary) == summary);
}
