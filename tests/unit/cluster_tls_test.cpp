// Two CAF actor systems in one process talking over the middleman on loopback, through
// runtime/cluster_tls: nodes with certificates from the same CA exchange a message over
// mutual TLS; a peer with a certificate from another CA, and a plain (no TLS) peer, are
// refused in both directions; two plain nodes still talk, so a refusal is the TLS check and
// not a broken transport. Certificates come from the openssl command line.

#include "fixtures/openssl_cli_ca.hpp"
#include "fixtures/temp_dir.hpp"
#include "runtime/cluster_tls.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>

using namespace lps;
using namespace std::chrono_literals;

namespace {

// Generous: the machine that runs the tests may be loaded.
constexpr caf::timespan patience = caf::timespan{30s};

// One node: an actor system with the cluster middleman (TLS when `tls` has the files) and an
// echo actor that counts what reaches it.
struct node {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<std::atomic<int>> received = std::make_shared<std::atomic<int>>(0);
  caf::actor echo;

  explicit node(const cluster_tls_files& tls) {
    cfg.set("scheduler.max-threads", 2);
    load_cluster_middleman(cfg, tls);
    sys = std::make_unique<caf::actor_system>(cfg);
    echo = sys->spawn([count = received]() -> caf::behavior {
      return {[count](const std::string& text) {
        ++*count;
        return "echo: " + text;
      }};
    });
  }

  ~node() {
    caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
  }

  uint16_t publish() {
    auto port = publish_cluster(echo, 0, "127.0.0.1", patience);
    REQUIRE(port);
    REQUIRE(*port != 0);
    return *port;
  }

  // The echo's answer through `peer`'s published actor, or CAF's error as text.
  std::string ask(uint16_t port, const std::string& text, caf::timespan timeout = patience) {
    auto remote = connect_cluster<caf::actor>(*sys, "127.0.0.1", port, timeout);
    if (!remote)
      return "refused: " + sys->render(remote.error());
    std::string answer = "no answer";
    caf::scoped_actor self{*sys};
    self->request(*remote, patience, text)
        .receive([&](const std::string& reply) { answer = reply; },
                 [&](caf::error& err) { answer = "failed: " + sys->render(err); });
    return answer;
  }
};

struct certificates {
  test::temp_dir dir{"lps-cluster-tls"};
  test::openssl_cli_ca ca{dir.path(), "ca"};
  test::openssl_cli_ca other_ca{dir.path() / "other", "other-ca"};

  cluster_tls_files node_files(const std::string& name) {
    auto x = ca.issue(name);
    return {x.cert.string(), x.key.string(), ca.cert().string()};
  }
};

// A refusal may come as an error or as no answer within the timeout; it never reaches the
// echo actor.
constexpr caf::timespan refusal_wait = caf::timespan{10s};

} // namespace

TEST_CASE("two nodes whose certificates the same CA signed exchange a message over mutual TLS") {
  certificates certs;
  node server{certs.node_files("node-1")};
  node client{certs.node_files("node-2")};
  CHECK(cluster_uses_tls(*server.sys));
  CHECK(cluster_uses_tls(*client.sys));
  auto port = server.publish();
  CHECK(client.ask(port, "hello") == "echo: hello");
  CHECK(*server.received == 1);
}

TEST_CASE("TLS turns CAF's automatic connections off, which would open plain ones") {
  certificates certs;
  caf::actor_system_config cfg;
  cfg.set("middleman.enable-automatic-connections", true);
  load_cluster_middleman(cfg, certs.node_files("node-1"));
  CHECK_FALSE(caf::get_or(cfg, "middleman.enable-automatic-connections", true));
  CHECK(cfg.openssl_cafile == certs.ca.cert().string());
}

TEST_CASE("a node whose certificate another CA signed is refused, in both directions") {
  certificates certs;
  node server{certs.node_files("node-1")};
  auto stranger_cert = certs.other_ca.issue("stranger");
  SECTION("a stranger that trusts only its own CA") {
    node stranger{
        {stranger_cert.cert.string(), stranger_cert.key.string(), certs.other_ca.cert().string()}};
    CHECK(stranger.ask(server.publish(), "let me in", refusal_wait).rfind("refused: ", 0) == 0);
  }
  SECTION("a stranger that trusts the node's CA: the node checks the client's certificate") {
    node stranger{
        {stranger_cert.cert.string(), stranger_cert.key.string(), certs.ca.cert().string()}};
    CHECK(stranger.ask(server.publish(), "let me in", refusal_wait).rfind("refused: ", 0) == 0);
  }
  SECTION("a node dialling a stranger's published actor") {
    node stranger{
        {stranger_cert.cert.string(), stranger_cert.key.string(), certs.ca.cert().string()}};
    auto port = stranger.publish();
    CHECK(server.ask(port, "hello?", refusal_wait).rfind("refused: ", 0) == 0);
    CHECK(*stranger.received == 0);
  }
  CHECK(*server.received == 0);
}

TEST_CASE("a plain middleman peer cannot talk to a TLS node, nor a TLS node to a plain one") {
  certificates certs;
  node tls_node{certs.node_files("node-1")};
  node plain{cluster_tls_files{}};
  CHECK_FALSE(cluster_uses_tls(*plain.sys));
  CHECK(plain.ask(tls_node.publish(), "let me in", refusal_wait).rfind("refused: ", 0) == 0);
  CHECK(*tls_node.received == 0);
  CHECK(tls_node.ask(plain.publish(), "hello?", refusal_wait).rfind("refused: ", 0) == 0);
  CHECK(*plain.received == 0);
}

TEST_CASE("two plain nodes talk over the plain middleman (the loopback default)") {
  node server{cluster_tls_files{}};
  node client{cluster_tls_files{}};
  CHECK(client.ask(server.publish(), "hello") == "echo: hello");
  CHECK(*server.received == 1);
}

TEST_CASE("a port another node listens on is refused even though publishing reuses addresses") {
  node first{cluster_tls_files{}};
  node second{cluster_tls_files{}};
  auto port = first.publish();
  // SO_REUSEADDR (for a restart beside lingering TIME_WAIT connections) must not let a second
  // listener share the port: the second node's publish fails, and the first still answers.
  auto again = publish_cluster(second.echo, port, "127.0.0.1", patience);
  CHECK_FALSE(again);
  node client{cluster_tls_files{}};
  CHECK(client.ask(port, "still there") == "echo: still there");
  CHECK(*second.received == 0);
}
