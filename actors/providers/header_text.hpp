#pragma once

// Small text helpers for parsing provider response headers (Retry-After, rate-limit
// resets), shared by the retry policy and the rate limiter.

#include <cstddef>
#include <optional>
#include <string_view>

namespace lps::header_text {

/// `s` without leading and trailing spaces and tabs.
inline std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

/// An ASCII digit (locale-independent, unlike std::isdigit).
inline bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

/// Reads exactly `n` digits at `pos` (dates and times in headers).
inline std::optional<int> read_digits(std::string_view s, size_t pos, size_t n) noexcept {
  if (pos + n > s.size())
    return std::nullopt;
  int result = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!is_digit(s[i]))
      return std::nullopt;
    result = result * 10 + (s[i] - '0');
  }
  return result;
}

} // namespace lps::header_text
