#include "tools/loadgen/report.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

#include <sys/resource.h>
#include <unistd.h>

namespace lps::loadgen {

namespace {

/// CPU seconds (user + system) of one /proc/.../stat file, with the thread or process name.
std::optional<double> stat_cpu_seconds(const std::string& path, std::string* name) {
  std::ifstream in{path};
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The name sits in parentheses and may hold spaces; the numbers follow the last ')'.
  auto open = text.find('(');
  auto close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open)
    return std::nullopt;
  if (name)
    *name = text.substr(open + 1, close - open - 1);
  std::istringstream fields{text.substr(close + 1)};
  std::string skip;
  for (int i = 0; i < 11; ++i) // state .. cmajflt: fields 3 to 13
    fields >> skip;
  double utime = 0;
  double stime = 0;
  if (!(fields >> utime >> stime))
    return std::nullopt;
  return (utime + stime) / double(sysconf(_SC_CLK_TCK));
}

/// VmHWM and VmRSS of a process in MiB (nullopt when unreadable).
std::optional<std::pair<double, double>> read_rss_mib(const std::string& pid) {
  std::ifstream in{"/proc/" + pid + "/status"};
  std::string key;
  double hwm = -1;
  double rss = -1;
  while (in >> key) {
    double kib = 0;
    if ((key == "VmHWM:" || key == "VmRSS:") && (in >> kib))
      (key == "VmHWM:" ? hwm : rss) = kib / 1024.0;
    in.ignore(1 << 20, '\n');
  }
  if (hwm < 0 || rss < 0)
    return std::nullopt;
  return std::make_pair(hwm, rss);
}

} // namespace

double percentile(std::vector<double>& xs, double p) {
  if (xs.empty())
    return 0;
  auto k = static_cast<size_t>(p * double(xs.size() - 1) + 0.5);
  std::nth_element(xs.begin(), xs.begin() + static_cast<std::ptrdiff_t>(k), xs.end());
  return xs[k];
}

double mean(const std::vector<double>& xs) {
  double sum = 0;
  for (auto x : xs)
    sum += x;
  return xs.empty() ? 0.0 : sum / double(xs.size());
}

double per_second(uint64_t n, int64_t from_ns, int64_t to_ns) {
  return to_ns > from_ns ? double(n) * 1e9 / double(to_ns - from_ns) : 0.0;
}

void line(const char* key, const std::string& value) {
  std::printf("%-19s %s\n", key, value.c_str());
}

std::string fixed(double x, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, x);
  return buf;
}

std::map<std::string, double> thread_cpu_seconds(uint64_t pid) {
  std::map<std::string, double> result;
  std::error_code ec;
  auto dir = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name;
    auto tid = entry.path().filename().string();
    if (auto secs = stat_cpu_seconds(entry.path().string() + "/stat", &name))
      result[tid + ":" + name] = *secs;
  }
  return result;
}

void print_server_cpu(const std::map<std::string, double>& before, uint64_t pid, uint64_t n) {
  auto after = thread_cpu_seconds(pid);
  double total = 0;
  std::string threads;
  for (const auto& [key, secs] : after) {
    auto it = before.find(key);
    auto used = secs - (it == before.end() ? 0.0 : it->second);
    total += used;
    threads += (threads.empty() ? "" : " ") + key + "=" + fixed(used, 2);
  }
  line("server_cpu_s",
       fixed(total, 2) + " (" + fixed(n ? total * 1e6 / double(n) : 0, 0) + " us/request)");
  line("server_cpu_threads", threads);
}

void print_own_cpu(uint64_t n) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto secs = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  double total = secs(usage.ru_utime) + secs(usage.ru_stime);
  line("loadgen_cpu_s",
       fixed(total, 2) + " (" + fixed(n ? total * 1e6 / double(n) : 0, 0) + " us/request)");
}

void print_pacing(const options& opt, const pacing_figures& pace) {
  auto na = std::string("n/a");
  line("rate_late", opt.rate == 0
                        ? na
                        : std::to_string(pace.late) + " of " + std::to_string(pace.started)
                              + " started > 1 ms after their due time");
  auto max_ms = std::chrono::duration<double, std::milli>(pace.late_max).count();
  line("rate_late_max_ms", opt.rate == 0 ? na : fixed(max_ms, 2));
}

void print_rss(const options& opt) {
  if (opt.pid != 0) {
    auto server = read_rss_mib(std::to_string(opt.pid));
    line("server_peak_rss_mib", server ? fixed(server->first) : "unreadable");
    line("server_rss_mib", server ? fixed(server->second) : "unreadable");
  }
  auto self = read_rss_mib("self");
  line("loadgen_peak_rss_mib", self ? fixed(self->first) : "unreadable");
}

} // namespace lps::loadgen
