#include "actors/metrics.hpp"
#include "actors/status_report.hpp"

#include "runtime/logging.hpp"
#include "runtime/process_stats.hpp"

#include <caf/event_based_actor.hpp>

namespace lps {

namespace {

void apply_all(metrics_state& st, const std::vector<metric_sample>& samples) {
  st.samples_total += samples.size();
  for (const auto& x : samples)
    if (!st.registry.apply(x)) {
      static auto log = get_logger("metrics");
      LPS_LOG_DEBUG(log, "metrics rejected a sample of {}", x.name);
    }
}

// The process series as of this scrape. The CPU counter moves by what was spent since the
// previous scrape, so it only ever grows.
void refresh_process_metrics(metrics_state& st) {
  auto now = read_process_stats();
  if (!now)
    return;
  double cpu_step = std::max(0.0, now->cpu_seconds - st.reported_cpu_seconds);
  st.reported_cpu_seconds += cpu_step;
  apply_all(st, {{"process_cpu_seconds_total", {}, cpu_step},
                 {"process_resident_memory_bytes", {}, now->resident_bytes},
                 {"process_virtual_memory_bytes", {}, now->virtual_bytes},
                 {"process_open_fds", {}, double(now->open_fds)},
                 {"process_max_fds", {}, double(now->max_fds)},
                 {"process_start_time_seconds", {}, now->start_time_seconds},
                 {"process_threads", {}, double(now->threads)}});
}

// The time-to-result histogram as figures (time_to_result_le_<bound>: cumulative counts, as
// /metrics has them), so the inspector's history carries it and the console's time-to-result
// chart is full after a reload like its other charts.
void add_time_to_result(const metrics_state& st, actor_status& status) {
  for (const auto& [le, n] : st.registry.cumulative_buckets("llm_provider_queue_wait_time_seconds"))
    status.figures["time_to_result_le_" + le] = double(n);
}

} // namespace

metrics_actor::behavior_type metrics(metrics_actor::stateful_pointer<metrics_state> self) {
  return counted(
      self,
      [=](atom::record, const std::vector<metric_sample>& samples) {
        apply_all(self->state, samples);
      },
      [=](atom::render) -> std::string {
        refresh_process_metrics(self->state);
        return self->state.registry.render();
      },
      [=](atom::status) -> actor_status {
        auto& st = self->state;
        auto result = status_header(self, metrics_state::name, "metrics", st.stats);
        result.figures = {{"samples_total", double(st.samples_total)},
                          {"samples_rejected", double(st.registry.rejected())}};
        add_time_to_result(st, result);
        return result;
      });
}

} // namespace lps
