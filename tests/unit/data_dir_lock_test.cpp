#include "runtime/data_dir_lock.hpp"

#include <catch2/catch.hpp>

#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include "fixtures/temp_dir.hpp"

using lps::data_dir_lock;

TEST_CASE("a second lock on one DATA_DIR is refused, naming the holder's PID") {
  lps::test::temp_dir dir;
  std::string error;
  auto first = data_dir_lock::acquire(dir.str(), error);
  REQUIRE(first.held());
  // flock locks belong to an open file description, so a second open in this process
  // conflicts exactly as a second process would.
  auto second = data_dir_lock::acquire(dir.str(), error);
  CHECK_FALSE(second.held());
  CHECK(error.find("in use by another lps process") != std::string::npos);
  CHECK(error.find("PID " + std::to_string(::getpid())) != std::string::npos);
  CHECK(error.find(dir.str()) != std::string::npos);
}

TEST_CASE("a released lock can be taken again") {
  lps::test::temp_dir dir;
  std::string error;
  {
    auto first = data_dir_lock::acquire(dir.str(), error);
    REQUIRE(first.held());
    auto moved = std::move(first);
    CHECK(moved.held());
    CHECK_FALSE(first.held());
  }
  auto again = data_dir_lock::acquire(dir.str(), error);
  CHECK(again.held());
}

TEST_CASE("a process that dies holding the lock leaves no stale lock behind") {
  lps::test::temp_dir dir;
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  auto child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::string child_error;
    auto lock = data_dir_lock::acquire(dir.str(), child_error);
    char held = lock.held() ? '1' : '0';
    [[maybe_unused]] auto n = ::write(ready[1], &held, 1);
    ::pause(); // killed below: no destructor runs, as after a kill -9
    ::_exit(0);
  }
  char held = 0;
  REQUIRE(::read(ready[0], &held, 1) == 1);
  REQUIRE(held == '1');
  std::string error;
  CHECK_FALSE(data_dir_lock::acquire(dir.str(), error).held());
  CHECK(error.find("PID " + std::to_string(child)) != std::string::npos);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(data_dir_lock::acquire(dir.str(), error).held());
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST_CASE("a DATA_DIR that cannot be created is an error, not a crash") {
  std::string error;
  auto lock = data_dir_lock::acquire("/proc/lps-cannot-be-here", error);
  CHECK_FALSE(lock.held());
  CHECK(error.find("lps.lock") != std::string::npos);
}
