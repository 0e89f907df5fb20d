#pragma once

// The CAF side of start-up: the actor_system_config subclass (type IDs, error category,
// scheduler defaults) and loading lps::config from file, environment and command line.

#include "runtime/config.hpp"

#include <caf/actor_system_config.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace lps {

/// How many times an idle CAF worker polls its queue, 50 us apart, after its 100 quick polls
/// and before it waits on its condition variable (`work-stealing.moderate-poll-attempts`;
/// CAF's default is 500, which kept lps' workers polling while idle).
inline constexpr size_t idle_moderate_poll_attempts = 10;

/// CAF configuration of an lps process. Registers the lps type-ID block exactly once.
/// Defaults set here (scheduler.max-threads and scheduler.policy,
/// work-stealing.moderate-poll-attempts) give way to the config file and the command line.
class system_config : public caf::actor_system_config {
public:
  system_config();

  /// CAF's options (scheduler.*, ...), to check config file sections against.
  const caf::config_option_set& caf_options() const {
    return custom_options_;
  }

  /// The text of --help: CAF's global options (with `all`, every CAF option) without CAF's
  /// --dump-config and --config-file lines, which lps takes over, then lps' own options.
  std::string help_text(bool all) const;
};

/// The outcome of reading every configuration source.
struct startup {
  config cfg;
  /// --dump-config was given: print dump(cfg) and exit.
  bool dump_config = false;
  /// --help-config was given: print describe_keys() and exit.
  bool help_config = false;
  /// CAF printed --help; exit 0.
  bool help_printed = false;
  /// One line per problem; non-empty means refuse to start.
  std::vector<std::string> errors;
  /// Settings lps ignores (unknown sections, keys outside a section): printed, not fatal.
  std::vector<std::string> warnings;
};

/// Problems with the names of the environment's variables (`names`: every variable set): an
/// LLM_PROVIDER_SERVICE_<KEY> that names no key is an error naming the nearest key; a key
/// set without the prefix (DATA_DIR), which lps does not read, is a warning saying so.
/// <PROVIDER>_API_KEY is read bare and not reported.
struct environment_check {
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
};
environment_check check_environment_names(const std::vector<std::string>& names);

/// Parses argv (CAF options and --config-file go to CAF; lps keys are ours), reads the
/// [lps] section of the config file, then the environment, then lps command-line keys.
startup load_startup(system_config& sys_cfg, int argc, char** argv, const env_lookup& env);

} // namespace lps
