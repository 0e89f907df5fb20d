#include "app/cluster_peers.hpp"

#include "app/cluster_connector.hpp"
#include "app/cluster_transport.hpp"
#include "runtime/cluster_tls.hpp"
#include "runtime/logging.hpp"

#include <chrono>

namespace lps {

namespace {

// A live node answers on loopback within milliseconds; a paused one never does.
constexpr auto connect_timeout = std::chrono::seconds{1};

const cluster::node_info* find_node(const cluster::cluster_view& view, const std::string& name) {
  for (const auto& n : view.nodes)
    if (n.node.name == name)
      return &n;
  return nullptr;
}

} // namespace

cluster_peers::cluster_peers(caf::actor_system& sys, std::string self, node_actor own)
    : sys_(sys), self_(std::move(self)), own_(std::move(own)) {
  thread_ = std::thread{[this] { run(); }};
}

cluster_peers::~cluster_peers() {
  {
    std::lock_guard lock{mutex_};
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void cluster_peers::update(cluster::cluster_view view) {
  {
    std::lock_guard lock{mutex_};
    view_ = std::move(view);
    fresh_ = true;
  }
  wake_.notify_all();
}

std::vector<cluster_peer> cluster_peers::nodes() const {
  std::lock_guard lock{mutex_};
  std::vector<cluster_peer> result;
  for (const auto& n : view_.nodes) {
    cluster_peer peer{n.node.name, {}, n.live};
    if (n.node.name == self_)
      peer.handle = own_;
    else if (auto i = links_.find(n.node.name); i != links_.end())
      peer.handle = i->second.handle;
    result.push_back(std::move(peer));
  }
  return result;
}

std::optional<node_endpoint> cluster_peers::leader() const {
  std::lock_guard lock{mutex_};
  if (view_.leader.empty() || !view_.lease_live)
    return std::nullopt;
  node_endpoint result{view_.leader, {}};
  if (view_.leader == self_)
    result.handle = own_;
  else if (auto i = links_.find(view_.leader); i != links_.end())
    result.handle = i->second.handle;
  return result;
}

std::vector<node_endpoint> cluster_peers::others() const {
  std::vector<node_endpoint> result;
  for (auto& peer : nodes())
    if (peer.name != self_)
      result.push_back({std::move(peer.name), std::move(peer.handle)});
  return result;
}

void cluster_peers::run() {
  std::unique_lock lock{mutex_};
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || fresh_; });
    if (stopping_)
      return;
    fresh_ = false;
    auto view = view_;
    lock.unlock();
    connect(view);
    lock.lock();
  }
}

// Links every live node not linked at its incarnation yet; forgets the nodes that left the
// registry. A node whose heartbeat went stale keeps its link: asking it fails fast once the
// connection is gone, and a paused node is shown unresponsive by the asker's timeout.
void cluster_peers::connect(const cluster::cluster_view& view) {
  std::map<std::string, link> kept;
  {
    std::lock_guard lock{mutex_};
    for (const auto& n : view.nodes)
      if (auto i = links_.find(n.node.name);
          i != links_.end() && i->second.incarnation == n.incarnation)
        kept.insert(*i);
  }
  // Over mutual TLS only the leader opens connections (app/cluster_connector.cpp says why):
  // a follower takes the node actors the leader handed it, and a leader links every node
  // anew (CAF reuses its connections), so no handle routed through an earlier leader stays.
  auto tls = cluster_uses_tls(sys_);
  auto through_leader = tls && view.leader != self_;
  if (tls)
    kept.clear();
  if (through_leader)
    for (auto& [name, handle] : nodes_reached_by_leader(sys_, own_))
      if (auto n = find_node(view, name); n != nullptr && name != self_)
        kept[name] = link{n->incarnation, std::move(handle)};
  for (const auto& n : view.nodes) {
    if (through_leader || n.node.name == self_ || !n.live || kept.count(n.node.name) > 0)
      continue;
    auto handle = connect_node(sys_, n.node.host, n.node.port, connect_timeout);
    if (!handle) {
      LPS_LOG_DEBUG(get_logger("cluster"), "inspection: cannot reach node {} at {}:{}: {}",
                    n.node.name, n.node.host, n.node.port, caf::to_string(handle.error()));
      continue;
    }
    kept[n.node.name] = link{n.incarnation, std::move(*handle)};
  }
  std::lock_guard lock{mutex_};
  links_ = std::move(kept);
}

} // namespace lps
