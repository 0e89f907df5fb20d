#include "app/topology.hpp"
#include "app/new_work_sink.hpp"

#include "actors/batch_jobs.hpp"
#include "actors/batch_window.hpp"
#include "actors/bundler.hpp"
#include "actors/callbacks.hpp"
#include "actors/inspector.hpp"
#include "actors/intake.hpp"
#include "actors/metrics.hpp"
#include "app/build_info.hpp"
#include "app/node_identity.hpp"
#include "actors/provider_mock.hpp"
#include "actors/provider_http.hpp"
#include "actors/providers/anthropic_batch_format.hpp"
#include "actors/providers/anthropic_format.hpp"
#include "actors/providers/gemini_format.hpp"
#include "actors/providers/openai_batch_format.hpp"
#include "actors/providers/openai_format.hpp"
#include "actors/provider_unconfigured.hpp"
#include "actors/queue_manager.hpp"
#include "runtime/fenced_store.hpp"
#include "runtime/logging.hpp"

#include <unistd.h>

#include <caf/scoped_actor.hpp>

#include <array>
#include <cctype>

#include <unistd.h>

namespace lps {

namespace {

caf::timespan hours(double h) {
  return std::chrono::duration_cast<caf::timespan>(
      std::chrono::duration<double, std::ratio<3600>>{h});
}

mock_settings mock_settings_of(const config& cfg) {
  mock_settings result;
  result.seed = cfg.mock.seed;
  result.latency = std::chrono::milliseconds{cfg.mock.latency_ms};
  result.latency_jitter = std::chrono::milliseconds{cfg.mock.latency_jitter_ms};
  result.error_rate = cfg.mock.error_rate;
  result.error_codes = cfg.mock.error_codes;
  result.default_model = cfg.mock.default_model;
  return result;
}

} // namespace

provider_gate_settings provider_gate_settings_of(const config& cfg) {
  provider_gate_settings result;
  result.max_inflight["mock"] = cfg.mock.max_concurrent_calls;
  result.rate_limits["mock"] = {cfg.mock.requests_per_minute, cfg.mock.tokens_per_minute};
  for (const auto& [name, p] : cfg.providers) {
    result.max_inflight[name] = p.max_concurrent_calls;
    result.rate_limits[name] = {p.requests_per_minute, p.tokens_per_minute};
  }
  result.breaker.failure_threshold = cfg.circuit_breaker_failure_threshold;
  result.breaker.open_duration = std::chrono::duration_cast<clock_duration>(
      std::chrono::duration<double>{cfg.circuit_breaker_open_seconds});
  result.breaker.success_threshold = cfg.circuit_breaker_success_threshold;
  return result;
}

namespace {

bundler_config bundler_config_of(const config& cfg) {
  bundler_config result;
  result.policy.mode = effective_mode(cfg);
  result.policy.max_items = cfg.serial_bundle_max_requests_per_call;
  result.policy.default_provider = cfg.default_llm_provider;
  result.policy.default_models["mock"] = cfg.mock.default_model;
  for (const auto& [name, p] : cfg.providers)
    result.policy.default_models[name] = p.default_model;
  result.gate = provider_gate_settings_of(cfg);
  result.configured_mode = to_string(cfg.processing_mode);
  if (cfg.serial_bundle_multi_prompt && effective_mode(cfg) == queue_processing_mode::serial_bundle)
    result.gate.multi_prompt_max = 4;
  // A bundle of n items may take n sequential calls of the simulated latency.
  auto mock_worst = std::chrono::milliseconds{(cfg.mock.latency_ms + cfg.mock.latency_jitter_ms)
                                              * cfg.serial_bundle_max_requests_per_call};
  // An HTTP provider may need a multi-prompt call and then a call per item left unanswered;
  // each call may wait up to its timeout for a pooled connection and then run for its timeout.
  // The HTTP deadlines (which close the connection) thus always fire before this backstop, so
  // the bundler never re-queues a bundle whose calls still run (the provider is paid once).
  auto http_worst = 4 * std::chrono::milliseconds{cfg.provider_request_timeout_ms};
  result.provider_timeout =
      std::chrono::milliseconds{cfg.actor_request_timeout_ms} + mock_worst + http_worst;
  return result;
}

/// Per-model request parameters of the manifest, as the OpenAI formats take them.
openai_flags_table openai_flags_of(const model_manifest& manifest) {
  openai_flags_table result;
  for (const auto& [model, p] : manifest.parameters)
    result[model] = {p.uses_max_completion_tokens, p.supports_temperature,
                     p.supports_reasoning_controls};
  return result;
}

/// The wire format of a provider lps can call over HTTP, or null for one it cannot.
std::shared_ptr<const provider_wire> wire_for(const std::string& provider,
                                              const openai_flags_table& flags = {}) {
  if (provider == "openai" || provider == "openrouter")
    return std::make_shared<openai_wire>(provider == "openrouter", flags);
  if (provider == "anthropic")
    return std::make_shared<anthropic_wire>();
  if (provider == "google")
    return std::make_shared<gemini_wire>();
  return nullptr;
}

/// Where and as whom a configured HTTP provider is called (the provider actor and the
/// gateway route's direct attempts alike).
wire_target wire_target_of(const config& cfg, const provider_config& p) {
  wire_target result;
  result.base_url = p.base_url;
  result.api_key = p.api_key.reveal();
  result.timeout = std::chrono::milliseconds{cfg.provider_request_timeout_ms};
  if (p.name == "openrouter")
    result.extra_headers = {{"HTTP-Referer", "https://github.com/lps"}, {"X-Title", "lps"}};
  return result;
}

provider_actor spawn_http_provider(caf::actor_system& sys, const config& cfg,
                                   const provider_config& p, http_transport* http,
                                   const std::map<std::string, model_price>& prices,
                                   const openai_flags_table& flags, const metrics_actor& metrics) {
  provider_http_config pc;
  pc.provider = p.name;
  pc.target = wire_target_of(cfg, p);
  pc.default_model = p.default_model;
  pc.prices = prices;
  pc.multi_prompt =
      cfg.serial_bundle_multi_prompt && effective_mode(cfg) == queue_processing_mode::serial_bundle;
  pc.max_connections = provider_connections_per_host(cfg); // the pool main.cpp gives `http`
  return sys.spawn(provider_http, pc, wire_for(p.name, flags), http, metrics);
}

std::map<std::string, provider_actor>
spawn_providers(caf::actor_system& sys, const config& cfg, http_transport* http,
                const std::map<std::string, model_price>& prices, const openai_flags_table& flags,
                const metrics_actor& metrics) {
  std::map<std::string, provider_actor> result;
  result["mock"] = sys.spawn(provider_mock, mock_settings_of(cfg));
  for (const auto& [name, p] : cfg.providers) {
    if (provider_unavailable_reason(cfg, name).empty())
      result[name] = spawn_http_provider(sys, cfg, p, http, prices, flags, metrics);
    else
      result[name] = sys.spawn(provider_unconfigured, name, provider_unavailable_reason(cfg, name));
  }
  return result;
}

batch_jobs_actor spawn_batch_jobs(caf::actor_system& sys, const config& cfg,
                                  const std::string& provider, batch_api_mode mode,
                                  http_transport* http, batch_job_store* jobs_db,
                                  const queue_manager_actor& queue, const metrics_actor& metrics,
                                  const std::map<std::string, model_price>& prices,
                                  const openai_flags_table& flags) {
  const auto& p = cfg.providers.at(provider);
  batch_jobs_config bc;
  bc.provider = provider;
  bc.target.base_url = p.base_url;
  bc.target.api_key = p.api_key.reveal();
  // Uploads and result files can be hundreds of megabytes.
  bc.target.timeout = std::chrono::milliseconds{cfg.provider_request_timeout_ms} * 5;
  bc.default_model = p.default_model;
  bc.prices = prices;
  bc.mode = mode;
  bc.min_items = cfg.batch_api_min_items;
  bc.max_wait = std::chrono::duration_cast<caf::timespan>(
      std::chrono::duration<double>{cfg.batch_api_max_wait_seconds});
  auto window = parse_batch_window(cfg.batch_api_nightly_window);
  bc.window_start_minute = window.start_minute;
  bc.window_end_minute = window.end_minute;
  bc.max_items_per_job = cfg.batch_api_max_requests_per_job;
  bc.max_bytes_per_job = cfg.batch_api_max_bytes_per_job;
  bc.poll_interval = std::chrono::duration_cast<caf::timespan>(
      std::chrono::duration<double>{cfg.batch_api_poll_interval_seconds});
  bc.check_interval = std::min<caf::timespan>(std::chrono::seconds{1}, bc.poll_interval);
  bc.queue_timeout = std::chrono::milliseconds{cfg.actor_request_timeout_ms};
  std::shared_ptr<const batch_wire> wire;
  if (provider == "openai")
    wire =
        std::make_shared<openai_batch_wire>(openai_batch_max_items, openai_batch_max_bytes, flags);
  else
    wire = std::make_shared<anthropic_batch_wire>();
  return sys.spawn(batch_jobs, bc, wire, http, jobs_db, queue, metrics);
}

callbacks_config callbacks_config_of(const config& cfg) {
  callbacks_config cb;
  cb.request_timeout = std::chrono::milliseconds{cfg.callback_timeout_ms};
  cb.max_attempts = cfg.callback_max_attempts;
  cb.max_concurrent_per_origin = cfg.callback_max_concurrent_per_host;
  cb.signing_secret = cfg.callback_signing_secret;
  return cb;
}

queue_manager_config queue_manager_config_of(const config& cfg) {
  queue_manager_config qm;
  qm.max_size = cfg.queue_max_size;
  qm.max_bytes = cfg.queue_max_bytes;
  qm.memory_text_budget = cfg.queue_memory_text_bytes;
  qm.ttl = hours(cfg.queue_request_ttl_hours);
  qm.max_retries = cfg.queue_max_retries;
  qm.retry_base_delay = std::chrono::milliseconds{cfg.retry_base_delay_ms};
  qm.retry_max_delay = std::chrono::milliseconds{cfg.retry_max_delay_ms};
  qm.processing_mode = to_string(effective_mode(cfg));
  qm.default_provider = cfg.default_llm_provider;
  qm.default_models = bundler_config_of(cfg).policy.default_models;
  return qm;
}

/// Gauges whose label values are known at start get a series before any other actor runs,
/// so a scrape right after a restart finds them (breakers closed, no provider paused, nothing
/// in flight, no open batch job). Sent before the bundler and the batch jobs actors exist, so their
/// own later values always come after these.
void seed_gauges(caf::actor_system& sys, const config& cfg, const metrics_actor& metrics,
                 const std::vector<std::string>& bundled, const std::vector<std::string>& batched) {
  std::vector<metric_sample> xs;
  xs.push_back(
      {"llm_provider_build_info", {build_version(), build_revision(), this_node_name(cfg)}, 1});
  for (const auto& name : bundled) {
    xs.push_back({"llm_provider_circuit_breaker_state", {name}, 0});
    xs.push_back({"llm_provider_paused", {name}, 0});
    xs.push_back({"llm_provider_inflight_provider_calls", {name}, 0});
    xs.push_back({"llm_provider_calls_waiting_for_connection", {name}, 0});
    xs.push_back({"llm_provider_inflight_bundles", {name}, 0});
  }
  for (const auto& name : batched)
    for (const auto& state : open_batch_job_states())
      xs.push_back({"llm_provider_batch_api_jobs_open", {name, state}, 0});
  caf::scoped_actor self{sys};
  self->send(metrics, atom::record_v, std::move(xs));
}

} // namespace

std::map<std::string, batch_api_mode> batch_providers(const config& cfg) {
  std::map<std::string, batch_api_mode> result;
  if (cfg.processing_mode != queue_processing_mode::batch_api)
    return result;
  for (auto [name, mode] : {std::pair{"openai", cfg.openai_batch_api_mode},
                            std::pair{"anthropic", cfg.anthropic_batch_api_mode}})
    if (mode != batch_api_mode::disabled && provider_unavailable_reason(cfg, name).empty())
      result[name] = mode;
  return result;
}

queue_processing_mode effective_mode(const config& cfg) {
  return cfg.processing_mode == queue_processing_mode::batch_api
             ? queue_processing_mode::serial_bundle
             : cfg.processing_mode;
}

std::string provider_unavailable_reason(const config& cfg, const std::string& provider) {
  if (provider == "mock")
    return cfg.mock_allowed ? "" : "MOCK_ALLOWED=false refuses requests for the mock provider";
  auto i = cfg.providers.find(provider);
  if (i == cfg.providers.end())
    return "unknown provider '" + provider + "'";
  if (i->second.api_key.empty()) {
    std::string upper;
    for (char c : provider)
      upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return provider + " is not configured: set " + upper + "_API_KEY";
  }
  if (wire_for(provider) == nullptr)
    return "lps has no wire format for provider '" + provider + "'";
  return "";
}

gateway_direct_targets gateway_direct_targets_of(const config& cfg) {
  gateway_direct_targets result;
  for (const auto& [name, p] : cfg.providers) {
    auto dialect = gateway_dialect_of(name);
    auto wire = wire_for(name);
    if (!dialect || !wire || !provider_unavailable_reason(cfg, name).empty())
      continue;
    auto target = wire_target_of(cfg, p);
    result[name] = {*dialect,
                    {target.base_url, target.api_key, target.timeout, target.extra_headers},
                    std::string{wire->display_name()},
                    std::string{wire->endpoint()}};
  }
  return result;
}

topology spawn_topology(caf::actor_system& sys, const config& cfg, store* db, store_reader* reads,
                        http_transport* callback_http, http_transport* provider_transport,
                        const model_manifest& manifest, batch_job_store* jobs_db,
                        inspection_listener on_sample) {
  topology t;
  t.reads = reads;
  const auto& prices = manifest.prices;
  auto flags = openai_flags_of(manifest);
  t.metrics = sys.spawn(metrics);
  t.callbacks = sys.spawn(callbacks, callbacks_config_of(cfg), callback_http, db, t.metrics);
  auto qm = queue_manager_config_of(cfg);
  qm.intake_only = cfg.cluster_enabled;
  if (cfg.cluster_enabled) {
    t.new_work = std::make_shared<new_work_sink>();
    qm.on_stored = [sink = t.new_work](std::vector<adopted_request>&& rows) {
      sink->hand_on(std::move(rows));
    };
  }
  qm.reads = reads;
  if (jobs_db != nullptr && !cfg.cluster_enabled)
    qm.batch_owned = jobs_db->load_owned_items();
  t.queue = sys.spawn(queue_manager, qm, db, t.metrics, t.callbacks);
  t.providers = spawn_providers(sys, cfg, provider_transport, prices, flags, t.metrics);
  // Providers served by a batch API are left out of the bundler: it never takes their work.
  auto batched =
      jobs_db != nullptr ? batch_providers(cfg) : std::map<std::string, batch_api_mode>{};
  // In a cluster only the leader runs batch jobs (spawn_leader).
  auto node_batched = cfg.cluster_enabled ? std::map<std::string, batch_api_mode>{} : batched;
  auto bundled = t.providers;
  std::vector<std::string> bundled_names, batched_names;
  for (const auto& [name, p] : t.providers)
    (batched.count(name) ? batched_names : bundled_names).push_back(name);
  seed_gauges(sys, cfg, t.metrics, bundled_names, batched_names);
  for (const auto& [name, mode] : batched)
    bundled.erase(name);
  for (const auto& [name, mode] : node_batched)
    t.batch[name] = spawn_batch_jobs(sys, cfg, name, mode, provider_transport, jobs_db, t.queue,
                                     t.metrics, prices, flags);
  t.gate = std::make_shared<provider_gate>(provider_gate_settings_of(cfg));
  auto bundling = bundler_config_of(cfg);
  bundling.shared_gate = t.gate;
  t.bundler = sys.spawn(bundler, std::move(bundling), t.queue, bundled, t.metrics);
  intake_config ic;
  ic.store_health_of = [db] { return db->health(); };
  t.intake = sys.spawn(intake, std::move(ic), t.queue);
  std::vector<status_client_actor> targets{t.intake, t.queue, t.bundler, t.callbacks, t.metrics};
  for (const auto& [name, p] : t.providers)
    targets.push_back(p);
  for (const auto& [name, b] : t.batch)
    targets.push_back(b);
  inspector_config inspection;
  inspection.targets = std::move(targets);
  inspection.node = this_node_name(cfg);
  inspection.on_sample = std::move(on_sample);
  if (cfg.cluster_enabled) {
    t.leader_slot = std::make_shared<leader_inspection>();
    inspection.leader = t.leader_slot;
  }
  t.inspector = sys.spawn(inspector, std::move(inspection));
  return t;
}

leader_topology spawn_leader(caf::actor_system& sys, const config& cfg, store& shared,
                             int64_t epoch, const topology& node, http_transport* callback_http,
                             http_transport* provider_transport, const model_manifest& manifest,
                             batch_job_store* jobs_db) {
  leader_topology t;
  t.epoch = epoch;
  t.db = std::make_unique<fenced_store>(shared, epoch);
  if (jobs_db != nullptr)
    if (t.jobs_db = jobs_db->fenced(epoch); t.jobs_db)
      jobs_db = t.jobs_db.get();
  t.callbacks =
      sys.spawn(callbacks, callbacks_config_of(cfg), callback_http, t.db.get(), node.metrics);
  auto qm = queue_manager_config_of(cfg);
  // Longer than the store poller's look back (runtime/store_poller.hpp) and its delivery.
  qm.adoption_memory = std::chrono::minutes{1};
  qm.reads = node.reads;
  if (jobs_db != nullptr)
    qm.batch_owned = jobs_db->load_owned_items();
  t.queue = sys.spawn(queue_manager, qm, t.db.get(), node.metrics, t.callbacks);
  auto bundled = node.providers;
  if (jobs_db != nullptr) {
    auto flags = openai_flags_of(manifest);
    for (const auto& [name, mode] : batch_providers(cfg)) {
      bundled.erase(name);
      t.batch[name] = spawn_batch_jobs(sys, cfg, name, mode, provider_transport, jobs_db, t.queue,
                                       node.metrics, manifest.prices, flags);
    }
  }
  auto bundling = bundler_config_of(cfg);
  // Its own node's provider actors serve under its name; the other nodes' join later.
  bundling.self_node = this_node_name(cfg);
  // The node's gate, with what it learned as a follower (docs/cluster.md, "Limits").
  bundling.shared_gate = node.gate;
  t.bundler = sys.spawn(bundler, std::move(bundling), t.queue, bundled, node.metrics);
  inspector_config inspection;
  // The node's metrics actor too: the queue manager records time to result there, so the
  // console's overview on any node reads it from the leader's.
  inspection.targets = {t.queue, t.bundler, t.callbacks, node.metrics};
  for (const auto& [name, b] : t.batch)
    inspection.targets.push_back(b);
  inspection.node = this_node_name(cfg);
  inspection.interval = caf::timespan::zero();
  t.inspector = sys.spawn(inspector, std::move(inspection));
  return t;
}

void stop_leader(caf::actor_system& sys, leader_topology& t) {
  caf::scoped_actor self{sys};
  auto stop = [&](const auto& hdl) {
    if (hdl)
      self->send_exit(hdl, caf::exit_reason::kill);
  };
  stop(t.inspector);
  stop(t.bundler);
  for (const auto& [name, b] : t.batch)
    stop(b);
  stop(t.queue);
  stop(t.callbacks);
}

void hand_over_leader(caf::actor_system& sys, leader_topology& t, caf::timespan grace) {
  auto log = get_logger("main");
  caf::scoped_actor self{sys};
  self->send(t.queue, atom::stop_v);
  for (auto& [name, b] : t.batch)
    self->send(b, atom::stop_v);
  self->request(t.bundler, grace, atom::drain_v)
      .receive([&](atom::drained) { LPS_LOG_INFO(log, "bundler drained: no bundle in flight"); },
               [&](caf::error& err) {
                 LPS_LOG_WARN(log, "bundles still in flight after the grace: {}",
                              caf::to_string(err));
               });
  self->request(t.queue, std::chrono::seconds{30}, atom::drain_v)
      .receive([&](bool) { LPS_LOG_INFO(log, "leader queue-manager flushed the store"); },
               [&](caf::error& err) {
                 LPS_LOG_ERROR(log, "leader queue-manager did not flush: {}", caf::to_string(err));
               });
  auto stop = [&](const auto& hdl) {
    if (hdl)
      self->send_exit(hdl, caf::exit_reason::user_shutdown);
  };
  stop(t.inspector);
  stop(t.bundler);
  for (auto& [name, b] : t.batch)
    stop(b);
  stop(t.queue);
  stop(t.callbacks);
}

void await_recovery(caf::actor_system& sys, const topology& t, caf::timespan patience) {
  auto log = get_logger("main");
  caf::scoped_actor self{sys};
  for (bool waiting = true; waiting;) {
    self->request(t.queue, patience, atom::status_v)
        .receive([&](const actor_status&) { waiting = false; },
                 [&](const caf::error& err) {
                   waiting = err == caf::sec::request_timeout;
                   if (waiting)
                     LPS_LOG_INFO(log, "queue-manager still recovering the store");
                   else
                     LPS_LOG_ERROR(log, "queue-manager failed during recovery: {}",
                                   caf::to_string(err));
                 });
  }
}

void shutdown_topology(caf::actor_system& sys, topology& t, caf::timespan grace) {
  auto log = get_logger("main");
  caf::scoped_actor self{sys};
  // Intake and the queue manager refuse new requests from now on (/healthz: draining).
  self->send(t.intake, atom::stop_v);
  self->send(t.queue, atom::stop_v);
  for (auto& [name, b] : t.batch)
    self->send(b, atom::stop_v);
  // Provider calls already made (and paid for) get the grace period to finish.
  self->request(t.bundler, grace, atom::drain_v)
      .receive([&](atom::drained) { LPS_LOG_INFO(log, "bundler drained: no bundle in flight"); },
               [&](caf::error& err) {
                 LPS_LOG_WARN(log, "bundles still in flight after the {} s grace: {}",
                              std::chrono::duration_cast<std::chrono::seconds>(grace).count(),
                              caf::to_string(err));
               });
  self->request(t.queue, std::chrono::seconds{30}, atom::drain_v)
      .receive([&](bool) { LPS_LOG_INFO(log, "queue-manager flushed the store"); },
               [&](caf::error& err) {
                 LPS_LOG_ERROR(log, "queue-manager did not flush: {}", caf::to_string(err));
               });
  auto stop = [&](auto& hdl) { self->send_exit(hdl, caf::exit_reason::user_shutdown); };
  stop(t.intake);
  stop(t.bundler);
  for (auto& [name, p] : t.providers)
    stop(p);
  for (auto& [name, b] : t.batch)
    stop(b);
  stop(t.inspector);
  stop(t.queue);
  stop(t.callbacks);
  stop(t.metrics);
}

} // namespace lps
