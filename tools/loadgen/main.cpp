// lps-loadgen: drives a running lps with comparison requests and prints throughput, latency
// and delivery-correctness figures (one result event per accepted request). A benchmark tool
// used by tools/bench.sh and tools/gateway_bench.sh, not a test. Run with --help for the
// options. --mode=direct skips lps and sends the OpenAI chat/completions call lps would make
// for each request straight to a provider (the mock), as the baseline for the gateway overhead.
// --rate=N makes the load open-loop: POSTs (or calls) start on a fixed schedule, N a second,
// instead of each answer freeing a slot for the next, so both paths can get the same load.
//
// It shares the CPU with the server under test, so the per-request work is kept small: essay
// texts come from one corpus built at start, request bodies are built with plain string
// appends, and every figure is kept in one tracker behind one mutex.

#include "runtime/http_server.hpp"
#include "tools/loadgen/bodies.hpp"
#include "tools/loadgen/direct.hpp"
#include "tools/loadgen/flow.hpp"
#include "tools/loadgen/options.hpp"
#include "tools/loadgen/periodic_poster.hpp"
#include "tools/loadgen/report.hpp"
#include "tools/loadgen/submit.hpp"
#include "tools/loadgen/tracker.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>
#include <map>
#include <optional>
#include <thread>

namespace lps::loadgen {

namespace {

bool finished(const tracker& t, const options& opt) {
  auto p = t.progress();
  bool submitted = p.accepted + p.not_accepted >= opt.count;
  return submitted && (opt.wait == wait_mode::none || p.completed >= p.accepted);
}

void print_progress(const tracker& t, double seconds) {
  auto p = t.progress();
  std::fprintf(
      stderr, "[%7.1fs] submitted %llu accepted %llu refused %llu completed %llu\n", seconds,
      static_cast<unsigned long long>(p.submitted), static_cast<unsigned long long>(p.accepted),
      static_cast<unsigned long long>(p.refused), static_cast<unsigned long long>(p.completed));
}

/// Waits for the run to finish or time out, printing progress about once per second.
/// Returns the elapsed seconds.
double wait_for_run(const run_context& ctx) {
  auto deadline = ctx.origin + std::chrono::seconds{ctx.opt.timeout_seconds};
  auto next_progress = ctx.origin + std::chrono::seconds{1};
  while (!finished(ctx.track, ctx.opt) && clock_type::now() < deadline) {
    std::this_thread::sleep_for(milliseconds{20});
    if (clock_type::now() >= next_progress) {
      print_progress(ctx.track, double(now_ns(ctx.origin)) / 1e9);
      next_progress += std::chrono::seconds{1};
    }
  }
  auto elapsed = double(now_ns(ctx.origin)) / 1e9;
  if (!finished(ctx.track, ctx.opt))
    std::fprintf(stderr, "lps-loadgen: timed out after %.1f s\n", elapsed);
  return elapsed;
}

int run(const options& opt) {
  essay_corpus corpus(opt.seed, opt.essay_bytes);
  tracker track(opt.count);
  scheduler sched;
  auto http_timeout = milliseconds{std::min<uint64_t>(opt.timeout_seconds, 120) * 1000};
  run_context ctx{opt, track, sched, clock_type::now(), http_timeout};
  lps::http_server receiver;
  std::string callback_url;
  if (opt.wait == wait_mode::callback)
    callback_url = start_receiver(receiver, ctx);
  body_builder bodies(opt, corpus, callback_url);
  std::optional<poller> polls;
  if (opt.wait == wait_mode::poll)
    polls.emplace(ctx);
  submitter sub(ctx, bodies, polls ? &*polls : nullptr);
  std::map<std::string, double> server_cpu_before;
  if (opt.pid != 0)
    server_cpu_before = thread_cpu_seconds(opt.pid);
  periodic_poster resets(opt);
  sub.start();
  auto elapsed = wait_for_run(ctx);
  // A short linger catches redeliveries of results we already have.
  if (opt.wait == wait_mode::callback)
    std::this_thread::sleep_for(milliseconds{500});
  resets.stop();
  sched.stop();
  sub.stop();
  if (polls)
    polls->stop();
  receiver.stop();
  print_progress(track, elapsed);
  track.print_summary(opt, elapsed);
  print_pacing(opt, sub.pacing());
  resets.print();
  print_rss(opt);
  if (opt.pid != 0)
    print_server_cpu(server_cpu_before, opt.pid, opt.count);
  print_own_cpu(opt.count);
  auto rc = exit_code(track, opt);
  line("result", rc == 0 ? "OK" : "FAIL");
  std::fflush(stdout);
  return rc;
}

} // namespace

} // namespace lps::loadgen

int main(int argc, char** argv) {
  using namespace lps::loadgen;
  std::optional<options> opt;
  try {
    opt = parse_options(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lps-loadgen: %s (see --help)\n", e.what());
    return 2;
  }
  if (!opt) {
    std::fputs(usage_text, stdout);
    return 0;
  }
  spdlog::set_level(spdlog::level::warn);
  try {
    return opt->mode == submit_mode::direct ? run_direct(*opt) : run(*opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lps-loadgen: %s\n", e.what());
    return 1;
  }
}
