// The CLUSTER_TLS_* file checks on certificates the openssl command line makes: usable node
// files pass; every broken set is refused with one line that names the key and the path, and
// never shows what the key file holds.

#include "fixtures/openssl_cli_ca.hpp"
#include "fixtures/temp_dir.hpp"
#include "runtime/cluster_tls_files.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace lps;

namespace {

std::string contents(const std::filesystem::path& path) {
  std::stringstream text;
  text << std::ifstream{path}.rdbuf();
  return text.str();
}

// The base64 body of a PEM file: what must never appear in a message.
std::string pem_body_line(const std::filesystem::path& path) {
  std::istringstream lines{contents(path)};
  std::string line;
  while (std::getline(lines, line))
    if (!line.empty() && line.front() != '-')
      return line;
  return "";
}

std::string only_error(const cluster_tls_files& files) {
  auto errors = check_cluster_tls_files(files);
  REQUIRE(errors.size() == 1);
  return errors[0];
}

} // namespace

TEST_CASE("a node certificate, its key and the CA that signed it pass the checks") {
  test::temp_dir dir{"lps-cluster-tls"};
  test::openssl_cli_ca ca{dir.path(), "ca"};
  auto node = ca.issue("node-1");
  cluster_tls_files files{node.cert.string(), node.key.string(), ca.cert().string()};
  CHECK(files.enabled());
  CHECK(check_cluster_tls_files(files).empty());
}

TEST_CASE("a missing file is refused naming its key and path") {
  test::temp_dir dir{"lps-cluster-tls"};
  test::openssl_cli_ca ca{dir.path(), "ca"};
  auto node = ca.issue("node-1");
  auto missing = (dir.path() / "nowhere.key").string();
  auto error = only_error({node.cert.string(), missing, ca.cert().string()});
  CHECK(error == "CLUSTER_TLS_KEY '" + missing + "' cannot be read: No such file or directory");
  error = only_error({node.cert.string(), node.key.string(), missing});
  CHECK(error.rfind("CLUSTER_TLS_CA '" + missing + "' cannot be read", 0) == 0);
}

TEST_CASE("files that hold no certificate or no plain key are refused naming the key") {
  test::temp_dir dir{"lps-cluster-tls"};
  test::openssl_cli_ca ca{dir.path(), "ca"};
  auto node = ca.issue("node-1");
  auto junk = dir.path() / "junk.pem";
  std::ofstream{junk} << "not a certificate\n";
  CHECK(only_error({junk.string(), node.key.string(), ca.cert().string()})
        == "CLUSTER_TLS_CERT '" + junk.string() + "' holds no PEM certificate");
  CHECK(only_error({node.cert.string(), node.key.string(), junk.string()})
        == "CLUSTER_TLS_CA '" + junk.string() + "' holds no PEM certificate");
  // A certificate where the key belongs is not a key.
  CHECK(
      only_error({node.cert.string(), node.cert.string(), ca.cert().string()})
          .find("CLUSTER_TLS_KEY '" + node.cert.string() + "' holds no unencrypted PEM private key")
      == 0);
}

TEST_CASE("an encrypted key is refused without asking for a passphrase") {
  test::temp_dir dir{"lps-cluster-tls"};
  test::openssl_cli_ca ca{dir.path(), "ca"};
  auto node = ca.issue("node-1");
  auto locked = dir.path() / "locked.key";
  ca.run("openssl pkey -in " + node.key.string() + " -aes256 -passout pass:secret-phrase -out "
         + locked.string());
  auto error = only_error({node.cert.string(), locked.string(), ca.cert().string()});
  CHECK(error.find("CLUSTER_TLS_KEY '" + locked.string() + "' holds no unencrypted PEM private key")
        == 0);
}

TEST_CASE("the key of another certificate is refused, and the message shows no key material") {
  test::temp_dir dir{"lps-cluster-tls"};
  test::openssl_cli_ca ca{dir.path(), "ca"};
  auto node_1 = ca.issue("node-1");
  auto node_2 = ca.issue("node-2");
  auto error = only_error({node_1.cert.string(), node_2.key.string(), ca.cert().string()});
  CHECK(error
        == "CLUSTER_TLS_KEY '" + node_2.key.string()
               + "' does not belong to the certificate in CLUSTER_TLS_CERT '" + node_1.cert.string()
               + "'");
  auto body = pem_body_line(node_2.key);
  REQUIRE(body.size() > 20);
  CHECK(error.find(body.substr(0, 20)) == std::string::npos);
}

TEST_CASE("a certificate another CA signed is refused") {
  test::temp_dir dir{"lps-cluster-tls"};
  test::openssl_cli_ca ca{dir.path(), "ca"};
  test::openssl_cli_ca other{dir.path() / "other", "other-ca"};
  auto stranger = other.issue("stranger");
  auto error = only_error({stranger.cert.string(), stranger.key.string(), ca.cert().string()});
  CHECK(error.find("CLUSTER_TLS_CERT '" + stranger.cert.string()
                   + "' does not verify against "
                     "CLUSTER_TLS_CA '"
                   + ca.cert().string() + "': ")
        == 0);
  CHECK(error.find("issuer") != std::string::npos);
}

TEST_CASE("a certificate only for servers is refused: a node also dials its peers") {
  test::temp_dir dir{"lps-cluster-tls"};
  test::openssl_cli_ca ca{dir.path(), "ca"};
  auto server_only = ca.issue("server-only", "serverAuth");
  auto error =
      only_error({server_only.cert.string(), server_only.key.string(), ca.cert().string()});
  CHECK(error.find("cannot serve as a TLS client") != std::string::npos);
  CHECK(error.find("serverAuth and clientAuth") != std::string::npos);
}

TEST_CASE("tools/cluster.sh certs makes a CA and node files that pass the checks") {
  test::temp_dir dir{"lps-cluster-tls"};
  auto out = dir.path() / "tls";
  auto command = "bash " + std::string{LPS_SOURCE_DIR} + "/tools/cluster.sh certs " + out.string()
                 + " 2 >/dev/null";
  REQUIRE(std::system(command.c_str()) == 0);
  for (auto node : {"node-1", "node-2"}) {
    INFO(node);
    auto cert = (out / (std::string{node} + ".pem")).string();
    auto key = (out / (std::string{node} + ".key")).string();
    CHECK(check_cluster_tls_files({cert, key, (out / "ca.pem").string()}).empty());
    CHECK((std::filesystem::status(key).permissions() & std::filesystem::perms::others_read)
          == std::filesystem::perms::none);
  }
  // The keys of two nodes differ.
  CHECK(contents(out / "node-1.key") != contents(out / "node-2.key"));
}
