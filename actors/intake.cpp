#include "actors/intake.hpp"
#include "runtime/error_code.hpp"
#include "actors/status_report.hpp"

#include "runtime/ids.hpp"
#include "runtime/logging.hpp"

namespace lps {

namespace {

using self_ptr = intake_actor::stateful_pointer<intake_state>;

// Fills what the caller may leave out and what only the service assigns. A queue id chosen
// by the HTTP layer is kept: an idempotent submission records it with its key first.
void assign_identity(comparison_request& req, caf::timestamp now) {
  if (req.queue_id.empty())
    req.queue_id = new_uuid();
  if (req.correlation_id.empty())
    req.correlation_id = new_uuid();
  if (req.trace_id.empty())
    req.trace_id = req.correlation_id;
  req.queued_at = now;
  req.prompt_sha256 = sha256_hex(req.user_prompt);
}

std::vector<enqueue_outcome> refuse_all(const std::vector<comparison_request>& reqs, ec code,
                                        const std::string& message, uint32_t retry_after) {
  std::vector<enqueue_outcome> result;
  for (const auto& req : reqs)
    result.push_back(
        {false, req.queue_id, req.correlation_id, to_string(code), message, retry_after});
  return result;
}

bool store_available(const intake_state& st) {
  return !st.cfg.store_health_of || st.cfg.store_health_of().available;
}

actor_status status_of(self_ptr self) {
  auto& st = self->state;
  auto result = status_header(self, intake_state::name, "intake", st.stats);
  result.figures = {{"submitted_total", double(st.submitted_total)},
                    {"refused_total", double(st.refused_total)}};
  result.facts = {{"accepting", st.stopped ? "false" : "true"}};
  return result;
}

} // namespace

intake_actor::behavior_type intake(intake_actor::stateful_pointer<intake_state> self,
                                   intake_config cfg, queue_manager_actor queue) {
  self->state.cfg = cfg;
  self->state.queue = std::move(queue);
  // Every submission goes to the queue manager: without it intake has nothing to offer.
  self->monitor(self->state.queue);
  self->set_down_handler([=](caf::down_msg& msg) {
    LPS_LOG_ERROR(get_logger("intake"), "intake stops: the queue manager is down ({})",
                  caf::to_string(msg.reason));
    self->quit(msg.reason);
  });
  return counted(
      self,
      [=](atom::submit,
          std::vector<comparison_request>& reqs) -> caf::result<std::vector<enqueue_outcome>> {
        auto& st = self->state;
        if (st.stopped) {
          st.refused_total += reqs.size();
          return refuse_all(reqs, ec::service_unavailable,
                            "the service is shutting down and accepts no new requests", 0);
        }
        if (!store_available(st)) {
          st.refused_total += reqs.size();
          return refuse_all(reqs, ec::store_unavailable,
                            "the store is unavailable (lps is reconnecting); retry later",
                            store_unavailable_retry_after_s);
        }
        auto now = self->state.cfg.now();
        for (auto& req : reqs)
          assign_identity(req, now);
        st.submitted_total += reqs.size();
        return self->delegate(st.queue, atom::enqueue_v, std::move(reqs));
      },
      [=](atom::stop) { self->state.stopped = true; },
      [=](atom::status) -> actor_status { return status_of(self); });
}

} // namespace lps
