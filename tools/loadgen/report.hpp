#pragma once

// The summary lines lps-loadgen prints: number formatting, percentiles, and the CPU and
// memory of the server and of the load generator.

#include "tools/loadgen/flow.hpp"
#include "tools/loadgen/options.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lps::loadgen {

double percentile(std::vector<double>& xs, double p);

double mean(const std::vector<double>& xs);

double per_second(uint64_t n, int64_t from_ns, int64_t to_ns);

void line(const char* key, const std::string& value);

std::string fixed(double x, int digits = 1);

/// CPU seconds per thread of a process, keyed "tid:name" (threads that ended are gone).
std::map<std::string, double> thread_cpu_seconds(uint64_t pid);

/// Where the server's CPU went during the run: per thread and per request.
void print_server_cpu(const std::map<std::string, double>& before, uint64_t pid, uint64_t n);

void print_own_cpu(uint64_t n);

/// rate_late and rate_late_max_ms: how far a paced run (--rate) fell behind its schedule.
void print_pacing(const options& opt, const pacing_figures& pace);

void print_rss(const options& opt);

} // namespace lps::loadgen
