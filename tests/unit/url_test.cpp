// The one URL parser (runtime/url): what it accepts, how it normalizes, what it refuses
// and why, and how provider base URLs are joined with endpoint paths.

#include "runtime/url.hpp"

#include <catch2/catch.hpp>

using namespace lps;

namespace {

http_url parse_ok(std::string_view text) {
  std::string error;
  auto result = parse_http_url(text, error);
  INFO(text << ": " << error);
  REQUIRE(result);
  CHECK(error.empty());
  return *result;
}

std::string parse_error(std::string_view text) {
  std::string error;
  auto result = parse_http_url(text, error);
  INFO(text);
  CHECK_FALSE(result);
  return error;
}

} // namespace

TEST_CASE("a plain http URL gets the default port and its path and query as target") {
  auto u = parse_ok("http://example.com/a/b?c=d");
  CHECK(u == http_url{"http", "example.com", 80, "/a/b?c=d"});
  CHECK_FALSE(u.tls());
  CHECK(u.origin() == "http://example.com:80");
  CHECK(u.host_header() == "example.com");
}

TEST_CASE("https defaults to 443 and an explicit port shows in the Host header") {
  CHECK(parse_ok("https://example.com").port == 443);
  CHECK(parse_ok("https://example.com").tls());
  auto u = parse_ok("https://example.com:8443/x");
  CHECK(u.port == 8443);
  CHECK(u.host_header() == "example.com:8443");
  CHECK(u.origin() == "https://example.com:8443");
  // An explicit default port is the same origin and needs no port in the Host header.
  CHECK(parse_ok("https://example.com:443/").host_header() == "example.com");
  CHECK(parse_ok("https://example.com:443/").origin() == parse_ok("https://example.com").origin());
}

TEST_CASE("the host is lower-cased, the path kept as written, and the scheme must be lower-case") {
  auto u = parse_ok("http://Example.COM:81/Path?Q=A");
  CHECK(u == http_url{"http", "example.com", 81, "/Path?Q=A"});
  CHECK(u.origin() == "http://example.com:81");
  for (auto upper : {"HTTP://example.com/", "Https://example.com/", "hTTp://example.com/"})
    CHECK(parse_error(upper) == "URL must start with http:// or https://");
}

TEST_CASE("an empty path becomes / and a bare query gets a leading /") {
  CHECK(parse_ok("http://h").target == "/");
  CHECK(parse_ok("http://h?x=1").target == "/?x=1");
  CHECK(parse_ok("http://h/").target == "/");
  // Trailing slashes are part of the path and kept.
  CHECK(parse_ok("http://h/a//").target == "/a//");
}

TEST_CASE("the fragment is dropped, with or without a path before it") {
  CHECK(parse_ok("http://h/p?q=1#frag").target == "/p?q=1");
  CHECK(parse_ok("http://h#frag").target == "/");
}

TEST_CASE("IPv4 and bracketed IPv6 literals are hosts, IPv6 keeps brackets only in text forms") {
  auto v4 = parse_ok("http://127.0.0.1:9000/cb");
  CHECK(v4.host == "127.0.0.1");
  CHECK(v4.host_is_ip());
  CHECK_FALSE(v4.host_is_ipv6());
  auto v6 = parse_ok("http://[::1]:9000/cb");
  CHECK(v6.host == "::1");
  CHECK(v6.host_is_ipv6());
  CHECK(v6.host_is_ip());
  CHECK(v6.origin() == "http://[::1]:9000");
  CHECK(v6.host_header() == "[::1]:9000");
  CHECK(parse_ok("https://[FD00:EC2::254]").host == "fd00:ec2::254");
  CHECK(parse_ok("http://[::ffff:169.254.169.254]/").host == "::ffff:169.254.169.254");
  CHECK_FALSE(parse_ok("http://my_host.internal/p").host_is_ip());
}

