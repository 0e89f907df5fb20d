#pragma once

// Where a cluster node's intake-only queue manager hands the requests it just stored
// (queue_manager_config::on_stored): to the node actor, which sends them on to the leader
// (docs/cluster.md, "New work reaches the leader"). The queue manager is spawned before the
// node actor exists, so the node actor is attached here once the node joins; until then, and
// without cluster mode, nothing is sent (the leader's store poller finds every request).

#include "messages/type_ids.hpp"

#include <caf/actor.hpp>
#include <caf/send.hpp>

#include <mutex>
#include <utility>
#include <vector>

namespace lps {

class new_work_sink {
public:
  /// The node actor that takes `adopt` messages from now on.
  void attach(caf::actor node) {
    std::lock_guard lock{mutex_};
    node_ = std::move(node);
  }

  /// Called on the queue manager's thread after each committed insert; never blocks.
  void hand_on(std::vector<adopted_request>&& rows) {
    caf::actor node;
    {
      std::lock_guard lock{mutex_};
      node = node_;
    }
    if (node && !rows.empty())
      caf::anon_send(node, atom::adopt_v, std::move(rows));
  }

private:
  std::mutex mutex_;
  caf::actor node_;
};

} // namespace lps
