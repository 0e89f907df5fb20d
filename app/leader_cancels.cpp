#include "app/leader_cancels.hpp"

#include "app/actor_request.hpp"

namespace lps {

cluster::cancels_sink leader_cancels(caf::actor_system& sys, queue_manager_actor queue,
                                     caf::timespan timeout) {
  return [&sys, queue, timeout](const cluster::cancel_ask& ask, cluster::cancel_reply reply) {
    auto done = [reply](caf::expected<cancel_summary> r) {
      if (!r)
        return reply(std::nullopt);
      reply(cluster::cancel_counts{r->cancelled, r->already_processing, r->already_final,
                                   r->not_found});
    };
    auto bridge =
        sys.spawn(request_bridge<cancel_summary, queue_manager_actor, atom::cancel, cancel_target>,
                  queue, timeout, std::function<void(caf::expected<cancel_summary>)>{done});
    caf::anon_send(bridge, atom::cancel_v, cancel_target{ask.queue_id, ask.bos_batch_id});
  };
}

} // namespace lps
