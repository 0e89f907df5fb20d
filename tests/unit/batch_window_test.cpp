// The nightly batch window: which minutes it covers and when a request held for it can
// expect it to open (actors/batch_window.hpp).

#include "actors/batch_window.hpp"

#include <catch2/catch.hpp>

using namespace lps;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

namespace {

// 2026-12-07T00:00:00Z; minutes of the day are passed as UTC, as if local time were UTC.
const caf::timestamp midnight{seconds{1'796'601'600}};

// `t` and its minute of the day (UTC).
std::pair<caf::timestamp, int> at(hours h, minutes m, seconds s = seconds{0}) {
  return {midnight + h + m + s, static_cast<int>((h + m).count())};
}

} // namespace

TEST_CASE("the batch window covers its minutes, also across midnight") {
  batch_window night{60, 300}; // 01:00-05:00
  CHECK_FALSE(in_batch_window(night, 59));
  CHECK(in_batch_window(night, 60));
  CHECK(in_batch_window(night, 299));
  CHECK_FALSE(in_batch_window(night, 300));
  batch_window late{22 * 60, 2 * 60}; // 22:00-02:00
  CHECK_FALSE(in_batch_window(late, 22 * 60 - 1));
  CHECK(in_batch_window(late, 22 * 60));
  CHECK(in_batch_window(late, 0));
  CHECK(in_batch_window(late, 119));
  CHECK_FALSE(in_batch_window(late, 120));
  CHECK_FALSE(in_batch_window({300, 300}, 300)); // start = end: never open
  CHECK(parse_batch_window("22:30-04:15").start_minute == 22 * 60 + 30);
  CHECK(parse_batch_window("22:30-04:15").end_minute == 4 * 60 + 15);
}

TEST_CASE("a held request's batch window is the open one, else the next") {
  batch_window night{60, 300}; // 01:00-05:00
  SECTION("before the window: today's") {
    auto [now, minute] = at(hours{0}, minutes{30}, seconds{15});
    auto times = next_batch_window(night, now, minute);
    REQUIRE(times);
    CHECK(times->opens_at == midnight + hours{1});
    CHECK(times->closes_at == midnight + hours{5});
  }
  SECTION("inside the window: the open one, opened in the past") {
    auto [now, minute] = at(hours{2}, minutes{10}, seconds{40});
    auto times = next_batch_window(night, now, minute);
    REQUIRE(times);
    CHECK(times->opens_at == midnight + hours{1});
    CHECK(times->closes_at == midnight + hours{5});
  }
  SECTION("after the window: tomorrow's") {
    auto [now, minute] = at(hours{5}, minutes{0});
    auto times = next_batch_window(night, now, minute);
    REQUIRE(times);
    CHECK(times->opens_at == midnight + hours{25});
    CHECK(times->closes_at == midnight + hours{29});
  }
  SECTION("a window across midnight closes the next day") {
    batch_window late{22 * 60, 2 * 60};
    auto [now, minute] = at(hours{3}, minutes{0});
    auto times = next_batch_window(late, now, minute);
    REQUIRE(times);
    CHECK(times->opens_at == midnight + hours{22});
    CHECK(times->closes_at == midnight + hours{26});
    auto [inside, inside_minute] = at(hours{1}, minutes{59}, seconds{59});
    auto open = next_batch_window(late, inside, inside_minute);
    REQUIRE(open);
    CHECK(open->opens_at == midnight - hours{2});
  }
  SECTION("a window that never opens has none") {
    auto [now, minute] = at(hours{3}, minutes{0});
    CHECK_FALSE(next_batch_window({300, 300}, now, minute));
  }
}
