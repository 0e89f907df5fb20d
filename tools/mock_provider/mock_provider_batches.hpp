#pragma once

// The mock provider's batch APIs: OpenAI Files + Batch (POST /v1/files, /v1/batches...) and
// Anthropic Message Batches (/v1/messages/batches...). Batches progress by their clock (the steady
// clock unless mock_provider_options::batch_clock gives one) since their creation (no timer: every
// call works out where a batch stands), items are judged exactly as sync calls are, and answers are
// rendered when they are downloaded, so per item only a custom_id, a compact verdict and the
// planned outcome are kept. Internal to lps_mock_provider: only mock_provider_server.cpp includes
// it. docs/mock-provider.md, "Batch APIs", describes the behaviour.

#include "runtime/http_server.hpp"
#include "tools/mock_provider/mock_provider_server.hpp"

#include <boost/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace lps::mock_batch {

/// Why `options` cannot be used; nullopt when they can.
std::optional<std::string> check_options(const mock_batch_options& options);

/// True for the paths the batch APIs own (/v1/files..., /v1/batches...,
/// /v1/messages/batches...).
bool is_batch_path(std::string_view path);

/// The "batch" part of GET /_mock/stats.
boost::json::object stats_json(const mock_batch_stats& stats);

/// The settings as POST /_mock/batches takes and answers them.
boost::json::object options_json(const mock_batch_options& options);

/// Every batch and file, the counters and the settings. Thread-safe.
class service {
public:
  service();
  ~service();
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  /// Takes the seed, key, TLS choice and batch settings; call once before handle().
  void start(const mock_provider_options& options);

  /// Answers one batch API call (a path for which is_batch_path() holds).
  http_response handle(const http_request& request);

  mock_batch_stats stats() const;

  /// Forgets every batch and file, clears the counters and restores the start settings.
  void reset();

  mock_batch_options options() const;
  std::optional<std::string> set_options(const mock_batch_options& options);

  /// Applies a POST /_mock/batches body: any of validating_ms, processing_ms, cancel_ms,
  /// item_error_rate, item_expire_rate, fail_next_openai_batch (true, false or a count).
  std::optional<std::string> configure(std::string_view json);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace lps::mock_batch
