#pragma once

// The callbacks actor: POSTs result events to their callback_url, with a per-origin
// concurrency limit (a slow or failing receiver never blocks deliveries to others) and
// retries with the retry policy's exponential backoff (actors/providers/retry_policy.hpp).
// Successful deliveries and give-ups are marked in the store, so a restart redelivers only
// what was neither acknowledged nor given up; event ids are stable, so a redelivery is harmless.
// Time comes from an injected clock and jitter from a seeded source, so tests run in virtual time.

#include "actors/actors.hpp"
#include "actors/status_report.hpp"
#include "actors/providers/retry_policy.hpp"
#include "runtime/config.hpp"
#include "runtime/http_client.hpp"
#include "runtime/store.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <random>
#include <string>

namespace lps {

struct callbacks_config {
  caf::timespan request_timeout = std::chrono::seconds{10};
  uint32_t max_attempts = 8;
  uint32_t max_concurrent_per_origin = 32;
  caf::timespan retry_base_delay = std::chrono::seconds{1};
  caf::timespan retry_max_delay = std::chrono::seconds{60};
  caf::timespan tick_interval = std::chrono::milliseconds{100};
  /// Seed of the retry jitter (tests fix it).
  uint64_t jitter_seed = std::random_device{}();
  /// Wall clock (tests inject a manual one).
  std::function<caf::timestamp()> now = [] { return caf::make_timestamp(); };
  /// CALLBACK_SIGNING_SECRET: when set, every POST carries X-LPS-Signature.
  secret signing_secret;
};

struct callbacks_state {
  static inline const char* name = "callbacks";
  callbacks_config cfg;
  /// Shared HTTP client (owned by main; outlives the actor).
  http_transport* http = nullptr;
  store* db = nullptr;
  metrics_actor metrics;
  /// Waiting deliveries per origin ("http://host:port").
  std::map<std::string, std::deque<delivery>> waiting;
  std::map<std::string, uint32_t> inflight;
  /// Deliveries waiting for their retry time.
  std::multimap<caf::timestamp, delivery> retries;
  bool tick_armed = false;
  /// Random numbers for the retry jitter.
  jitter_source jitter{0};
  /// Why the last delivery that was given up failed (status and inspection).
  std::string last_error;
  /// Messages handled, their processing times, the last error (for status).
  actor_stats stats;
  uint64_t delivered_total = 0;
  uint64_t retried_total = 0;
  uint64_t given_up_total = 0;
};

/// "scheme://host:port" of a URL, the port always written (the unit of concurrency limits);
/// "" if unparsable.
std::string origin_of(const std::string& url);

/// Spawns with its config, the HTTP client, the store and metrics.
callbacks_impl_actor::behavior_type
callbacks(callbacks_impl_actor::stateful_pointer<callbacks_state> self, callbacks_config cfg,
          http_transport* http, store* db, metrics_actor metrics);

} // namespace lps
