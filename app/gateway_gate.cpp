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

gateway_gate::gateway_gate(std::shared_ptr<provider_gate> providers, gateway_key_limits key_limits)
    : providers_(std::move(providers)), key_limits_(key_limits) {
  // nop
}

gateway_gate::gateway_gate(provider_gate_settings settings, gateway_key_limits key_limits)
    : gateway_gate(std::make_shared<provider_gate>(std::move(settings)), key_limits) {
  // nop
}

gateway_gate::key_entry& gateway_gate::key(const std::string& name) {
  auto i = keys_.find(name);
  if (i != keys_.end())
    return i->second;
  rate_limit_settings rate{key_limits_.requests_per_minute, key_limits_.tokens_per_minute};
  return keys_.emplace(name, key_entry{rate_limiter{rate}, {}}).first->second;
}

namespace {

gateway_refusal refusal_of(const std::string& provider, const gate_refusal& r) {
  switch (r.why) {
  case gate_refusal::reason::concurrency:
    return {429,
            provider + " has " + std::to_string(r.inflight) + " calls in flight, its limit ("
                + provider + " max concurrent calls); try again shortly",
            "concurrency_limit_exceeded", seconds_at_least_one(r.wait)};
  case gate_refusal::reason::breaker:
    return {503, provider + " is failing: its circuit breaker is open", "circuit_open",
            seconds_at_least_one(r.wait)};
  case gate_refusal::reason::rate:
    break;
  }
  return {429, provider + " is at its requests or tokens per minute limit", "rate_limit_exceeded",
          seconds_at_least_one(r.wait)};
}

} // namespace

// The key is checked first (its limiter is the gateway's own, nothing shared is taken), then
// the provider gate, which takes its slot and budgets only when it admits the call.
std::optional<gateway_refusal> gateway_gate::admit(const std::string& provider_name,
                                                   const std::string& key_name, uint64_t tokens,
                                                   clock_time now) {
  std::lock_guard<std::mutex> lock{mutex_};
  auto& k = key(key_name);
  const auto& limits = providers_->settings().rate_limits;
  auto limit = limits.find(provider_name);
  auto provider_tokens =
      capped(tokens, limit == limits.end() ? 0 : limit->second.tokens_per_minute);
  auto key_tokens = capped(tokens, key_limits_.tokens_per_minute);
  std::optional<gateway_refusal> refusal;
  if (auto wait = k.limiter.wait_time(now, 1, key_tokens); wait > clock_duration::zero())
    refusal = gateway_refusal{429, "this API key is at its requests or tokens per minute limit",
                              "key_rate_limit_exceeded", seconds_at_least_one(wait)};
  else if (auto r = providers_->admit_gateway(provider_name, provider_tokens, now))
    refusal = refusal_of(provider_name, *r);
  if (refusal) {
    ++k.usage.refused;
    return refusal;
  }
  k.limiter.try_acquire(now, 1, key_tokens);
  ++calls_[provider_name];
  ++k.usage.requests;
  return std::nullopt;
}

void gateway_gate::finish(const std::string& provider_name, const std::string& key_name,
                          bool success, bool provider_failure, uint64_t prompt_tokens,
                          uint64_t completion_tokens, double cost_usd,
                          const rate_limit_hint& limits, clock_time now) {
  providers_->finish_gateway(provider_name, provider_failure, now, limits);
  std::lock_guard<std::mutex> lock{mutex_};
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
  for (const auto& [name, calls] : calls_)
    providers.push_back(json::object{
        {"provider", name},
        {"calls", calls},
        {"inflight", providers_->gateway_inflight(name)},
        {"circuit_state", std::string{to_string(providers_->breaker(name).state())}},
        {"blocked_for_ms",
         std::chrono::duration_cast<std::chrono::milliseconds>(providers_->blocked_for(name, now))
             .count()}});
  return json::serialize(
      json::object{{"keys", std::move(keys)}, {"providers", std::move(providers)}});
}

} // namespace lps
