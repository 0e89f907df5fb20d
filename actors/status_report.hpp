#pragma once

// The common part of every actor's answer to `status` (the inspection protocol): the count
// of messages handled, how long the handlers took and the last error, kept by `counted`.

#include "messages/status.hpp"

#include <caf/detail/type_traits.hpp>

#include <array>
#include <bit>
#include <chrono>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace lps {

// -- processing time: a fixed-bucket histogram, one increment per message ----------------

/// Buckets of handler time: bucket 0 under 1 us, bucket i (1..22) from 2^(i-1) to under
/// 2^i us, bucket 23 from 2^22 us (4.2 s) on. Powers of two make the bucket one bit_width.
constexpr size_t processing_time_buckets = 24;

/// The bucket of a handler that took `us` microseconds.
constexpr size_t processing_time_bucket(uint64_t us) {
  return std::min<size_t>(std::bit_width(us), processing_time_buckets - 1);
}

/// The upper bound of bucket `i` in milliseconds (the last bucket has none: its lower bound).
inline double processing_time_bound_ms(size_t i) {
  auto us = uint64_t{1} << std::min(i, processing_time_buckets - 2);
  return double(us) / 1000.0;
}

/// The `q`-quantile (0 < q <= 1) of the counts as the upper bound of the bucket it falls in,
/// in milliseconds; 0 when nothing was counted.
inline double processing_time_percentile_ms(const std::vector<uint64_t>& counts, double q) {
  uint64_t total = 0;
  for (auto n : counts)
    total += n;
  if (total == 0)
    return 0;
  auto rank = q * double(total);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    seen += counts[i];
    if (double(seen) >= rank)
      return processing_time_bound_ms(i);
  }
  return processing_time_bound_ms(counts.size() - 1);
}

/// One message in this many is timed: reading the clock costs 0.35 us on the 2-core VM the
/// project is measured on, twice per timed message, so timing every message cost 0.7 us
/// each; a sample of one in 16 costs under 0.1 us per message (docs/benchmarks.md) and still
/// fills the histogram of a busy actor within seconds.
constexpr uint64_t processing_time_sample_every = 16;

/// What an actor keeps about its own work for `status`.
struct actor_stats {
  /// Messages handled (the status question that reports it included).
  uint64_t handled = 0;
  /// Times of the sampled handlers (every processing_time_sample_every-th message) per bucket
  /// (see processing_time_bucket).
  std::array<uint64_t, processing_time_buckets> processing_time_counts{};
  /// The last error the actor noted ("": none).
  std::string last_error;
};

/// Name, kind, mailbox size, messages handled, processing times and the last error; the
/// caller adds its own figures. Call only from the actor's own handler (mailbox().size() is
/// consumer-side).
template <class Self>
actor_status status_header(Self* self, std::string name, std::string kind,
                           const actor_stats& stats) {
  actor_status result;
  result.name = std::move(name);
  result.kind = std::move(kind);
  result.mailbox_size = self->mailbox().size();
  result.messages_handled = stats.handled;
  result.processing_time_counts.assign(stats.processing_time_counts.begin(),
                                       stats.processing_time_counts.end());
  result.last_error = stats.last_error;
  return result;
}

// -- messages handled: counted once, where messages arrive --------------------------------

namespace detail {

// Counts one message and, for every processing_time_sample_every-th, the time its handler
// took once it goes out of scope.
class handler_timer {
public:
  explicit handler_timer(actor_stats& stats)
      : stats_(stats), timed_(++stats.handled % processing_time_sample_every == 0) {
    if (timed_)
      start_ = std::chrono::steady_clock::now();
  }
  handler_timer(const handler_timer&) = delete;
  handler_timer& operator=(const handler_timer&) = delete;
  ~handler_timer() {
    if (!timed_)
      return;
    auto elapsed = std::chrono::steady_clock::now() - start_;
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
    ++stats_.processing_time_counts[processing_time_bucket(static_cast<uint64_t>(us))];
  }

private:
  actor_stats& stats_;
  bool timed_;
  std::chrono::steady_clock::time_point start_;
};

// `handler` with its own parameter types (CAF matches messages by them), counting each call
// in `*stats` and timing a sample of them.
template <class F, class... Ts>
auto count_each_call(actor_stats* stats, F handler, caf::detail::type_list<Ts...>) {
  return [stats, handler = std::move(handler)](Ts... xs) mutable -> decltype(auto) {
    handler_timer timer{*stats};
    return handler(std::forward<Ts>(xs)...);
  };
}

} // namespace detail

/// The behaviour of the stateful actor `self` made of `handlers`, each of which counts its
/// message in `self->state.stats` (what `status` reports) before it runs, and for one
/// message in processing_time_sample_every its handler's time, so no handler counts on its
/// own. The time is the handler's own: work an actor finishes later (a reply that arrives, a
/// response promise) is not in it.
template <class Self, class... Fs>
auto counted(Self self, Fs... handlers) {
  using behavior_type = typename std::remove_pointer_t<Self>::behavior_type;
  auto* stats = &self->state.stats;
  return behavior_type{detail::count_each_call(
      stats, std::move(handlers), typename caf::detail::get_callable_trait<Fs>::arg_types{})...};
}

} // namespace lps
