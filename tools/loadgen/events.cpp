#include "tools/loadgen/events.hpp"

#include <boost/json.hpp>

#include <charconv>

namespace lps::loadgen {

std::optional<int64_t> iso8601_ms(std::string_view t) {
  if (t.size() != 24 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':'
      || t[19] != '.' || t[23] != 'Z')
    return std::nullopt;
  auto num = [&](size_t at, size_t len, int64_t& out) {
    auto [end, ec] = std::from_chars(t.data() + at, t.data() + at + len, out);
    return ec == std::errc{} && end == t.data() + at + len;
  };
  int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, ms = 0;
  if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi)
      || !num(17, 2, sec) || !num(20, 3, ms))
    return std::nullopt;
  // Days from civil (H. Hinnant).
  y -= mo <= 2 ? 1 : 0;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = era * 146097 + doe - 719468;
  return ((days * 24 + h) * 60 + mi) * 60'000 + sec * 1000 + ms;
}

std::optional<event_info> parse_event(std::string_view body) {
  unsigned char scratch[16 * 1024];
  boost::json::monotonic_resource resource(scratch, sizeof(scratch));
  boost::json::parse_options parse_opts;
  parse_opts.max_depth = 256; // caller metadata nests below data.request_metadata
  boost::system::error_code ec;
  auto doc = boost::json::parse(body, ec, &resource, parse_opts);
  const auto* root = ec ? nullptr : doc.if_object();
  const auto* event_id = root ? root->if_contains("event_id") : nullptr;
  const auto* data = root ? root->if_contains("data") : nullptr;
  const auto* data_obj = data ? data->if_object() : nullptr;
  const auto* request_id = data_obj ? data_obj->if_contains("request_id") : nullptr;
  if (!event_id || !event_id->is_string() || !request_id || !request_id->is_string())
    return std::nullopt;
  const auto* detail = data_obj->if_contains("error_detail");
  event_info info{std::string(request_id->get_string()), std::string(event_id->get_string()),
                  detail != nullptr && !detail->is_null()};
  if (const auto* rt = data_obj->if_contains("response_time_ms"); rt && rt->is_int64())
    info.provider_ms = rt->get_int64();
  const auto* requested = data_obj->if_contains("requested_at");
  const auto* completed = data_obj->if_contains("completed_at");
  if (requested && requested->is_string() && completed && completed->is_string()) {
    auto from = iso8601_ms(requested->get_string());
    auto to = iso8601_ms(completed->get_string());
    if (from && to && *to >= *from)
      info.inside_ms = *to - *from;
  }
  return info;
}

} // namespace lps::loadgen
