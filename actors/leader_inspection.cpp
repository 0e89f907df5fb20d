#include "actors/leader_inspection.hpp"

namespace lps {

void leader_inspection::lead(inspector_actor x) {
  std::lock_guard lock{mutex_};
  local_ = std::move(x);
}

void leader_inspection::step_down() {
  std::lock_guard lock{mutex_};
  local_ = nullptr;
}

inspector_actor leader_inspection::local() const {
  std::lock_guard lock{mutex_};
  return local_;
}

void leader_inspection::set_source(std::function<std::optional<node_endpoint>()> source) {
  std::lock_guard lock{mutex_};
  source_ = std::move(source);
}

// Called under the lock, so a member clearing its source waits for a call under way.
std::optional<node_endpoint> leader_inspection::find() const {
  std::lock_guard lock{mutex_};
  if (!source_)
    return std::nullopt;
  return source_();
}

void leader_inspection::set_peers(std::function<std::vector<node_endpoint>()> source) {
  std::lock_guard lock{mutex_};
  peers_ = std::move(source);
}

// Under the lock too, for the same reason as find().
std::vector<node_endpoint> leader_inspection::peers() const {
  std::lock_guard lock{mutex_};
  if (!peers_)
    return {};
  return peers_();
}

} // namespace lps