TEST_CASE("bad URLs are refused with a reason that does not quote them") {
  CHECK(parse_error("") == "URL must start with http:// or https://");
  CHECK(parse_error("ftp://host/") == "URL must start with http:// or https://");
  CHECK(parse_error("example.com/cb") == "URL must start with http:// or https://");
  CHECK(parse_error("//example.com") == "URL must start with http:// or https://");
  CHECK(parse_error("http:/x.com") == "URL must start with http:// or https://");
  CHECK(parse_error("mailto:a@b.c") == "URL must start with http:// or https://");
  CHECK(parse_error("http://user:secret@host/") == "URL must not contain user information");
  CHECK(parse_error("http://user@host/") == "URL must not contain user information");
  for (auto missing_host :
       {"http://", "https:///path", "http://:80/x", "http://[]/x", "http://[g::1]/",
        "http://[fe80::1%25eth0]/", "http://h%41st/", "http://::1/", "http://[1.2.3.4]/"})
    CHECK(parse_error(missing_host) == "URL has a missing or bad host");
  CHECK(parse_error("http://[::1/x") == "URL has an unterminated IPv6 address");
  for (auto bad_port : {"http://host:0/", "http://host:65536/", "http://host:/x", "http://host:8o/",
                        "http://host:-1/", "http://host:+80/", "http://[::1]:/x", "http://[::1]x/",
                        "http://host:1:2/"})
    CHECK(parse_error(bad_port) == "URL has a bad port");
  for (auto bad_bytes : {"http://ho st/x", "http://host/a b", "http://host/\t",
                         "http://h\xc3\xa9st/", "http://host/\x7f"})
    CHECK(parse_error(bad_bytes) == "URL contains spaces, control or non-ASCII characters");
  CHECK(parse_error("http://user:secret@host/").find("secret") == std::string::npos);
}

TEST_CASE("ports at the ends of the range are accepted") {
  CHECK(parse_ok("http://host:1").port == 1);
  CHECK(parse_ok("https://cj.example.org:65535/x").port == 65535);
  CHECK(parse_ok("http://host:00080/").port == 80);
}

TEST_CASE("join_url joins a base URL with or without trailing slashes and an endpoint path") {
  CHECK(join_url("https://api.openai.com/v1", "/files") == "https://api.openai.com/v1/files");
  CHECK(join_url("https://api.openai.com/v1/", "/files") == "https://api.openai.com/v1/files");
  CHECK(join_url("https://api.anthropic.com//", "/v1/messages")
        == "https://api.anthropic.com/v1/messages");
  CHECK(join_url("http://127.0.0.1:8080", "/v1/messages/batches/x/results")
        == "http://127.0.0.1:8080/v1/messages/batches/x/results");
}

TEST_CASE("percent_decoded decodes escapes and refuses malformed ones") {
  CHECK(lps::percent_decoded("run%20%2F%C3%BC%25") == std::optional<std::string>{"run /\xC3\xBC%"});
  CHECK(lps::percent_decoded("plain") == std::optional<std::string>{"plain"});
  CHECK_FALSE(lps::percent_decoded("bad%2"));
  CHECK_FALSE(lps::percent_decoded("bad%zz"));
  CHECK_FALSE(lps::percent_decoded("%"));
}

TEST_CASE("query_param finds a name, decodes its value and says when it is absent") {
  CHECK(lps::query_param("a=1&bos_batch_id=r+1%2F2&limit=7", "bos_batch_id")
        == std::optional<std::string>{"r 1/2"});
  CHECK(lps::query_param("a=1&limit=7", "limit") == std::optional<std::string>{"7"});
  CHECK(lps::query_param("flag&x=1", "flag") == std::optional<std::string>{""});
  CHECK_FALSE(lps::query_param("a=1", "b"));
  CHECK_FALSE(lps::query_param("", "a"));
  CHECK_FALSE(lps::query_param("a=%g1", "a"));
}
