#include "app/http_api.hpp"
#include "runtime/batch_job_store.hpp"

#include "runtime/ids.hpp"
#include "runtime/store.hpp"

#include <caf/event_based_actor.hpp>

#include <functional>
#include <memory>

namespace lps {

namespace {

// -- responses --

http_response json_response(unsigned status, std::string body) {
  return {status, std::move(body), "application/json", {}};
}

http_response error_response(unsigned status, std::string_view code, std::string_view message,
                             std::string_view correlation_id = {}, std::string_view field = {}) {
  return json_response(status, render_error_body(code, message, correlation_id, field));
}

// Status code of a refused enqueue (CONTRACTS.md section 1).
unsigned status_of_refusal(const std::string& code) {
  if (code == "QUEUE_FULL" || code == "SERVICE_UNAVAILABLE")
    return 503;
  return 500;
}

http_response refusal_response(const enqueue_outcome& x) {
  auto res = error_response(status_of_refusal(x.error_code), x.error_code, x.error_message,
                            x.correlation_id);
  if (x.retry_after_seconds > 0)
    res.headers.emplace_back("Retry-After", std::to_string(x.retry_after_seconds));
  return res;
}

// -- bridge: one short-lived actor per call turns request/then into a callback --

template <class Reply, class Handle, class... Ts>
void ask(const api_context& ctx, const Handle& hdl, std::function<void(caf::expected<Reply>)> done,
         Ts... xs) {
  auto timeout = ctx.timeout;
  ctx.sys->spawn([=](caf::event_based_actor* self) {
    self->request(hdl, timeout, xs...)
        .then([=](Reply& reply) { done(std::move(reply)); },
              [=](caf::error& err) { done(std::move(err)); });
  });
}

bool is_json_content_type(const std::string& value) {
  auto semi = value.find(';');
  auto media = value.substr(0, semi);
  while (!media.empty() && media.back() == ' ')
    media.pop_back();
  for (auto& c : media)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return media == "application/json";
}

// Common checks of both submission routes: content type and a body at all.
bool check_submission(const http_request& req, http_responder& respond) {
  if (!is_json_content_type(req.content_type)) {
    respond(error_response(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json"));
    return false;
  }
  if (req.body.empty()) {
    respond(error_response(400, "VALIDATION_ERROR", "request body is empty"));
    return false;
  }
  return true;
}

// -- routes --

void submit_one(const api_context& ctx, http_request&& req, http_responder respond) {
  if (!check_submission(req, respond))
    return;
  comparison_request parsed;
  field_error err;
  if (!parse_comparison_request(req.body, ctx.limits, parsed, err)) {
    respond(error_response(400, err.code, err.message, {}, err.field));
    return;
  }
  auto cid = parsed.correlation_id;
  ask<std::vector<enqueue_outcome>>(
      ctx, ctx.actors.intake,
      [respond, cid](caf::expected<std::vector<enqueue_outcome>> r) {
        if (!r || r->size() != 1) {
          respond(
              error_response(503, "SERVICE_UNAVAILABLE", "the queue did not answer in time", cid));
          return;
        }
        const auto& x = r->front();
        respond(x.accepted ? json_response(202, render_accepted(x)) : refusal_response(x));
      },
      atom::submit_v, std::vector<comparison_request>{std::move(parsed)});
}

void submit_many(const api_context& ctx, http_request&& req, http_responder respond) {
  if (!check_submission(req, respond))
    return;
  std::vector<bulk_item> items;
  field_error err;
  if (!parse_comparison_batch(req.body, ctx.limits, items, err)) {
    respond(error_response(400, err.code, err.message, {}, err.field));
    return;
  }
  auto entries = std::make_shared<std::vector<bulk_entry>>(items.size());
  std::vector<comparison_request> valid;
  auto positions = std::make_shared<std::vector<size_t>>();
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].ok) {
      positions->push_back(i);
      valid.push_back(std::move(items[i].request));
    } else {
      (*entries)[i].error = std::move(items[i].error);
    }
  }
  if (valid.empty()) {
    respond(json_response(202, render_bulk_accepted(*entries)));
    return;
  }
  ask<std::vector<enqueue_outcome>>(
      ctx, ctx.actors.intake,
      [respond, entries, positions](caf::expected<std::vector<enqueue_outcome>> r) {
        if (!r || r->size() != positions->size()) {
          respond(error_response(503, "SERVICE_UNAVAILABLE", "the queue did not answer in time"));
          return;
        }
        for (size_t k = 0; k < positions->size(); ++k) {
          auto& entry = (*entries)[(*positions)[k]];
          entry.accepted = (*r)[k].accepted;
          entry.outcome = std::move((*r)[k]);
        }
        respond(json_response(202, render_bulk_accepted(*entries)));
      },
      atom::submit_v, std::move(valid));
}

std::string final_status_body(const stored_result& x) {
  return "{\"queue_id\":" + json_quote(x.queue_id) + ",\"status\":" + json_quote(x.status)
         + ",\"completed_at\":" + json_quote(iso8601(from_unix_ms(x.completed_at_ms)))
         + ",\"result_available\":true,\"callback_delivery\":"
         + (x.callback_url.empty() ? "\"not_requested\""
            : x.delivered          ? "\"delivered\""
                                   : "\"pending\"")
         + ",\"correlation_id\":" + json_quote(json_string_field(x.event_json, "correlation_id"))
         + "}";
}

// Held requests are answered by the queue manager; final ones come from the store.
void get_status(const api_context& ctx, const std::string& id, http_responder respond) {
  auto db = ctx.db;
  ask<request_status>(
      ctx, ctx.actors.queue,
      [respond, db, id](caf::expected<request_status> r) {
        if (r && r->found) {
          respond(json_response(200, render_status(*r)));
        } else if (auto stored = db->find_result(id)) {
          respond(json_response(200, final_status_body(*stored)));
        } else {
          respond(error_response(404, "RESOURCE_NOT_FOUND", "no request with queue_id " + id));
        }
      },
      atom::lookup_v, id);
}

void get_result(const api_context& ctx, const std::string& id, http_responder respond) {
  if (auto stored = ctx.db->find_result(id)) {
    respond(json_response(200, std::move(stored->event_json)));
    return;
  }
  ask<request_status>(
      ctx, ctx.actors.queue,
      [respond, id](caf::expected<request_status> r) {
        if (r && r->found) {
          respond(json_response(202, "{\"queue_id\":" + json_quote(id)
                                         + ",\"status\":" + json_quote(to_string(r->status))
                                         + ",\"message\":\"the result is not final yet\"}"));
        } else {
          respond(error_response(404, "RESOURCE_NOT_FOUND", "no request with queue_id " + id));
        }
      },
      atom::lookup_v, id);
}

// Per provider: configuration (never the key) plus the bundler's live view: breaker state,
// bundles in flight, and how long its breaker or rate limit blocks it.
std::string providers_body(const config& cfg, actor_status& live) {
  auto provider = [&](const std::string& name, bool configured, const std::string& model) {
    auto reason = provider_unavailable_reason(cfg, name);
    auto breaker = live.facts.count("breaker_" + name) ? live.facts["breaker_" + name] : "closed";
    return "{\"name\":" + json_quote(name)
           + ",\"enabled\":true,\"configured\":" + (configured ? "true" : "false")
           + ",\"available\":" + (reason.empty() ? "true" : "false") + ",\"default_model\":"
           + json_quote(model) + ",\"circuit_state\":" + json_quote(breaker) + ",\"in_flight\":"
           + std::to_string(static_cast<uint64_t>(live.figures["inflight_" + name]))
           + ",\"blocked_ms\":"
           + std::to_string(static_cast<uint64_t>(live.figures["blocked_ms_" + name]))
           + ",\"note\":" + json_quote(reason) + "}";
  };
  std::string body = "{\"default_provider\":" + json_quote(cfg.default_llm_provider)
                     + ",\"providers\":[" + provider("mock", true, cfg.mock.default_model);
  for (const auto& [name, p] : cfg.providers)
    body += "," + provider(name, !p.api_key.empty(), p.default_model);
  return body + "]}";
}

void get_providers(const api_context& ctx, http_responder respond) {
  auto cfg = std::make_shared<config>(ctx.cfg);
  ask<actor_status>(
      ctx, ctx.actors.bundler,
      [respond, cfg](caf::expected<actor_status> r) {
        actor_status live;
        if (r)
          live = std::move(*r);
        respond(json_response(200, providers_body(*cfg, live)));
      },
      atom::status_v);
}

// {"mock":{"configured":true,"available":true,"note":""},...}: which providers can serve
// requests (a provider without a key is not a failing check: requests for it end with a
// CONFIGURATION_ERROR result, and the note says how to configure it).
std::string health_providers(const config& cfg) {
  auto entry = [&](const std::string& name, bool configured) {
    auto reason = provider_unavailable_reason(cfg, name);
    return json_quote(name) + ":{\"configured\":" + (configured ? "true" : "false")
           + ",\"available\":" + (reason.empty() ? "true" : "false")
           + ",\"note\":" + json_quote(reason) + "}";
  };
  std::string body = "{" + entry("mock", true);
  for (const auto& [name, p] : cfg.providers)
    body += "," + entry(name, !p.api_key.empty());
  return body + "}";
}

void get_health(const api_context& ctx, http_responder respond) {
  auto providers = health_providers(ctx.cfg);
  auto configured = std::string{to_string(ctx.cfg.processing_mode)};
  auto effective = std::string{to_string(effective_mode(ctx.cfg))};
  if (!ctx.actors.batch.empty())
    effective = configured;
  auto db = ctx.db;
  ask<actor_status>(
      ctx, ctx.actors.queue,
      [respond, configured, effective, db, providers](caf::expected<actor_status> r) {
        bool store_ok = true;
        try {
          db->find_result("healthz-probe");
        } catch (...) {
          store_ok = false;
        }
        bool healthy = static_cast<bool>(r) && store_ok;
        std::string warnings = "[";
        if (configured != effective)
          warnings += json_quote("QUEUE_PROCESSING_MODE=" + configured
                                 + " but no provider uses a batch API (set "
                                   "OPENAI_BATCH_API_MODE or ANTHROPIC_BATCH_API_MODE and the "
                                   "provider's key): requests are processed as "
                                 + effective);
        warnings += "]";
        auto draining = r && r->facts["draining"] == "true";
        auto status = draining ? "\"draining\"" : healthy ? "\"healthy\"" : "\"unhealthy\"";
        auto body = std::string{"{\"status\":"} + status
                    + ",\"service\":\"llm_provider_service\",\"version\":\"0.1.0\""
                    + ",\"queue_processing_mode\":" + json_quote(configured)
                    + ",\"effective_processing_mode\":" + json_quote(effective)
                    + ",\"accepting_requests\":" + (draining ? "false" : "true")
                    + ",\"checks\":{\"store\":" + (store_ok ? "true" : "false")
                    + ",\"queue_manager\":" + (r ? "true" : "false")
                    + "},\"providers\":" + providers + ",\"warnings\":" + warnings + "}";
        respond(json_response(healthy && !draining ? 200 : 503, std::move(body)));
      },
      atom::status_v);
}

void get_metrics(const api_context& ctx, http_responder respond) {
  ask<std::string>(
      ctx, ctx.actors.metrics,
      [respond](caf::expected<std::string> r) {
        if (!r) {
          respond(error_response(503, "SERVICE_UNAVAILABLE", "metrics did not answer"));
          return;
        }
        respond({200, std::move(*r), "text/plain; version=0.0.4; charset=utf-8", {}});
      },
      atom::render_v);
}

void get_inspect(const api_context& ctx, http_responder respond) {
  ask<std::vector<actor_status>>(
      ctx, ctx.actors.inspector,
      [respond](caf::expected<std::vector<actor_status>> r) {
        if (!r) {
          respond(error_response(503, "SERVICE_UNAVAILABLE", "the inspector did not answer"));
          return;
        }
        respond(json_response(200, render_inspection(*r)));
      },
      atom::inspect_v);
}

// -- provider batch jobs --

std::string render_batch_job(const batch_job_record& job) {
  auto ms = [](int64_t v) { return v > 0 ? std::to_string(v) : std::string{"null"}; };
  return "{\"job_id\":" + json_quote(job.job_id) + ",\"provider\":" + json_quote(job.provider)
         + ",\"model\":" + json_quote(job.model) + ",\"state\":" + json_quote(job.state)
         + ",\"provider_job_id\":" + json_quote(job.provider_job_id) + ",\"provider_status\":"
         + json_quote(job.provider_status) + ",\"item_count\":" + std::to_string(job.item_count)
         + ",\"succeeded\":" + std::to_string(job.succeeded)
         + ",\"failed\":" + std::to_string(job.failed) + ",\"cancel_requested\":"
         + (job.cancel_requested ? "true" : "false") + ",\"created_at_ms\":" + ms(job.created_at_ms)
         + ",\"submitted_at_ms\":" + ms(job.submitted_at_ms)
         + ",\"ended_at_ms\":" + ms(job.ended_at_ms) + ",\"updated_at_ms\":" + ms(job.updated_at_ms)
         + ",\"last_error\":" + json_quote(job.last_error) + "}";
}

void get_batch_jobs(const api_context& ctx, http_responder respond) {
  std::string body = "{\"jobs\":[";
  if (ctx.jobs_db != nullptr) {
    bool first = true;
    for (const auto& job : ctx.jobs_db->list(1000)) {
      body += first ? "" : ",";
      first = false;
      body += render_batch_job(job);
    }
  }
  respond(json_response(200, body + "]}"));
}

void get_batch_job(const api_context& ctx, const std::string& id, http_responder respond) {
  auto job = ctx.jobs_db != nullptr ? ctx.jobs_db->find(id) : std::nullopt;
  if (!job)
    return respond(error_response(404, "RESOURCE_NOT_FOUND", "no batch job " + id));
  respond(json_response(200, render_batch_job(*job)));
}

// The job's batch actor asks the provider to cancel; items finish as the provider reports
// them (those it did not run end CANCELLED).
void cancel_batch_job(const api_context& ctx, const std::string& id, http_responder respond) {
  auto job = ctx.jobs_db != nullptr ? ctx.jobs_db->find(id) : std::nullopt;
  if (!job)
    return respond(error_response(404, "RESOURCE_NOT_FOUND", "no batch job " + id));
  auto actor = ctx.actors.batch.find(job->provider);
  if (actor == ctx.actors.batch.end())
    return respond(error_response(409, "INVALID_REQUEST",
                                  "batch jobs of " + job->provider + " are not running now"));
  ask<std::string>(
      ctx, actor->second,
      [respond, id](caf::expected<std::string> r) {
        if (!r)
          return respond(error_response(503, "SERVICE_UNAVAILABLE", "batch jobs did not answer"));
        if (!r->empty())
          return respond(error_response(409, "INVALID_REQUEST", *r));
        respond(
            json_response(202, "{\"job_id\":" + json_quote(id) + ",\"cancel_requested\":true}"));
      },
      atom::cancel_v, id);
}

// "/api/v1/status/<id>" -> id, when `path` starts with `prefix`.
bool match_id(const std::string& path, std::string_view prefix, std::string& id) {
  if (path.size() <= prefix.size() || path.compare(0, prefix.size(), prefix) != 0)
    return false;
  id = path.substr(prefix.size());
  return id.find('/') == std::string::npos;
}

void route_get(const api_context& ctx, http_request&& req, http_responder respond) {
  std::string id;
  if (match_id(req.path, "/api/v1/status/", id))
    return get_status(ctx, id, std::move(respond));
  if (match_id(req.path, "/api/v1/results/", id))
    return get_result(ctx, id, std::move(respond));
  if (req.path == "/healthz")
    return get_health(ctx, std::move(respond));
  if (req.path == "/metrics")
    return get_metrics(ctx, std::move(respond));
  if (req.path == "/api/v1/inspect")
    return get_inspect(ctx, std::move(respond));
  if (req.path == "/api/v1/providers")
    return get_providers(ctx, std::move(respond));
  if (req.path == "/api/v1/models")
    return respond(json_response(200, ctx.model_manifest_json));
  if (req.path == "/api/v1/batch-jobs")
    return get_batch_jobs(ctx, std::move(respond));
  if (match_id(req.path, "/api/v1/batch-jobs/", id))
    return get_batch_job(ctx, id, std::move(respond));
  respond(error_response(404, "RESOURCE_NOT_FOUND", "no route for GET " + req.path));
}

} // namespace

void handle_http(const api_context& ctx, http_request&& req, http_responder respond) {
  if (req.method == "HEAD" && req.path == "/healthz") // load balancers probe with HEAD
    return get_health(ctx, std::move(respond));
  if (req.method == "GET")
    return route_get(ctx, std::move(req), std::move(respond));
  if (req.method == "POST" && req.path == "/api/v1/comparison")
    return submit_one(ctx, std::move(req), std::move(respond));
  if (req.method == "POST" && req.path == "/api/v1/comparisons")
    return submit_many(ctx, std::move(req), std::move(respond));
  constexpr std::string_view cancel_suffix = "/cancel";
  std::string id;
  if (req.method == "POST" && req.path.ends_with(cancel_suffix)
      && match_id(req.path.substr(0, req.path.size() - cancel_suffix.size()), "/api/v1/batch-jobs/",
                  id))
    return cancel_batch_job(ctx, id, std::move(respond));
  respond(error_response(req.method == "POST" ? 404 : 405,
                         req.method == "POST" ? "RESOURCE_NOT_FOUND" : "INVALID_REQUEST",
                         "no route for " + req.method + " " + req.path));
}

} // namespace lps
