#pragma once

// A bundle: compatible requests that go to one provider actor in one message.

#include "messages/comparison.hpp"
#include "messages/queue.hpp"

#include <caf/meta/type_name.hpp>

#include <string>
#include <vector>

namespace lps {

/// One request of a bundle, with the metadata added after provider selection.
struct bundle_item {
  queued_request entry;
  request_enrichment enrichment;
  friend bool operator==(const bundle_item&, const bundle_item&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bundle_item& x) {
  return f(caf::meta::type_name("lps.bundle_item"), x.entry, x.enrichment);
}

/// Compatible requests for one provider call site (process_comparison_batch).
struct bundle {
  std::string bundle_id;
  std::string provider;
  std::string model;
  /// per_request, serial_bundle or batch_api.
  std::string queue_processing_mode;
  std::vector<bundle_item> items;
  friend bool operator==(const bundle&, const bundle&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bundle& x) {
  return f(caf::meta::type_name("lps.bundle"), x.bundle_id, x.provider, x.model,
           x.queue_processing_mode, x.items);
}

} // namespace lps
