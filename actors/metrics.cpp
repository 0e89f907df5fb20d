#include "actors/metrics.hpp"
#include "actors/status_report.hpp"

#include "runtime/logging.hpp"

#include <caf/event_based_actor.hpp>

namespace lps {

metrics_actor::behavior_type metrics(metrics_actor::stateful_pointer<metrics_state> self) {
  return counted(
      self,
      [=](atom::record, const std::vector<metric_sample>& samples) {
        auto& st = self->state;
        st.samples_total += samples.size();
        for (const auto& x : samples)
          if (!st.registry.apply(x)) {
            static auto log = get_logger("metrics");
            LPS_LOG_DEBUG(log, "metrics rejected a sample of {}", x.name);
          }
      },
      [=](atom::render) -> std::string { return self->state.registry.render(); },
      [=](atom::status) -> actor_status {
        auto& st = self->state;
        auto result = status_header(self, metrics_state::name, "metrics", st.stats);
        result.figures = {{"samples_total", double(st.samples_total)},
                          {"samples_rejected", double(st.registry.rejected())}};
        return result;
      });
}

} // namespace lps
