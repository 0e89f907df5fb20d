#pragma once

// A node's name in the cluster: CLUSTER_NODE_NAME, else the host name.

#include "runtime/config.hpp"

#include <unistd.h>

#include <array>
#include <string>

namespace lps {

inline std::string node_name_of(const config& cfg) {
  if (!cfg.cluster_node_name.empty())
    return cfg.cluster_node_name;
  std::array<char, 256> buf{};
  if (gethostname(buf.data(), buf.size() - 1) != 0 || buf[0] == '\0')
    return "localhost";
  return buf.data();
}

} // namespace lps
