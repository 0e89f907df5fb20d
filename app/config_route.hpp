#pragma once

// GET /api/v1/config (docs/api.md): the effective configuration with secrets masked, as
// --dump-config prints it. An operator route: app/http_api.cpp checks ADMIN_TOKEN first.

#include "runtime/config.hpp"
#include "runtime/http_server.hpp"

namespace lps {

/// The 200 answer to GET /api/v1/config for the configuration lps runs with.
http_response config_response(const config& cfg);

} // namespace lps
