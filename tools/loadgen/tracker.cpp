#include "tools/loadgen/tracker.hpp"

#include "tools/loadgen/report.hpp"

namespace lps::loadgen {

int64_t now_ns(clock_type::time_point origin) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - origin).count();
}

std::vector<double> tracker::e2e_latencies_ms() const {
  std::vector<double> xs;
  xs.reserve(completed_);
  for (const auto& s : slots_)
    if (s.result_ns >= 0 && s.sent_ns >= 0)
      xs.push_back(double(s.result_ns - s.sent_ns) / 1e6);
  return xs;
}

std::vector<double> tracker::event_figures_ms(int64_t slot::*field) const {
  std::vector<double> xs;
  xs.reserve(completed_);
  for (const auto& s : slots_)
    if (s.result_ns >= 0 && s.*field >= 0)
      xs.push_back(double(s.*field));
  return xs;
}

void tracker::print_summary(const options& opt, double elapsed_s) const {
  std::lock_guard<std::mutex> lock{mutex_};
  bool waited = opt.wait != wait_mode::none;
  auto na = std::string("n/a");
  line("mode", opt.mode == submit_mode::bulk ? "bulk" : "single");
  line("wait", opt.wait == wait_mode::callback ? "callback"
               : opt.wait == wait_mode::poll   ? "poll"
                                               : "none");
  line("concurrency", std::to_string(opt.concurrency));
  line("rate", std::to_string(opt.rate));
  line("bulk_size", opt.mode == submit_mode::bulk ? std::to_string(opt.bulk_size) : na);
  line("requests", std::to_string(slots_.size()));
  line("accepted", std::to_string(accepted_));
  line("not_accepted", std::to_string(slots_.size() - accepted_));
  line("refused", std::to_string(refused_) + " (retried " + std::to_string(retries_) + ")");
  for (const auto& [key, n] : refusals_)
    line(("refused_" + key).c_str(), std::to_string(n));
  line("completed", waited ? std::to_string(completed_) + " (success " + std::to_string(successes_)
                                 + ", error " + std::to_string(errors_) + ")"
                           : na);
  line("missing", waited ? std::to_string(accepted_ - completed_) : na);
  line("duplicates", std::to_string(redeliveries_ + conflicting_) + " (same event_id "
                         + std::to_string(redeliveries_) + ", different event_id "
                         + std::to_string(conflicting_) + ")");
  size_t unexpected = 0;
  for (const auto& [qid, events] : early_)
    unexpected += events.size();
  line("unexpected_results", std::to_string(unexpected));
  line("bad_events", std::to_string(bad_events_));
  line("elapsed_s", fixed(elapsed_s, 2));
  line("accepted_per_s", fixed(per_second(accepted_, first_sent_, last_accept_)));
  line("completed_per_s", waited ? fixed(per_second(completed_, first_sent_, last_result_)) : na);
  auto accept = accept_ms_;
  line("accept_p50_ms", fixed(percentile(accept, 0.50), 2));
  line("accept_p99_ms", fixed(percentile(accept, 0.99), 2));
  line("accept_max_ms", fixed(percentile(accept, 1.0), 2));
  auto e2e = e2e_latencies_ms();
  line("e2e_mean_ms", waited ? fixed(mean(e2e), 2) : na);
  line("e2e_p50_ms", waited ? fixed(percentile(e2e, 0.50), 2) : na);
  line("e2e_p90_ms", waited ? fixed(percentile(e2e, 0.90), 2) : na);
  line("e2e_p99_ms", waited ? fixed(percentile(e2e, 0.99), 2) : na);
  line("e2e_max_ms", waited ? fixed(percentile(e2e, 1.0), 2) : na);
  // lps's own view, from the result events (whole milliseconds: lps rounds down).
  auto figures = [&](const char* prefix, std::vector<double> xs) {
    auto key = [&](const char* suffix) { return std::string(prefix) + suffix; };
    bool have = waited && !xs.empty();
    line(key("_mean_ms").c_str(), have ? fixed(mean(xs), 2) : na);
    line(key("_p50_ms").c_str(), have ? fixed(percentile(xs, 0.50), 0) : na);
    line(key("_p99_ms").c_str(), have ? fixed(percentile(xs, 0.99), 0) : na);
    line(key("_max_ms").c_str(), have ? fixed(percentile(xs, 1.0), 0) : na);
  };
  figures("event_provider", event_figures_ms(&slot::provider_ms));
  figures("event_inside", event_figures_ms(&slot::inside_ms));
}

int exit_code(const tracker& t, const options& opt) {
  std::lock_guard<std::mutex> lock{t.mutex_};
  bool missing = opt.wait != wait_mode::none && t.completed_ < t.accepted_;
  bool ok = t.accepted_ == t.slots_.size() && !missing && t.conflicting_ == 0;
  return ok ? 0 : 1;
}

} // namespace lps::loadgen
