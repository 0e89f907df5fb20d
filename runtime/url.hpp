#pragma once

// The one parser of absolute http(s) URLs: callback_url validation at the edge, the HTTP
// client, callback origins and provider base URLs all read URLs with the rules below, so a
// URL accepted in one place is never refused (or read differently) in another. Plain C++,
// no Beast or CAF, so every library can link it.
//
// Rules: printable ASCII only (the URL goes into a request line as is); scheme "http" or
// "https" in lower case (the strictest of the earlier rules: later stages and the request
// fuzzer's invariants match the text as written); no user information ("user:pw@" would put
// credentials where URLs are logged); the host is a name of letters, digits, '-', '.' and
// '_' (lower-cased), an IPv4 address or a bracketed IPv6 literal without zone id; an
// explicit port is 1..65535; the fragment is dropped.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lps {

/// A parsed absolute http(s) URL.
struct http_url {
  /// "http" or "https".
  std::string scheme;
  /// Lower-cased host name or IP address; IPv6 without brackets.
  std::string host;
  /// The explicit port, or the scheme's default (80, 443).
  uint16_t port = 0;
  /// Path and query as they go on the request line; starts with '/', no fragment.
  std::string target;

  /// True for https.
  bool tls() const;
  /// True when the host is an IPv6 literal (it needs brackets in URLs and Host headers).
  bool host_is_ipv6() const;
  /// True when the host is an IPv4 or IPv6 address rather than a name.
  bool host_is_ip() const;
  /// The scheme's default port: 443 for https, 80 for http.
  uint16_t default_port() const;
  /// "scheme://host:port" with the port always written: the unit of connection pools and
  /// per-origin limits, equal for every spelling of the same origin.
  std::string origin() const;
  /// "host[:port]" as the Host header carries it (port only when not the default).
  std::string host_header() const;

  friend bool operator==(const http_url&, const http_url&) = default;
};

/// Parses `text`; on failure returns nullopt and sets `error` to a reason that never quotes
/// the URL (its query may carry tokens).
std::optional<http_url> parse_http_url(std::string_view text, std::string& error);

/// `base` without its trailing slashes, then `path` (which starts with '/'): how provider
/// base URLs ("https://api.openai.com/v1/") and endpoint paths ("/files") are joined.
std::string join_url(std::string_view base, std::string_view path);

/// `text` with its %XX escapes decoded (a path segment may hold any character), or nullopt
/// when an escape is malformed.
std::optional<std::string> percent_decoded(std::string_view text);

/// The value of `name` in a query string ("a=1&b=2"), percent-decoded ('+' is a space, as
/// forms send it), or nullopt when absent or badly escaped.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

} // namespace lps
