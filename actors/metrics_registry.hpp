#pragma once

// Every metric lps exports, declared once, with its values and the Prometheus text
// exposition (format 0.0.4). A plain class: the metrics actor owns one; tests use it
// without actors.

#include "messages/metrics.hpp"

#include <map>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lps {

enum class metric_kind { counter, gauge, histogram };

/// A declared metric: name (with the llm_provider_ prefix), help, kind, label names,
/// and bucket upper bounds for histograms.
struct metric_definition {
  std::string name;
  std::string help;
  metric_kind kind = metric_kind::counter;
  std::vector<std::string> label_names;
  std::vector<double> buckets;
};

/// The table of every metric (CONTRACTS.md section 4 plus lps' own).
const std::vector<metric_definition>& metric_definitions();

class metrics_registry {
public:
  metrics_registry();

  /// Applies one sample: counters add, gauges set, histograms observe. Returns false (and
  /// changes nothing) for an unknown name, a wrong label count, or a negative counter step.
  bool apply(const metric_sample& sample);

  /// Prometheus text exposition of every metric; metrics without samples still get their
  /// HELP and TYPE lines.
  std::string render() const;

  /// Current value of a counter or gauge series (0 if absent); for tests and inspection.
  double value(const std::string& name, const std::vector<std::string>& labels) const;

  /// Observation count of a histogram series (0 if absent).
  uint64_t count(const std::string& name, const std::vector<std::string>& labels) const;

  /// Cumulative bucket counts of histogram `name` summed over its series, by upper bound as
  /// /metrics writes it ("0.01", ..., "+Inf"); empty when `name` is no histogram.
  std::vector<std::pair<std::string, uint64_t>> cumulative_buckets(const std::string& name) const;

  /// Samples rejected by apply().
  uint64_t rejected() const {
    return rejected_;
  }

private:
  struct series {
    double value = 0.0;                  // counter or gauge
    std::vector<uint64_t> bucket_counts; // histogram, per bucket (non-cumulative)
    uint64_t count = 0;
    double sum = 0.0;
  };
  struct family {
    const metric_definition* def = nullptr;
    std::map<std::vector<std::string>, series> series_by_labels;
  };
  std::map<std::string, family> families_;
  uint64_t rejected_ = 0;
};

} // namespace lps
