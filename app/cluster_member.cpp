#include "app/cluster_member.hpp"

#include "actors/node.hpp"
#include "app/build_info.hpp"
#include "app/cluster_transport.hpp"
#include "app/node_identity.hpp"
#include "app/leader_cancels.hpp"
#include "runtime/fenced_store.hpp"
#include "runtime/logging.hpp"

#include <caf/send.hpp>

namespace lps {

namespace {

std::vector<adopted_request> adopted_of(std::vector<stored_request>&& rows) {
  std::vector<adopted_request> result;
  result.reserve(rows.size());
  for (auto& row : rows)
    result.push_back({std::move(row.queue_id), std::move(row.provider), row.priority,
                      row.queued_at_ms, row.size_bytes, row.attempts});
  return result;
}

} // namespace

std::unique_ptr<cluster_member> cluster_member::join(member_parts parts, std::string& error) {
  std::unique_ptr<cluster_member> result{new cluster_member(parts)};
  const auto& cfg = *parts.cfg;
  // The node actor hands out every provider actor; the leader's bundler takes those it
  // bundles for.
  result->node_actor_ = parts.sys->spawn(lps::node, this_node_name(cfg), parts.node->providers,
                                         parts.node->inspector, parts.node->gate);
  auto port = publish_node(*parts.sys, result->node_actor_, cfg.cluster_host, cfg.cluster_port);
  if (!port) {
    error = "cannot publish the node actor on CLUSTER_HOST:CLUSTER_PORT " + cfg.cluster_host + ":"
            + std::to_string(cfg.cluster_port) + ": " + parts.sys->render(port.error());
    return nullptr;
  }
  cluster::node_settings settings;
  settings.postgres_url = cfg.postgres_url.reveal();
  settings.self = {this_node_name(cfg), cluster_dial_host(cfg), *port, build_version(),
                   "intake,provider"};
  settings.lease = std::chrono::seconds{cfg.cluster_lease_seconds};
  auto* self = result.get();
  result->connector_ = std::make_unique<cluster_connector>(*parts.sys, settings.self.name);
  cluster::node_hooks hooks{
      [self](int64_t epoch) { self->lead(epoch); }, [self] { self->step_down(); },
      [self](const cluster::cluster_view& view) { self->connector_->update(view); }};
  result->node_ = cluster::node::start(std::move(settings), std::move(hooks), error);
  if (!result->node_)
    return nullptr;
  return result;
}

cluster_member::~cluster_member() {
  leave_registry();
  connector_.reset();
  if (node_actor_)
    caf::anon_send_exit(node_actor_, caf::exit_reason::user_shutdown);
}

cluster::cluster_view cluster_member::view() const {
  std::lock_guard lock{node_mutex_};
  return node_ ? node_->view() : cluster::cluster_view{};
}

// The node's destructor steps down first when leading, then releases the lease and leaves.
void cluster_member::leave_registry() {
  std::unique_ptr<cluster::node> gone;
  {
    std::lock_guard lock{node_mutex_};
    gone = std::move(node_);
  }
  gone.reset();
}

void cluster_member::lead(int64_t epoch) {
  std::lock_guard lock{mutex_};
  auto log = get_logger("cluster");
  LPS_LOG_INFO(log,
               "leading at epoch {}: starting the queue manager, bundler, callbacks and "
               "batch jobs",
               epoch);
  leader_ =
      spawn_leader(*parts_.sys, *parts_.cfg, *parts_.db, epoch, *parts_.node, parts_.callback_http,
                   parts_.provider_transport, *parts_.manifest, parts_.jobs_db);
  connector_->serve(caf::actor_cast<cluster_bundler_actor>(leader_->bundler));
  cluster::poller_settings ps;
  ps.postgres_url = parts_.cfg->postgres_url.reveal();
  auto queue = leader_->queue;
  std::string error;
  poller_ = cluster::store_poller::start(
      ps,
      [queue](std::vector<stored_request>&& rows) {
        caf::anon_send(queue, atom::adopt_v, adopted_of(std::move(rows)));
      },
      leader_cancels(*parts_.sys, queue,
                     std::chrono::milliseconds{parts_.cfg->actor_request_timeout_ms}),
      error);
  // Without the poller only the requests recovered at the start of this term run.
  if (!poller_)
    LPS_LOG_ERROR(log, "cannot start the store poller: {}", error);
}

void cluster_member::step_down() {
  std::lock_guard lock{mutex_};
  poller_.reset();
  connector_->serve({});
  if (!leader_)
    return;
  LPS_LOG_WARN(get_logger("cluster"), "stepping down from epoch {}: the singletons stop now",
               leader_->epoch);
  stop_leader(*parts_.sys, *leader_);
  retired_.push_back(std::move(leader_->db));
  retired_jobs_.push_back(std::move(leader_->jobs_db));
  leader_.reset();
}

void cluster_member::leave(caf::timespan grace) {
  {
    std::lock_guard lock{node_mutex_};
    if (node_)
      node_->begin_leaving(); // `leaving` in the registry; a follower takes no lease now
  }
  std::optional<leader_topology> handles;
  {
    std::lock_guard lock{mutex_};
    poller_.reset();
    if (leader_) {
      handles.emplace();
      handles->epoch = leader_->epoch;
      handles->callbacks = leader_->callbacks;
      handles->queue = leader_->queue;
      handles->batch = leader_->batch;
      handles->bundler = leader_->bundler;
    }
  }
  // Unlocked: the node keeps renewing the lease while bundles finish.
  if (handles)
    hand_over_leader(*parts_.sys, *handles, grace);
  leave_registry();
}

} // namespace lps
