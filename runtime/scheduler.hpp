#pragma once

// Which CAF scheduler an lps actor system runs on (`scheduler.policy`).

#include <caf/actor_system.hpp>

#include <optional>
#include <string>

namespace lps {

/// The scheduler named by the system's `scheduler.policy`: 'lps' (the default; see
/// runtime/scheduler_policy.hpp), CAF's 'stealing' or 'sharing', or 'testing' (the test
/// coordinator of deterministic tests). Registered by system_config as a module factory, so
/// CAF does not pick one itself.
caf::actor_system::module* make_scheduler(caf::actor_system& sys);

/// An error line for a `scheduler.policy` value lps does not know; nullopt when it does.
std::optional<std::string> check_scheduler_policy(caf::atom_value policy);

} // namespace lps
