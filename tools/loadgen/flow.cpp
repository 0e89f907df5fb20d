#include "tools/loadgen/flow.hpp"

#include <charconv>

namespace lps::loadgen {

lps::http_client_options client_options(uint64_t connections) {
  lps::http_client_options o;
  o.io_threads = 1;
  o.max_connections_per_origin = connections;
  return o;
}

std::string header(const lps::http_client_response& r, std::string_view name) {
  for (const auto& [key, value] : r.headers)
    if (key == name)
      return value;
  return {};
}

milliseconds retry_delay(const lps::http_client_response& r, milliseconds fallback) {
  auto text = header(r, "retry-after");
  uint64_t seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size())
    return fallback;
  return milliseconds{std::min<uint64_t>(seconds, 60) * 1000};
}

std::string refusal_key(const lps::http_client_response& r) {
  return r.status == 0 ? std::string("transport_") + lps::to_string(r.error)
                       : std::to_string(r.status);
}

} // namespace lps::loadgen
