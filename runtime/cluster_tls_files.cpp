#include "runtime/cluster_tls_files.hpp"

#include "runtime/config.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/x509_vfy.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

namespace lps {

namespace {

template <class T, void (*Free)(T*)>
struct openssl_deleter {
  void operator()(T* x) const {
    Free(x);
  }
};
using x509_ptr = std::unique_ptr<X509, openssl_deleter<X509, X509_free>>;
using key_ptr = std::unique_ptr<EVP_PKEY, openssl_deleter<EVP_PKEY, EVP_PKEY_free>>;
using bio_ptr = std::unique_ptr<BIO, openssl_deleter<BIO, BIO_free_all>>;
using store_ptr = std::unique_ptr<X509_STORE, openssl_deleter<X509_STORE, X509_STORE_free>>;
using store_ctx_ptr =
    std::unique_ptr<X509_STORE_CTX, openssl_deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;

void free_x509_stack(STACK_OF(X509) * xs) {
  sk_X509_pop_free(xs, X509_free);
}
using x509_stack_ptr =
    std::unique_ptr<STACK_OF(X509), openssl_deleter<STACK_OF(X509), free_x509_stack>>;

// "CLUSTER_TLS_KEY '/etc/lps/node.key'": how every message names a file.
std::string named(const char* key, const std::string& path) {
  return std::string{key} + " '" + path + "'";
}

// The whole file, or false with `error` set (the reason from the system, never the content).
bool read_file(const char* key, const std::string& path, std::string& out, std::string& error) {
  errno = 0;
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    error = named(key, path)
            + " cannot be read: " + (errno != 0 ? std::strerror(errno) : "cannot open the file");
    return false;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  out = buf.str();
  return true;
}

bio_ptr memory_bio(const std::string& text) {
  return bio_ptr{BIO_new_mem_buf(text.data(), static_cast<int>(text.size()))};
}

// Never prompts on a terminal for a passphrase: an encrypted key simply does not load.
int refuse_passphrase(char*, int, int, void*) {
  return -1;
}

// The first certificate of `pem` is the node's; the rest are intermediates for the chain.
x509_ptr read_certificate(const std::string& pem, x509_stack_ptr& chain) {
  auto bio = memory_bio(pem);
  x509_ptr leaf{PEM_read_bio_X509(bio.get(), nullptr, refuse_passphrase, nullptr)};
  chain.reset(sk_X509_new_null());
  while (leaf) {
    X509* next = PEM_read_bio_X509(bio.get(), nullptr, refuse_passphrase, nullptr);
    if (next == nullptr)
      break;
    sk_X509_push(chain.get(), next);
  }
  ERR_clear_error(); // the end of the file reads as an error
  return leaf;
}

key_ptr read_private_key(const std::string& pem) {
  auto bio = memory_bio(pem);
  key_ptr key{PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, nullptr)};
  ERR_clear_error();
  return key;
}

// Verifies `cert` against `store` for `purpose` (0: none); the verifier's reason or "".
std::string verify_failure(X509_STORE* store, X509* cert, STACK_OF(X509) * chain, int purpose) {
  store_ctx_ptr ctx{X509_STORE_CTX_new()};
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store, cert, chain) != 1)
    return "cannot set up certificate verification";
  if (purpose != 0)
    X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  auto ok = X509_verify_cert(ctx.get()) == 1;
  auto reason =
      ok ? std::string{}
         : std::string{X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()))};
  ERR_clear_error();
  return reason;
}

struct loaded_files {
  std::string cert_pem, key_pem;
  x509_ptr cert;
  x509_stack_ptr chain;
  key_ptr key;
  store_ptr trusted;
};

// Reads and parses the three files; false with `error` at the first that does not load.
bool load(const cluster_tls_files& files, loaded_files& out, std::string& error) {
  std::string ca_pem;
  if (!read_file("CLUSTER_TLS_CERT", files.cert_file, out.cert_pem, error)
      || !read_file("CLUSTER_TLS_KEY", files.key_file, out.key_pem, error)
      || !read_file("CLUSTER_TLS_CA", files.ca_file, ca_pem, error))
    return false;
  out.cert = read_certificate(out.cert_pem, out.chain);
  if (!out.cert) {
    error = named("CLUSTER_TLS_CERT", files.cert_file) + " holds no PEM certificate";
    return false;
  }
  out.key = read_private_key(out.key_pem);
  OPENSSL_cleanse(out.key_pem.data(), out.key_pem.size()); // no copy of the key lingers
  if (!out.key) {
    error = named("CLUSTER_TLS_KEY", files.key_file)
            + " holds no unencrypted PEM private key (encrypted keys are not supported)";
    return false;
  }
  out.trusted.reset(X509_STORE_new());
  auto loaded = out.trusted && X509_STORE_load_file(out.trusted.get(), files.ca_file.c_str()) == 1;
  ERR_clear_error();
  if (!loaded) {
    error = named("CLUSTER_TLS_CA", files.ca_file) + " holds no PEM certificate";
    return false;
  }
  return true;
}

// The certificate against its key and the CA: signed by it, valid now, and usable on both
// ends of a connection, since every node dials some peers and accepts others.
std::string mismatch(const cluster_tls_files& files, loaded_files& x) {
  if (X509_check_private_key(x.cert.get(), x.key.get()) != 1) {
    ERR_clear_error();
    return named("CLUSTER_TLS_KEY", files.key_file) + " does not belong to the certificate in "
           + named("CLUSTER_TLS_CERT", files.cert_file);
  }
  if (auto why = verify_failure(x.trusted.get(), x.cert.get(), x.chain.get(), 0); !why.empty())
    return named("CLUSTER_TLS_CERT", files.cert_file) + " does not verify against "
           + named("CLUSTER_TLS_CA", files.ca_file) + ": " + why;
  for (auto [purpose, role] :
       {std::pair{X509_PURPOSE_SSL_CLIENT, "client"}, std::pair{X509_PURPOSE_SSL_SERVER, "server"}})
    if (auto why = verify_failure(x.trusted.get(), x.cert.get(), x.chain.get(), purpose);
        !why.empty())
      return named("CLUSTER_TLS_CERT", files.cert_file) + " cannot serve as a TLS " + role + " ("
             + why + "): a node both dials and accepts, so its extendedKeyUsage must "
             + "allow serverAuth and clientAuth";
  return "";
}

} // namespace

cluster_tls_files cluster_tls_files_of(const config& cfg) {
  return {cfg.cluster_tls_cert, cfg.cluster_tls_key, cfg.cluster_tls_ca};
}

std::vector<std::string> check_cluster_tls_files(const cluster_tls_files& files) {
  loaded_files loaded;
  std::string error;
  if (!load(files, loaded, error))
    return {error};
  if (auto why = mismatch(files, loaded); !why.empty())
    return {why};
  return {};
}

} // namespace lps
