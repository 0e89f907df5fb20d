#pragma once

// Client API keys (API_KEYS_FILE) and the bearer check of the HTTP API. The file holds one
// "<name> <sha256 hex of the key>" per line ('#' starts a comment), so the keys themselves
// are never stored; a presented key is hashed and compared in constant time. Names say
// which client a request came from without ever showing its key.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lps {

class api_keys {
public:
  /// Parses the file's text; false with `error` naming `source`, the line and what is wrong.
  static bool parse(std::string_view text, const std::string& source, api_keys& out,
                    std::string& error);

  /// Reads and parses `path`; false with `error` naming the file (and line).
  static bool load(const std::string& path, api_keys& out, std::string& error);

  bool empty() const {
    return entries_.empty();
  }

  /// The name of the key `presented` is, or nullopt. Hashes it and compares with every
  /// entry in constant time, so timing tells nothing about which entry came close.
  std::optional<std::string> find(std::string_view presented) const;

private:
  struct entry {
    std::string name;
    /// SHA-256 of the key, 32 raw bytes.
    std::string hash;
  };
  std::vector<entry> entries_;
};

/// Compares two byte strings in time that depends only on their lengths.
bool constant_time_equal(std::string_view a, std::string_view b);

/// The key of an "Authorization: Bearer <key>" header value, or "" when it is not one.
std::string_view bearer_token(std::string_view authorization);

} // namespace lps
