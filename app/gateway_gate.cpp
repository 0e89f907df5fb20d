#include "app/gateway_gate.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace lps {

namespace {

namespace json = boost::json;

clock_duration seconds_at_least_one(clock_duration d) {
  return std::max<clock_duration>(d, std::chrono::seconds{1});
}

/// A call larger than a whole minute's token budget could never go: it is charged the budget.
uint64_t capped(uint64_t tokens, uint64_t per_minute) {
  return per_minute > 0 ? std::min(tokens, per_minute) : tokens;
}

} // namespace

gateway_gate::gateway_gate(provider_gate_settings settings, gateway_key_limits key_limits)
    : settings_(std::move(settings)), key_limits_(key_limits) {
  // nop
}

gateway_gate::provider_entry& gateway_gate::provider(const std::string& name) {
  auto i = providers_.find(name);
  if (i != providers_.end())
    return i->second;
  auto limits = settings_.rate_limits.find(name);
  auto rate = limits == settings_.rate_limits.end() ? rate_limit_settings{} : limits->second;
  return providers_
      .emplace(name, provider_entry{circuit_breaker{settings_.breaker}, rate_limiter{rate}, 0, 0})
      .first->second;
}

gateway_gate::key_entry& gateway_gate::key(const std::string& name) {
  auto i = keys_.find(name);
  if (i != keys_.end())
    return i->second;
  rate_limit_settings rate{key_limits_.requests_per_minute, key_limits_.tokens_per_minute};
  return keys_.emplace(name, key_entry{rate_limiter{rate}, {}}).first->second;
}

std::optional<gateway_refusal> gateway_gate::check_provider(const std::string& name,
                                                            provider_entry& p, uint64_t tokens,
                                                            clock_time now) {
  auto max_inflight = settings_.max_inflight.count(name) ? settings_.max_inflight.at(name) : 64;
  if (p.inflight >= max_inflight)
    return gateway_refusal{429,
                           name + " has " + std::to_string(p.inflight)
                               + " calls in flight, its limit (" + name
                               + " max concurrent calls); try again shortly",
                           "concurrency_limit_exceeded", std::chrono::seconds{1}};
  if (auto wait = p.breaker.time_until_allowed(now); wait > clock_duration::zero())
    return gateway_refusal{503, name + " is failing: its circuit breaker is open", "circuit_open",
                           seconds_at_least_one(wait)};
  if (auto wait = p.limiter.wait_time(now, 1, tokens); wait > clock_duration::zero())
    return gateway_refusal{429, name + " is at its requests or tokens per minute limit",
                           "rate_limit_exceeded", seconds_at_least_one(wait)};
  return std::nullopt;
}

std::optional<gateway_refusal> gateway_gate::admit(const std::string& provider_name,
                                                   const std::string& key_name, uint64_t tokens,
                                                   clock_time now) {
  std::lock_guard<std::mutex> lock{mutex_};
  auto& k = key(key_name);
  auto& p = provider(provider_name);
  auto limits = settings_.rate_limits.find(provider_name);
  auto provider_tokens =
      capped(tokens, limits == settings_.rate_limits.end() ? 0 : limits->second.tokens_per_minute);
  auto key_tokens = capped(tokens, key_limits_.tokens_per_minute);
  auto refusal = check_provider(provider_name, p, provider_tokens, now);
  if (!refusal)
    if (auto wait = k.limiter.wait_time(now, 1, key_tokens); wait > clock_duration::zero())
      refusal = gateway_refusal{429, "this API key is at its requests or tokens per minute limit",
                                "key_rate_limit_exceeded", seconds_at_least_one(wait)};
  // allow() takes the half-open probe slot; a second caller meanwhile waits for the probe.
  if (!refusal && !p.breaker.allow(now))
    refusal = gateway_refusal{503, provider_name + " is being probed after failures",
                              "circuit_open", std::chrono::seconds{1}};
  if (refusal) {
    ++k.usage.refused;
    return refusal;
  }
  p.limiter.try_acquire(now, 1, provider_tokens);
  k.limiter.try_acquire(now, 1, key_tokens);
  ++p.inflight;
  ++p.calls;
  ++k.usage.requests;
  return std::nullopt;
}

void gateway_gate::finish(const std::string& provider_name, const std::string& key_name,
                          bool success, bool provider_failure, uint64_t prompt_tokens,
                          uint64_t completion_tokens, double cost_usd, clock_time now) {
  std::lock_guard<std::mutex> lock{mutex_};
  auto& p = provider(provider_name);
  p.inflight -= p.inflight > 0 ? 1 : 0;
  if (provider_failure)
    p.breaker.on_failure(now);
  else
    p.breaker.on_success(now);
  auto& usage = key(key_name).usage;
  usage.errors += success ? 0 : 1;
  usage.prompt_tokens += prompt_tokens;
  usage.completion_tokens += completion_tokens;
  usage.cost_usd += cost_usd;
}

std::string gateway_gate::usage_json(clock_time now) {
  std::lock_guard<std::mutex> lock{mutex_};
  json::array keys;
  for (const auto& [name, k] : keys_)
    keys.push_back(json::object{{"key", name.empty() ? "(no API_KEYS_FILE)" : name},
                                {"requests", k.usage.requests},
                                {"errors", k.usage.errors},
                                {"refused", k.usage.refused},
                                {"prompt_tokens", k.usage.prompt_tokens},
                                {"completion_tokens", k.usage.completion_tokens},
                                {"cost_usd", k.usage.cost_usd}});
  json::array providers;
  for (auto& [name, p] : providers_)
    providers.push_back(json::object{
        {"provider", name},
        {"calls", p.calls},
        {"inflight", p.inflight},
        {"circuit_state", std::string{to_string(p.breaker.state())}},
        {"blocked_for_ms",
         std::chrono::duration_cast<std::chrono::milliseconds>(
             std::max(p.breaker.time_until_allowed(now), p.limiter.wait_time(now, 1, 0)))
             .count()}});
  return json::serialize(
      json::object{{"keys", std::move(keys)}, {"providers", std::move(providers)}});
}

} // namespace lps
