#include "actors/node_routes.hpp"

namespace lps {

bool node_routes::add(const std::string& name, std::map<std::string, provider_actor> providers,
                      caf::actor_addr watched) {
  return nodes_
      .try_emplace(name, node_entry{std::move(providers), {}, std::move(watched), false, {}})
      .second;
}

std::vector<std::string> node_routes::remove(const std::string& name) {
  std::vector<std::string> result;
  if (nodes_.erase(name) == 0)
    return result;
  for (auto i = bundles_.begin(); i != bundles_.end();) {
    if (i->second.node == name) {
      result.push_back(i->first);
      i = bundles_.erase(i);
    } else {
      ++i;
    }
  }
  return result;
}

bool node_routes::retire(const std::string& name) {
  auto i = nodes_.find(name);
  if (i == nodes_.end())
    return false;
  i->second.retiring = true;
  return true;
}

std::string node_routes::node_watched_by(const caf::actor_addr& watched) const {
  for (const auto& [name, entry] : nodes_)
    if (entry.watched && entry.watched == watched)
      return name;
  return {};
}

std::optional<std::string> node_routes::pick(const std::string& provider, uint32_t cap) const {
  std::optional<std::string> result;
  uint32_t least = cap;
  for (const auto& [name, entry] : nodes_) {
    if (entry.retiring || entry.providers.count(provider) == 0)
      continue;
    auto i = entry.inflight.find(provider);
    auto g = entry.gateway.find(provider);
    auto n =
        (i == entry.inflight.end() ? 0u : i->second) + (g == entry.gateway.end() ? 0u : g->second);
    if (n < least) {
      least = n;
      result = name;
    }
  }
  return result;
}

void node_routes::set_gateway_calls(const std::string& node, const std::string& provider,
                                    uint32_t calls) {
  if (auto i = nodes_.find(node); i != nodes_.end())
    i->second.gateway[provider] = calls;
}

uint32_t node_routes::inflight_on(const std::string& node, const std::string& provider) const {
  auto i = nodes_.find(node);
  if (i == nodes_.end())
    return 0;
  auto j = i->second.inflight.find(provider);
  return j == i->second.inflight.end() ? 0 : j->second;
}

const provider_actor& node_routes::handle(const std::string& node,
                                          const std::string& provider) const {
  return nodes_.at(node).providers.at(provider);
}

void node_routes::start(const std::string& id, const std::string& node,
                        const std::string& provider) {
  ++nodes_.at(node).inflight[provider];
  bundles_.insert_or_assign(id, routed_bundle{node, provider});
}

std::optional<routed_bundle> node_routes::finish(const std::string& id) {
  auto i = bundles_.find(id);
  if (i == bundles_.end())
    return std::nullopt;
  auto result = std::move(i->second);
  bundles_.erase(i);
  if (auto n = nodes_.find(result.node); n != nodes_.end())
    --n->second.inflight[result.provider];
  return result;
}

uint32_t node_routes::inflight(const std::string& provider) const {
  uint32_t result = 0;
  for (const auto& [name, entry] : nodes_)
    if (auto i = entry.inflight.find(provider); i != entry.inflight.end())
      result += i->second;
  return result;
}

uint32_t node_routes::inflight_of(const std::string& node) const {
  uint32_t result = 0;
  if (auto i = nodes_.find(node); i != nodes_.end())
    for (const auto& [provider, n] : i->second.inflight)
      result += n;
  return result;
}

std::vector<std::string> node_routes::nodes() const {
  std::vector<std::string> result;
  for (const auto& [name, entry] : nodes_)
    result.push_back(name);
  return result;
}

} // namespace lps
