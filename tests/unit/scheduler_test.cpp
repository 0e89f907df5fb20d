// lps's scheduling policy (runtime/scheduler_policy.hpp) on real threads: which scheduler a
// system gets, that a worker with jobs waiting wakes a sleeping peer, and that idle workers
// stay asleep. Timing-based, with wide margins: each case says what it would see without
// the behaviour it checks.

#include "runtime/scheduler.hpp"
#include "runtime/scheduler_policy.hpp"
#include "runtime/system_config.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/coordinator.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

using namespace lps;
using namespace std::chrono_literals;

namespace {

struct policy_config : system_config {
  explicit policy_config(caf::atom_value policy) {
    set("scheduler.policy", policy);
    set("logger.verbosity", caf::atom("quiet"));
  }
};

/// Voluntary plus involuntary context switches of this process's CAF worker threads (CAF
/// 0.17 names them "caf.multiplexer").
long worker_switches() {
  long total = 0;
  for (const auto& task : std::filesystem::directory_iterator{"/proc/self/task"}) {
    std::string name;
    std::getline(std::ifstream{task.path() / "comm"}, name);
    if (name != "caf.multiplexer")
      continue;
    std::ifstream status{task.path() / "status"};
    for (std::string line; std::getline(status, line);)
      if (line.find("ctxt_switches:") != std::string::npos)
        total += std::stol(line.substr(line.find(':') + 1));
  }
  return total;
}

/// Context switches of the workers of an idle system over one second.
long idle_switches_per_second(caf::atom_value policy) {
  policy_config cfg{policy};
  caf::actor_system sys{cfg};
  std::this_thread::sleep_for(200ms);
  auto before = worker_switches();
  std::this_thread::sleep_for(1s);
  return worker_switches() - before;
}

/// Set once by whichever helper actor runs first; waited for by the blocked one.
struct ran_flag {
  std::mutex lock;
  std::condition_variable cv;
  bool ran = false;

  void set() {
    std::lock_guard<std::mutex> guard{lock};
    ran = true;
    cv.notify_all();
  }

  bool wait(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> guard{lock};
    return cv.wait_for(guard, limit, [this] { return ran; });
  }
};

} // namespace

TEST_CASE("an lps system runs on lps's policy unless scheduler.policy names CAF's") {
  {
    policy_config cfg{caf::atom("lps")};
    caf::actor_system sys{cfg};
    CHECK(dynamic_cast<caf::scheduler::coordinator<deep_sleep_stealing>*>(&sys.scheduler())
          != nullptr);
  }
  {
    policy_config cfg{caf::atom("stealing")};
    caf::actor_system sys{cfg};
    CHECK(dynamic_cast<caf::scheduler::coordinator<caf::policy::work_stealing>*>(&sys.scheduler())
          != nullptr);
  }
  system_config defaults;
  CHECK(caf::get_or(defaults, "scheduler.policy", caf::atom("none")) == caf::atom("lps"));
  CHECK_FALSE(check_scheduler_policy(caf::atom("sharing")).has_value());
  CHECK(check_scheduler_policy(caf::atom("stealin")).value()
        == "scheduler.policy: unknown policy 'stealin' (lps, stealing or sharing)");
}

namespace {

/// Five rounds: an actor blocks its worker until one of the `sends` (1 or 2) actors it sent
/// a message to has run, which only the other worker can do. Without a wake that worker
/// sleeps up to idle_worker_safety_wake (1 s) before it looks; five rounds all under 250 ms
/// would then be luck of about 1 in 1,000.
void blocked_worker_rounds(int sends) {
  policy_config cfg{caf::atom("lps")};
  caf::actor_system sys{cfg};
  for (int round = 0; round < 5; ++round) {
    ran_flag flag;
    auto helper = [&flag](caf::event_based_actor*) -> caf::behavior {
      return {[&flag](int) { flag.set(); }};
    };
    auto b = sys.spawn(helper);
    auto c = sys.spawn(helper);
    std::chrono::steady_clock::duration waited{};
    bool ran = false;
    auto blocker = sys.spawn([&](caf::event_based_actor* self) -> caf::behavior {
      return {[&, self](int) {
        self->send(b, 1); // B waits in this worker's queue...
        if (sends == 2)
          self->send(c, 1); // ...so adding C finds a job waiting
        auto start = std::chrono::steady_clock::now();
        ran = flag.wait(5s);
        waited = std::chrono::steady_clock::now() - start;
      }};
    });
    std::this_thread::sleep_for(50ms); // both workers asleep on their condition variable
    caf::anon_send(blocker, 1);
    flag.wait(6s);
    for (auto& hdl : {b, c, blocker})
      caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
    INFO("round " << round << ": "
                  << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()
                  << " ms");
    CHECK(ran);
    CHECK(waited < 250ms);
  }
}

} // namespace

TEST_CASE("a worker that adds a job while its peer sleeps deeply wakes the peer at once") {
  // Both workers asleep before the round: the peer sleeps deeply, and B alone must wake it
  // (an inspector's answer to a long-running actor's question took 1 s before this).
  blocked_worker_rounds(1);
}

TEST_CASE("a worker with jobs waiting wakes its sleeping peer at once") {
  blocked_worker_rounds(2);
}

TEST_CASE("idle workers sleep until told, where CAF's wake every 10 ms") {
  auto ours = idle_switches_per_second(caf::atom("lps"));
  auto cafs = idle_switches_per_second(caf::atom("stealing"));
  INFO("lps: " << ours << " switches/s, CAF's stealing: " << cafs);
  // Two workers: about 2 a second here (the safety wake), about 200 with CAF's policy.
  CHECK(ours < 30);
  CHECK(cafs > 100);
}
