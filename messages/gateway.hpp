#pragma once

// The synchronous gateway path (POST /v1/chat/completions, docs/gateway.md): one OpenAI-shaped
// chat call handed to a provider actor, and its answer already in OpenAI's shape. Plain
// strings, so the provider actors need no JSON types in their messages.

#include "messages/comparison.hpp"

#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <string>

namespace lps {

/// One chat call through a provider: the client's validated OpenAI request body and the
/// model the provider is asked for (the route's prefix, if any, removed).
struct gateway_call {
  std::string model;
  /// The OpenAI chat.completion request body as the client sent it (validated by the route).
  std::string body;
  /// Attempts allowed for retryable failures (429, 5xx, 529, timeouts); at least 1.
  uint32_t max_attempts = 3;
  /// Longest Retry-After the provider actor waits out before trying again; a longer one is
  /// passed to the client instead.
  int64_t max_retry_wait_ms = 5000;
  /// Attempts already made before the provider actor got the call (the route sends a plain
  /// call's first attempt itself, app/gateway_direct.hpp): they count against max_attempts
  /// and the backoff goes on from there.
  uint32_t attempts_made = 0;
  /// How long the provider actor waits before its first attempt (the backoff after the
  /// route's failed one), in ms.
  int64_t first_wait_ms = 0;
  friend bool operator==(const gateway_call&, const gateway_call&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, gateway_call& x) {
  return f(caf::meta::type_name("lps.gateway_call"), x.model, x.body, x.max_attempts,
           x.max_retry_wait_ms, x.attempts_made, x.first_wait_ms);
}

/// The answer for the client: an OpenAI chat.completion (status 200) or an OpenAI error body.
struct gateway_reply {
  uint32_t status = 200;
  std::string body;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  /// The provider's Retry-After (0: none), passed on to the client with a 429/503.
  int64_t retry_after_ms = 0;
  /// The failure says something about the provider's health (5xx, overload, rate limit,
  /// timeout, connection): it counts against the breaker.
  bool provider_failure = false;
  /// Upstream attempts made (0 when none was sent).
  uint32_t attempts = 0;
  /// What the last answer's rate-limit headers said is left (the route's provider gate
  /// learns it); empty when no answer said anything.
  rate_limit_hint limits{};
  friend bool operator==(const gateway_reply&, const gateway_reply&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, gateway_reply& x) {
  return f(caf::meta::type_name("lps.gateway_reply"), x.status, x.body, x.prompt_tokens,
           x.completion_tokens, x.retry_after_ms, x.provider_failure, x.attempts, x.limits);
}

} // namespace lps
