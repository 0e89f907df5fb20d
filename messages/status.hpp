#pragma once

// What every actor reports about itself (the inspection protocol).

#include <caf/meta/type_name.hpp>
#include <caf/timestamp.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lps {

/// One row of a table an actor shows (a recent bundle, a queue by provider and model):
/// numbers and texts by column name.
struct status_row {
  std::map<std::string, double> figures;
  std::map<std::string, std::string> facts;
  friend bool operator==(const status_row&, const status_row&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, status_row& x) {
  return f(caf::meta::type_name("lps.status_row"), x.figures, x.facts);
}

/// One actor's self-report for /api/v1/inspect.
struct actor_status {
  std::string name;
  /// intake, queue_manager, bundler, provider, callbacks, metrics, inspector.
  std::string kind;
  uint64_t mailbox_size = 0;
  uint64_t messages_handled = 0;
  /// Numeric figures of the actor (queue depth by status, bundles formed, ...).
  std::map<std::string, double> figures;
  /// Textual facts (mode, state).
  std::map<std::string, std::string> facts;
  /// The node it runs on (set by the inspector that asked).
  std::string node = {};
  /// How long its handlers took, since start, for one message in 16: one count per bucket
  /// of actors/status_report.hpp (bucket i: under 2^i microseconds; the last one: longer).
  std::vector<uint64_t> processing_time_counts = {};
  /// The last error it noted ("": none since start).
  std::string last_error = {};
  /// Tables that are only displayed, by name ("recent_bundles", "items_per_call", "queue",
  /// "providers"); the inspector keeps them in its latest snapshot only.
  std::map<std::string, std::vector<status_row>> tables = {};
  friend bool operator==(const actor_status&, const actor_status&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_status& x) {
  return f(caf::meta::type_name("lps.actor_status"), x.name, x.kind, x.mailbox_size,
           x.messages_handled, x.figures, x.facts, x.node, x.processing_time_counts, x.last_error,
           x.tables);
}

/// One actor in an inspection snapshot: its answer and what the inspector derived from it.
struct actor_sample {
  actor_status status;
  /// False: it did not answer within the inspector's timeout (500 ms); `status` then holds
  /// the name and kind of its last answer.
  bool responsive = true;
  /// Messages handled per second since the previous snapshot.
  double handled_per_second = 0;
  /// Processing-time percentiles since start, in milliseconds (the upper bound of the
  /// bucket the percentile falls in; 0: nothing handled).
  double p50_ms = 0;
  double p90_ms = 0;
  double p99_ms = 0;
  friend bool operator==(const actor_sample&, const actor_sample&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_sample& x) {
  return f(caf::meta::type_name("lps.actor_sample"), x.status, x.responsive, x.handled_per_second,
           x.p50_ms, x.p90_ms, x.p99_ms);
}

/// A node's own figures as its inspector's newest snapshot shows them (the nodes view). In a
/// cluster each node's inspector asks the other nodes for theirs every second.
struct node_figures {
  std::string node;
  /// The snapshot they come from (seq 0: none yet, the figures unknown) and when it was taken.
  uint64_t seq = 0;
  caf::timestamp at;
  /// Provider calls its provider actors have in flight.
  uint64_t in_flight_calls = 0;
  /// Its own actors (not the leader's singletons it lists besides them), and how many of
  /// them did not answer its inspector within 500 ms.
  uint64_t actors = 0;
  uint64_t unresponsive_actors = 0;
  /// Kept by another node's inspector: why the node gave no answer to the last question
  /// ("": it answered); the figures are then the last known ones.
  std::string error = {};
  friend bool operator==(const node_figures&, const node_figures&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_figures& x) {
  return f(caf::meta::type_name("lps.node_figures"), x.node, x.seq, x.at, x.in_flight_calls,
           x.actors, x.unresponsive_actors, x.error);
}

/// What the inspector saw at one sample (one a second).
struct inspection_snapshot {
  /// Counts the samples since start (1 is the first).
  uint64_t seq = 0;
  caf::timestamp at;
  /// The node the inspector runs on.
  std::string node;
  std::vector<actor_sample> actors;
  /// Cluster mode: every other registered node's figures as it answered this sample (or
  /// the last known ones, with why it did not answer), in registry order.
  std::vector<node_figures> peers = {};
  friend bool operator==(const inspection_snapshot&, const inspection_snapshot&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, inspection_snapshot& x) {
  return f(caf::meta::type_name("lps.inspection_snapshot"), x.seq, x.at, x.node, x.actors, x.peers);
}

/// One provider as the bundler sees it (GET /api/v1/providers, /healthz, the inspector).
struct provider_status {
  std::string name;
  /// Its circuit breaker: "closed", "open" or "half_open".
  std::string circuit_state = "closed";
  /// How often its breaker opened since start.
  uint64_t breaker_opened_total = 0;
  /// Bundles handed to it and not answered yet.
  uint64_t inflight_bundles = 0;
  /// How long its breaker or rate limit still keeps it from taking a bundle (0: not blocked).
  std::chrono::milliseconds blocked_for{0};
  /// The error code of the rejected key that paused it ("": not paused).
  std::string paused_by;
  friend bool operator==(const provider_status&, const provider_status&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, provider_status& x) {
  return f(caf::meta::type_name("lps.provider_status"), x.name, x.circuit_state,
           x.breaker_opened_total, x.inflight_bundles, x.blocked_for, x.paused_by);
}

} // namespace lps
