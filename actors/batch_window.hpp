#pragma once

// The nightly window of provider batch jobs (BATCH_API_NIGHTLY_WINDOW): when a batch jobs
// actor may submit, and when a request held for it can expect the window to open. Pure
// functions, time passed in.

#include <caf/timestamp.hpp>

#include <chrono>
#include <ctime>
#include <optional>
#include <string>

namespace lps {

/// Minutes after local midnight; an end before the start crosses midnight, an end equal to
/// the start never opens.
struct batch_window {
  int start_minute = 60;
  int end_minute = 300;
};

/// "HH:MM-HH:MM", as the configuration checked it.
inline batch_window parse_batch_window(const std::string& text) {
  auto minutes = [&](size_t at) {
    return std::stoi(text.substr(at, 2)) * 60 + std::stoi(text.substr(at + 3, 2));
  };
  return {minutes(0), minutes(6)};
}

/// Minutes after local midnight of `t`.
inline int local_minute_of_day(caf::timestamp t) {
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  std::time_t tt = static_cast<std::time_t>(secs);
  std::tm local{};
  localtime_r(&tt, &local);
  return local.tm_hour * 60 + local.tm_min;
}

namespace detail {

constexpr int minutes_per_day = 24 * 60;

/// The window's length, and how far `minute` is past its start (both in minutes, 0..1439).
inline std::pair<int, int> window_offsets(const batch_window& w, int minute) {
  return {(w.end_minute - w.start_minute + minutes_per_day) % minutes_per_day,
          (minute - w.start_minute + minutes_per_day) % minutes_per_day};
}

} // namespace detail

/// Whether local minute of the day `minute` lies in the window.
inline bool in_batch_window(const batch_window& w, int minute) {
  auto [length, past_start] = detail::window_offsets(w, minute);
  return past_start < length;
}

/// When a window opens and closes.
struct batch_window_times {
  caf::timestamp opens_at;
  caf::timestamp closes_at;
};

/// The window a job may next be submitted in, seen at `now` (local minute of the day
/// `minute`): the open one (opened in the past), else the next; none for a window that never
/// opens.
inline std::optional<batch_window_times> next_batch_window(const batch_window& w,
                                                           caf::timestamp now, int minute) {
  auto [length, past_start] = detail::window_offsets(w, minute);
  if (length == 0)
    return std::nullopt;
  auto minute_began = now - now.time_since_epoch() % std::chrono::minutes{1};
  auto shift = past_start < length ? -past_start : detail::minutes_per_day - past_start;
  auto opens = minute_began + std::chrono::minutes{shift};
  return batch_window_times{opens, opens + std::chrono::minutes{length}};
}

} // namespace lps
