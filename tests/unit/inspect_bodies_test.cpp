// The /api/v1/inspect/* bodies and stream events (runtime/inspect_bodies, and the jobs view
// in runtime/api_bodies): exact text, so a changed field name, order or JSON type shows here
// before the console sees it.

#include "runtime/api_bodies.hpp"
#include "runtime/batch_job_store.hpp"
#include "runtime/inspect_bodies.hpp"

#include <catch2/catch.hpp>

using namespace lps;

namespace {

// 2026-12-07T05:00:00Z.
const caf::timestamp sample_time{std::chrono::seconds{1796619600}};

// A bundler with one recent bundle and a histogram bucket, and a silent provider actor.
inspection_snapshot sample_snapshot() {
  actor_sample bundler;
  bundler.status.name = "bundler";
  bundler.status.kind = "bundler";
  bundler.status.node = "host-1";
  bundler.status.mailbox_size = 3;
  bundler.status.messages_handled = 120;
  bundler.status.figures = {{"inflight_bundles", 2}};
  bundler.status.facts = {{"effective_mode", "serial_bundle"}};
  bundler.status.last_error = "lost the reply";
  bundler.status.tables["recent_bundles"] = {
      {{{"items", 4}, {"duration_ms", 12.5}}, {{"provider", "mock"}, {"outcome", "ok"}}}};
  bundler.status.tables["items_per_call"] = {{{{"items", 4}, {"calls", 7}}, {}}};
  bundler.handled_per_second = 2.5;
  bundler.p50_ms = 0.008;
  bundler.p90_ms = 0.016;
  bundler.p99_ms = 1.024;
  actor_sample silent;
  silent.status.name = "provider:openai";
  silent.status.kind = "provider";
  silent.status.node = "host-1";
  silent.responsive = false;
  return {7, sample_time, "host-1", {bundler, silent}};
}

const char* header = R"({"seq":7,"at":"2026-12-07T05:00:00.000Z","node":"host-1",)";

const char* actors =
    R"("actors":[{"name":"bundler","kind":"bundler","node":"host-1","responsive":true,)"
    R"("mailbox_size":3,"messages_handled":120,"handled_per_second":2.5,)"
    R"("processing_ms":{"p50":0.008,"p90":0.016,"p99":1.024},"last_error":"lost the reply",)"
    R"("figures":{"inflight_bundles":2.0},"facts":{"effective_mode":"serial_bundle"}},)"
    R"({"name":"provider:openai","kind":"provider","node":"host-1","responsive":false,)"
    R"("mailbox_size":0,"messages_handled":0,"handled_per_second":0.0,)"
    R"("processing_ms":{"p50":0.0,"p90":0.0,"p99":0.0},"last_error":null,)"
    R"("figures":{},"facts":{}}])";

} // namespace

TEST_CASE("the actors view lists every actor with its rate, percentiles and last error") {
  CHECK(render_inspect_view(sample_snapshot(), inspect_view::actors)
        == std::string{header} + actors + "}");
}

TEST_CASE("the bundles view joins the actors' rows, figures and facts in name order") {
  CHECK(render_inspect_view(sample_snapshot(), inspect_view::bundles)
        == std::string{header}
               + R"("recent_bundles":[{"duration_ms":12.5,"items":4,"outcome":"ok",)"
                 R"("provider":"mock"}],"items_per_call":[{"calls":7,"items":4}]})");
}

TEST_CASE("the queue and providers views are empty lists when no actor has such a table") {
  CHECK(render_inspect_view(sample_snapshot(), inspect_view::queue)
        == std::string{header} + R"("queue":[]})");
  CHECK(render_inspect_view(sample_snapshot(), inspect_view::providers)
        == std::string{header} + R"("providers":[]})");
}

TEST_CASE("the nodes view lists this node alone, with its unresponsive actors") {
  CHECK(render_inspect_view(sample_snapshot(), inspect_view::nodes)
        == std::string{header}
               + R"("nodes":[{"name":"host-1","self":true,"state":"up","actors":2,)"
                 R"("unresponsive_actors":1}]})");
}

TEST_CASE("a stream event holds every view of the snapshot") {
  auto all = render_inspect_view(sample_snapshot(), inspect_view::all);
  CHECK(all.starts_with(std::string{header} + actors + R"(,"queue":[],"recent_bundles":[)"));
  CHECK(all.ends_with(R"("providers":[],"nodes":[{"name":"host-1","self":true,"state":"up",)"
                      R"("actors":2,"unresponsive_actors":1}]})"));
}

TEST_CASE("the history lists snapshots oldest first, each with its actors") {
  auto first = sample_snapshot();
  first.actors.pop_back();
  first.actors[0].status.tables.clear();
  auto second = first;
  second.seq = 8;
  second.at = sample_time + std::chrono::seconds{1};
  auto body = render_inspect_history({first, second}, 60);
  CHECK(body.starts_with(R"({"seconds":60,"snapshots":[{"seq":7,"at":"2026-12-07T05:00:00.000Z",)"
                         R"("node":"host-1","actors":[{"name":"bundler",)"));
  CHECK(body.find(R"(]},{"seq":8,"at":"2026-12-07T05:00:01.000Z","node":"host-1","actors":[)")
        != std::string::npos);
  CHECK(body.ends_with(R"("facts":{"effective_mode":"serial_bundle"}}]}]})"));
  CHECK(render_inspect_history({}, 5) == R"({"seconds":5,"snapshots":[]})");
}

TEST_CASE("the jobs view adds each batch job's progress") {
  batch_job_record job;
  job.job_id = "bj-1";
  job.provider = "openai";
  job.model = "gpt-4o";
  job.state = "submitted";
  job.item_count = 8;
  job.succeeded = 5;
  job.failed = 1;
  CHECK(render_inspect_jobs({job})
        == R"({"jobs":[{"job_id":"bj-1","provider":"openai","model":"gpt-4o",)"
           R"("state":"submitted","provider_job_id":"","provider_status":"","item_count":8,)"
           R"("succeeded":5,"failed":1,"cancel_requested":false,"created_at_ms":null,)"
           R"("submitted_at_ms":null,"ended_at_ms":null,"updated_at_ms":null,"last_error":"",)"
           R"("done":6,"progress":0.75}]})");
  job.item_count = 0;
  job.succeeded = job.failed = 0;
  CHECK(render_inspect_jobs({job}).ends_with(R"("done":0,"progress":0.0}]})"));
}
