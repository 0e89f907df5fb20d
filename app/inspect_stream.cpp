#include "app/inspect_stream.hpp"
#include "runtime/inspect_bodies.hpp"

#include <algorithm>

namespace lps {

std::string render_inspect_event(const inspection_snapshot& snapshot) {
  auto result = "id: " + std::to_string(snapshot.seq)
                + "\ndata: " + render_inspect_view(snapshot, inspect_view::all) + "\n\n";
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
  auto event = render_inspect_event(snapshot);
  std::erase_if(clients_, [&](const auto& client) { return !client->write(event); });
}

size_t inspect_stream_hub::clients() const {
  std::lock_guard<std::mutex> lock{mutex_};
  return clients_.size();
}

} // namespace lps
