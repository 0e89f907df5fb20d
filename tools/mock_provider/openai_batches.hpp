#pragma once

// The OpenAI Files + Batch API of the mock: what service::impl keeps per file and per batch.
// The calls themselves are in openai_batches.cpp. Internal to lps_mock_provider.

#include "tools/mock_provider/batch_common.hpp"

namespace lps::mock_batch {

struct openai_file {
  std::string id;
  std::string filename;
  std::string purpose;
  int64_t created_at = 0;
  /// Uploaded files: the bytes.
  std::shared_ptr<const std::string> data;
  /// Generated files: the batch whose output (or error) file this is.
  std::string batch_id;
  bool errors = false;
};

struct openai_batch {
  std::string id;
  std::string input_file_id;
  std::string output_file_id;
  std::string error_file_id;
  json::value metadata;
  int64_t created_ms = 0;
  steady::time_point created;
  timing t;
  /// Null when the batch fails (bad input file or a forced failure).
  std::shared_ptr<const item_set> set;
  std::string model;
  json::array errors;
  /// When cancel was asked, after creation.
  std::optional<milliseconds> cancel_at;
};

} // namespace lps::mock_batch
