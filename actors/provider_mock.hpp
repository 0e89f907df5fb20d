#pragma once

// The built-in mock provider actor: answers every bundle item with mock_judge (the same
// answer for the same seed and correlation_id in every process), after the simulated
// latency of calling the items one after another, as a serial bundle does.

#include "actors/actors.hpp"
#include "actors/status_report.hpp"
#include "actors/mock_oracle.hpp"

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <map>
#include <string>
#include <vector>

namespace lps {

struct provider_mock_state {
  static inline const char* name = "provider:mock";
  mock_settings settings;
  /// Replies waiting for their simulated latency, by ticket.
  struct delayed_reply {
    caf::typed_response_promise<std::vector<comparison_outcome>> promise;
    std::vector<comparison_outcome> outcomes;
  };
  std::map<uint64_t, delayed_reply> waiting;
  uint64_t next_ticket = 0;
  /// Messages handled, their processing times, the last error (for status).
  actor_stats stats;
  uint64_t calls_total = 0;
  uint64_t items_total = 0;
  uint64_t errors_total = 0;
};

/// process_comparison for one item: the mock's outcome for a bundle item.
comparison_outcome mock_process_comparison(const mock_settings& settings, const bundle_item& item);

/// Spawns with the mock settings.
provider_mock_impl_actor::behavior_type
provider_mock(provider_mock_impl_actor::stateful_pointer<provider_mock_state> self,
              mock_settings settings);

} // namespace lps
