#include "runtime/scheduler.hpp"

#include "runtime/scheduler_policy.hpp"

#include <caf/atom.hpp>
#include <caf/policy/work_sharing.hpp>
#include <caf/scheduler/coordinator.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/settings.hpp>

namespace lps {

caf::actor_system::module* make_scheduler(caf::actor_system& sys) {
  auto policy = caf::get_or(sys.config(), "scheduler.policy", caf::atom("lps"));
  if (policy == caf::atom("stealing"))
    return new caf::scheduler::coordinator<caf::policy::work_stealing>(sys);
  if (policy == caf::atom("sharing"))
    return new caf::scheduler::coordinator<caf::policy::work_sharing>(sys);
  if (policy == caf::atom("testing"))
    return new caf::scheduler::test_coordinator(sys);
  return new caf::scheduler::coordinator<deep_sleep_stealing>(sys);
}

std::optional<std::string> check_scheduler_policy(caf::atom_value policy) {
  for (auto known :
       {caf::atom("lps"), caf::atom("stealing"), caf::atom("sharing"), caf::atom("testing")})
    if (policy == known)
      return std::nullopt;
  return "scheduler.policy: unknown policy '" + caf::to_string(policy)
         + "' (lps, stealing or sharing)";
}

} // namespace lps
