#pragma once

// What every actor reports about itself (the inspection protocol).

#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <map>
#include <string>

namespace lps {

/// One actor's self-report for /api/v1/inspect.
struct actor_status {
  std::string name;
  /// intake, queue_manager, bundler, provider, callbacks, metrics, inspector.
  std::string kind;
  uint64_t mailbox_size = 0;
  uint64_t messages_handled = 0;
  /// Numeric figures of the actor (queue depth by status, bundles formed, ...).
  std::map<std::string, double> figures;
  /// Textual facts (mode, state).
  std::map<std::string, std::string> facts;
  friend bool operator==(const actor_status&, const actor_status&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_status& x) {
  return f(caf::meta::type_name("lps.actor_status"), x.name, x.kind, x.mailbox_size,
           x.messages_handled, x.figures, x.facts);
}

} // namespace lps
