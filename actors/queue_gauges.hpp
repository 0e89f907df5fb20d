#pragma once

// The queue's waiting requests by provider and model as gauges for /metrics
// (llm_provider_queue_waiting, llm_provider_queue_oldest_age_seconds; docs/api.md, "Metrics"),
// made from the queue manager's "queue" table each time the inspector asks for it.

#include "messages/metrics.hpp"
#include "messages/status.hpp"

#include <map>
#include <set>
#include <string>
#include <vector>

namespace lps {

class queue_gauges {
public:
  /// Model series a provider gets at most over the process' life: models are chosen by
  /// clients, and a series once exported stays. Later models are counted as model "other".
  static constexpr size_t models_per_provider = 10;

  /// Samples that set both gauges of every series published so far: from `rows` (the queue
  /// table: facts provider and model, figures waiting and oldest_age_seconds), 0 for a
  /// series whose requests are gone.
  std::vector<metric_sample> update(const std::vector<status_row>& rows);

private:
  struct series {
    double waiting = 0;
    double oldest_age_seconds = 0;
  };

  /// The model label `model` of `provider` is counted under.
  std::string label_of(const std::string& provider, const std::string& model);

  /// Model labels published per provider ("other" not among them).
  std::map<std::string, std::set<std::string>> models_;
  /// Every (provider, model label) published so far.
  std::set<std::pair<std::string, std::string>> published_;
};

} // namespace lps
