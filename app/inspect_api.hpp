#pragma once

// The inspection routes, GET /api/v1/inspect/{actors,queue,bundles,providers,jobs,nodes,
// history,stream} (docs/api.md, "Inspection"); operator routes, guarded by ADMIN_TOKEN in
// http_api like /api/v1/inspect.

#include "app/http_api.hpp"

namespace lps {

/// Answers a GET under /api/v1/inspect/ (404 for an unknown view).
void get_inspect_view(const api_context& ctx, const http_request& req, http_responder respond);

} // namespace lps
