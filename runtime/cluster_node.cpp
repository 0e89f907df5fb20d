#include "runtime/cluster_node.hpp"

#include "runtime/cluster_lease.hpp"

#include <spdlog/spdlog.h>

namespace lps::cluster {

const char* to_string(node_state x) {
  switch (x) {
  case node_state::up:
    return "up";
  case node_state::suspect:
    return "suspect";
  case node_state::leaving:
    return "leaving";
  case node_state::unreachable:
    return "unreachable";
  case node_state::down:
    break;
  }
  return "down";
}

node_state state_of(std::chrono::milliseconds heartbeat_age, std::chrono::milliseconds lease,
                    bool leaving) {
  if (leaving && heartbeat_age <= lease)
    return node_state::leaving;
  if (heartbeat_age <= lease / 2)
    return node_state::up;
  return heartbeat_age <= lease ? node_state::suspect : node_state::down;
}

node_state state_in(const cluster_view& view, const node_info& n) {
  auto state = state_of(n.heartbeat_age, view.lease, n.leaving);
  if ((state == node_state::up || state == node_state::suspect)
      && view.unreachable.count(n.node.name) > 0)
    return node_state::unreachable;
  return state;
}

std::unique_ptr<node> node::start(node_settings settings, node_hooks hooks, std::string& error) {
  std::unique_ptr<node> result{new node(std::move(settings), std::move(hooks))};
  result->db_ =
      pg::connection::open(result->settings_.postgres_url, std::chrono::seconds{10}, error);
  if (!result->db_)
    return nullptr;
  node_registry registry{*result->db_};
  auto incarnation = registry.register_node(result->settings_.self, result->settings_.lease);
  if (!incarnation) {
    error = "cannot join the cluster: " + registry.error();
    return nullptr;
  }
  result->incarnation_ = *incarnation;
  result->refresh_view();
  result->thread_ = std::thread{[n = result.get()] { n->run(); }};
  return result;
}

node::node(node_settings settings, node_hooks hooks)
    : settings_(std::move(settings)), hooks_(std::move(hooks)) {}

node::~node() {
  {
    std::lock_guard lock{mutex_};
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable())
    thread_.join();
  if (epoch_ > 0) {
    hooks_.step_down();
    lease{*db_}.release(settings_.self.name, epoch_);
    spdlog::info("cluster: {} released the leader lease (epoch {})", settings_.self.name, epoch_);
  }
  node_registry{*db_}.remove(settings_.self.name);
}

void node::begin_leaving() {
  {
    std::lock_guard lock{mutex_};
    leaving_ = true;
  }
  wake_.notify_all();
}

cluster_view node::view() const {
  std::lock_guard lock{mutex_};
  return view_;
}

void node::run() {
  std::unique_lock lock{mutex_};
  while (!stopping_) {
    lock.unlock();
    tick();
    lock.lock();
    wake_.wait_for(lock, settings_.tick,
                   [this] { return stopping_ || (leaving_ && !leaving_marked_); });
  }
}

// Heartbeat, then the lease: renew it while leading (step down the moment that fails), else
// try to take it. A heartbeat refused because a newer process of this name registered means
// two processes share a name: this one stops leading and registers again only when the other
// is gone.
void node::tick() {
  const auto& name = settings_.self.name;
  bool leaving = false;
  {
    std::lock_guard lock{mutex_};
    leaving = leaving_;
  }
  node_registry registry{*db_};
  if (!registry.heartbeat(name, incarnation_)) {
    spdlog::warn("cluster: heartbeat of {} failed: {}", name,
                 registry.error().empty() ? "its registration was replaced" : registry.error());
    if (registry.error().empty())
      if (auto again = registry.register_node(settings_.self, settings_.lease))
        incarnation_ = *again;
  }
  if (leaving && !leaving_marked_) {
    bool marked = registry.mark_leaving(name, incarnation_);
    std::lock_guard lock{mutex_};
    leaving_marked_ = marked;
    if (!marked)
      spdlog::warn("cluster: {} could not mark itself leaving: {}", name, registry.error());
  }
  lease leader{*db_};
  if (epoch_ > 0 && !leader.renew(name, epoch_, settings_.lease)) {
    spdlog::warn("cluster: {} lost the leader lease at epoch {} ({}); stepping down", name, epoch_,
                 leader.error().empty() ? "another node took it over" : leader.error());
    epoch_ = 0;
    hooks_.step_down();
  } else if (epoch_ == 0 && !leaving) { // a leaving node takes no lease
    if (auto epoch = leader.try_acquire(name, settings_.lease)) {
      epoch_ = *epoch;
      spdlog::info("cluster: {} leads at epoch {}", name, epoch_);
      hooks_.lead(epoch_);
    }
  }
  refresh_view();
  if (hooks_.tick)
    hooks_.tick(view());
}

void node::refresh_view() {
  cluster_view v;
  v.self = settings_.self.name;
  v.self_leads = epoch_ > 0;
  v.lease = settings_.lease;
  lease leader{*db_};
  if (auto state = leader.read()) {
    v.leader = state->holder;
    v.epoch = state->epoch;
    v.lease_live = state->live;
  } else {
    v.error = leader.error();
  }
  node_registry registry{*db_};
  v.nodes = registry.list(settings_.lease);
  if (v.error.empty())
    v.error = registry.error();
  std::lock_guard lock{mutex_};
  view_ = std::move(v);
}

} // namespace lps::cluster
