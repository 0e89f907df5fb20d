#include "runtime/ids.hpp"

#include <openssl/evp.h>

#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>

namespace lps {

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

std::string to_uuid_text(const std::array<unsigned char, 16>& bytes) {
  std::string result;
  result.reserve(36);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      result += '-';
    result += hex_digits[bytes[i] >> 4];
    result += hex_digits[bytes[i] & 0x0F];
  }
  return result;
}

// Digest with OpenSSL's EVP interface; `out` must hold the digest size.
unsigned digest(const EVP_MD* md, std::string_view a, std::string_view b, unsigned char* out) {
  unsigned len = 0;
  auto* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, md, nullptr);
  EVP_DigestUpdate(ctx, a.data(), a.size());
  EVP_DigestUpdate(ctx, b.data(), b.size());
  EVP_DigestFinal_ex(ctx, out, &len);
  EVP_MD_CTX_free(ctx);
  return len;
}

} // namespace

std::string new_uuid() {
  // One generator per thread: seeded once from the OS, then cheap.
  thread_local std::mt19937_64 gen{std::random_device{}()
                                   ^ (uint64_t{std::random_device{}()} << 32)};
  std::array<unsigned char, 16> bytes{};
  auto hi = gen();
  auto lo = gen();
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<unsigned char>(hi >> (i * 8));
    bytes[8 + i] = static_cast<unsigned char>(lo >> (i * 8));
  }
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0F) | 0x40); // version 4
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3F) | 0x80); // RFC 4122 variant
  return to_uuid_text(bytes);
}

bool is_uuid(std::string_view text) {
  if (text.size() != 36)
    return false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-')
        return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(text[i]))) {
      return false;
    }
  }
  return true;
}

std::string stable_uuid(std::string_view name_space, std::string_view name) {
  unsigned char md[EVP_MAX_MD_SIZE];
  digest(EVP_sha1(), name_space, name, md);
  std::array<unsigned char, 16> bytes{};
  for (size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = md[i];
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0F) | 0x50); // version 5
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3F) | 0x80);
  return to_uuid_text(bytes);
}

std::string hex_of(const unsigned char* bytes, size_t n) {
  std::string result;
  result.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    result += hex_digits[bytes[i] >> 4];
    result += hex_digits[bytes[i] & 0x0F];
  }
  return result;
}

std::string sha256_hex(std::string_view text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  auto len = digest(EVP_sha256(), text, {}, md);
  return hex_of(md, len);
}

uint64_t stable_hash(std::string_view text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

int64_t to_unix_ms(caf::timestamp t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

caf::timestamp from_unix_ms(int64_t ms) {
  return caf::timestamp{
      std::chrono::duration_cast<caf::timestamp::duration>(std::chrono::milliseconds{ms})};
}

std::string iso8601(caf::timestamp t) {
  auto ms = to_unix_ms(t);
  auto secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

} // namespace lps
