#include "runtime/api_keys.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cctype>
#include <fstream>
#include <sstream>

namespace lps {

namespace {

std::string sha256_raw(std::string_view text) {
  std::string result(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(),
         reinterpret_cast<unsigned char*>(result.data()));
  return result;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

// 64 hex digits -> 32 bytes; false for anything else.
bool parse_hash(std::string_view hex, std::string& out) {
  if (hex.size() != 2 * SHA256_DIGEST_LENGTH)
    return false;
  out.clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    auto hi = hex_value(hex[i]);
    auto lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    out += static_cast<char>(hi * 16 + lo);
  }
  return true;
}

std::vector<std::string> words_of(const std::string& line) {
  std::istringstream in{line};
  std::vector<std::string> result;
  for (std::string word; in >> word;)
    result.push_back(word);
  return result;
}

} // namespace

bool api_keys::parse(std::string_view text, const std::string& source, api_keys& out,
                     std::string& error) {
  api_keys result;
  std::istringstream in{std::string{text}};
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (auto hash = line.find('#'); hash != std::string::npos)
      line.erase(hash);
    auto words = words_of(line);
    if (words.empty())
      continue;
    auto where = source + ":" + std::to_string(number) + ": ";
    entry x;
    if (words.size() != 2 || !parse_hash(words[1], x.hash)) {
      error = where
              + "expected '<name> <sha256 hex of the key>' (64 hex digits; make one with "
                "printf %s \"$KEY\" | sha256sum)";
      return false;
    }
    x.name = words[0];
    for (const auto& other : result.entries_)
      if (other.name == x.name) {
        error = where + "the name '" + x.name + "' is used twice";
        return false;
      }
    result.entries_.push_back(std::move(x));
  }
  if (result.entries_.empty()) {
    error = source + ": holds no key (an empty file would lock every client out)";
    return false;
  }
  out = std::move(result);
  return true;
}

bool api_keys::load(const std::string& path, api_keys& out, std::string& error) {
  std::ifstream in{path};
  if (!in) {
    error = path + ": cannot be read";
    return false;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return parse(buf.str(), path, out, error);
}

std::optional<std::string> api_keys::find(std::string_view presented) const {
  auto hash = sha256_raw(presented);
  const entry* match = nullptr;
  for (const auto& x : entries_) // no early exit: every entry costs the same
    if (constant_time_equal(hash, x.hash) && match == nullptr)
      match = &x;
  if (match == nullptr)
    return std::nullopt;
  return match->name;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view bearer_token(std::string_view authorization) {
  constexpr std::string_view scheme = "bearer ";
  if (authorization.size() <= scheme.size())
    return {};
  for (size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i])
      return {};
  auto token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ')
    token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ')
    token.remove_suffix(1);
  return token;
}

} // namespace lps
