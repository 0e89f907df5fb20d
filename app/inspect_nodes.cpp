#include "app/inspect_nodes.hpp"

#include "app/actor_request.hpp"
#include "app/node_identity.hpp"
#include "messages/cluster_type_ids.hpp"
#include "runtime/inspect_bodies.hpp"
#include "runtime/json_codec.hpp"
#include "runtime/url.hpp"

#include <atomic>
#include <cctype>
#include <memory>

namespace lps {

namespace {

/// The longest node name the parameter takes (CLUSTER_NODE_NAME is a host-like name).
constexpr size_t node_name_max = 128;

http_response error_body(unsigned status, ec code, std::string_view message) {
  return {status, render_error_body(code, message, {}, "node"), "application/json", {}};
}

bool well_formed(const std::string& name) {
  if (name.empty() || name.size() > node_name_max)
    return false;
  for (unsigned char c : name)
    if (!std::isalnum(c) && c != '-' && c != '_' && c != '.')
      return false;
  return true;
}

// The nodes to ask: the cluster's registered nodes, or this node alone.
std::vector<cluster_peer> known_nodes(const api_context& ctx, const std::string& self) {
  if (ctx.cluster_nodes)
    if (auto peers = ctx.cluster_nodes(); !peers.empty())
      return peers;
  return {cluster_peer{self, {}, true}};
}

// Every node's answer by position; the last one in responds.
struct gathering {
  std::vector<node_answer> answers;
  std::atomic<size_t> pending;
  std::function<void(std::vector<node_answer>&)> done;

  gathering(size_t n, std::function<void(std::vector<node_answer>&)> f)
      : answers(n), pending(n), done(std::move(f)) {}

  void finish_one() {
    if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1)
      done(answers);
  }
};

// Asks `hdl` within node_answer_timeout through a bridge actor (app/actor_request).
template <class Reply, class Handle, class... Ts>
void ask_node(const api_context& ctx, const Handle& hdl,
              std::function<void(caf::expected<Reply>)> done, Ts... xs) {
  auto bridge = ctx.sys->spawn(request_bridge<Reply, Handle, Ts...>, hdl,
                               caf::timespan{node_answer_timeout}, std::move(done));
  caf::anon_send(bridge, std::move(xs)...);
}

std::string why_silent(const caf::error& err) {
  if (err == caf::sec::request_timeout)
    return "no answer within " + std::to_string(node_answer_timeout.count()) + " ms";
  return caf::to_string(err);
}

// A node's answer without the leader's singletons it shows on the leader's behalf: every
// node lists them, and they are the leader's actors (listed once, in its own answer).
std::vector<actor_status> own_actors(const std::string& node, std::vector<actor_status> xs) {
  std::erase_if(xs, [&](const actor_status& x) { return x.node != node; });
  return xs;
}

inspection_snapshot own_samples(const std::string& node, inspection_snapshot x) {
  std::erase_if(x.actors, [&](const actor_sample& a) { return a.status.node != node; });
  return x;
}

// Fills answer `i` of `g` from `peer` (this node: its inspector; another: its node actor).
void ask_peer(const api_context& ctx, const std::string& self, const cluster_peer& peer,
              bool actors_view, std::shared_ptr<gathering> g, size_t i) {
  g->answers[i].name = peer.name;
  bool local = peer.name == self;
  if (!local && !peer.handle) {
    g->answers[i].error = peer.live ? "not connected yet" : "not connected (heartbeat stale)";
    return g->finish_one();
  }
  if (actors_view) {
    auto got = [g, i](caf::expected<std::vector<inspection_snapshot>> r) {
      if (!r)
        g->answers[i].error = why_silent(r.error());
      else if (r->empty())
        g->answers[i].error = "no snapshot yet: the inspector samples once a second";
      else
        g->answers[i].snapshot = own_samples(g->answers[i].name, std::move(r->back()));
      g->finish_one();
    };
    if (local)
      return ask_node<std::vector<inspection_snapshot>>(ctx, ctx.actors.inspector, got,
                                                        atom::history_v, uint32_t{1});
    return ask_node<std::vector<inspection_snapshot>>(ctx, peer.handle, got, atom::history_v,
                                                      uint32_t{1});
  }
  auto got = [g, i](caf::expected<std::vector<actor_status>> r) {
    if (!r)
      g->answers[i].error = why_silent(r.error());
    else
      g->answers[i].statuses = own_actors(g->answers[i].name, std::move(*r));
    g->finish_one();
  };
  if (local)
    return ask_node<std::vector<actor_status>>(ctx, ctx.actors.inspector, got, atom::inspect_v);
  ask_node<std::vector<actor_status>>(ctx, peer.handle, got, atom::inspect_v);
}

} // namespace

bool names_nodes(const http_request& req) {
  return query_param(req.query, "node").has_value();
}

void get_nodes_inspection(const api_context& ctx, const http_request& req, bool actors_view,
                          http_responder respond) {
  auto wanted = query_param(req.query, "node").value_or("");
  if (wanted != "all" && !well_formed(wanted))
    return respond(error_body(400, ec::validation_error,
                              "query parameter node must be 'all' or a node's name (letters, "
                              "digits, '-', '_', '.'; at most "
                                  + std::to_string(node_name_max) + " characters)"));
  auto self = this_node_name(ctx.cfg);
  auto peers = known_nodes(ctx, self);
  if (wanted != "all") {
    std::erase_if(peers, [&](const cluster_peer& p) { return p.name != wanted; });
    if (peers.empty())
      return respond(
          error_body(404, ec::resource_not_found, "no node named '" + wanted + "' in the cluster"));
  }
  auto g = std::make_shared<gathering>(
      peers.size(), [respond, self, actors_view](std::vector<node_answer>& answers) {
        auto body = actors_view ? render_nodes_actors(self, answers)
                                : render_nodes_inspection(self, answers);
        respond({200, std::move(body), "application/json", {}});
      });
  for (size_t i = 0; i < peers.size(); ++i)
    ask_peer(ctx, self, peers[i], actors_view, g, i);
}

} // namespace lps
