#pragma once

// This process's resource figures as the Prometheus client libraries export them
// (process_resident_memory_bytes and the rest), read from /proc on Linux. A plain function:
// the metrics actor calls it at each scrape.

#include <cstdint>
#include <optional>
#include <string>

namespace lps {

struct process_stats {
  double cpu_seconds = 0;        // user + system CPU time
  double resident_bytes = 0;     // RSS
  double virtual_bytes = 0;      // address space
  double start_time_seconds = 0; // since the Unix epoch
  uint64_t open_fds = 0;
  uint64_t max_fds = 0; // the soft RLIMIT_NOFILE
  uint64_t threads = 0;
};

/// The figures of the process whose /proc/<pid> is `proc_dir` ("/proc/self" by default), or
/// nullopt when /proc cannot be read (then the metrics leave the process series out).
std::optional<process_stats> read_process_stats(const std::string& proc_dir = "/proc/self");

} // namespace lps
