#pragma once

// The CAF side of start-up: the actor_system_config subclass (type IDs, error category,
// scheduler defaults) and loading lps::config from file, environment and command line.

#include "runtime/config.hpp"

#include <caf/actor_system_config.hpp>

#include <string>
#include <vector>

namespace lps {

/// CAF configuration of an lps process. Registers the lps type-ID block exactly once.
class system_config : public caf::actor_system_config {
public:
  system_config();
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
};

/// Parses argv (CAF options and --config-file go to CAF; lps keys are ours), reads the
/// [lps] section of the config file, then the environment, then lps command-line keys.
startup load_startup(system_config& sys_cfg, int argc, char** argv, const env_lookup& env);

} // namespace lps
