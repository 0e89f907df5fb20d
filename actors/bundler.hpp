#pragma once

// The bundler: the queue processor. Demand-driven: it dequeues only for providers that can
// take a bundle now, as many requests as the bundle has room for, groups compatible ones
// of one provider with bundle_builder, and sends each bundle as one message to its
// provider actor; outcomes go back to the queue manager. Many bundles may be in flight;
// forming them is sequential, which keeps each provider's order FIFO within a priority.

#include "actors/cluster_actors.hpp"
#include "actors/status_report.hpp"
#include "actors/bundle_builder.hpp"
#include "actors/node_routes.hpp"
#include "actors/provider_gate.hpp"

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace lps {

struct bundler_config {
  bundle_policy policy;
  /// The configured mode's name (batch_api runs as serial_bundle until batch jobs exist).
  std::string configured_mode = "serial_bundle";
  /// Deadline for a provider's answer to one bundle.
  caf::timespan provider_timeout = std::chrono::seconds{120};
  /// Circuit breakers and rate limits per provider, and the call slots per provider and node
  /// (max_inflight holds for each node).
  provider_gate_settings gate;
  /// The node's gate, shared with its gateway routes (null: a gate of its own, from `gate`).
  std::shared_ptr<provider_gate> shared_gate;
  /// The name of the node the bundler runs on: its own provider actors serve under it.
  std::string self_node = "local";
  /// How often the provider gate is synced with each other node, and how long a follower's
  /// lease holds without the next sync (docs/cluster.md, "Limits").
  caf::timespan gate_sync_period = std::chrono::milliseconds{500};
  caf::timespan gate_lease = std::chrono::seconds{2};
};

/// A bundle in flight, without its texts: enough to fail or put back its items.
struct bundle_skeleton {
  std::string bundle_id;
  std::string provider;
  std::string model;
  std::vector<std::pair<std::string, request_enrichment>> items;
  /// When it was sent (CAF's clock).
  clock_time started;
};

/// A bundle whose provider call ended, as the inspector lists it.
struct finished_bundle {
  std::string bundle_id;
  std::string provider;
  std::string model;
  size_t items = 0;
  /// Items that succeeded; the others failed (retried or final).
  size_t succeeded = 0;
  /// From dispatch to the provider's answer (or to the timeout).
  caf::timespan duration{0};
};

/// Finished bundles the bundler keeps for inspection (the newest).
constexpr size_t recent_bundles_kept = 200;

struct bundler_state {
  static inline const char* name = "bundler";
  bundler_config cfg;
  queue_manager_actor queue;
  /// The providers served, with this node's actors.
  std::map<std::string, provider_actor> providers;
  /// Every node's provider actors (this node's under cfg.self_node; other cluster nodes
  /// join and leave), and which node has which bundle.
  node_routes routes;
  /// Bundles in flight by id.
  std::map<std::string, bundle_skeleton> sent;
  /// Retire requests of leaving nodes, by node, answered with `drained` once that node has
  /// no bundle in flight.
  std::map<std::string, std::vector<caf::typed_response_promise<atom::drained>>> retire_waiters;
  /// Bundles put back because their node was gone.
  uint64_t put_back_total = 0;
  metrics_actor metrics;
  std::optional<bundle_builder> builder;
  /// Dequeued requests not in a bundle yet, per resolved provider, in queue order: an
  /// incompatible request and those after it lead that provider's next bundles (never
  /// lost, never reordered).
  std::map<std::string, std::deque<queued_request>> held;
  /// A dequeue or bundle formation is under way.
  bool forming = false;
  /// form() was called during a formation (a call slot freed up, or work arrived): form
  /// again when it ends, instead of waiting for the next wake.
  bool form_again = false;
  /// Set by drain: no more work is pulled.
  bool stopped = false;
  /// Drain requests answered with `drained` once no bundle is in flight.
  std::vector<caf::typed_response_promise<atom::drained>> drain_waiters;
  /// Which providers may take a bundle now: pauses (a rejected key), bundles in flight,
  /// breakers (while a provider is paused or its breaker open, its requests wait in the
  /// queue instead of failing) and rate limits. The node's gate: its gateway calls count too.
  std::shared_ptr<provider_gate> gate;
  /// A delayed wake is pending (a breaker or limiter blocks a provider for a while).
  bool wake_armed = false;
  /// The node actors of the other nodes served: the gate is synced with each.
  std::map<std::string, caf::actor> node_actors;
  /// A gate sync is scheduled.
  bool gate_sync_armed = false;
  uint64_t next_bundle = 0;
  /// Messages handled, their processing times, the last error (for status).
  actor_stats stats;
  uint64_t bundles_total = 0;
  uint64_t items_total = 0;
  uint64_t lost_replies_total = 0;
  /// The last recent_bundles_kept finished bundles, oldest first.
  std::deque<finished_bundle> recent_bundles;
  /// Provider calls by items per call (1..max_items).
  std::map<size_t, uint64_t> items_per_call;
  /// Failed items per provider and error code, since start.
  std::map<std::string, std::map<std::string, uint64_t>> errors_by_class;
};

/// Spawns with its config, the queue manager, the provider actors by name and metrics.
/// Its handle is a cluster_bundler_actor (other nodes join and leave); outside the
/// cluster's leader nobody sends those, and peers hold it as a bundler_actor.
cluster_bundler_actor::behavior_type
bundler(cluster_bundler_actor::stateful_pointer<bundler_state> self, bundler_config cfg,
        queue_manager_actor queue, std::map<std::string, provider_actor> providers,
        metrics_actor metrics);

} // namespace lps
