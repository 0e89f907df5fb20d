// The process figures read from /proc, checked against what the test itself knows.

#include "runtime/process_stats.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

using namespace lps;

TEST_CASE("the process figures of this test process are plausible") {
  auto stats = read_process_stats();
  REQUIRE(stats.has_value());
  CHECK(stats->resident_bytes > 1024.0 * 1024);
  CHECK(stats->virtual_bytes >= stats->resident_bytes);
  CHECK(stats->threads >= 1);
  CHECK(stats->max_fds > 0);
  CHECK(stats->open_fds >= 3); // stdin, stdout, stderr
  CHECK(stats->cpu_seconds >= 0);
  auto now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch());
  CHECK(stats->start_time_seconds <= now.count() + 1);
  CHECK(stats->start_time_seconds > now.count() - 3600);
}

TEST_CASE("open files and threads follow the process") {
  auto before = read_process_stats();
  REQUIRE(before.has_value());
  auto* file = std::fopen("/proc/self/stat", "r");
  REQUIRE(file != nullptr);
  bool stop = false;
  std::thread extra{[&] {
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE))
      std::this_thread::yield();
  }};
  auto during = read_process_stats();
  __atomic_store_n(&stop, true, __ATOMIC_RELEASE);
  extra.join();
  std::fclose(file);
  REQUIRE(during.has_value());
  CHECK(during->open_fds == before->open_fds + 1);
  CHECK(during->threads == before->threads + 1);
}

TEST_CASE("a process directory that cannot be read gives no figures") {
  CHECK_FALSE(read_process_stats("/nonexistent/proc/dir").has_value());
}
