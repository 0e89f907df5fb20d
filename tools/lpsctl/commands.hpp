#pragma once

// The lpsctl commands (docs/lpsctl.md). Each returns an exit code (lps_api.hpp) and prints
// results on stdout, progress and problems on stderr.

#include "tools/lpsctl/lps_api.hpp"

#include <string>

namespace lps::ctl {

struct submit_options {
  std::string file;
  /// Requests per POST /api/v1/comparisons.
  size_t chunk = 500;
  /// Wait for every accepted request's result event and write them out, one per line.
  bool wait = false;
  /// Where the events go with --wait (empty: stdout).
  std::string out;
  /// Give up waiting after this long (0: never).
  unsigned timeout_seconds = 0;
};

int submit(lps_api& api, const submit_options& options);

/// GET one path and print its JSON (pretty on a terminal, one line otherwise).
int show(lps_api& api, const std::string& path);

/// The batch jobs as a table.
int jobs(lps_api& api);
int cancel_job(lps_api& api, const std::string& job_id);

/// Cancel a queued request, or every queued request of a run (metadata.bos_batch_id); print
/// lps' answer. A request already processing or final, or an unknown one, exits 1.
int cancel_request(lps_api& api, const std::string& queue_id);
int cancel_run(lps_api& api, const std::string& bos_batch_id);

/// The runs as a table (GET /api/v1/runs), and one run's JSON (GET /api/v1/runs/{id}).
int runs(lps_api& api);
int run(lps_api& api, const std::string& bos_batch_id);

/// Every stored result event of a run, one JSON object per line, each once. With `follow`
/// it polls every second until the run has no active request.
int results(lps_api& api, const std::string& bos_batch_id, bool follow);

/// The effective configuration (GET /api/v1/config, secrets masked by lps): KEY=value lines
/// sorted by key, or with `raw_json` the body as lps sent it.
int config(lps_api& api, bool raw_json);

/// The nodes (GET /api/v1/inspect/nodes: the cluster's, or this node alone outside one) as a
/// table, or with `raw_json` lps' JSON.
int nodes(lps_api& api, bool raw_json);

/// Actors by mailbox, the queue and the providers; refreshed every second on a terminal until
/// interrupted, printed once otherwise (or with `once`). `node` ("all" or a node's name) lists
/// those nodes' actors (?node=) with a NODE column, and names the nodes that did not answer.
int top(lps_api& api, bool once, const std::string& node = {});

} // namespace lps::ctl
