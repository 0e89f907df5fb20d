#include "app/cluster_connector.hpp"

#include "app/cluster_transport.hpp"
#include "runtime/cluster_tls.hpp"
#include "runtime/logging.hpp"

#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <chrono>

namespace lps {

namespace {

// A live node answers on loopback within milliseconds; a paused one never does.
constexpr auto connect_timeout = std::chrono::seconds{1};

std::shared_ptr<spdlog::logger> log() {
  static auto logger = get_logger("cluster");
  return logger;
}

// The provider actors of the node published on host:port, or nothing (logged once per
// failure kind by the caller's next tick trying again).
std::optional<node_providers> providers_of(caf::actor_system& sys, const cluster::node_info& n,
                                           std::string& failure) {
  auto node = connect_node(sys, n.node.host, n.node.port, connect_timeout);
  if (!node) {
    failure = caf::to_string(node.error());
    return std::nullopt;
  }
  std::optional<node_providers> result;
  caf::scoped_actor self{sys};
  self->request(*node, connect_timeout, atom::providers_v)
      .receive([&](node_providers& x) { result = std::move(x); },
               [&](caf::error& err) {
                 LPS_LOG_DEBUG(log(), "node {} did not name its providers: {}", n.node.name,
                               caf::to_string(err));
               });
  return result;
}

// With mutual TLS the usual reason a node cannot be reached is a certificate from another CA.
std::string tls_hint(caf::actor_system& sys) {
  return cluster_uses_tls(sys) ? ": with mutual TLS, its certificate must be signed by this "
                                 "node's CLUSTER_TLS_CA"
                               : "";
}

// Why a node cannot be reached, for GET /api/v1/cluster (CAF's error names no key or
// certificate content).
std::string unreachable_reason(caf::actor_system& sys, const std::string& failure) {
  return "cannot reach it through the middleman (" + failure + ")" + tls_hint(sys);
}

} // namespace

cluster_connector::cluster_connector(caf::actor_system& sys, std::string self, node_actor local)
    : sys_(sys), self_(std::move(self)), local_(std::move(local)) {
  thread_ = std::thread{[this] { run(); }};
}

cluster_connector::~cluster_connector() {
  {
    std::lock_guard lock{mutex_};
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void cluster_connector::serve(cluster_bundler_actor bundler) {
  std::lock_guard lock{mutex_};
  bundler_ = std::move(bundler);
}

void cluster_connector::update(cluster::cluster_view view) {
  {
    std::lock_guard lock{mutex_};
    view_ = std::move(view);
  }
  wake_.notify_all();
}

void cluster_connector::run() {
  std::unique_lock lock{mutex_};
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || view_.has_value(); });
    if (stopping_)
      return;
    auto view = std::move(*view_);
    view_.reset();
    auto bundler = bundler_;
    lock.unlock();
    if (bundler)
      link(bundler, view);
    else
      follow(view);
    lock.lock();
  }
}

// Every other live node joins (again: the bundler ignores a node it serves) unless it is
// leaving; a stale one leaves. A node that stopped registering (removed) is left to its down
// message.
void cluster_connector::link(const cluster_bundler_actor& bundler,
                             const cluster::cluster_view& view) {
  std::vector<node_providers> reached;
  std::map<std::string, std::string> failures;
  for (const auto& n : view.nodes) {
    if (n.node.name == self_)
      continue;
    if (!n.live) {
      caf::anon_send(bundler, atom::leave_v, n.node.name);
      continue;
    }
    if (n.leaving) // it retires itself through its node actor; never join it again
      continue;
    std::string failure;
    if (auto providers = providers_of(sys_, n, failure)) {
      failures_.erase(n.node.name);
      reached.push_back(*providers);
      caf::anon_send(bundler, atom::join_v, std::move(*providers));
    } else if (!failure.empty()) {
      note_unreachable(n, failure);
      failures.emplace(n.node.name, unreachable_reason(sys_, failure));
    }
  }
  if (cluster_uses_tls(sys_))
    tell_followers(reached);
  note_failures(std::move(failures));
}

