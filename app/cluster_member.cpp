#include "app/cluster_member.hpp"

#include "actors/node.hpp"
#include "app/build_info.hpp"
#include "app/cluster_transport.hpp"
#include "app/node_identity.hpp"
#include "app/leader_cancels.hpp"
#include "app/new_work_sink.hpp"
#include "runtime/fenced_store.hpp"
#include "runtime/logging.hpp"

#include <caf/scoped_actor.hpp>
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
  result->node_actor_ =
      parts.sys->spawn(lps::node, this_node_name(cfg), parts.node->providers, parts.node->inspector,
                       parts.node->metrics, parts.node->leader_slot, parts.node->gate);
  // The requests this node stores go to the leader through the node actor from now on.
  if (parts.node->new_work)
    parts.node->new_work->attach(caf::actor_cast<caf::actor>(result->node_actor_));
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
  result->connector_ =
      std::make_unique<cluster_connector>(*parts.sys, settings.self.name, result->node_actor_);
  result->peers_ =
      std::make_unique<cluster_peers>(*parts.sys, settings.self.name, result->node_actor_);
  if (parts.node->leader_slot) {
    parts.node->leader_slot->set_source([peers = self->peers_.get()] { return peers->leader(); });
    parts.node->leader_slot->set_peers([peers = self->peers_.get()] { return peers->others(); });
  }
  cluster::node_hooks hooks{[self](int64_t epoch) { self->lead(epoch); },
                            [self] { self->step_down(); },
                            [self](const cluster::cluster_view& view) {
                              self->connector_->update(view);
                              self->peers_->update(view);
                            }};
  result->node_ = cluster::node::start(std::move(settings), std::move(hooks), error);
  if (!result->node_)
    return nullptr;
  return result;
}

cluster_member::~cluster_member() {
  leave_registry();
  // The inspector asks no more for the leader and the other nodes: the peers are gone next.
  if (parts_.node->leader_slot) {
    parts_.node->leader_slot->set_source({});
    parts_.node->leader_slot->set_peers({});
  }
  peers_.reset();
  connector_.reset();
  if (node_actor_)
    caf::anon_send_exit(node_actor_, caf::exit_reason::user_shutdown);
}

cluster::cluster_view cluster_member::view() const {
  cluster::cluster_view result;
  {
    std::lock_guard lock{node_mutex_};
    if (node_)
      result = node_->view();
  }
  if (connector_)
    result.unreachable = connector_->unreachable();
  return result;
}

std::vector<cluster_peer> cluster_member::peers() const {
  return peers_->nodes();
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
  caf::anon_send(node_actor_, atom::lead_v, caf::actor_cast<caf::actor>(leader_->queue),
                 caf::actor_cast<caf::actor>(leader_->bundler));
  // This node's providers serve its own bundler (never "unreached").
  caf::anon_send(node_actor_, atom::leader_v, caf::actor_cast<caf::actor>(leader_->bundler));
  if (parts_.node->leader_slot)
    parts_.node->leader_slot->lead(leader_->inspector);
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
  caf::anon_send(node_actor_, atom::lead_v, caf::actor{}, caf::actor{});
  if (parts_.node->leader_slot)
    parts_.node->leader_slot->step_down();
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
      handles->inspector = leader_->inspector;
    }
  }
  // Unlocked: the node keeps renewing the lease while bundles finish.
  if (handles)
    hand_over_leader(*parts_.sys, *handles, grace);
  else
    retire_from_leader(grace);
  leave_registry();
}

// A follower's provider actors run the leader's bundles: the leader sends no new one from
// now on, and the calls in flight get the grace to finish and reach the leader. What does
// not finish goes back to the leader's queue when this node's actors stop.
void cluster_member::retire_from_leader(caf::timespan grace) {
  auto log = get_logger("cluster");
  caf::scoped_actor self{*parts_.sys};
  self->request(node_actor_, grace, atom::retire_v)
      .receive(
          [&](atom::drained) {
            LPS_LOG_INFO(log, "the leader has no bundle of this node in flight; leaving");
          },
          [&](caf::error& err) {
            LPS_LOG_WARN(log,
                         "the leader did not confirm within the grace that no bundle of this "
                         "node is in flight ({}); what is left is put back when this node's "
                         "actors stop",
                         caf::to_string(err));
          });
}

} // namespace lps
