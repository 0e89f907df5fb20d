#pragma once

// Reading JSON text without Boost's values. Boost.JSON 1.81 has no precise number mode: some
// numbers come back an ulp off, and differently depending on what follows them. The caller's
// metadata is echoed, so lps keeps its original text. These helpers find a member's text in
// a body Boost has already validated (so the text is well-formed JSON).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lps {

/// Stack memory for a parsed document (a request body, stored metadata); bigger documents
/// spill to the heap.
constexpr size_t document_buffer_size = 8192;

/// JSON's four whitespace characters.
bool is_json_space(char c);

/// `text` without the whitespace between tokens (strings are copied as they are).
std::string compact_json(std::string_view text);

/// The raw text of member `key` of the object `text`; nullopt when absent or repeated
/// (then the caller falls back to Boost's value, whichever duplicate that is).
std::optional<std::string_view> raw_member(std::string_view text, std::string_view key);

/// The raw texts of the elements of the array `text`.
std::vector<std::string_view> raw_elements(std::string_view text);

} // namespace lps
