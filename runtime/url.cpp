#include "runtime/url.hpp"

#include <optional>

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace lps {

namespace {

bool printable_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte > 0x20 && byte < 0x7f;
  });
}

char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string_view s) {
  std::string result{s};
  std::transform(result.begin(), result.end(), result.begin(), to_lower);
  return result;
}

bool is_ipv4(const std::string& host) {
  in_addr ignored{};
  return inet_pton(AF_INET, host.c_str(), &ignored) == 1;
}

bool is_ipv6(const std::string& host) {
  in6_addr ignored{};
  return inet_pton(AF_INET6, host.c_str(), &ignored) == 1;
}

bool valid_name(std::string_view host) {
  return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
           || c == '.' || c == '_';
  });
}

/// A port in 1..65535, digits only.
std::optional<uint16_t> read_port(std::string_view text) {
  unsigned value = 0;
  auto end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end || value < 1 || value > 65535)
    return std::nullopt;
  return static_cast<uint16_t>(value);
}

/// Strips "http://" or "https://" and returns the scheme, or "".
std::string take_scheme(std::string_view& rest) {
  for (std::string_view scheme : {"http", "https"}) {
    if (rest.starts_with(scheme) && rest.substr(scheme.size()).starts_with("://")) {
      rest.remove_prefix(scheme.size() + 3);
      return std::string{scheme};
    }
  }
  return {};
}

/// Splits "host", "host:port", "[v6]" or "[v6]:port" into `out`; false with `error` set.
bool read_authority(std::string_view authority, http_url& out, std::string& error) {
  if (authority.find('@') != std::string_view::npos) {
    error = "URL must not contain user information";
    return false;
  }
  std::string_view host = authority;
  std::string_view after;
  bool bracketed = authority.starts_with('[');
  if (bracketed) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "URL has an unterminated IPv6 address";
      return false;
    }
    host = authority.substr(1, close - 1);
    after = authority.substr(close + 1);
  } else if (auto colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    after = authority.substr(colon);
  }
  out.host = lower(host);
  if (bracketed ? !is_ipv6(out.host) : !valid_name(host)) {
    error = "URL has a missing or bad host";
    return false;
  }
  out.port = out.default_port();
  if (after.empty())
    return true;
  auto port = after.starts_with(':') ? read_port(after.substr(1)) : std::nullopt;
  if (!port) {
    error = "URL has a bad port";
    return false;
  }
  out.port = *port;
  return true;
}

} // namespace

bool http_url::tls() const {
  return scheme == "https";
}

bool http_url::host_is_ipv6() const {
  return is_ipv6(host);
}

bool http_url::host_is_ip() const {
  return is_ipv4(host) || is_ipv6(host);
}

uint16_t http_url::default_port() const {
  return tls() ? 443 : 80;
}

std::string http_url::origin() const {
  auto bracketed = host_is_ipv6() ? "[" + host + "]" : host;
  return scheme + "://" + bracketed + ":" + std::to_string(port);
}

std::string http_url::host_header() const {
  auto result = host_is_ipv6() ? "[" + host + "]" : host;
  if (port != default_port())
    result += ":" + std::to_string(port);
  return result;
}

std::optional<http_url> parse_http_url(std::string_view text, std::string& error) {
  if (!printable_ascii(text)) {
    error = "URL contains spaces, control or non-ASCII characters";
    return std::nullopt;
  }
  http_url result;
  result.scheme = take_scheme(text);
  if (result.scheme.empty()) {
    error = "URL must start with http:// or https://";
    return std::nullopt;
  }
  auto end = text.find_first_of("/?#");
  if (!read_authority(text.substr(0, end), result, error))
    return std::nullopt;
  auto rest = end == std::string_view::npos ? std::string_view{} : text.substr(end);
  rest = rest.substr(0, rest.find('#'));
  result.target = rest.starts_with('/') ? std::string{rest} : "/" + std::string{rest};
  return result;
}

std::string join_url(std::string_view base, std::string_view path) {
  while (base.ends_with('/'))
    base.remove_suffix(1);
  return std::string{base} + std::string{path};
}

std::optional<std::string> percent_decoded(std::string_view text) {
  std::string result;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      result += text[i];
      continue;
    }
    unsigned value = 0;
    if (i + 2 >= text.size())
      return std::nullopt;
    auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
    if (ec != std::errc{} || end != text.data() + i + 3)
      return std::nullopt;
    result += static_cast<char>(value);
    i += 2;
  }
  return result;
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) != name)
      continue;
    std::string value{eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1)};
    std::replace(value.begin(), value.end(), '+', ' ');
    return percent_decoded(value);
  }
  return std::nullopt;
}

} // namespace lps
