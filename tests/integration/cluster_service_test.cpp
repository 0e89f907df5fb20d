// CLUSTER_ENABLED through the lps binary: the example node files (config/cluster/) pass every
// check and start on PostgreSQL (here one that cannot be reached: exit 2, the password not
// shown); on SQLite it refuses naming STORE_BACKEND. The running cluster is
// cluster_failover_test.
// `lps cluster --status` reads a database of the test run's server (the ctest fixture
// "postgres") that the test fills through the lease and the registry.

#include "fixtures/cluster_database.hpp"
#include "fixtures/temp_dir.hpp"
#include "integration/lps_process.hpp"
#include "runtime/cluster_lease.hpp"
#include "runtime/cluster_registry.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace lps;
using namespace std::chrono_literals;

namespace {

// Never reached (port 1 on loopback); its password must not show in any message.
const std::string postgres_url = "postgresql://lps:hunter2@127.0.0.1:1/lps";

test::run_result run_lps(std::vector<std::string> args) {
  args.insert(args.begin(), LPS_BINARY);
  return test::run_command(args, {{"LLM_PROVIDER_SERVICE_POSTGRES_URL", postgres_url}});
}

std::string node_file(int n) {
  return std::string{LPS_SOURCE_DIR} + "/config/cluster/node-" + std::to_string(n) + ".ini";
}

test::run_result run_cluster_status(const std::string& url, std::vector<std::string> options = {}) {
  std::vector<std::string> args{LPS_BINARY, "cluster", "--status"};
  args.insert(args.end(), options.begin(), options.end());
  return test::run_command(args, {{"LLM_PROVIDER_SERVICE_STORE_BACKEND", "postgres"},
                                  {"LLM_PROVIDER_SERVICE_POSTGRES_URL", url}});
}

size_t lines_of(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

} // namespace

TEST_CASE("the example cluster node files pass every check, and a node whose database cannot be "
          "reached refuses to start with exit 2") {
  for (int n = 1; n <= 3; ++n) {
    INFO("node-" << n);
    auto dump = run_lps({"--config-file=" + node_file(n), "--dump-config"});
    CHECK(dump.exit_code == 0);
    CHECK(dump.out.find("cluster-enabled = true\n") != std::string::npos);
    CHECK(dump.out.find("cluster-node-name = node-" + std::to_string(n) + "\n")
          != std::string::npos);
    CHECK(dump.out.find("cluster-port = 410" + std::to_string(n) + "\n") != std::string::npos);

    test::temp_dir data_dir;
    auto start = run_lps({"--config-file=" + node_file(n), "--data-dir=" + data_dir.str()});
    CHECK(start.exit_code == 2);
    CHECK(start.err.find("lps: cannot open the store") != std::string::npos);
    CHECK(start.err.find("not built yet") == std::string::npos);
    CHECK(start.err.find("hunter2") == std::string::npos);
  }
}

TEST_CASE("CLUSTER_ENABLED=true on the SQLite store refuses to start with exit 2, naming "
          "STORE_BACKEND") {
  test::temp_dir data_dir;
  auto start = run_lps({"--cluster-enabled=true", "--data-dir=" + data_dir.str()});
  CHECK(start.exit_code == 2);
  CHECK(start.err.find("lps: CLUSTER_ENABLED=true needs STORE_BACKEND=postgres")
        != std::string::npos);
}

TEST_CASE("cluster --status prints the leader lease and every registered node, live or stale") {
  test::cluster_database cluster{"status"};
  auto empty = run_cluster_status(cluster.url);
  CHECK(empty.exit_code == 0);
  CHECK(empty.out
        == "leader: none (no node has held the lease)\n"
           "nodes (live: a heartbeat within 5.0 s): none registered\n");

  auto db = cluster.connect();
  cluster::lease leader{*db};
  REQUIRE(leader.try_acquire("node-1", 30s) == 1);
  cluster::node_registry registry{*db};
  REQUIRE(registry.register_node({"node-1", "127.0.0.1", 4101, "0.1.0", "intake,provider"}, 30s));
  REQUIRE(registry.register_node({"node-2", "127.0.0.1", 4102, "0.1.0", "intake,provider"}, 30s));
  // What a dead node's row looks like: its last heartbeat a minute ago.
  test::exec_ok(*db, "UPDATE cluster_nodes SET heartbeat_at = now() - interval '1 minute' "
                     "WHERE name = 'node-2'");

  auto status = run_cluster_status(cluster.url, {"--cluster-lease-seconds=10"});
  CHECK(status.exit_code == 0);
  CHECK(status.out.rfind("leader: node-1, epoch 1, lease live for ", 0) == 0);
  CHECK(status.out.find("\nnodes (live: a heartbeat within 10.0 s):\n") != std::string::npos);
  CHECK(status.out.find("\nnode-1 127.0.0.1:4101 live, heartbeat ") != std::string::npos);
  CHECK(status.out.find("\nnode-2 127.0.0.1:4102 stale, heartbeat 60.") != std::string::npos);
  CHECK(status.out.find("version 0.1.0, roles intake,provider\n") != std::string::npos);

  REQUIRE(leader.release("node-1", 1));
  status = run_cluster_status(cluster.url);
  CHECK(status.out.rfind("leader: none (node-1's lease at epoch 1 ended ", 0) == 0);
}

TEST_CASE("cluster --status needs a PostgreSQL store with the cluster tables, and says so") {
  auto sqlite = test::run_command({LPS_BINARY, "cluster", "--status"});
  CHECK(sqlite.exit_code == 2);
  CHECK(sqlite.err.find("cluster --status reads a PostgreSQL store") != std::string::npos);

  test::cluster_database empty{"status-no-schema", false};
  auto no_tables = run_cluster_status(empty.url);
  CHECK(no_tables.exit_code == 2);
  CHECK(no_tables.err.find("cannot read the leader lease") != std::string::npos);
  CHECK(no_tables.err.find("cluster_lease") != std::string::npos);

  auto unreachable = run_cluster_status(postgres_url);
  CHECK(unreachable.exit_code == 2);
  CHECK(lines_of(unreachable.err) == 1);
  CHECK(unreachable.err.find("hunter2") == std::string::npos);

  auto usage = test::run_command({LPS_BINARY, "cluster"});
  CHECK(usage.exit_code == 2);
  CHECK(usage.err.find("usage: lps cluster --status") != std::string::npos);
}
