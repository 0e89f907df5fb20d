#include "runtime/json_utf8.hpp"

#include <algorithm>

namespace lps {

size_t utf8_sequence_length(const unsigned char* p, size_t available) {
  auto c = p[0];
  if (c < 0x80)
    return 1;
  auto continuation = [&](size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < available && p[i] >= lo && p[i] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF)
    return continuation(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    auto lo = c == 0xE0 ? 0xA0 : 0x80;
    auto hi = c == 0xED ? 0x9F : 0xBF;
    return continuation(1, lo, hi) && continuation(2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    auto lo = c == 0xF0 ? 0x90 : 0x80;
    auto hi = c == 0xF4 ? 0x8F : 0xBF;
    return continuation(1, lo, hi) && continuation(2) && continuation(3) ? 4 : 0;
  }
  return 0;
}

bool is_valid_utf8(std::string_view text, size_t end) {
  const auto* p = bytes_of(text);
  end = std::min(end, text.size());
  size_t i = 0;
  while (i < end) {
    auto n = utf8_sequence_length(p + i, text.size() - i);
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

std::string_view cut_to_chars(std::string_view text, size_t max_chars) {
  const auto* p = bytes_of(text);
  size_t i = 0;
  for (size_t chars = 0; i < text.size() && chars < max_chars; ++chars) {
    auto n = utf8_sequence_length(p + i, text.size() - i);
    i += n == 0 ? 1 : n;
  }
  return text.substr(0, i);
}

} // namespace lps
