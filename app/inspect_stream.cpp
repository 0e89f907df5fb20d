#include "app/inspect_stream.hpp"
#include "runtime/inspect_bodies.hpp"

#include <algorithm>

namespace lps {

std::string render_inspect_event(const inspection_snapshot& snapshot, const node_directory* nodes) {
  auto result = "id: " + std::to_string(snapshot.seq)
                + "\ndata: " + render_inspect_view(snapshot, inspect_view::all, nodes) + "\n\n";
  if (snapshot.seq % keep_alive_every == 0)
    result += ": keep-alive\n\n";
  return result;
}

void inspect_stream_hub::add(std::shared_ptr<http_body_stream> client) {
  if (!client->write(": lps inspection stream\nretry: 1000\n\n"))
    return;
  std::lock_guard<std::mutex> lock{mutex_};
  clients_.push_back(std::move(client));
}

void inspect_stream_hub::publish(const inspection_snapshot& snapshot) {
  std::lock_guard<std::mutex> lock{mutex_};
  if (clients_.empty())
    return;
  auto dir = nodes();
  auto event = render_inspect_event(snapshot, dir ? &*dir : nullptr);
  std::erase_if(clients_, [&](const auto& client) { return !client->write(event); });
}

void inspect_stream_hub::set_nodes(std::function<node_directory()> source) {
  std::lock_guard<std::mutex> lock{nodes_mutex_};
  nodes_ = std::move(source);
}

std::optional<node_directory> inspect_stream_hub::nodes() const {
  std::lock_guard<std::mutex> lock{nodes_mutex_};
  if (!nodes_)
    return std::nullopt;
  return nodes_();
}

size_t inspect_stream_hub::clients() const {
  std::lock_guard<std::mutex> lock{mutex_};
  return clients_.size();
}

} // namespace lps
