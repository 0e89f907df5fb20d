#include "actors/inspector.hpp"
#include "actors/status_report.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <memory>

namespace lps {

namespace {

using self_ptr = inspector_actor::stateful_pointer<inspector_state>;

// Collects one answer per target; an actor that does not answer in time is listed with
// an "unresponsive" fact instead of hiding it.
struct collection {
  caf::typed_response_promise<std::vector<actor_status>> promise;
  std::vector<actor_status> answers;
  size_t pending = 0;

  void add(actor_status x) {
    answers.push_back(std::move(x));
    if (--pending == 0)
      promise.deliver(std::move(answers));
  }
};

caf::result<std::vector<actor_status>> inspect_all(self_ptr self) {
  auto& st = self->state;
  actor_status own{inspector_state::name, "inspector", self->mailbox().size(), st.handled, {}, {}};
  if (st.targets.empty())
    return std::vector<actor_status>{own};
  auto c = std::make_shared<collection>();
  c->promise = self->make_response_promise<std::vector<actor_status>>();
  c->pending = st.targets.size();
  c->answers.push_back(std::move(own));
  for (const auto& target : st.targets) {
    self->request<caf::message_priority::high>(target, caf::duration{st.timeout}, atom::status_v)
        .then([c](actor_status& x) { c->add(std::move(x)); },
              [c](caf::error& err) {
                c->add({"unknown", "unknown", 0, 0, {}, {{"unresponsive", caf::to_string(err)}}});
              });
  }
  return c->promise;
}

} // namespace

inspector_actor::behavior_type inspector(inspector_actor::stateful_pointer<inspector_state> self,
                                         std::vector<status_client_actor> targets) {
  self->state.targets = std::move(targets);
  return counted(
      self,
      [=](atom::inspect) -> caf::result<std::vector<actor_status>> { return inspect_all(self); },
      [=](atom::status) -> actor_status {
        auto& st = self->state;
        return {inspector_state::name,
                "inspector",
                self->mailbox().size(),
                st.handled,
                {{"targets", double(st.targets.size())}},
                {}};
      });
}

} // namespace lps
