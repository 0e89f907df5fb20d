#pragma once

// Bodies of the /api/v1/inspect/* routes and of the inspection stream's events, rendered from
// the inspector's snapshots (docs/api.md, "Inspection").

#include "messages/status.hpp"

#include <string>
#include <vector>

namespace lps {

/// What of a snapshot a body shows.
enum class inspect_view {
  /// Every actor: name, kind, node, responsive, mailbox, messages and their rate,
  /// processing-time percentiles, last error, figures and facts.
  actors,
  /// The "queue" table: waiting requests by provider and model with the oldest one's age.
  queue,
  /// The "recent_bundles" and "items_per_call" tables.
  bundles,
  /// The "providers" table: breaker, calls in flight against the limit, rate-limit headroom,
  /// latency, errors by class.
  providers,
  /// The nodes: this one alone until the cluster exists.
  nodes,
  /// All of the above: one event of the stream.
  all,
};

/// `{"seq", "at", "node", ...}` with what `view` shows of `snapshot`.
std::string render_inspect_view(const inspection_snapshot& snapshot, inspect_view view);

/// GET /api/v1/inspect/history: `{"seconds": n, "snapshots": [...]}`, oldest first, each
/// snapshot with its actors.
std::string render_inspect_history(const std::vector<inspection_snapshot>& snapshots,
                                   uint32_t seconds);

} // namespace lps
