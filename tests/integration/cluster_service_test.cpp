// CLUSTER_ENABLED through the lps binary: the example node files (config/cluster/) pass every
// check and then refuse to start, because cluster mode is not built yet; on SQLite it refuses
// naming STORE_BACKEND. No database is reached: both refusals come before the store opens.

#include "fixtures/temp_dir.hpp"
#include "integration/lps_process.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace lps;

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

size_t lines_of(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

} // namespace

TEST_CASE("the example cluster node files pass every check, then lps refuses: cluster mode is not "
          "built yet") {
  for (int n = 1; n <= 3; ++n) {
    INFO("node-" << n);
    auto dump = run_lps({"--config-file=" + node_file(n), "--dump-config"});
    CHECK(dump.exit_code == 0);
    CHECK(dump.out.find("cluster-enabled = true\n") != std::string::npos);
    CHECK(dump.out.find("cluster-node-name = node-" + std::to_string(n) + "\n")
          != std::string::npos);
    CHECK(dump.out.find("cluster-port = 410" + std::to_string(n) + "\n") != std::string::npos);

    auto start = run_lps({"--config-file=" + node_file(n)});
    CHECK(start.exit_code == 2);
    CHECK(start.err.find("cluster mode is not built yet (issue #11)") != std::string::npos);
    CHECK(lines_of(start.err) == 1);
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
  CHECK(start.err.find("not built yet") == std::string::npos); // the store check comes first
}
