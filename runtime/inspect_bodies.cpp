#include "runtime/inspect_bodies.hpp"
#include "runtime/ids.hpp"
#include "runtime/json_writer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace lps {

namespace {

// Whole numbers as integers (counts, bytes, milliseconds), others as they are.
void append_figure(std::string& out, double x) {
  if (std::isfinite(x) && x == std::trunc(x) && std::fabs(x) < 9007199254740992.0)
    append_integer(out, static_cast<int64_t>(x));
  else
    append_double(out, x);
}

// One table row: its figures and facts as members, in name order.
void write_row(std::string& out, const status_row& row) {
  object_writer item{out};
  auto figure = row.figures.begin();
  auto fact = row.facts.begin();
  while (figure != row.figures.end() || fact != row.facts.end()) {
    if (fact == row.facts.end() || (figure != row.figures.end() && figure->first < fact->first)) {
      append_figure(item.member(figure->first), figure->second);
      ++figure;
    } else {
      item.string(fact->first, fact->second);
      ++fact;
    }
  }
  item.close();
}

// "<name>": the rows of every actor's table `name`, in actor order.
void write_table(object_writer& body, const inspection_snapshot& x, const std::string& name) {
  array_writer rows{body.member(name)};
  for (const auto& actor : x.actors)
    if (auto i = actor.status.tables.find(name); i != actor.status.tables.end())
      for (const auto& row : i->second)
        write_row(rows.element(), row);
  rows.close();
}

// An actor's own figures and facts, the same in a sample and in a bare status.
void write_figures_and_facts(object_writer& item, const actor_status& s) {
  object_writer figures{item.member("figures")};
  for (const auto& [key, value] : s.figures)
    figures.number(key, value);
  figures.close();
  object_writer facts{item.member("facts")};
  for (const auto& [key, value] : s.facts)
    facts.string(key, value);
  facts.close();
}

void write_actor(std::string& out, const actor_sample& x) {
  const auto& s = x.status;
  object_writer item{out};
  item.string("name", s.name)
      .string("kind", s.kind)
      .string("node", s.node)
      .boolean("responsive", x.responsive)
      .integer("mailbox_size", s.mailbox_size)
      .integer("messages_handled", s.messages_handled)
      .number("handled_per_second", x.handled_per_second);
  object_writer processing{item.member("processing_ms")};
  processing.number("p50", x.p50_ms).number("p90", x.p90_ms).number("p99", x.p99_ms);
  processing.close();
  item.string_or_null("last_error", s.last_error);
  write_figures_and_facts(item, s);
  item.close();
}

void write_actors(object_writer& body, const inspection_snapshot& x) {
  array_writer actors{body.member("actors")};
  for (const auto& actor : x.actors)
    write_actor(actors.element(), actor);
  actors.close();
}

// The node's figures: known (its own, or another's that answered at least once), with
// whether they are this second's and how old they are; null while nothing is known.
void write_figures(object_writer& node, const inspection_snapshot& x, const node_figures* f) {
  if (f == nullptr || f->seq == 0) {
    node.null("in_flight_calls").null("actors").null("unresponsive_actors");
    node.null("figures_age_seconds");
  } else {
    auto age = std::chrono::duration<double>(x.at - f->at).count();
    node.integer("in_flight_calls", f->in_flight_calls)
        .integer("actors", f->actors)
        .integer("unresponsive_actors", f->unresponsive_actors)
        .number("figures_age_seconds", std::max(0.0, age));
  }
  if (f == nullptr)
    node.null("responsive").null("error");
  else
    node.boolean("responsive", f->error.empty()).string_or_null("error", f->error);
}

// The node the snapshot was taken on, outside a cluster (or missing from its registry).
void write_this_node(array_writer& nodes, const inspection_snapshot& x,
                     const std::string& version) {
  object_writer node{nodes.element()};
  node.string("name", x.node)
      .boolean("self", true)
      .null("address")
      .null("leader")
      .string("state", "up")
      .null("last_heartbeat")
      .null("heartbeat_age_seconds")
      .string_or_null("version", version);
  auto own = own_figures(x);
  write_figures(node, x, &own);
  node.close();
}

void write_cluster_node(array_writer& nodes, const inspection_snapshot& x, const inspect_node& n) {
  bool self = n.name == x.node;
  object_writer node{nodes.element()};
  node.string("name", n.name)
      .boolean("self", self)
      .string("address", n.address)
      .boolean("leader", n.leader)
      .string("state", n.state)
      .string("last_heartbeat", n.last_heartbeat)
      .number("heartbeat_age_seconds", n.heartbeat_age_seconds)
      .string_or_null("version", n.version);
  if (self) {
    auto own = own_figures(x);
    write_figures(node, x, &own);
  } else {
    auto peer = std::find_if(x.peers.begin(), x.peers.end(),
                             [&](const node_figures& p) { return p.node == n.name; });
    write_figures(node, x, peer == x.peers.end() ? nullptr : &*peer);
  }
  node.close();
}

void write_cluster(object_writer& body, const std::optional<inspect_cluster>& cluster) {
  if (!cluster) {
    body.null("cluster");
    return;
  }
  object_writer out{body.member("cluster")};
  out.string_or_null("leader", cluster->leader)
      .integer("epoch", cluster->epoch)
      .number("lease_seconds", cluster->lease_seconds)
      .string_or_null("error", cluster->error);
  out.close();
}

// "cluster" (null outside a cluster) and "nodes": every node of the cluster, this node
// listed even when the registry could not be read, or this node alone outside a cluster.
void write_nodes(object_writer& body, const inspection_snapshot& x, const node_directory* dir) {
  static const node_directory unknown;
  const auto& nodes_of = dir != nullptr ? *dir : unknown;
  write_cluster(body, nodes_of.cluster);
  array_writer nodes{body.member("nodes")};
  bool listed = false;
  if (nodes_of.cluster)
    for (const auto& n : nodes_of.cluster->nodes) {
      write_cluster_node(nodes, x, n);
      listed = listed || n.name == x.node;
    }
  if (!listed)
    write_this_node(nodes, x, nodes_of.version);
  nodes.close();
}

void write_header(object_writer& body, const inspection_snapshot& x) {
  body.integer("seq", x.seq).string("at", iso8601(x.at)).string("node", x.node);
}

bool shows(inspect_view view, inspect_view part) {
  return view == part || view == inspect_view::all;
}

// Which node's actors the tables come from: the leader's in a cluster (the actors marked
// role=leader; null with the reason when the leader did not answer), this node's otherwise.
void write_tables_source(object_writer& body, const inspection_snapshot& x) {
  for (const auto& actor : x.actors) {
    auto role = actor.status.facts.find("role");
    if (role == actor.status.facts.end() || role->second != "leader")
      continue;
    if (actor.responsive) {
      body.string("tables_node", actor.status.node).null("tables_error");
    } else {
      auto why = actor.status.facts.find("unresponsive");
      body.null("tables_node")
          .string("tables_error", "the leader's singletons did not answer: "
                                      + (why == actor.status.facts.end() ? "" : why->second));
    }
    return;
  }
  body.string("tables_node", x.node).null("tables_error");
}

void write_node_entry(array_writer& nodes, const node_answer& n, size_t actors) {
  object_writer node{nodes.element()};
  node.string("name", n.name)
      .boolean("responsive", n.error.empty())
      .string_or_null("error", n.error)
      .integer("actors", actors);
  if (n.snapshot)
    node.integer("seq", n.snapshot->seq).string("at", iso8601(n.snapshot->at));
  node.close();
}

void write_status(std::string& out, const actor_status& s) {
  object_writer item{out};
  item.string("name", s.name)
      .string("kind", s.kind)
      .string("node", s.node)
      .integer("mailbox_size", s.mailbox_size)
      .integer("messages_handled", s.messages_handled)
      .string_or_null("last_error", s.last_error);
  write_figures_and_facts(item, s);
  item.close();
}

void write_named_figures(array_writer& nodes, const inspection_snapshot& x, const node_figures& f) {
  object_writer node{nodes.element()};
  node.string("name", f.node);
  write_figures(node, x, &f);
  node.close();
}

// "nodes" of a history snapshot: this node's figures, then (in a cluster) every other node's
// as it answered that second, without the registry's view (only the live nodes view has it).
void write_node_figures(object_writer& body, const inspection_snapshot& x) {
  array_writer nodes{body.member("nodes")};
  write_named_figures(nodes, x, own_figures(x));
  for (const auto& peer : x.peers)
    write_named_figures(nodes, x, peer);
  nodes.close();
}

} // namespace

