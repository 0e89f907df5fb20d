#include "actors/inspector.hpp"
#include "messages/cluster_type_ids.hpp"
#include "runtime/inspect_bodies.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <algorithm>
#include <memory>
#include <optional>

namespace lps {

namespace {

using self_ptr = inspector_impl_actor::stateful_pointer<inspector_state>;

// Collects one answer per target, by position, and the leader's singletons after them; an
// actor that does not answer in time is listed as unresponsive under the name and kind of its
// last answer instead of hiding it. When sampling in a cluster, also every other node's
// figures, by position.
struct collection {
  std::vector<actor_sample> samples;
  std::vector<node_figures> peers;
  size_t pending = 0;
  std::function<void(collection&)> done;

  void add(size_t position, actor_sample x) {
    samples[position] = std::move(x);
    finish_one();
  }

  void add_leader(std::vector<actor_sample> xs) {
    for (auto& x : xs)
      samples.push_back(std::move(x));
    finish_one();
  }

  void finish_one() {
    if (--pending == 0)
      done(*this);
  }
};

/// How long the leader's singletons may take: their inspector waits up to `timeout` for each
/// of them, and the middleman adds a hop.
caf::timespan leader_timeout(const inspector_config& cfg) {
  return cfg.timeout + cfg.timeout / 2;
}

actor_status own_status(self_ptr self) {
  auto& st = self->state;
  auto result = status_header(self, inspector_state::name, "inspector", st.stats);
  result.node = st.cfg.node;
  result.figures = {{"targets", double(st.cfg.targets.size())},
                    {"history_samples", double(st.history.size())}};
  return result;
}

// A target that did not answer: what it last said about itself, and why it is silent.
actor_sample unresponsive(self_ptr self, size_t position, const caf::error& err) {
  auto& st = self->state;
  actor_sample result;
  result.responsive = false;
  result.status.name = st.last_seen[position].name;
  result.status.kind = st.last_seen[position].kind;
  result.status.node = st.cfg.node;
  result.status.facts = {{"unresponsive", caf::to_string(err)}};
  return result;
}

// The leader's singletons, unresponsive as one: no leader, not connected, or no answer in
// time. Listed rather than left out, so no view mistakes this node's own intake-only queue
// manager for the queue.
actor_sample leader_unreachable(const std::string& node, const std::string& why) {
  actor_sample result;
  result.responsive = false;
  result.status.name = "leader";
  result.status.kind = "leader";
  result.status.node = node;
  result.status.facts = {{"role", "leader"}, {"unresponsive", why}};
  return result;
}

// Cluster mode: asks the leader's node actor (this node's own when it leads) for its
// singletons, each already marked with the leader's name and role.
void collect_leader(self_ptr self, const std::optional<node_endpoint>& link,
                    std::shared_ptr<collection> c) {
  if (!link)
    return c->add_leader({leader_unreachable("", "no node holds the leader lease")});
  if (!link->handle)
    return c->add_leader({leader_unreachable(link->node, "not connected to the leader")});
  // Normal priority: the answer to a high-priority request never came back through CAF
  // 0.17's middleman (the request timed out between two nodes, while it was answered on one);
  // the leader's inspector asks the singletons themselves with high priority.
  self->request(link->handle, caf::duration{leader_timeout(self->state.cfg)}, atom::inspect_v,
                atom::leader_v)
      .then(
          [c](std::vector<actor_status>& xs) {
            std::vector<actor_sample> samples;
            for (auto& x : xs)
              samples.push_back(actor_sample{std::move(x)});
            c->add_leader(std::move(samples));
          },
          [c, node = link->node](caf::error& err) {
            c->add_leader({leader_unreachable(node, caf::to_string(err))});
          });
}

std::string why_silent(const inspector_config& cfg, const caf::error& err) {
  if (err == caf::sec::request_timeout)
    return "no answer within "
           + std::to_string(
               std::chrono::duration_cast<std::chrono::milliseconds>(cfg.timeout).count())
           + " ms";
  return caf::to_string(err);
}

// Sampling in a cluster: asks every other node's inspector (through its node actor, normal
// priority as for the leader) for its own figures, answered from its newest snapshot, within
// the same timeout as an actor. A node that does not answer keeps its last known figures,
// marked with why; a node that left the registry is forgotten.
void collect_peers(self_ptr self, const std::vector<node_endpoint>& peers,
                   std::shared_ptr<collection> c) {
  auto& known = self->state.peer_figures;
  std::erase_if(known, [&](const auto& entry) {
    return std::none_of(peers.begin(), peers.end(),
                        [&](const node_endpoint& p) { return p.node == entry.first; });
  });
  c->peers.resize(peers.size());
  for (size_t i = 0; i < peers.size(); ++i) {
    auto name = peers[i].node;
    auto& last = known[name];
    last.node = name;
    if (!peers[i].handle) {
      last.error = "not connected";
      c->peers[i] = last;
      c->finish_one();
      continue;
    }
    self->request(peers[i].handle, caf::duration{self->state.cfg.timeout}, atom::inspect_v,
                  atom::figures_v)
        .then(
            [=](node_figures& x) {
              x.node = name; // as the registry names it
              x.error.clear();
              self->state.peer_figures[name] = x;
              c->peers[i] = std::move(x);
              c->finish_one();
            },
            [=](caf::error& err) {
              auto& last = self->state.peer_figures[name];
              last.node = name;
              last.error = why_silent(self->state.cfg, err);
              c->peers[i] = last;
              c->finish_one();
            });
  }
}

// Whose singletons a collection lists besides the targets.
enum class singletons {
  /// The leader's, wherever it runs (the snapshots: every view shows them).
  leader,
  /// The leader's only when this node leads (`inspect`, asked by ?node=all for this node's
  /// own actors: a paused leader must not delay every node's answer past the bound).
  own,
};

// Asks every target (high priority, so the question overtakes a backlog) and hands `done`
// the inspector's own status followed by one sample per target, in target order, then (in a
// cluster) the leader's singletons.
void collect(self_ptr self, singletons which, std::function<void(collection&)> done) {
  auto& st = self->state;
  auto c = std::make_shared<collection>();
  bool cluster = st.cfg.leader != nullptr;
  auto link = cluster ? st.cfg.leader->find() : std::nullopt;
  bool with_leader =
      cluster && (which == singletons::leader || (link && link->node == st.cfg.node));
  // The other nodes' figures are the snapshots' (the nodes view), not inspect's.
  auto peers = cluster && which == singletons::leader ? st.cfg.leader->peers()
                                                      : std::vector<node_endpoint>{};
  c->samples.resize(st.cfg.targets.size() + 1);
  c->pending = st.cfg.targets.size() + 1 + (with_leader ? 1 : 0) + peers.size();
  c->done = std::move(done);
  if (with_leader)
    collect_leader(self, link, c);
  collect_peers(self, peers, c);
  for (size_t i = 0; i < st.cfg.targets.size(); ++i) {
    self->request<caf::message_priority::high>(st.cfg.targets[i], caf::duration{st.cfg.timeout},
                                               atom::status_v)
        .then(
            [=](actor_status& x) {
              x.node = self->state.cfg.node;
              // The leader's singletons own the tables in a cluster (see collect_leader).
              if (cluster)
                x.tables.clear();
              self->state.last_seen[i].name = x.name;
              self->state.last_seen[i].kind = x.kind;
              c->add(i + 1, actor_sample{std::move(x)});
            },
            [=](caf::error& err) { c->add(i + 1, unresponsive(self, i, err)); });
  }
  c->add(0, actor_sample{own_status(self)});
}

caf::result<std::vector<actor_status>> inspect_all(self_ptr self) {
  auto promise = self->make_response_promise<std::vector<actor_status>>();
  collect(self, singletons::own, [promise](collection& c) mutable {
    std::vector<actor_status> result;
    for (auto& x : c.samples)
      result.push_back(std::move(x.status));
    promise.deliver(std::move(result));
  });
  return promise;
}

// Rates since the previous snapshot (matched by actor name) and percentiles since start.
void derive_figures(const inspector_state& st, std::vector<actor_sample>& samples,
                    caf::timespan elapsed) {
  std::map<std::string, uint64_t> before;
  if (!st.history.empty())
    for (const auto& x : st.history.back().actors)
      before[x.status.name] = x.status.messages_handled;
  auto seconds = std::chrono::duration<double>(elapsed).count();
  for (auto& x : samples) {
    const auto& counts = x.status.processing_time_counts;
    x.p50_ms = processing_time_percentile_ms(counts, 0.50);
    x.p90_ms = processing_time_percentile_ms(counts, 0.90);
    x.p99_ms = processing_time_percentile_ms(counts, 0.99);
    auto i = before.find(x.status.name);
    if (x.responsive && i != before.end() && seconds > 0 && x.status.messages_handled >= i->second)
      x.handled_per_second = double(x.status.messages_handled - i->second) / seconds;
  }
}

// Keeps the snapshot as the newest of a bounded history (older ones without the tables,
// which are large and only shown live) and hands it to the stream.
void remember(self_ptr self, inspection_snapshot snapshot) {
  auto& st = self->state;
  if (!st.history.empty())
    for (auto& x : st.history.back().actors)
      x.status.tables.clear();
  st.history.push_back(std::move(snapshot));
  while (st.history.size() > st.cfg.history_size)
    st.history.pop_front();
  if (st.cfg.on_sample)
    st.cfg.on_sample(st.history.back());
}

void sample(self_ptr self) {
  auto& st = self->state;
  self->delayed_send(self, st.cfg.interval, atom::sweep_v);
  if (st.sampling)
    return;
  st.sampling = true;
  collect(self, singletons::leader, [self](collection& c) {
    auto& st = self->state;
    st.sampling = false;
    auto now = self->clock().now();
    derive_figures(st, c.samples, st.history.empty() ? caf::timespan{0} : now - st.sampled_at);
    st.sampled_at = now;
    auto seq = st.history.empty() ? 1 : st.history.back().seq + 1;
    remember(self, {seq, st.cfg.now(), st.cfg.node, std::move(c.samples), std::move(c.peers)});
  });
}

std::vector<inspection_snapshot> latest(const inspector_state& st, uint32_t n) {
  auto count = std::min<size_t>(n, st.history.size());
  return std::vector<inspection_snapshot>(st.history.end() - static_cast<std::ptrdiff_t>(count),
                                          st.history.end());
}

// This node's figures from the newest snapshot (nothing yet: seq 0), for the other nodes.
node_figures newest_figures(const inspector_state& st) {
  if (st.history.empty()) {
    node_figures none;
    none.node = st.cfg.node;
    return none;
  }
  return own_figures(st.history.back());
}

} // namespace

inspector_impl_actor::behavior_type
inspector(inspector_impl_actor::stateful_pointer<inspector_state> self, inspector_config cfg) {
  self->state.cfg = std::move(cfg);
  actor_status never_answered;
  never_answered.name = never_answered.kind = "unknown";
  self->state.last_seen.resize(self->state.cfg.targets.size(), never_answered);
  if (self->state.cfg.interval > caf::timespan::zero())
    self->delayed_send(self, self->state.cfg.interval, atom::sweep_v);
  return counted(
      self,
      [=](atom::inspect) -> caf::result<std::vector<actor_status>> { return inspect_all(self); },
      [=](atom::history, uint32_t n) { return latest(self->state, n); },
      [=](atom::inspect, atom::figures) { return newest_figures(self->state); },
      [=](atom::sweep) { sample(self); },
      [=](atom::status) -> actor_status { return own_status(self); });
}

} // namespace lps
