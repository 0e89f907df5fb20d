#include "runtime/callback_signature.hpp"
#include "runtime/ids.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace lps {

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), md, &len);
  return hex_of(md, len);
}

std::string callback_signature(std::string_view secret, int64_t unix_seconds,
                               std::string_view body) {
  auto t = std::to_string(unix_seconds);
  auto signed_text = t + "." + std::string{body};
  return "t=" + t + ",v1=" + hmac_sha256_hex(secret, signed_text);
}

} // namespace lps
