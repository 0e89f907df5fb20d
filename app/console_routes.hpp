#pragma once

// The web console (docs/console.md): the files of console/, built into the binary, served at
// /console and /console/<file>. The files are a static shell without data: the page reads
// everything it shows from the API routes, with the token the operator types in.

#include "runtime/http_server.hpp"

#include <span>
#include <string_view>

namespace lps {

/// One file of console/ as built into the binary.
struct console_asset {
  /// Path below console/ ("index.html", "console.js").
  std::string_view name;
  /// The file's bytes.
  std::string_view body;
  /// Strong ETag, quotes included: the start of the SHA-256 of `body`.
  std::string_view etag;
};

/// Every file of console/ (generated at build time by cmake/embed_files.cmake).
std::span<const console_asset> console_assets();

/// True for "/console", "/console/" and "/console/<file>".
bool is_console_path(std::string_view path);

/// The answer to GET `req` on a console path: the file (index.html for /console and
/// /console/) with its Content-Type, ETag and Cache-Control: no-cache (the browser
/// revalidates, so a new binary's files are picked up at once); 304 without a body when
/// If-None-Match names the current ETag; 404 for a file the console does not have.
http_response console_response(const http_request& req, std::span<const console_asset> assets);

} // namespace lps
