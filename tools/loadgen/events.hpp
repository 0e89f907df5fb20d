#pragma once

// Reading the result events lps delivers (callbacks) or answers (GET /api/v1/results).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lps::loadgen {

struct event_info {
  std::string queue_id;
  std::string event_id;
  bool error = false;
  /// data.response_time_ms: lps's own timing of the provider call (whole ms, rounded down);
  /// -1 when absent.
  int64_t provider_ms = -1;
  /// data.completed_at - data.requested_at (ms resolution): enqueue to final result inside
  /// lps; -1 when absent or unreadable.
  int64_t inside_ms = -1;
};

/// Milliseconds of "YYYY-MM-DDTHH:MM:SS.mmmZ" since 1970 (lps::iso8601's format).
std::optional<int64_t> iso8601_ms(std::string_view t);

/// Just the fields the checks need; nullopt when the body is not a result event.
std::optional<event_info> parse_event(std::string_view body);

} // namespace lps::loadgen
