#include "runtime/model_manifest.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace lps {

namespace {

namespace json = boost::json;

// A non-negative number field (integers count), or `fallback` when absent.
bool read_price(const json::object& model, std::string_view key, double& out, std::string& error) {
  const auto* value = model.if_contains(key);
  if (value == nullptr)
    return true;
  double x = 0;
  if (value->is_double())
    x = value->get_double();
  else if (value->is_int64())
    x = static_cast<double>(value->get_int64());
  else if (value->is_uint64())
    x = static_cast<double>(value->get_uint64());
  else
    return error = std::string{key} + " must be a number", false;
  if (x < 0 || x > 1e6)
    return error = std::string{key} + " must be between 0 and 1000000", false;
  out = x;
  return true;
}

// A boolean field, or `out` unchanged when absent.
bool read_flag(const json::object& model, std::string_view key, bool& out, std::string& error) {
  const auto* value = model.if_contains(key);
  if (value == nullptr)
    return true;
  if (!value->is_bool())
    return error = std::string{key} + " must be true or false", false;
  out = value->get_bool();
  return true;
}

bool read_model(const json::value& value, model_manifest& out, std::string& error) {
  if (!value.is_object())
    return error = "every entry of models must be an object", false;
  const auto& model = value.get_object();
  const auto* id = model.if_contains("model_id");
  if (id == nullptr || !id->is_string() || id->get_string().empty())
    return error = "every model needs a non-empty model_id", false;
  model_price price;
  std::string field_error;
  if (!read_price(model, "input_per_1m", price.input_per_1m, field_error)
      || !read_price(model, "output_per_1m", price.output_per_1m, field_error)
      || !read_price(model, "cache_read_per_1m", price.cache_read_per_1m, field_error)
      || !read_price(model, "batch_discount", price.batch_discount, field_error)) {
    error = "model " + std::string{id->get_string()} + ": " + field_error;
    return false;
  }
  if (price.batch_discount > 1)
    return error = "model " + std::string{id->get_string()} + ": batch_discount above 1", false;
  model_parameters params;
  if (!read_flag(model, "supports_temperature", params.supports_temperature, field_error)
      || !read_flag(model, "uses_max_completion_tokens", params.uses_max_completion_tokens,
                    field_error)
      || !read_flag(model, "supports_reasoning_controls", params.supports_reasoning_controls,
                    field_error)) {
    error = "model " + std::string{id->get_string()} + ": " + field_error;
    return false;
  }
  out.prices[std::string{id->get_string()}] = price;
  out.parameters[std::string{id->get_string()}] = params;
  return true;
}

} // namespace

bool parse_model_manifest(std::string_view text, model_manifest& out, std::string& error) {
  json::error_code ec;
  auto doc = json::parse(text, ec);
  if (ec)
    return error = "model manifest is not valid JSON: " + ec.message(), false;
  const auto* models = doc.is_object() ? doc.get_object().if_contains("models") : nullptr;
  if (models == nullptr || !models->is_array())
    return error = "model manifest needs a \"models\" array", false;
  model_manifest result;
  result.json = std::string{text};
  for (const auto& model : models->get_array())
    if (!read_model(model, result, error))
      return false;
  out = std::move(result);
  return true;
}

double estimate_cost(const model_price& price, const token_usage& usage, bool batch) {
  auto cached = std::min(usage.cache_read_input_tokens, usage.prompt_tokens);
  auto uncached = usage.prompt_tokens - cached;
  double result = (static_cast<double>(uncached) * price.input_per_1m
                   + static_cast<double>(cached) * price.cache_read_per_1m
                   + static_cast<double>(usage.completion_tokens) * price.output_per_1m)
                  / 1e6;
  return batch ? result * (1.0 - price.batch_discount) : result;
}

} // namespace lps
