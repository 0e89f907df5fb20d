#pragma once

// Where the bundler sends a provider's bundles: to that provider's actor on one of the
// cluster's nodes (one node, its own, outside cluster mode). A plain class (no messaging):
// it picks the node with the fewest bundles in flight to the provider below the per-node
// cap, and tracks each bundle in flight by node, so the bundles of a node that is gone can
// be put back at once (docs/cluster.md).

#include "actors/actors.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lps {

/// A bundle in flight: the node it went to and its provider.
struct routed_bundle {
  std::string node;
  std::string provider;
};

class node_routes {
public:
  /// Adds node `name` with its provider actors; false when a node of that name is served
  /// already (it keeps its handles and bundles).
  bool add(const std::string& name, std::map<std::string, provider_actor> providers,
           caf::actor_addr watched = {});

  /// Removes node `name`; returns the ids of its bundles in flight, which it no longer
  /// tracks (the caller puts them back).
  std::vector<std::string> remove(const std::string& name);

  /// Node `name` leaves: pick() no longer chooses it; its bundles in flight stay tracked
  /// until they finish or it is removed. False when the node is not served.
  bool retire(const std::string& name);

  /// Whether node `name` is served.
  bool has(const std::string& name) const {
    return nodes_.count(name) > 0;
  }

  /// The node whose actor is `watched` (a down message's source), or "".
  std::string node_watched_by(const caf::actor_addr& watched) const;

  /// The node with the fewest calls in flight to `provider` (its bundles and its gateway
  /// calls) among those below `cap`, a retiring node never (ties: the first by name);
  /// nullopt when every node is full or none has the provider.
  std::optional<std::string> pick(const std::string& provider, uint32_t cap) const;

  /// Node `node` has `calls` gateway calls in flight to `provider` (they take call slots
  /// too); ignored for a node not served.
  void set_gateway_calls(const std::string& node, const std::string& provider, uint32_t calls);

  /// Bundles in flight to `provider` on `node`.
  uint32_t inflight_on(const std::string& node, const std::string& provider) const;

  /// The actor of `provider` on `node` (must exist: pick() chose it).
  const provider_actor& handle(const std::string& node, const std::string& provider) const;

  /// Bundle `id` went to `provider` on `node`.
  void start(const std::string& id, const std::string& node, const std::string& provider);

  /// Bundle `id` ended; nullopt when it is not tracked (its node was removed: the bundle was
  /// put back already, so its late answer must be dropped).
  std::optional<routed_bundle> finish(const std::string& id);

  /// Bundles in flight to `provider` (all nodes).
  uint32_t inflight(const std::string& provider) const;

  /// Bundles in flight to `node` (all providers).
  uint32_t inflight_of(const std::string& node) const;

  /// The nodes served, by name.
  std::vector<std::string> nodes() const;

private:
  struct node_entry {
    std::map<std::string, provider_actor> providers;
    std::map<std::string, uint32_t> inflight;
    caf::actor_addr watched;
    bool retiring = false;
    /// Gateway calls in flight per provider, as last reported.
    std::map<std::string, uint32_t> gateway;
  };
  std::map<std::string, node_entry> nodes_;
  std::map<std::string, routed_bundle> bundles_;
};

} // namespace lps
