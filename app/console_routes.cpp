#include "app/console_routes.hpp"

#include "runtime/json_codec.hpp"

#include <algorithm>
#include <string>

namespace lps {

namespace {

constexpr std::string_view console_prefix = "/console";

// By extension; the browser refuses a script or style sheet served under another type
// (X-Content-Type-Options: nosniff).
std::string content_type_of(std::string_view name) {
  auto ends = [&](std::string_view ext) { return name.ends_with(ext); };
  if (ends(".html"))
    return "text/html; charset=utf-8";
  if (ends(".js") || ends(".mjs"))
    return "text/javascript; charset=utf-8";
  if (ends(".css"))
    return "text/css; charset=utf-8";
  if (ends(".svg"))
    return "image/svg+xml";
  if (ends(".json"))
    return "application/json";
  return "application/octet-stream";
}

// "/console" and "/console/" are the page; "/console/x.js" is "x.js".
std::string_view asset_name(std::string_view path) {
  auto rest = path.substr(console_prefix.size());
  if (rest.empty() || rest == "/")
    return "index.html";
  return rest.substr(1);
}

std::string request_header(const http_request& req, std::string_view name) {
  for (const auto& [key, value] : req.headers)
    if (key == name)
      return value;
  return "";
}

// If-None-Match holds "*" or a list of ETags; ours are quoted hex, so a substring match is
// exact.
bool browser_has(const http_request& req, std::string_view etag) {
  auto header = request_header(req, "if-none-match");
  return header == "*" || header.find(etag) != std::string::npos;
}

} // namespace

bool is_console_path(std::string_view path) {
  return path == console_prefix
         || (path.starts_with(console_prefix) && path[console_prefix.size()] == '/');
}

http_response console_response(const http_request& req, std::span<const console_asset> assets) {
  auto name = asset_name(req.path);
  auto asset = std::find_if(assets.begin(), assets.end(),
                            [&](const console_asset& a) { return a.name == name; });
  if (asset == assets.end())
    return {404,
            render_error_body(ec::resource_not_found, "the console has no file " + req.path, ""),
            "application/json",
            {}};
  http_response result{200, std::string{asset->body}, content_type_of(name), {}};
  if (browser_has(req, asset->etag)) {
    result.status = 304;
    result.body.clear();
  }
  result.headers = {
      {"ETag", std::string{asset->etag}},
      {"Cache-Control", "no-cache"},
      {"X-Content-Type-Options", "nosniff"},
      // The page may talk to lps only: no other host, no inline script, no framing.
      {"Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'"},
      {"Referrer-Policy", "no-referrer"},
  };
  return result;
}

} // namespace lps
