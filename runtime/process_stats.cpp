#include "runtime/process_stats.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace lps {

namespace {

// The fields of /proc/<pid>/stat after the command name (which may hold spaces and
// parentheses, so the split starts after its last ')'): index 0 is field 3, "state".
std::optional<std::vector<std::string>> stat_fields(const std::string& proc_dir) {
  std::ifstream in(proc_dir + "/stat");
  std::string line;
  if (!std::getline(in, line))
    return std::nullopt;
  auto close = line.rfind(')');
  if (close == std::string::npos)
    return std::nullopt;
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string x; rest >> x;)
    fields.push_back(x);
  if (fields.size() < 22)
    return std::nullopt;
  return fields;
}

// The system's boot time (seconds since the epoch), from /proc/stat's btime line.
std::optional<double> boot_time_seconds() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double value = 0;
      if (in >> value)
        return value;
      return std::nullopt;
    }
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return std::nullopt;
}

uint64_t count_entries(const std::string& dir) {
  std::error_code err;
  uint64_t n = 0;
  for (std::filesystem::directory_iterator i(dir, err), end; !err && i != end; i.increment(err))
    ++n;
  return n;
}

} // namespace

std::optional<process_stats> read_process_stats(const std::string& proc_dir) {
  auto fields = stat_fields(proc_dir);
  auto boot = boot_time_seconds();
  if (!fields || !boot)
    return std::nullopt;
  // Field n of proc(5) is (*fields)[n - 3].
  auto field = [&](int n) { return std::stod((*fields)[n - 3]); };
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  process_stats result;
  try {
    result.cpu_seconds = (field(14) + field(15)) / ticks;
    result.threads = static_cast<uint64_t>(field(20));
    result.start_time_seconds = *boot + field(22) / ticks;
    result.virtual_bytes = field(23);
    result.resident_bytes = field(24) * page;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  result.open_fds = count_entries(proc_dir + "/fd");
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0)
    result.max_fds = limit.rlim_cur;
  return result;
}

} // namespace lps
