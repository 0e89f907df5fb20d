#include "actors/queue_gauges.hpp"

#include <algorithm>

namespace lps {

namespace {

// A request whose text is only in the store (cold) has model "" in the queue table: its
// model is known only once it is read back.
const std::string cold_model = "unknown";
const std::string other_models = "other";

std::string fact(const status_row& row, const std::string& key) {
  auto i = row.facts.find(key);
  return i == row.facts.end() ? std::string{} : i->second;
}

double figure(const status_row& row, const std::string& key) {
  auto i = row.figures.find(key);
  return i == row.figures.end() ? 0.0 : i->second;
}

} // namespace

std::string queue_gauges::label_of(const std::string& provider, const std::string& model) {
  auto label = model.empty() ? cold_model : model;
  auto& known = models_[provider];
  if (known.count(label) != 0)
    return label;
  if (known.size() >= models_per_provider)
    return other_models;
  known.insert(label);
  return label;
}

std::vector<metric_sample> queue_gauges::update(const std::vector<status_row>& rows) {
  std::map<std::pair<std::string, std::string>, series> now;
  for (const auto& row : rows) {
    auto provider = fact(row, "provider");
    auto& x = now[{provider, label_of(provider, fact(row, "model"))}];
    x.waiting += figure(row, "waiting");
    x.oldest_age_seconds = std::max(x.oldest_age_seconds, figure(row, "oldest_age_seconds"));
  }
  for (const auto& [key, x] : now)
    published_.insert(key);
  std::vector<metric_sample> result;
  for (const auto& key : published_) {
    auto i = now.find(key);
    auto x = i == now.end() ? series{} : i->second;
    std::vector<std::string> labels{key.first, key.second};
    result.push_back({"llm_provider_queue_waiting", labels, x.waiting});
    result.push_back(
        {"llm_provider_queue_oldest_age_seconds", std::move(labels), x.oldest_age_seconds});
  }
  return result;
}

} // namespace lps
