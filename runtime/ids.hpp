#pragma once

// Identifiers, hashes and time formatting shared by the edge and the actors.

#include <caf/timestamp.hpp>

#include <string>
#include <string_view>

namespace lps {

/// A random RFC 4122 version-4 UUID in lower-case canonical text form.
std::string new_uuid();

/// True for the canonical 8-4-4-4-12 hex form (any version, either case).
bool is_uuid(std::string_view text);

/// A name-based (version 5 style, SHA-1) UUID: the same input gives the same id in
/// every process, so a request's event_id survives restarts and redeliveries.
std::string stable_uuid(std::string_view name_space, std::string_view name);

/// `n` bytes as lower-case hex.
std::string hex_of(const unsigned char* bytes, size_t n);

/// Lower-case hex SHA-256 of `text`.
std::string sha256_hex(std::string_view text);

/// A stable 64-bit hash (FNV-1a), identical in every process and on every run.
uint64_t stable_hash(std::string_view text);

/// ISO-8601 UTC with milliseconds: 2026-11-28T19:44:11.123Z.
std::string iso8601(caf::timestamp t);

/// Milliseconds since the Unix epoch.
int64_t to_unix_ms(caf::timestamp t);

/// The inverse of to_unix_ms.
caf::timestamp from_unix_ms(int64_t ms);

} // namespace lps