// The live leader's node actor, or a null handle when none leads or it cannot be reached
// (the node actor then sends nothing: the leader's store poller finds the new work).
void cluster_connector::follow(const cluster::cluster_view& view) {
  failures_.clear();
  note_failures({});
  if (!local_)
    return;
  if (cluster_uses_tls(sys_)) {
    // Over mutual TLS a follower opens no connection of its own (see tell_followers): it only
    // forgets the leader once none leads or it leads itself.
    if (!view.lease_live || view.leader.empty() || view.leader == self_)
      caf::anon_send(local_, atom::follow_v, std::string{}, caf::actor{});
    return;
  }
  caf::actor leader;
  if (view.lease_live && !view.leader.empty() && view.leader != self_) {
    for (const auto& n : view.nodes) {
      if (n.node.name != view.leader || !n.live)
        continue;
      auto node = connect_node(sys_, n.node.host, n.node.port, connect_timeout);
      if (node)
        leader = caf::actor_cast<caf::actor>(*node);
      else
        LPS_LOG_DEBUG(log(), "cannot reach the leader {} at {}:{}: {}", n.node.name, n.node.host,
                      n.node.port, caf::to_string(node.error()));
    }
  }
  caf::anon_send(local_, atom::follow_v, leader ? view.leader : std::string{}, leader);
}

// Once per node and reason (every tick tries again): a node the leader cannot reach takes
// no bundles, and with mutual TLS the usual reason is a certificate from another CA.
void cluster_connector::note_unreachable(const cluster::node_info& n, const std::string& failure) {
  auto& last = failures_[n.node.name];
  if (last == failure)
    return;
  last = failure;
  LPS_LOG_WARN(log(),
               "cannot reach node {} at {}:{} through the middleman ({}){}; it takes no "
               "bundles until it can be reached",
               n.node.name, n.node.host, n.node.port, failure, tls_hint(sys_));
}

void cluster_connector::note_failures(std::map<std::string, std::string> failures) {
  std::lock_guard lock{mutex_};
  unreachable_ = std::move(failures);
}

std::map<std::string, std::string> cluster_connector::unreachable() const {
  std::lock_guard lock{mutex_};
  return unreachable_;
}

// Over mutual TLS, CAF 0.17's middleman loses the answers between two nodes that have each
// opened a connection to the other (the leader's requests to a follower time out), so only
// the leader connects. Through that one connection it hands each node it reached its own
// node actor (the leader link) and the node actors of every node it reached (inspection):
// a follower's message to another follower then goes through the leader, since CAF's BASP
// takes a handle that came from the leader as a route via the leader and forwards messages
// between two nodes it is connected to. On plain TCP every node connects to every other.
void cluster_connector::tell_followers(const std::vector<node_providers>& reached) {
  node_peers peers{{self_}, {caf::actor_cast<caf::actor>(local_)}};
  for (const auto& node : reached)
    if (node.node_actor) {
      peers.names.push_back(node.node);
      peers.handles.push_back(node.node_actor);
    }
  for (const auto& node : reached)
    if (node.node_actor) {
      auto follower = caf::actor_cast<node_actor>(node.node_actor);
      caf::anon_send(follower, atom::follow_v, self_, caf::actor_cast<caf::actor>(local_));
      caf::anon_send(follower, atom::peers_v, peers);
    }
}

std::map<std::string, node_actor> nodes_reached_by_leader(caf::actor_system& sys,
                                                          const node_actor& own) {
  std::map<std::string, node_actor> result;
  caf::scoped_actor self{sys};
  self->request(own, connect_timeout, atom::peers_v)
      .receive(
          [&](node_peers& peers) {
            for (size_t i = 0; i < peers.names.size() && i < peers.handles.size(); ++i)
              result.emplace(peers.names[i], caf::actor_cast<node_actor>(peers.handles[i]));
          },
          [&](caf::error& err) {
            LPS_LOG_DEBUG(log(), "the node actor did not name the nodes the leader reached: {}",
                          caf::to_string(err));
          });
  return result;
}

} // namespace lps
