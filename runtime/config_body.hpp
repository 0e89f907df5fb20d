#pragma once

// The body of GET /api/v1/config: the effective configuration as shown_settings() gives it,
// so the route masks secrets exactly as --dump-config does.

#include "runtime/config.hpp"

#include <string>
#include <vector>

namespace lps {

/// GET /api/v1/config body: `{"settings": [{"key", "file_key", "value", "secret"}, ...]}`, one
/// entry per setting in the given order (config_keys() order from shown_settings()).
std::string render_config(const std::vector<shown_setting>& settings);

} // namespace lps
