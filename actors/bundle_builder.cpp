#include "actors/bundle_builder.hpp"

#include <cassert>

namespace lps {

namespace {

// Overrides other than provider and model must match exactly for items to share a call:
// temperature, system prompt, max tokens and reasoning settings change the answer.
bool same_call_settings(const llm_overrides& a, const llm_overrides& b) {
  return a.has_temperature == b.has_temperature
         && (!a.has_temperature || a.temperature == b.temperature)
         && a.has_system_prompt == b.has_system_prompt && a.system_prompt == b.system_prompt
         && a.max_tokens == b.max_tokens && a.reasoning_effort == b.reasoning_effort
         && a.output_verbosity == b.output_verbosity;
}

} // namespace

bundle_builder::bundle_builder(bundle_policy policy) : policy_(std::move(policy)) {
  if (policy_.max_items == 0)
    policy_.max_items = 1;
}

resolved_target bundle_builder::resolve(const comparison_request& request) const {
  resolved_target result;
  result.provider =
      request.overrides.provider.empty() ? policy_.default_provider : request.overrides.provider;
  if (!request.overrides.model.empty()) {
    result.model = request.overrides.model;
  } else if (auto i = policy_.default_models.find(result.provider);
             i != policy_.default_models.end()) {
    result.model = i->second;
  }
  return result;
}

bool bundle_builder::compatible(const comparison_request& a, const comparison_request& b) const {
  return resolve(a) == resolve(b) && same_call_settings(a.overrides, b.overrides)
         && a.has_cj_batching_mode == b.has_cj_batching_mode
         && a.cj_batching_mode == b.cj_batching_mode;
}

void bundle_builder::start(queued_request lead) {
  assert(items_.empty());
  target_ = resolve(lead.request);
  items_.push_back(std::move(lead));
}

bool bundle_builder::offer(queued_request& next) {
  if (items_.empty() || full() || !compatible(items_.front().request, next.request))
    return false;
  items_.push_back(std::move(next));
  return true;
}

bool bundle_builder::full() const {
  if (policy_.mode == queue_processing_mode::per_request)
    return !items_.empty();
  return items_.size() >= policy_.max_items;
}

bundle bundle_builder::finish(const std::string& bundle_id) {
  bundle result;
  result.bundle_id = bundle_id;
  result.provider = target_.provider;
  result.model = target_.model;
  result.queue_processing_mode = to_string(policy_.mode);
  auto n = static_cast<uint32_t>(items_.size());
  for (auto& item : items_) {
    request_enrichment enrichment{
        target_.provider, target_.model, result.queue_processing_mode, bundle_id, n, {}};
    result.items.push_back(bundle_item{std::move(item), std::move(enrichment)});
  }
  items_.clear();
  return result;
}

} // namespace lps
