#include "tools/loadgen/direct.hpp"

#include "runtime/http_client.hpp"
#include "tools/loadgen/bodies.hpp"
#include "tools/loadgen/flow.hpp"
#include "tools/loadgen/periodic_poster.hpp"
#include "tools/loadgen/report.hpp"

#include <boost/json.hpp>

#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

namespace lps::loadgen {

namespace {

/// Reads a chat/completions answer as lps does (parse_openai_response): the first choice's
/// message content must be a JSON object whose winner is "Essay A" or "Essay B". Returns ""
/// when it is, else a short reason.
std::string check_openai_answer(std::string_view body) {
  boost::system::error_code ec;
  auto doc = boost::json::parse(body, ec);
  const auto* root = ec ? nullptr : doc.if_object();
  const auto* choices = root ? root->if_contains("choices") : nullptr;
  const auto* list = choices ? choices->if_array() : nullptr;
  const auto* choice = list && !list->empty() ? (*list)[0].if_object() : nullptr;
  const auto* message = choice ? choice->if_contains("message") : nullptr;
  const auto* fields = message ? message->if_object() : nullptr;
  const auto* content = fields ? fields->if_contains("content") : nullptr;
  if (!content || !content->is_string())
    return "no_content";
  auto verdict = boost::json::parse(content->get_string(), ec);
  const auto* answer = ec ? nullptr : verdict.if_object();
  const auto* winner = answer ? answer->if_contains("winner") : nullptr;
  if (!winner || !winner->is_string()
      || (winner->get_string() != "Essay A" && winner->get_string() != "Essay B"))
    return "bad_verdict";
  return {};
}

/// Sends one chat/completions call per request straight to the provider, --concurrency in
/// flight over as many keep-alive connections, and times each call (send → answer read).
class direct_caller {
public:
  direct_caller(const options& opt, const body_builder& bodies, clock_type::time_point origin,
                milliseconds timeout, scheduler& sched)
      : opt_(opt), bodies_(bodies), origin_(origin), timeout_(timeout),
        client_(client_options(opt.concurrency)),
        window_(
            opt.concurrency, [this] { return next_call(); }, [this](uint64_t i) { launch(i); },
            opt.rate, &sched) {
    latencies_ms_.reserve(opt.count);
  }

  void start() {
    window_.pump();
  }

  pacing_figures pacing() const {
    return window_.pacing();
  }

  void stop() {
    window_.close();
    client_.stop();
  }

  uint64_t answered() const {
    std::lock_guard<std::mutex> lock{mutex_};
    return answered_;
  }

  bool all_ok() const {
    std::lock_guard<std::mutex> lock{mutex_};
    return ok_ == opt_.count;
  }

  void print_summary(double elapsed_s) const {
    std::lock_guard<std::mutex> lock{mutex_};
    line("mode", "direct");
    line("url", opt_.url + "/chat/completions");
    line("model", opt_.model);
    line("concurrency", std::to_string(opt_.concurrency));
    line("rate", std::to_string(opt_.rate));
    line("requests", std::to_string(opt_.count));
    line("answered", std::to_string(answered_));
    line("ok", std::to_string(ok_));
    line("failed", std::to_string(answered_ - ok_));
    for (const auto& [key, n] : failures_)
      line(("failed_" + key).c_str(), std::to_string(n));
    line("elapsed_s", fixed(elapsed_s, 2));
    line("calls_per_s", fixed(per_second(ok_, first_sent_, last_answer_)));
    auto xs = latencies_ms_;
    line("call_mean_ms", fixed(mean(xs), 2));
    line("call_p50_ms", fixed(percentile(xs, 0.50), 2));
    line("call_p90_ms", fixed(percentile(xs, 0.90), 2));
    line("call_p99_ms", fixed(percentile(xs, 0.99), 2));
    line("call_max_ms", fixed(percentile(xs, 1.0), 2));
  }

private:
  /// Called under the window's lock.
  std::optional<uint64_t> next_call() {
    if (next_ >= opt_.count)
      return std::nullopt;
    return next_++;
  }

