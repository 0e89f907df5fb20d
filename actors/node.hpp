#pragma once

// The node actor: the one actor a cluster node publishes on CLUSTER_HOST:CLUSTER_PORT
// (app/cluster_transport). Through it the leader gets the node's provider actors (its
// bundler sends them bundles) and the node's inspection (?node=all). Its leader link
// (actors/node_link.*) sends the requests this node stored to the leader and asks the leader
// for the status only it knows; it keeps the bundler of the leader serving it, which a
// leaving node asks to retire it. The leader's provider gate syncs reach the node's gate
// through it.

#include "actors/cluster_actors.hpp"
#include "actors/node_link.hpp"
#include "actors/leader_inspection.hpp"
#include "actors/provider_gate.hpp"

#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <string>

namespace lps {

struct node_state {
  static inline const char* name = "node";
  std::string node_name;
  std::map<std::string, provider_actor> providers;
  inspector_actor inspector;
  /// New work to the leader and questions for it (actors/node_link.*).
  leader_link link;
  /// Over mutual TLS, the other nodes' node actors as the leader last handed them (empty
  /// while no leader is followed).
  node_peers peers;
  /// The bundler of the leader that last joined this node's providers (none yet: null).
  caf::actor leader_bundler;
  /// The inspector of the leader's singletons while this node leads.
  std::shared_ptr<const leader_inspection> leader;
  /// The node's provider gate: the leader's syncs reach it here.
  std::shared_ptr<provider_gate> gate;
};

/// A node that no leader's bundler reached this long after it started says so in its log
/// (with mutual TLS, a certificate from another CA is the usual reason).
constexpr auto node_unreached_warning = std::chrono::seconds{10};

/// Spawns with the node's name, its provider actors by name, its inspector, its metrics
/// (the leader link counts there the new work that reached it by message) and where the
/// inspector of the leader's singletons is while it leads, and its provider gate.
node_actor::behavior_type node(node_actor::stateful_pointer<node_state> self, std::string name,
                               std::map<std::string, provider_actor> providers,
                               inspector_actor inspector, metrics_actor metrics,
                               std::shared_ptr<const leader_inspection> leader,
                               std::shared_ptr<provider_gate> gate);

} // namespace lps
