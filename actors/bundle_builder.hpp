#pragma once

// Bundle formation as a plain class (no actors, no I/O), so its rules are tested alone.
// The bundler actor is a thin shell around it: it feeds dequeued requests in, and sends
// what finish() returns to a provider actor.

#include "messages/bundle.hpp"
#include "runtime/config.hpp"

#include <map>
#include <optional>
#include <string>

namespace lps {

/// What decides bundle size and provider/model resolution.
struct bundle_policy {
  /// The effective mode: per_request (one item per bundle) or serial_bundle.
  queue_processing_mode mode = queue_processing_mode::serial_bundle;
  /// SERIAL_BUNDLE_MAX_REQUESTS_PER_CALL (1..64).
  uint32_t max_items = 4;
  /// DEFAULT_LLM_PROVIDER.
  std::string default_provider = "mock";
  /// Default model per provider name.
  std::map<std::string, std::string> default_models;
};

/// A request's provider and model after overrides and defaults.
struct resolved_target {
  std::string provider;
  std::string model;
  friend bool operator==(const resolved_target&, const resolved_target&) = default;
};

class bundle_builder {
public:
  explicit bundle_builder(bundle_policy policy);

  /// provider_override, else the default provider; model_override, else that provider's
  /// default model.
  resolved_target resolve(const comparison_request& request) const;

  /// Two requests may share a provider call: same resolved provider and model, same
  /// remaining overrides, and the same cj_llm_batching_mode (absent on both, or equal).
  bool compatible(const comparison_request& a, const comparison_request& b) const;

  /// Begins a bundle led by `lead`. Requires empty().
  void start(queued_request lead);

  /// Adds `next` when compatible with the lead and there is room; returns false otherwise
  /// (the caller keeps `next` to lead the following bundle, so nothing is lost or reordered).
  bool offer(queued_request& next);

  /// True when no more items fit (always after the lead in per_request mode).
  bool full() const;

  bool empty() const {
    return items_.empty();
  }

  size_t size() const {
    return items_.size();
  }

  /// Returns the bundle with every item enriched (resolved_provider, resolved_model,
  /// queue_processing_mode, bundle_id, bundle_size) and resets the builder.
  bundle finish(const std::string& bundle_id);

  const bundle_policy& policy() const {
    return policy_;
  }

private:
  bundle_policy policy_;
  std::vector<queued_request> items_;
  resolved_target target_;
};

} // namespace lps
