#include "actors/provider_unconfigured.hpp"
#include "runtime/error_code.hpp"
#include "actors/status_report.hpp"

#include "actors/result_mapper.hpp"
#include "runtime/gateway_translate.hpp"

#include <caf/event_based_actor.hpp>

namespace lps {

provider_actor::behavior_type
provider_unconfigured(provider_actor::stateful_pointer<provider_unconfigured_state> self,
                      std::string provider, std::string reason) {
  self->state.provider = std::move(provider);
  self->state.reason = std::move(reason);
  return counted(
      self,
      [=](atom::process, const bundle& b) -> std::vector<comparison_outcome> {
        auto& st = self->state;
        st.items_total += b.items.size();
        std::vector<comparison_outcome> result;
        for (const auto& item : b.items) {
          auto outcome =
              make_failure(item.entry, to_string(ec::configuration_error), st.reason, false);
          outcome.enrichment = item.enrichment;
          outcome.provider = st.provider;
          outcome.model = b.model;
          result.push_back(std::move(outcome));
        }
        return result;
      },
      [=](atom::gateway, const gateway_call&) -> gateway_reply {
        auto& st = self->state;
        gateway_reply reply;
        reply.status = 503;
        reply.body = render_gateway_error({503, st.provider + " cannot be called: " + st.reason,
                                           "service_unavailable", "", "provider_not_configured"});
        return reply;
      },
      [=](atom::status) -> actor_status {
        auto& st = self->state;
        auto result = status_header(self, "provider:" + st.provider, "provider", st.stats);
        result.figures = {{"items_total", double(st.items_total)}};
        result.facts = {{"provider", st.provider}, {"configured", "false"}, {"reason", st.reason}};
        return result;
      });
}

} // namespace lps
