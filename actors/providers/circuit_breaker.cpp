#include "actors/providers/circuit_breaker.hpp"

#include <algorithm>

namespace lps {

namespace {

/// Zero thresholds would make the breaker open on nothing or never close: use 1 instead.
breaker_settings normalized(breaker_settings settings) noexcept {
  settings.failure_threshold = std::max<uint32_t>(settings.failure_threshold, 1);
  settings.half_open_max_probes = std::max<uint32_t>(settings.half_open_max_probes, 1);
  settings.success_threshold = std::max<uint32_t>(settings.success_threshold, 1);
  settings.open_duration = std::max(settings.open_duration, clock_duration::zero());
  return settings;
}

} // namespace

std::string_view to_string(breaker_state x) noexcept {
  switch (x) {
  case breaker_state::closed:
    return "closed";
  case breaker_state::open:
    return "open";
  case breaker_state::half_open:
    return "half_open";
  }
  return "unknown";
}

circuit_breaker::circuit_breaker(breaker_settings settings) noexcept
    : settings_(normalized(settings)) {
  // nop
}

bool circuit_breaker::allow(clock_time now) noexcept {
  if (state_ == breaker_state::open && now - opened_at_ >= settings_.open_duration)
    half_open();
  switch (state_) {
  case breaker_state::closed:
    return true;
  case breaker_state::open:
    break;
  case breaker_state::half_open:
    if (probes_in_flight_ >= settings_.half_open_max_probes
        && now - last_probe_at_ >= settings_.open_duration)
      probes_in_flight_ = 0; // presumed lost: their reports will never come
    if (probes_in_flight_ < settings_.half_open_max_probes) {
      ++probes_in_flight_;
      ++counters_.probes_total;
      last_probe_at_ = now;
      return true;
    }
    break;
  }
  ++counters_.rejected_total;
  return false;
}

void circuit_breaker::on_success(clock_time) noexcept {
  ++counters_.successes_total;
  switch (state_) {
  case breaker_state::closed:
    consecutive_failures_ = 0;
    break;
  case breaker_state::open:
    break; // a call from before the breaker opened; one success proves little
  case breaker_state::half_open:
    release_probe();
    if (++half_open_successes_ >= settings_.success_threshold)
      close();
    break;
  }
}

void circuit_breaker::on_failure(clock_time now) noexcept {
  ++counters_.failures_total;
  switch (state_) {
  case breaker_state::closed:
    if (++consecutive_failures_ >= settings_.failure_threshold)
      open(now);
    break;
  case breaker_state::open:
    break; // late news from before the breaker opened: the open period stays as it was
  case breaker_state::half_open:
    open(now);
    break;
  }
}

clock_duration circuit_breaker::time_until_allowed(clock_time now) const noexcept {
  switch (state_) {
  case breaker_state::closed:
    return clock_duration::zero();
  case breaker_state::open:
    return std::max(clock_duration::zero(), opened_at_ + settings_.open_duration - now);
  case breaker_state::half_open:
    if (probes_in_flight_ < settings_.half_open_max_probes)
      return clock_duration::zero();
    return std::max(clock_duration::zero(), last_probe_at_ + settings_.open_duration - now);
  }
  return clock_duration::zero();
}

void circuit_breaker::hold_open(clock_time now, clock_duration remaining) noexcept {
  if (state_ != breaker_state::open)
    open(now);
  opened_at_ = now + std::min(remaining, settings_.open_duration) - settings_.open_duration;
}

void circuit_breaker::assume_failures(uint32_t failures) noexcept {
  if (state_ == breaker_state::closed)
    consecutive_failures_ = std::min(failures, settings_.failure_threshold - 1);
}

void circuit_breaker::open(clock_time now) noexcept {
  state_ = breaker_state::open;
  opened_at_ = now;
  consecutive_failures_ = 0;
  probes_in_flight_ = 0;
  half_open_successes_ = 0;
  ++counters_.opened_total;
}

void circuit_breaker::half_open() noexcept {
  state_ = breaker_state::half_open;
  probes_in_flight_ = 0;
  half_open_successes_ = 0;
  ++counters_.half_opened_total;
}

void circuit_breaker::close() noexcept {
  state_ = breaker_state::closed;
  consecutive_failures_ = 0;
  probes_in_flight_ = 0;
  half_open_successes_ = 0;
  ++counters_.closed_total;
}

void circuit_breaker::release_probe() noexcept {
  // A report from a call that was not a probe (it started while closed) has no slot to free.
  if (probes_in_flight_ > 0)
    --probes_in_flight_;
}

} // namespace lps
