#pragma once

// Metric updates sent to the metrics actor.

#include <caf/meta/type_name.hpp>

#include <string>
#include <vector>

namespace lps {

/// One update: counters add `value`, gauges are set to it, histograms observe it.
/// The metric's kind and label names are declared once in actors/metrics_registry.
struct metric_sample {
  std::string name;
  /// Label values in the declared label order.
  std::vector<std::string> labels;
  double value = 0.0;
  friend bool operator==(const metric_sample&, const metric_sample&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, metric_sample& x) {
  return f(caf::meta::type_name("lps.metric_sample"), x.name, x.labels, x.value);
}

} // namespace lps
