#pragma once

// What crosses between cluster nodes through CAF's middleman (docs/cluster.md): a node's
// answer to the leader's question for its provider actors, and the provider gate's sync
// (the leader's limits, breakers and leases to a follower, the follower's use back).

#include "messages/comparison.hpp"
#include "messages/status.hpp"

#include <caf/actor.hpp>
#include <caf/meta/type_name.hpp>

#include <string>
#include <vector>

namespace lps {

/// A node's provider actors, as its node actor hands them to the leader. Handles travel
/// untyped (messages/ knows no actor interface); the leader casts them to provider_actor.
struct node_providers {
  /// CLUSTER_NODE_NAME of the node.
  std::string node;
  /// The node actor itself: the leader monitors it (a lost connection is a down message).
  caf::actor node_actor;
  /// Provider names and their actors, index for index.
  std::vector<std::string> names;
  std::vector<caf::actor> handles;
  friend bool operator==(const node_providers&, const node_providers&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_providers& x) {
  return f(caf::meta::type_name("lps.node_providers"), x.node, x.node_actor, x.names, x.handles);
}

/// The node actors the leader reached, its own among them, by node name (index for index).
/// Over mutual TLS only the leader opens connections: it hands each node this list through
/// its own connection, and the node reaches the others through the leader (docs/cluster.md,
/// "Security").
struct node_peers {
  std::vector<std::string> names;
  std::vector<caf::actor> handles;
  friend bool operator==(const node_peers&, const node_peers&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_peers& x) {
  return f(caf::meta::type_name("lps.node_peers"), x.names, x.handles);
}

/// The providers as the leader's bundler sees them (breaker, limits, bundles in flight), for
/// /api/v1/providers and /healthz on any node, with the name of the node that answered.
struct leader_providers {
  std::string node;
  std::vector<provider_status> providers;
  friend bool operator==(const leader_providers&, const leader_providers&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, leader_providers& x) {
  return f(caf::meta::type_name("lps.leader_providers"), x.node, x.providers);
}

/// One provider's gate as the leader sends it to a follower (docs/cluster.md, "Limits"):
/// its buckets and breaker to mirror, and the follower's lease. Counts of -1 mean unlimited.
struct gate_provider_state {
  std::string provider;
  /// The leader's request and token buckets after the lease was taken (whole units).
  int64_t requests_level = -1;
  int64_t tokens_level = -1;
  /// What is left of holds learned from the provider's rate-limit headers (0: none).
  int64_t requests_hold_ms = 0;
  int64_t tokens_hold_ms = 0;
  /// The leader's breaker: open for this much longer (0: it lets calls through).
  int64_t breaker_open_ms = 0;
  /// The leader's closed breaker: its consecutive failures so far (a next leader counts on).
  uint32_t breaker_failures = 0;
  /// The follower's lease: the gateway calls and tokens it may send until the next sync.
  int64_t lease_requests = -1;
  int64_t lease_tokens = -1;
  /// The leader's bundles in flight on the follower's provider actor (they take its slots).
  uint32_t bundles_on_node = 0;
  friend bool operator==(const gate_provider_state&, const gate_provider_state&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, gate_provider_state& x) {
  return f(caf::meta::type_name("lps.gate_provider_state"), x.provider, x.requests_level,
           x.tokens_level, x.requests_hold_ms, x.tokens_hold_ms, x.breaker_open_ms,
           x.breaker_failures, x.lease_requests, x.lease_tokens, x.bundles_on_node);
}

/// The leader's sync to one follower, every sync period.
struct gate_sync {
  std::vector<gate_provider_state> providers;
  /// How long the leases hold without the next sync (a leader gone).
  int64_t lease_ms = 0;
  friend bool operator==(const gate_sync&, const gate_sync&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, gate_sync& x) {
  return f(caf::meta::type_name("lps.gate_sync"), x.providers, x.lease_ms);
}

/// A follower's use of one provider since its previous sync: what the previous lease
/// was used for and what is left of it (the leader takes it back), and how its calls ended.
struct gate_provider_use {
  std::string provider;
  uint64_t used_requests = 0;
  uint64_t used_tokens = 0;
  uint64_t unused_requests = 0;
  uint64_t unused_tokens = 0;
  /// Gateway calls refused because the lease was spent (the follower wants more).
  uint64_t refused = 0;
  /// Gateway calls that ended since the previous sync: provider failures and the others.
  uint64_t failures = 0;
  uint64_t successes = 0;
  /// Gateway calls in flight now (they take the node's call slots).
  uint32_t gateway_inflight = 0;
  /// The tightest rate-limit figures the gateway calls' answers gave since the previous
  /// sync, their resets counted from now (empty: none); the leader's buckets learn them.
  rate_limit_hint limits;
  friend bool operator==(const gate_provider_use&, const gate_provider_use&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, gate_provider_use& x) {
  return f(caf::meta::type_name("lps.gate_provider_use"), x.provider, x.used_requests,
           x.used_tokens, x.unused_requests, x.unused_tokens, x.refused, x.failures, x.successes,
           x.gateway_inflight, x.limits);
}

/// A follower's answer to a gate_sync.
struct gate_report {
  std::vector<gate_provider_use> providers;
  friend bool operator==(const gate_report&, const gate_report&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, gate_report& x) {
  return f(caf::meta::type_name("lps.gate_report"), x.providers);
}

} // namespace lps
