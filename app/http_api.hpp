#pragma once

// The HTTP API of CONTRACTS.md section 1: routes requests from the HTTP server (on its I/O
// threads) to the actors and renders their answers. JSON parsing and validation happen
// here on the I/O threads, so the actors only see typed, valid requests.

#include "app/topology.hpp"
#include "runtime/http_server.hpp"
#include "runtime/json_codec.hpp"

#include <caf/actor_system.hpp>

#include <chrono>
#include <string>

namespace lps {

class store;
class batch_job_store;

struct api_context {
  caf::actor_system* sys = nullptr;
  topology actors;
  store* db = nullptr;
  /// Provider batch jobs (listed and cancelled under /api/v1/batch-jobs); may be null.
  batch_job_store* jobs_db = nullptr;
  config cfg;
  request_limits limits;
  /// The model manifest JSON served at /api/v1/models.
  std::string model_manifest_json;
  /// Deadline for answers from actors.
  caf::timespan timeout = std::chrono::seconds{30};
};

/// Handles one HTTP request; `respond` is called exactly once, from any thread.
void handle_http(const api_context& ctx, http_request&& req, http_responder respond);

} // namespace lps
