#include "app/inspect_api.hpp"
#include "app/actor_request.hpp"
#include "app/inspect_stream.hpp"
#include "runtime/api_bodies.hpp"
#include "runtime/batch_job_store.hpp"
#include "runtime/inspect_bodies.hpp"
#include "runtime/store_reader.hpp"
#include "runtime/url.hpp"

#include <charconv>
#include <optional>

namespace lps {

namespace {

constexpr std::string_view prefix = "/api/v1/inspect/";

/// Snapshots the history route gives without `seconds`, and at most.
constexpr uint32_t history_default_seconds = 60;
constexpr uint32_t history_max_seconds = 600;

/// Batch jobs the jobs view lists at most (newest first, as /api/v1/batch-jobs).
constexpr size_t jobs_listed = 1000;

http_response json_body(unsigned status, std::string body) {
  return {status, std::move(body), "application/json", {}};
}

http_response error_body(unsigned status, ec code, std::string_view message,
                         std::string_view field = {}) {
  return json_body(status, render_error_body(code, message, {}, field));
}

std::optional<inspect_view> view_named(std::string_view name) {
  if (name == "actors")
    return inspect_view::actors;
  if (name == "queue")
    return inspect_view::queue;
  if (name == "bundles")
    return inspect_view::bundles;
  if (name == "providers")
    return inspect_view::providers;
  if (name == "nodes")
    return inspect_view::nodes;
  return std::nullopt;
}

// The inspector's newest `n` snapshots to `done`, or the 503 to answer instead: the
// inspector did not answer, or has no snapshot yet (the first comes a second after start).
void with_snapshots(const api_context& ctx, uint32_t n, http_responder respond,
                    std::function<http_response(const std::vector<inspection_snapshot>&)> done) {
  ask<std::vector<inspection_snapshot>>(
      ctx, ctx.actors.inspector,
      [respond, done](caf::expected<std::vector<inspection_snapshot>> r) {
        if (!r)
          return respond(error_body(503, ec::service_unavailable, "the inspector did not answer"));
        if (r->empty()) {
          auto res = error_body(503, ec::service_unavailable,
                                "the inspector has no snapshot yet: it samples once a second");
          res.headers.emplace_back("Retry-After", "1");
          return respond(std::move(res));
        }
        respond(done(*r));
      },
      atom::history_v, n);
}

// ?seconds=N, 1 to history_max_seconds; nullopt when malformed or out of range.
std::optional<uint32_t> history_seconds(const http_request& req) {
  auto text = query_param(req.query, "seconds");
  if (!text)
    return history_default_seconds;
  uint32_t value = 0;
  auto [end, err] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (err != std::errc{} || end != text->data() + text->size() || value == 0
      || value > history_max_seconds)
    return std::nullopt;
  return value;
}

void get_history(const api_context& ctx, const http_request& req, http_responder respond) {
  auto seconds = history_seconds(req);
  if (!seconds)
    return respond(error_body(400, ec::validation_error,
                              "query parameter seconds must be an integer from 1 to "
                                  + std::to_string(history_max_seconds),
                              "seconds"));
  with_snapshots(ctx, *seconds, std::move(respond), [n = *seconds](const auto& xs) {
    return json_body(200, render_inspect_history(xs, n));
  });
}

// The answer is a stream: the server sends the head, then hands the stream to the hub,
// which writes one event per snapshot until the client goes away or the server stops.
void open_stream(const api_context& ctx, http_responder respond) {
  http_response res{200, "", "text/event-stream", {{"Cache-Control", "no-cache"}}};
  res.stream = [hub = ctx.inspect_streams](std::shared_ptr<http_body_stream> client) {
    hub->add(std::move(client));
  };
  respond(std::move(res));
}

// The batch jobs are read on a reader thread of the pool with its own batch job store
// connection, as the /api/v1/batch-jobs routes read them, never on the I/O thread; a read the pool
// refuses is answered 503.
void get_jobs(const api_context& ctx, http_responder respond) {
  ctx.reads->post_jobs(
      [respond](batch_job_store& jobs) {
        respond(json_body(200, render_inspect_jobs(jobs.list(jobs_listed))));
      },
      [respond](const std::string& why) {
        auto res = error_body(503, ec::service_unavailable, "store read refused: " + why);
        res.headers.emplace_back("Retry-After", "1");
        respond(std::move(res));
      });
}

} // namespace

void get_inspect_view(const api_context& ctx, const http_request& req, http_responder respond) {
  auto name = std::string_view{req.path}.substr(prefix.size());
  if (name == "stream")
    return open_stream(ctx, std::move(respond));
  if (name == "history")
    return get_history(ctx, req, std::move(respond));
  if (name == "jobs")
    return get_jobs(ctx, std::move(respond));
  auto view = view_named(name);
  if (!view)
    return respond(error_body(404, ec::resource_not_found, "no inspection view " + req.path));
  // The nodes view lists the cluster's nodes as the node's last tick saw them.
  auto nodes = *view == inspect_view::nodes ? ctx.inspect_streams->nodes() : std::nullopt;
  with_snapshots(ctx, 1, std::move(respond), [view = *view, nodes](const auto& xs) {
    return json_body(200, render_inspect_view(xs.back(), view, nodes ? &*nodes : nullptr));
  });
}

} // namespace lps