// Provider calls in flight are what the node's provider actors report (bundles, the mock's
// calls, gateway calls); its own actors are those not listed for the leader (its singletons).
node_figures own_figures(const inspection_snapshot& x) {
  node_figures result;
  result.node = x.node;
  result.seq = x.seq;
  result.at = x.at;
  double in_flight = 0;
  for (const auto& actor : x.actors) {
    if (actor.status.node != x.node && !actor.status.node.empty())
      continue;
    ++result.actors;
    result.unresponsive_actors += actor.responsive ? 0 : 1;
    if (actor.status.kind != "provider")
      continue;
    for (const auto* key : {"inflight_bundles", "inflight_calls", "inflight_gateway_calls"})
      if (auto i = actor.status.figures.find(key); i != actor.status.figures.end())
        in_flight += i->second;
  }
  result.in_flight_calls = static_cast<uint64_t>(in_flight);
  return result;
}

std::string render_inspect_view(const inspection_snapshot& snapshot, inspect_view view,
                                const node_directory* nodes) {
  std::string result;
  object_writer body{result};
  write_header(body, snapshot);
  if (shows(view, inspect_view::actors))
    write_actors(body, snapshot);
  if (shows(view, inspect_view::queue))
    write_table(body, snapshot, "queue");
  if (shows(view, inspect_view::bundles)) {
    write_table(body, snapshot, "recent_bundles");
    write_table(body, snapshot, "items_per_call");
  }
  if (shows(view, inspect_view::providers))
    write_table(body, snapshot, "providers");
  if (shows(view, inspect_view::nodes))
    write_nodes(body, snapshot, nodes);
  if (view != inspect_view::actors && view != inspect_view::nodes)
    write_tables_source(body, snapshot);
  body.close();
  return result;
}

