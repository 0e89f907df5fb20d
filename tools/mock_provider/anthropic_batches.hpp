#pragma once

// The Anthropic Message Batches API of the mock: what service::impl keeps per batch. The
// calls themselves are in anthropic_batches.cpp. Internal to lps_mock_provider.

#include "tools/mock_provider/batch_common.hpp"

namespace lps::mock_batch {

struct anthropic_batch {
  std::string id;
  int64_t created_ms = 0;
  steady::time_point created;
  timing t;
  std::shared_ptr<const item_set> set;
  std::optional<milliseconds> cancel_at;
};

} // namespace lps::mock_batch