  void launch(uint64_t index) {
    lps::http_client_request req;
    req.url = opt_.url + "/chat/completions";
    req.headers = {{"Authorization", "Bearer " + opt_.api_key},
                   {"Content-Type", "application/json"}};
    req.headers.insert(req.headers.end(), opt_.headers.begin(), opt_.headers.end());
    req.body = bodies_.openai(index);
    req.timeout = timeout_;
    auto sent = now_ns(origin_);
    {
      std::lock_guard<std::mutex> lock{mutex_};
      first_sent_ = std::min(first_sent_, sent);
    }
    client_.send(std::move(req), [this, sent](lps::http_client_response r) {
      auto at = now_ns(origin_);
      std::string why = r.status == 0     ? std::string("transport_") + lps::to_string(r.error)
                        : r.status != 200 ? std::to_string(r.status)
                                          : check_openai_answer(r.body);
      record(sent, at, why);
      window_.done();
    });
  }

  void record(int64_t sent, int64_t at, const std::string& why) {
    std::lock_guard<std::mutex> lock{mutex_};
    ++answered_;
    latencies_ms_.push_back(double(at - sent) / 1e6);
    last_answer_ = std::max(last_answer_, at);
    if (why.empty())
      ++ok_;
    else
      ++failures_[why];
  }

  const options& opt_;
  const body_builder& bodies_;
  clock_type::time_point origin_;
  milliseconds timeout_;
  mutable std::mutex mutex_;
  std::vector<double> latencies_ms_;
  std::map<std::string, uint64_t> failures_;
  uint64_t answered_ = 0;
  uint64_t ok_ = 0;
  int64_t first_sent_ = INT64_MAX;
  int64_t last_answer_ = 0;
  uint64_t next_ = 0; // guarded by the window's lock (next_call)
  lps::http_client client_;
  window<uint64_t> window_;
};

} // namespace

int run_direct(const options& opt) {
  essay_corpus corpus(opt.seed, opt.essay_bytes);
  body_builder bodies(opt, corpus, "");
  auto origin = clock_type::now();
  auto http_timeout = milliseconds{std::min<uint64_t>(opt.timeout_seconds, 120) * 1000};
  scheduler sched; // wakes the caller's window when a paced call falls due
  direct_caller caller(opt, bodies, origin, http_timeout, sched);
  std::map<std::string, double> server_cpu_before;
  if (opt.pid != 0)
    server_cpu_before = thread_cpu_seconds(opt.pid);
  periodic_poster resets(opt);
  caller.start();
  auto deadline = origin + std::chrono::seconds{opt.timeout_seconds};
  auto next_progress = origin + std::chrono::seconds{1};
  while (caller.answered() < opt.count && clock_type::now() < deadline) {
    std::this_thread::sleep_for(milliseconds{20});
    if (clock_type::now() >= next_progress) {
      std::fprintf(stderr, "[%7.1fs] answered %llu\n", double(now_ns(origin)) / 1e9,
                   static_cast<unsigned long long>(caller.answered()));
      next_progress += std::chrono::seconds{1};
    }
  }
  auto elapsed = double(now_ns(origin)) / 1e9;
  if (caller.answered() < opt.count)
    std::fprintf(stderr, "lps-loadgen: timed out after %.1f s\n", elapsed);
  resets.stop();
  sched.stop(); // before the caller goes: a pending wake-up pumps its window
  caller.stop();
  caller.print_summary(elapsed);
  print_pacing(opt, caller.pacing());
  resets.print();
  print_rss(opt);
  if (opt.pid != 0)
    print_server_cpu(server_cpu_before, opt.pid, opt.count);
  print_own_cpu(opt.count);
  auto rc = caller.all_ok() ? 0 : 1;
  line("result", rc == 0 ? "OK" : "FAIL");
  std::fflush(stdout);
  return rc;
}

} // namespace lps::loadgen
