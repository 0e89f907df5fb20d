#pragma once

// The clients of GET /api/v1/inspect/stream: each gets every inspection snapshot as one
// server-sent event (docs/api.md, "Inspection").

#include "messages/status.hpp"
#include "runtime/http_server.hpp"
#include "runtime/inspect_bodies.hpp"

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace lps {

/// Every `keep_alive_every`-th event is followed by a comment line: a proxy that closes
/// streams without traffic it understands still sees the connection used.
constexpr uint64_t keep_alive_every = 15;

class inspect_stream_hub {
public:
  /// A new client: its stream opens with a comment (so it sees bytes at once) and the
  /// reconnect delay, then it gets every snapshot.
  void add(std::shared_ptr<http_body_stream> client);

  /// Sends `snapshot` to every client as one event (`id:` and `data:` lines); forgets the
  /// clients whose stream has ended. Called on the inspector's thread: it only queues text.
  void publish(const inspection_snapshot& snapshot);

  /// Clients whose stream has not been seen to end.
  size_t clients() const;

  /// Where the nodes of each event (and of GET /api/v1/inspect/nodes) come from: set once
  /// the node knows them (the cluster's view once it joined); it must not block.
  void set_nodes(std::function<node_directory()> source);

  /// The nodes as `set_nodes`' source gives them now (nullopt until it is set).
  std::optional<node_directory> nodes() const;

private:
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<http_body_stream>> clients_;
  mutable std::mutex nodes_mutex_;
  std::function<node_directory()> nodes_;
};

/// One server-sent event of `snapshot` with the nodes of `nodes` (nullptr: this node alone),
/// and the keep-alive comment when it is due.
std::string render_inspect_event(const inspection_snapshot& snapshot,
                                 const node_directory* nodes = nullptr);

} // namespace lps
