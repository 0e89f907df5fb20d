#include "tools/loadgen/direct.hpp"

#include "runtime/http_client.hpp"
#include "tools/loadgen/bodies.hpp"
#include "tools/loadgen/flow.hpp"
#include "tools/loadgen/periodic_poster.hpp"
#include "tools/loadgen/report.hpp"

#include <boost/json.hpp>

#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>

namespace lps::loadgen {

namespace {

/// The string `key` of the first choice's `part` ("message" or "delta"), or nullptr.
const boost::json::string* first_choice_string(const boost::json::value& doc, std::string_view part,
                                               std::string_view key) {
  const auto* root = doc.if_object();
  const auto* choices = root ? root->if_contains("choices") : nullptr;
  const auto* list = choices ? choices->if_array() : nullptr;
  const auto* choice = list && !list->empty() ? (*list)[0].if_object() : nullptr;
  const auto* inner = choice ? choice->if_contains(part) : nullptr;
  const auto* fields = inner ? inner->if_object() : nullptr;
  const auto* value = fields ? fields->if_contains(key) : nullptr;
  return value ? value->if_string() : nullptr;
}

/// "" when `content` is a JSON object whose winner is "Essay A" or "Essay B", else a reason.
std::string check_verdict(std::string_view content) {
  boost::system::error_code ec;
  auto verdict = boost::json::parse(content, ec);
  const auto* answer = ec ? nullptr : verdict.if_object();
  const auto* winner = answer ? answer->if_contains("winner") : nullptr;
  if (!winner || !winner->is_string()
      || (winner->get_string() != "Essay A" && winner->get_string() != "Essay B"))
    return "bad_verdict";
  return {};
}

/// Reads a chat/completions answer as lps does (parse_openai_response): the first choice's
/// message content must be a verdict (check_verdict). Returns "" when it is, else a reason.
std::string check_openai_answer(std::string_view body) {
  boost::system::error_code ec;
  auto doc = boost::json::parse(body, ec);
  const auto* content = ec ? nullptr : first_choice_string(doc, "message", "content");
  return content ? check_verdict(*content) : "no_content";
}

/// A streamed answer: `data:` chunk events whose content deltas join into a verdict, then
/// `data: [DONE]`. Returns "" when it is, else a short reason.
std::string check_openai_stream(std::string_view body) {
  std::string content;
  bool done = false;
  for (size_t at = 0; at < body.size();) {
    auto end = body.find("\n\n", at);
    auto event = body.substr(at, end == std::string_view::npos ? body.size() - at : end - at);
    at = end == std::string_view::npos ? body.size() : end + 2;
    if (!event.starts_with("data: "))
      continue;
    auto data = event.substr(6);
    if (data == "[DONE]") {
      done = true;
      continue;
    }
    boost::system::error_code ec;
    auto chunk = boost::json::parse(data, ec);
    if (ec)
      return "bad_chunk";
    if (const auto* piece = first_choice_string(chunk, "delta", "content"))
      content.append(piece->data(), piece->size());
  }
  return !done ? "no_done" : check_verdict(content);
}

/// The upstream body with `stream: true` and include_usage (what a streaming client sends).
std::string streamed_body(std::string body) {
  return body.insert(1, R"("stream":true,"stream_options":{"include_usage":true},)");
}

/// One streamed call's body as it comes, and when its first chunk (event) came.
struct stream_progress {
  std::mutex mutex;
  std::string body;
  int64_t first_chunk_ns = 0;
};

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
    first_chunk_ms_.reserve(opt.stream ? opt.count : 0);
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
    line("stream", opt_.stream ? "true" : "false");
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
    if (!opt_.stream)
      return;
    auto firsts = first_chunk_ms_;
    line("first_chunk_p50_ms", fixed(percentile(firsts, 0.50), 2));
    line("first_chunk_p90_ms", fixed(percentile(firsts, 0.90), 2));
    line("first_chunk_p99_ms", fixed(percentile(firsts, 0.99), 2));
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
    req.body = opt_.stream ? streamed_body(bodies_.openai(index)) : bodies_.openai(index);
    req.timeout = timeout_;
    auto progress = opt_.stream ? std::make_shared<stream_progress>() : nullptr;
    if (progress)
      req.on_body_data = [this, progress](std::string_view piece) {
        std::lock_guard<std::mutex> lock{progress->mutex};
        if (progress->first_chunk_ns == 0 && piece.find("data: ") != std::string_view::npos)
          progress->first_chunk_ns = now_ns(origin_);
        progress->body.append(piece);
      };
    auto sent = now_ns(origin_);
    {
      std::lock_guard<std::mutex> lock{mutex_};
      first_sent_ = std::min(first_sent_, sent);
    }
    client_.send(std::move(req), [this, sent, progress](lps::http_client_response r) {
      auto at = now_ns(origin_);
      int64_t first = 0;
      std::string why = r.status == 0     ? std::string("transport_") + lps::to_string(r.error)
                        : r.status != 200 ? std::to_string(r.status)
                        : !progress       ? check_openai_answer(r.body)
                                          : std::string{};
      if (progress && why.empty()) {
        std::lock_guard<std::mutex> lock{progress->mutex};
        why = check_openai_stream(progress->body);
        first = progress->first_chunk_ns;
      }
      record(sent, at, first, why);
      window_.done();
    });
  }

  void record(int64_t sent, int64_t at, int64_t first_chunk, const std::string& why) {
    std::lock_guard<std::mutex> lock{mutex_};
    ++answered_;
    latencies_ms_.push_back(double(at - sent) / 1e6);
    if (first_chunk != 0)
      first_chunk_ms_.push_back(double(first_chunk - sent) / 1e6);
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
  std::vector<double> first_chunk_ms_;
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
