#pragma once

// The leader's side of a cluster cancel (issue #11, docs/cluster.md): the store poller hands
// on each cancel asked on any node; this asks the leader's queue manager to apply it (as the
// route does on a single node) and gives its answer back to the poller, which records it for
// the asking node.

#include "actors/actors.hpp"
#include "runtime/store_poller.hpp"

#include <caf/actor_system.hpp>

namespace lps {

/// A cancels sink for the poller of the leader whose queue manager is `queue`; each cancel
/// waits at most `timeout` for the queue's answer (then the poller hands it on again).
cluster::cancels_sink leader_cancels(caf::actor_system& sys, queue_manager_actor queue,
                                     caf::timespan timeout);

} // namespace lps
