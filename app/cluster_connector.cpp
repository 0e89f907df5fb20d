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
      if (cluster_uses_tls(sys_))
        tell_leader(*providers);
      caf::anon_send(bundler, atom::join_v, std::move(*providers));
    } else if (!failure.empty()) {
      note_unreachable(n, failure);
    }
  }
}

// The live leader's node actor, or a null handle when none leads or it cannot be reached
// (the node actor then sends nothing: the leader's store poller finds the new work).
void cluster_connector::follow(const cluster::cluster_view& view) {
  if (!local_)
    return;
  if (cluster_uses_tls(sys_)) {
    // Over mutual TLS a follower opens no connection of its own (see tell_leader): it only
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
               n.node.name, n.node.host, n.node.port, failure,
               cluster_uses_tls(sys_) ? ": with mutual TLS, its certificate must be signed by "
                                        "this node's CLUSTER_TLS_CA"
                                      : "");
}

// Over mutual TLS, CAF 0.17's middleman loses the answers between two nodes that have each
// opened a connection to the other (the leader's requests to a follower time out), so only
// the leader connects, and it hands each node its own node actor through that connection
// for the leader link (on plain TCP every follower reaches the leader itself).
void cluster_connector::tell_leader(const node_providers& node) {
  if (node.node_actor)
    caf::anon_send(caf::actor_cast<node_actor>(node.node_actor), atom::follow_v, self_,
                   caf::actor_cast<caf::actor>(local_));
}

} // namespace lps
