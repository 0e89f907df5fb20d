// The web console's files as lps serves them (app/console_routes): the embedded bytes, types,
// ETags and the 304 revalidation, without a socket.

#include "app/console_routes.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

using namespace lps;

namespace {

http_request get(std::string path, std::string if_none_match = "") {
  http_request req;
  req.method = "GET";
  req.path = std::move(path);
  if (!if_none_match.empty())
    req.headers.emplace_back("if-none-match", std::move(if_none_match));
  return req;
}

std::string header(const http_response& res, std::string_view name) {
  for (const auto& [key, value] : res.headers)
    if (key == name)
      return value;
  return "";
}

std::string file_in_source(const std::string& name) {
  std::ifstream in{std::string{LPS_SOURCE_DIR} + "/console/" + name, std::ios::binary};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

} // namespace

TEST_CASE("the console paths are /console and the files below it") {
  CHECK(is_console_path("/console"));
  CHECK(is_console_path("/console/"));
  CHECK(is_console_path("/console/console.js"));
  CHECK_FALSE(is_console_path("/consoles"));
  CHECK_FALSE(is_console_path("/api/v1/console"));
}

TEST_CASE("every file of console/ is built in byte for byte") {
  for (const auto* name : {"index.html", "console.js", "console.css", "favicon.svg"}) {
    auto res = console_response(get(std::string{"/console/"} + name), console_assets());
    INFO(name);
    CHECK(res.status == 200);
    CHECK(res.body == file_in_source(name));
  }
}

TEST_CASE("the page is served at /console and /console/ with the types browsers need") {
  auto page = console_response(get("/console"), console_assets());
  CHECK(page.status == 200);
  CHECK(page.content_type == "text/html; charset=utf-8");
  CHECK(page.body == file_in_source("index.html"));
  CHECK(console_response(get("/console/"), console_assets()).body == page.body);
  CHECK(console_response(get("/console/console.js"), console_assets()).content_type
        == "text/javascript; charset=utf-8");
  CHECK(console_response(get("/console/console.css"), console_assets()).content_type
        == "text/css; charset=utf-8");
  CHECK(console_response(get("/console/favicon.svg"), console_assets()).content_type
        == "image/svg+xml");
  CHECK(header(page, "X-Content-Type-Options") == "nosniff");
  CHECK(header(page, "Content-Security-Policy").find("default-src 'self'") != std::string::npos);
}

TEST_CASE("a browser holding the current ETag gets 304 without a body") {
  auto first = console_response(get("/console/console.css"), console_assets());
  auto etag = header(first, "ETag");
  REQUIRE(etag.size() == 18); // 16 hex digits of the SHA-256 in quotes
  CHECK(header(first, "Cache-Control") == "no-cache");
  auto again = console_response(get("/console/console.css", etag), console_assets());
  CHECK(again.status == 304);
  CHECK(again.body.empty());
  CHECK(header(again, "ETag") == etag);
  auto stale =
      console_response(get("/console/console.css", "\"0000000000000000\""), console_assets());
  CHECK(stale.status == 200);
  CHECK(stale.body == first.body);
}

TEST_CASE("files differ in their ETags") {
  auto css = console_response(get("/console/console.css"), console_assets());
  auto page = console_response(get("/console"), console_assets());
  CHECK(header(css, "ETag") != header(page, "ETag"));
}

TEST_CASE("a file the console does not have is 404 with the error envelope") {
  for (const auto* path : {"/console/missing.js", "/console/../CMakeLists.txt"}) {
    auto res = console_response(get(path), console_assets());
    INFO(path);
    CHECK(res.status == 404);
    CHECK(res.body.find("\"RESOURCE_NOT_FOUND\"") != std::string::npos);
  }
}
