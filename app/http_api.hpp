#pragma once

// The HTTP API of CONTRACTS.md section 1: routes requests from the HTTP server (on its I/O
// threads) to the actors and renders their answers. JSON parsing and validation happen
// here on the I/O threads, so the actors only see typed, valid requests.

#include "actors/cluster_actors.hpp"
#include "app/cluster_peers.hpp"
#include "app/inspect_stream.hpp"
#include "app/topology.hpp"
#include "runtime/api_keys.hpp"
#include "runtime/http_server.hpp"
#include "runtime/json_codec.hpp"

#include <caf/actor_system.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace lps::cluster {
class cancel_relay;
} // namespace lps::cluster

namespace lps {

class store;
class store_reader;
class batch_job_store;
struct gateway_context;

/// Submissions that share an idempotency key run one after the other within this process,
/// so the second finds the key the first recorded instead of racing it.
class idempotency_gate {
public:
  /// Runs `work` now when no submission of `key` runs, else once the ones before it left.
  void enter(const std::string& key, std::function<void()> work);

  /// Ends the running submission of `key` and starts the next one waiting, if any.
  void leave(const std::string& key);

private:
  std::mutex mutex_;
  /// Keys with a submission running, each with the submissions waiting behind it.
  std::map<std::string, std::deque<std::function<void()>>> running_;
};

struct api_context {
  caf::actor_system* sys = nullptr;
  topology actors;
  store* db = nullptr;
  /// The reader pool: every store read of a route runs there, never on an I/O thread or in an
  /// actor.
  store_reader* reads = nullptr;
  config cfg;
  request_limits limits;
  /// The model manifest JSON served at /api/v1/models.
  std::string model_manifest_json;
  /// Deadline for answers from actors.
  caf::timespan timeout = std::chrono::seconds{30};
  /// Client keys (API_KEYS_FILE); empty: client routes are open.
  api_keys keys;
  /// Orders submissions sharing an Idempotency-Key (shared by every copy of the context).
  std::shared_ptr<idempotency_gate> idempotency = std::make_shared<idempotency_gate>();
  /// True while the queue manager recovers the store at start (it answers nothing then):
  /// /healthz answers 503 "starting", every route but /metrics 503 SERVICE_UNAVAILABLE, both
  /// at once and with Retry-After (shared by every copy of the context).
  std::shared_ptr<std::atomic<bool>> starting = std::make_shared<std::atomic<bool>>(false);
  /// The clients of GET /api/v1/inspect/stream (fed by the inspector's snapshots).
  std::shared_ptr<inspect_stream_hub> inspect_streams = std::make_shared<inspect_stream_hub>();
  /// Cluster mode: GET /api/v1/cluster's answer (the node's last view); empty: not a cluster.
  std::function<http_response()> cluster_answer;
  /// Cluster mode: every registered node with its node actor (app/cluster_member; no I/O),
  /// asked by `?node=` on the inspection routes; empty: this node is the only one.
  std::function<std::vector<cluster_peer>()> cluster_nodes;
  /// Cluster mode: cancels are recorded for the leader through this relay (the node's queue
  /// manager holds no queue); null: the queue manager applies them.
  cluster::cancel_relay* cancel_relay = nullptr;
  /// Cluster mode: this node's node actor, asked for what only the leader knows (a request's
  /// last retryable failure and next attempt, the providers' breakers and limits), within
  /// `leader_timeout`; null: a single node.
  node_actor cluster_node;
  caf::timespan leader_timeout = std::chrono::seconds{1};
  /// The OpenAI-compatible gateway routes under /v1/ (app/gateway_routes); null: 404.
  std::shared_ptr<gateway_context> gateway;
};

/// The warning for a real provider's key configured while the default provider is still
/// the mock (logged at start and listed in /healthz warnings), or "".
std::string mock_default_warning(const config& cfg);

/// Handles one HTTP request; `respond` is called exactly once, from any thread.
void handle_http(const api_context& ctx, http_request&& req, http_responder respond);

} // namespace lps
