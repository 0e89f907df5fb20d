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

void leader_inspection::set_source(std::function<std::optional<leader_endpoint>()> source) {
  std::lock_guard lock{mutex_};
  source_ = std::move(source);
}

// Called under the lock, so a member clearing its source waits for a call under way.
std::optional<leader_endpoint> leader_inspection::find() const {
  std::lock_guard lock{mutex_};
  if (!source_)
    return std::nullopt;
  return source_();
}

} // namespace lps
