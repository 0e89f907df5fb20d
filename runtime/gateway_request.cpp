#include "runtime/gateway_request.hpp"

#include "runtime/gateway_wire.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>

namespace lps {

namespace json = boost::json;

// -- routing --

namespace {

/// Providers a "provider/model" prefix may name ("gemini" is another name of "google").
std::optional<std::string> prefix_provider(std::string_view prefix) {
  for (std::string_view p : {"openai", "openrouter", "anthropic", "google", "mock"})
    if (prefix == p)
      return std::string{p};
  if (prefix == "gemini")
    return std::string{"google"};
  return std::nullopt;
}

std::optional<std::string> family_provider(std::string_view model) {
  for (std::string_view p : {"gpt-", "o1", "o3", "o4", "chatgpt-"})
    if (model.starts_with(p))
      return std::string{"openai"};
  if (model.starts_with("claude-"))
    return std::string{"anthropic"};
  if (model.starts_with("gemini-"))
    return std::string{"google"};
  if (model.starts_with("mock-"))
    return std::string{"mock"};
  return std::nullopt;
}

} // namespace

bool gateway_models::parse(std::string_view manifest_json, gateway_models& out,
                           std::string& error) {
  boost::system::error_code ec;
  auto doc = json::parse(manifest_json, ec);
  const auto* models = !ec && doc.is_object() ? doc.get_object().if_contains("models") : nullptr;
  if (models == nullptr || !models->is_array()) {
    error = "the model manifest has no \"models\" array";
    return false;
  }
  for (const auto& m : models->get_array()) {
    const auto* o = m.if_object();
    const auto* id = o ? o->if_contains("model_id") : nullptr;
    const auto* provider = o ? o->if_contains("provider") : nullptr;
    if (id && id->is_string() && provider && provider->is_string())
      out.providers_[std::string{id->get_string()}] = std::string{provider->get_string()};
  }
  return true;
}

std::optional<gateway_route> gateway_models::route(const std::string& model) const {
  // A manifest id wins, so "anthropic/claude-..." listed for OpenRouter goes there.
  if (auto i = providers_.find(model); i != providers_.end())
    return gateway_route{i->second, model};
  if (auto slash = model.find('/'); slash != std::string::npos && slash + 1 < model.size())
    if (auto provider = prefix_provider(std::string_view{model}.substr(0, slash)))
      return gateway_route{*provider, model.substr(slash + 1)};
  if (auto provider = family_provider(model))
    return gateway_route{*provider, model};
  return std::nullopt;
}

std::string gateway_models::list_json() const {
  json::array data;
  for (const auto& [id, provider] : providers_)
    data.push_back(
        json::object{{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", provider}});
  return json::serialize(json::object{{"object", "list"}, {"data", std::move(data)}});
}

} // namespace lps
