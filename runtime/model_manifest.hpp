#pragma once

// The model manifest (config/models.json): ids, provider, prices per 1M tokens and limits.
// Served as is at /api/v1/models; its prices turn token usage into cost_estimate.

#include "messages/comparison.hpp"

#include <map>
#include <string>
#include <string_view>

namespace lps {

/// USD per 1M tokens.
struct model_price {
  double input_per_1m = 0.0;
  double output_per_1m = 0.0;
  /// Price of prompt tokens served from the provider's cache.
  double cache_read_per_1m = 0.0;
  /// Fraction saved by provider batch APIs (0.5 = half price).
  double batch_discount = 0.0;
};

/// Which request parameters a model takes (OpenAI's GPT-5 family differs from older models).
struct model_parameters {
  /// `supports_temperature` (GPT-5 takes none but the default).
  bool supports_temperature = true;
  /// `uses_max_completion_tokens` instead of max_tokens.
  bool uses_max_completion_tokens = false;
  /// `supports_reasoning_controls`: reasoning_effort and verbosity may be sent.
  bool supports_reasoning_controls = false;
};

struct model_manifest {
  /// The file's text, served at /api/v1/models.
  std::string json = R"({"models":[]})";
  /// Prices by model id.
  std::map<std::string, model_price> prices;
  /// Request parameters by model id.
  std::map<std::string, model_parameters> parameters;
};

/// Parses the manifest; false with a one-line `error` naming the problem.
bool parse_model_manifest(std::string_view json, model_manifest& out, std::string& error);

/// USD for `usage` at `price` (cached prompt tokens at the cache price; `batch` applies the
/// batch discount).
double estimate_cost(const model_price& price, const token_usage& usage, bool batch = false);

} // namespace lps