std::string render_nodes_inspection(const std::string& self,
                                    const std::vector<node_answer>& nodes) {
  std::string result;
  object_writer body{result};
  body.string("node", self);
  array_writer listed{body.member("nodes")};
  for (const auto& n : nodes)
    write_node_entry(listed, n, n.statuses.size());
  listed.close();
  array_writer actors{body.member("actors")};
  for (const auto& n : nodes)
    for (const auto& x : n.statuses)
      write_status(actors.element(), x);
  actors.close();
  body.close();
  return result;
}

std::string render_nodes_actors(const std::string& self, const std::vector<node_answer>& nodes) {
  std::string result;
  object_writer body{result};
  body.string("node", self);
  array_writer listed{body.member("nodes")};
  for (const auto& n : nodes)
    write_node_entry(listed, n, n.snapshot ? n.snapshot->actors.size() : 0);
  listed.close();
  array_writer actors{body.member("actors")};
  for (const auto& n : nodes)
    if (n.snapshot)
      for (const auto& x : n.snapshot->actors)
        write_actor(actors.element(), x);
  actors.close();
  body.close();
  return result;
}

std::string render_inspect_history(const std::vector<inspection_snapshot>& snapshots,
                                   uint32_t seconds) {
  std::string result;
  object_writer body{result};
  body.integer("seconds", seconds);
  array_writer xs{body.member("snapshots")};
  for (const auto& x : snapshots) {
    object_writer snapshot{xs.element()};
    write_header(snapshot, x);
    write_actors(snapshot, x);
    write_node_figures(snapshot, x);
    snapshot.close();
  }
  xs.close();
  body.close();
  return result;
}

} // namespace lps
