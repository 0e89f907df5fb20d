// Mutual TLS between cluster nodes through the lps binary's start-up checks: a CLUSTER_HOST
// beyond loopback without the CLUSTER_TLS_* files, a missing file and a key of another
// certificate each refuse to start with exit 2 and one line naming the key (never the key's
// contents); with usable files the node passes every check and goes on to open its store
// (here a PostgreSQL that cannot be reached, so it stops there with exit 2 too).
// The TLS connections themselves are tests/unit/cluster_tls_test.cpp.

#include "fixtures/openssl_cli_ca.hpp"
#include "fixtures/temp_dir.hpp"
#include "integration/lps_process.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

using namespace lps;

namespace {

// Never reached (port 1 on loopback).
const std::string postgres_url = "postgresql://lps@127.0.0.1:1/lps";

test::run_result run_node(const std::vector<std::pair<std::string, std::string>>& settings,
                          std::vector<std::string> args = {}) {
  std::vector<std::pair<std::string, std::string>> env{
      {"LLM_PROVIDER_SERVICE_CLUSTER_ENABLED", "true"},
      {"LLM_PROVIDER_SERVICE_STORE_BACKEND", "postgres"},
      {"LLM_PROVIDER_SERVICE_POSTGRES_URL", postgres_url}};
  for (const auto& [key, value] : settings)
    env.emplace_back("LLM_PROVIDER_SERVICE_" + key, value);
  args.insert(args.begin(), LPS_BINARY);
  return test::run_command(args, env);
}

std::vector<std::pair<std::string, std::string>> tls_settings(const test::node_certificate& node,
                                                              const std::filesystem::path& ca) {
  return {{"CLUSTER_HOST", "0.0.0.0"},
          {"CLUSTER_TLS_CERT", node.cert.string()},
          {"CLUSTER_TLS_KEY", node.key.string()},
          {"CLUSTER_TLS_CA", ca.string()},
          {"CLUSTER_ADVERTISE_HOST", "127.0.0.1"}};
}

size_t error_lines(const std::string& err) {
  size_t n = 0;
  std::istringstream lines{err};
  for (std::string line; std::getline(lines, line);)
    n += line.rfind("lps: ", 0) == 0 && line.find("refusing to start") == std::string::npos;
  return n;
}

} // namespace

TEST_CASE("a CLUSTER_HOST beyond loopback without the CLUSTER_TLS files refuses to start with "
          "exit 2") {
  test::temp_dir data_dir;
  auto start = run_node({{"CLUSTER_HOST", "0.0.0.0"}, {"CLUSTER_ADVERTISE_HOST", "10.0.0.7"}},
                        {"--data-dir=" + data_dir.str()});
  CHECK(start.exit_code == 2);
  CHECK(error_lines(start.err) == 1);
  CHECK(start.err.find("lps: CLUSTER_HOST '0.0.0.0' is beyond loopback, which needs mutual TLS "
                       "between the nodes: set CLUSTER_TLS_CERT, CLUSTER_TLS_KEY and "
                       "CLUSTER_TLS_CA")
        != std::string::npos);
  CHECK(start.err.find("cannot open the store") == std::string::npos);
}

TEST_CASE("a missing CLUSTER_TLS file refuses to start with exit 2, naming the key") {
  test::temp_dir dir{"lps-cluster-tls"};
  test::openssl_cli_ca ca{dir.path(), "ca"};
  auto node = ca.issue("node-1");
  auto settings = tls_settings(node, ca.cert());
  auto missing = (dir.path() / "gone.key").string();
  settings[2].second = missing;
  auto start = run_node(settings, {"--data-dir=" + dir.str()});
  CHECK(start.exit_code == 2);
  CHECK(error_lines(start.err) == 1);
  CHECK(start.err.find("lps: CLUSTER_TLS_KEY '" + missing
                       + "' cannot be read: No such file or directory")
        != std::string::npos);
}

TEST_CASE("the key of another node refuses to start with exit 2 and never shows the key") {
  test::temp_dir dir{"lps-cluster-tls"};
  test::openssl_cli_ca ca{dir.path(), "ca"};
  auto node_1 = ca.issue("node-1");
  auto node_2 = ca.issue("node-2");
  auto settings = tls_settings(node_1, ca.cert());
  settings[2].second = node_2.key.string();
  auto start = run_node(settings, {"--data-dir=" + dir.str()});
  CHECK(start.exit_code == 2);
  CHECK(start.err.find("lps: CLUSTER_TLS_KEY '" + node_2.key.string()
                       + "' does not belong to the certificate in CLUSTER_TLS_CERT")
        != std::string::npos);
  std::stringstream key;
  key << std::ifstream{node_2.key}.rdbuf();
  std::istringstream key_lines{key.str()};
  for (std::string line; std::getline(key_lines, line);)
    if (!line.empty() && line.front() != '-')
      CHECK(start.err.find(line) == std::string::npos);
}

TEST_CASE("usable CLUSTER_TLS files let a node bind beyond loopback, and --dump-config shows their "
          "paths") {
  test::temp_dir dir{"lps-cluster-tls"};
  test::openssl_cli_ca ca{dir.path(), "ca"};
  auto node = ca.issue("node-1");
  auto settings = tls_settings(node, ca.cert());
  auto dump = run_node(settings, {"--dump-config"});
  CHECK(dump.exit_code == 0);
  CHECK(dump.out.find("cluster-tls-key = " + node.key.string() + "\n") != std::string::npos);
  CHECK(dump.out.find("cluster-tls-ca = " + ca.cert().string() + "\n") != std::string::npos);
  CHECK(dump.out.find("PRIVATE KEY") == std::string::npos);

  auto start = run_node(settings, {"--data-dir=" + dir.str()});
  CHECK(start.exit_code == 2);
  CHECK(start.err.find("lps: cannot open the store") != std::string::npos);
  CHECK(start.err.find("CLUSTER_") == std::string::npos);
}
