#pragma once

// UTF-8 well-formedness for the JSON codec (RFC 3629): request bodies are checked with it,
// and the writer uses it to keep its output valid JSON whatever text it is handed.

#include <cstddef>
#include <string_view>

namespace lps {

/// Length of the well-formed UTF-8 sequence starting at `p` (RFC 3629 table: no overlong
/// forms, no surrogates, nothing above U+10FFFF), or 0 when the bytes there are not one.
size_t utf8_sequence_length(const unsigned char* p, size_t available);

/// The bytes of `text`, unsigned, for utf8_sequence_length.
inline const unsigned char* bytes_of(std::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}

/// True when every character starting before byte `end` is well-formed (the last one may
/// run past `end`).
bool is_valid_utf8(std::string_view text, size_t end = std::string_view::npos);

/// The longest prefix of `text` holding at most `max_chars` characters, never ending
/// inside a multi-byte character. A stray invalid byte counts as one character (it is
/// rendered as U+FFFD).
std::string_view cut_to_chars(std::string_view text, size_t max_chars);

} // namespace lps
