#pragma once

// Spawning the actor topology of a single node and shutting it down in order. The only
// place that knows every actor; main calls it.

#include "actors/actors.hpp"
#include "actors/leader_inspection.hpp"
#include "actors/provider_gate.hpp"
#include "app/gateway_direct.hpp"
#include "runtime/config.hpp"
#include "runtime/batch_job_store.hpp"
#include "runtime/fenced_store.hpp"
#include "runtime/model_manifest.hpp"

#include <caf/actor_system.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace lps {

class store;
class http_transport;
class store_reader;
class new_work_sink;

/// Handles of every actor of a node.
struct topology {
  metrics_actor metrics;
  callbacks_actor callbacks;
  queue_manager_actor queue;
  std::map<std::string, provider_actor> providers;
  /// Batch jobs actors (batch_api mode), by provider.
  std::map<std::string, batch_jobs_actor> batch;
  bundler_actor bundler;
  intake_actor intake;
  inspector_actor inspector;
  /// Cluster mode: where the inspector finds the leader's singletons (null: a single node).
  std::shared_ptr<leader_inspection> leader_slot;
  /// The reader pool the queue manager reads the store on (the leader's too, in a cluster).
  store_reader* reads = nullptr;
  /// Cluster mode: where the queue manager hands the requests it stored, for the leader
  /// (the node actor attaches to it when the node joins); null on a single node.
  std::shared_ptr<new_work_sink> new_work;
  /// The node's provider gate: its bundler (the leader's, in a cluster) and its gateway
  /// routes admit calls through it.
  std::shared_ptr<provider_gate> gate;
};

/// The cluster leader's singletons (docs/cluster.md), spawned when the node takes the lease
/// and stopped when it loses it. Their store writes carry the lease epoch (`db`), so they
/// write nothing final once another node leads; so do the batch jobs' writes (`jobs_db`,
/// null without batch jobs or on SQLite). The node's metrics and provider actors serve them.
struct leader_topology {
  int64_t epoch = 0;
  std::unique_ptr<fenced_store> db;
  std::unique_ptr<batch_job_store> jobs_db;
  callbacks_actor callbacks;
  queue_manager_actor queue;
  std::map<std::string, batch_jobs_actor> batch;
  bundler_actor bundler;
  /// Inspects the singletons above (no sampling: the node's inspector asks it through the
  /// node actor, from this node or another).
  inspector_actor inspector;
};

/// The mode the bundler runs: batch_api requests of providers without a batch API (or with
/// it disabled) are bundled as in serial_bundle.
queue_processing_mode effective_mode(const config& cfg);

/// Breaker, rate and concurrency settings per provider, as the bundler's gate and the gateway
/// path's (app/gateway_gate) take them.
provider_gate_settings provider_gate_settings_of(const config& cfg);

/// Why a provider cannot be called (for the mock: MOCK_ALLOWED=false), or "" when it can.
std::string provider_unavailable_reason(const config& cfg, const std::string& provider);

/// Called with each inspection snapshot, on the inspector's thread (must not block).
using inspection_listener = std::function<void(const inspection_snapshot&)>;

/// Spawns metrics, callbacks, queue manager (recovering the store), providers, bundler,
/// intake and inspector. In cluster mode (cfg.cluster_enabled) the node's queue manager only
/// stores new requests for the leader (intake_only), its bundler stays idle and there are no
/// batch jobs actors: the leader runs those (spawn_leader). `callback_http` delivers result events;
/// `provider_transport` calls providers (separate pools, so one never waits for the other). The
/// model `manifest` gives prices (cost estimates) and per-model request parameters. `jobs_db` keeps
/// provider batch jobs (null: batch_api runs as serial_bundle for every provider). `on_sample` gets
/// the inspector's snapshot every second (the SSE stream). The queue manager's store reads run on
/// `reads` (outlives the actors).
/// The configured HTTP providers as the gateway route calls them itself (app/gateway_direct).
gateway_direct_targets gateway_direct_targets_of(const config& cfg);

topology spawn_topology(caf::actor_system& sys, const config& cfg, store* db, store_reader* reads,
                        http_transport* callback_http, http_transport* provider_transport,
                        const model_manifest& manifest = {}, batch_job_store* jobs_db = nullptr,
                        inspection_listener on_sample = {});

/// Cluster leader at `epoch`: spawns callbacks, the queue manager (it recovers its index
/// from the store, as a restart does), batch jobs and the bundler on the node's metrics and
/// providers. `node` is the node's own topology (spawn_topology in cluster mode).
leader_topology spawn_leader(caf::actor_system& sys, const config& cfg, store& shared,
                             int64_t epoch, const topology& node, http_transport* callback_http,
                             http_transport* provider_transport, const model_manifest& manifest,
                             batch_job_store* jobs_db);

/// Lost the lease: every singleton exits at once, its work left to the next leader (its
/// late store writes are refused by the fencing guard).
void stop_leader(caf::actor_system& sys, leader_topology& leader);

/// Leaving on SIGTERM: the bundler gets `grace` for bundles in flight, the queue manager
/// flushes, then the singletons exit (the caller releases the lease after).
void hand_over_leader(caf::actor_system& sys, leader_topology& leader, caf::timespan grace);

/// Blocks until the queue manager has recovered the store (it answers its first message only
/// after recovery), asking again every `patience` and logging that it still recovers. Ends
/// early when the queue manager is gone (then /healthz reports it as failed).
void await_recovery(caf::actor_system& sys, const topology& actors, caf::timespan patience);

/// The providers whose requests go to a provider batch API (batch_api mode with
/// <PROVIDER>_BATCH_API_MODE not disabled, and a key), with their mode.
std::map<std::string, batch_api_mode> batch_providers(const config& cfg);

/// Ordered shutdown: intake and the queue manager stop accepting, the bundler stops pulling
/// and bundles in flight get `grace` to finish (the bundler answers `drained`), the queue
/// manager flushes the store, then every actor exits; what is left unfinished is logged and
/// runs again after the next start.
void shutdown_topology(caf::actor_system& sys, topology& actors, caf::timespan grace);

} // namespace lps
