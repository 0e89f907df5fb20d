#pragma once

// The files of mutual TLS between cluster nodes (CLUSTER_TLS_CERT, CLUSTER_TLS_KEY,
// CLUSTER_TLS_CA), checked with OpenSSL before anything starts. CAF reads them only when the
// first connection opens, and throws from its network thread on a bad file, so every mistake
// that can be found here is found here, with a message that names the key and the path and
// never shows what a key file holds. No CAF here.

#include <string>
#include <vector>

namespace lps {

struct config;

/// The three PEM files of one node.
struct cluster_tls_files {
  /// This node's certificate (optionally followed by intermediate CA certificates).
  std::string cert_file;
  /// Its private key, unencrypted.
  std::string key_file;
  /// The CA that signs every node's certificate; peers it did not sign are refused.
  std::string ca_file;

  /// All three are set.
  bool enabled() const {
    return !cert_file.empty() && !key_file.empty() && !ca_file.empty();
  }
};

/// The CLUSTER_TLS_* settings of `cfg`.
cluster_tls_files cluster_tls_files_of(const config& cfg);

/// One line per problem with `files` (empty: usable): each file exists and is readable, the
/// certificate parses, the key is an unencrypted PEM key that belongs to the certificate, the
/// CA file holds certificates, and the CA signed the certificate, which is valid now and may
/// serve as both TLS client and server (a node dials and accepts).
std::vector<std::string> check_cluster_tls_files(const cluster_tls_files& files);

} // namespace lps
