#pragma once

// The mock provider's dialects, keys and error envelopes: which provider a call speaks, whether
// its key is right, and how each provider writes an error (OpenAI, OpenRouter, Anthropic,
// Gemini). Internal to mock_provider_server.cpp; mock_provider_dialects.hpp builds on it for
// requests and answers. Messages copy the real APIs' wording where it is known, because client
// code and people reading logs key on it.

#include "runtime/http_server.hpp"
#include "runtime/url.hpp"

#include <boost/json.hpp>

#include <cctype>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace lps::mock_wire {

namespace json = boost::json;

enum class dialect : uint8_t { openai, openrouter, anthropic, gemini };

/// Alphabets of the providers' ids ("msg_01" + 22 base62, "req_" + 32 hex, ...).
constexpr std::string_view base62 =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr std::string_view hex = "0123456789abcdef";

/// `n` characters drawn from `alphabet` (the caller guards `rng`).
inline std::string random_chars(std::mt19937_64& rng, size_t n, std::string_view alphabet) {
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  std::string s(n, '0');
  for (auto& c : s)
    c = alphabet[pick(rng)];
  return s;
}

/// The label an answer's HTTP status is counted under in the stats (by_outcome), for the
/// sync and the batch endpoints alike.
inline std::string outcome_of_status(unsigned status) {
  switch (status) {
  case 200:
    return "ok";
  case 400:
    return "invalid_request";
  case 401:
    return "unauthorized";
  case 404:
    return "not_found";
  case 409:
    return "conflict";
  case 413:
    return "too_large";
  case 429:
    return "rate_limited";
  case 500:
    return "server_error";
  case 503:
    return "unavailable";
  case 529:
    return "overloaded";
  default:
    return "error_" + std::to_string(status);
  }
}

inline const char* to_string(dialect d) {
  switch (d) {
  case dialect::openai:
    return "openai";
  case dialect::openrouter:
    return "openrouter";
  case dialect::anthropic:
    return "anthropic";
  case dialect::gemini:
    return "gemini";
  }
  return "unknown";
}

inline std::optional<dialect> dialect_from(std::string_view name) {
  for (auto d : {dialect::openai, dialect::openrouter, dialect::anthropic, dialect::gemini})
    if (name == to_string(d))
      return d;
  return std::nullopt;
}

/// OpenAI and OpenRouter share the chat completions request and answer format.
inline bool is_chat(dialect d) {
  return d == dialect::openai || d == dialect::openrouter;
}

/// The request id header value each dialect sends (the caller guards `rng`).
inline std::string request_id(std::mt19937_64& rng, dialect d) {
  return d == dialect::anthropic ? "req_01" + random_chars(rng, 22, base62)
                                 : "req_" + random_chars(rng, 32, hex);
}

// -- small helpers ---------------------------------------------------------------------------

inline std::string_view view(const json::string& s) {
  return {s.data(), s.size()};
}

inline const json::string* string_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v ? v->if_string() : nullptr;
}

inline std::optional<double> number_of(const json::value& v) {
  if (v.is_double())
    return v.get_double();
  if (v.is_int64())
    return static_cast<double>(v.get_int64());
  if (v.is_uint64())
    return static_cast<double>(v.get_uint64());
  return std::nullopt;
}

/// The usual rule of thumb (about four characters per token); only consistency matters.
inline uint64_t estimate_tokens(size_t chars) {
  return chars == 0 ? 0 : (chars + 3) / 4;
}

inline const std::string* header(const http_request& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == name)
      return &v;
  return nullptr;
}

using lps::query_param;

/// "sk-abc...wxyz" style: enough to recognise a key in an error, never the key itself.
inline std::string mask_key(std::string_view key) {
  if (key.size() <= 8)
    return std::string(key.size(), '*');
  return std::string(key.substr(0, 3)) + std::string(key.size() - 7, '*')
         + std::string(key.substr(key.size() - 4));
}

// -- errors ----------------------------------------------------------------------------------

/// One error answer, before it is put into a dialect's envelope.
struct provider_error {
  unsigned status = 400;
  /// OpenAI error.type, Anthropic error.type, Gemini error.status; unused by OpenRouter.
  std::string type;
  std::string message;
  /// OpenAI error.param; empty renders null.
  std::string param;
  /// OpenAI error.code, Anthropic error.details.error_code; empty renders null or nothing.
  std::string code;
  /// Gemini error.details (google.rpc types).
  json::array details;
  /// Retry-After header value; empty: no header.
  std::string retry_after;
};

inline std::string anthropic_type(unsigned status) {
  switch (status) {
  case 400:
    return "invalid_request_error";
  case 401:
    return "authentication_error";
  case 402:
    return "billing_error";
  case 403:
    return "permission_error";
  case 404:
    return "not_found_error";
  case 413:
    return "request_too_large";
  case 429:
    return "rate_limit_error";
  case 529:
    return "overloaded_error";
  default:
    return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

/// google.rpc.Code names as Google's JSON errors spell them.
inline std::string gemini_status(unsigned status) {
  switch (status) {
  case 400:
    return "INVALID_ARGUMENT";
  case 401:
    return "UNAUTHENTICATED";
  case 403:
    return "PERMISSION_DENIED";
  case 404:
    return "NOT_FOUND";
  case 409:
    return "ABORTED";
  case 429:
    return "RESOURCE_EXHAUSTED";
  case 499:
    return "CANCELLED";
  case 501:
    return "NOT_IMPLEMENTED";
  case 503:
    return "UNAVAILABLE";
  case 504:
    return "DEADLINE_EXCEEDED";
  default:
    return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
  }
}

/// A 400 in the dialect's vocabulary.
inline provider_error invalid(dialect d, std::string message, std::string param = {},
                              std::string code = {}) {
  provider_error e;
  e.status = 400;
  e.type = d == dialect::gemini ? "INVALID_ARGUMENT" : "invalid_request_error";
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

inline json::value null_if_empty(const std::string& s) {
  return s.empty() ? json::value(nullptr) : json::value(s);
}

/// The dialect's error envelope around `e`.
inline std::string render_error(dialect d, const provider_error& e, std::string_view request_id) {
  json::object err;
  switch (d) {
  case dialect::openai:
    err["message"] = e.message;
    err["type"] = e.type;
    err["param"] = null_if_empty(e.param);
    err["code"] = null_if_empty(e.code);
    return json::serialize(json::object{{"error", std::move(err)}});
  case dialect::openrouter:
    // OpenRouter's own envelope (openrouter.ai/docs/errors): a numeric code and a message.
    err["code"] = e.status;
    err["message"] = e.message;
    return json::serialize(json::object{{"error", std::move(err)}});
  case dialect::anthropic: {
    err["type"] = e.type;
    err["message"] = e.message;
    if (!e.code.empty())
      err["details"] = json::object{{"error_code", e.code}};
    json::object o{{"type", "error"}, {"error", std::move(err)}, {"request_id", request_id}};
    return json::serialize(o);
  }
  case dialect::gemini:
    err["code"] = e.status;
    err["message"] = e.message;
    err["status"] = e.type;
    if (!e.details.empty())
      err["details"] = e.details;
    return json::serialize(json::object{{"error", std::move(err)}});
  }
  return {};
}

/// A missing or wrong key.
inline provider_error auth_error(dialect d, bool missing, std::string_view given) {
  provider_error e;
  e.status = 401;
  switch (d) {
  case dialect::openai:
    e.type = "invalid_request_error";
    if (missing) {
      e.message = "You didn't provide an API key. You need to provide your API key in an "
                  "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";
    } else {
      e.code = "invalid_api_key";
      e.message = "Incorrect API key provided: " + mask_key(given)
                  + ". You can find your API key at https://platform.openai.com/account/api-keys.";
    }
    break;
  case dialect::openrouter:
    e.message = missing ? "No auth credentials found" : "User not found.";
    break;
  case dialect::anthropic:
    e.type = "authentication_error";
    e.message = missing ? "x-api-key header is required" : "invalid x-api-key";
    break;
  case dialect::gemini:
    e.type = "UNAUTHENTICATED";
    e.message = missing ? "Method doesn't allow unregistered callers (callers without "
                          "established identity). Please use API Key or other form of API "
                          "consumer identity to call this API."
                        : "API key not valid. Please pass a valid API key.";
    e.details.push_back(json::object{{"@type", "type.googleapis.com/google.rpc.ErrorInfo"},
                                     {"reason", missing ? "API_KEY_MISSING" : "API_KEY_INVALID"},
                                     {"domain", "googleapis.com"}});
    break;
  }
  return e;
}

/// Why a key is missing or wrong; nullopt when it matches.
inline std::optional<provider_error> check_auth(dialect d, const http_request& r,
                                                const std::string& expected) {
  std::optional<std::string> given;
  if (is_chat(d)) {
    if (const auto* h = header(r, "authorization")) {
      std::string_view v = *h;
      bool bearer = v.size() > 7 && (v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ");
      // A key without the Bearer scheme is refused like a wrong key, as the real APIs do.
      if (!bearer)
        return auth_error(d, false, v);
      given = std::string(v.substr(7));
    }
  } else if (d == dialect::anthropic) {
    if (const auto* h = header(r, "x-api-key"))
      given = *h;
  } else if (const auto* h = header(r, "x-goog-api-key")) {
    given = *h;
  } else {
    given = query_param(r.query, "key");
  }
  if (given && !given->empty() && *given == expected)
    return std::nullopt;
  return auth_error(d, !given || given->empty(), given.value_or(""));
}

/// An injected HTTP error with the text the real API sends for that status.
inline provider_error status_error(dialect d, unsigned status, const std::string& model) {
  provider_error e;
  e.status = status;
  switch (d) {
  case dialect::openai:
    e.type = status >= 500 ? "server_error" : "invalid_request_error";
    if (status == 429) {
      e.type = "requests";
      e.code = "rate_limit_exceeded";
      e.message = "Rate limit reached for " + model
                  + " in organization org-mock on requests per min (RPM): Limit 10000, Used "
                    "10000, Requested 1. Please try again in 6ms. Visit "
                    "https://platform.openai.com/account/rate-limits to learn more.";
    } else if (status == 503) {
      e.message = "The engine is currently overloaded, please try again later.";
    } else if (status >= 500) {
      e.message = "The server had an error while processing your request. Sorry about that!";
    } else {
      e.message = "Request failed with status " + std::to_string(status) + ".";
    }
    break;
  case dialect::openrouter:
    e.message = status == 429   ? "Rate limit exceeded. Please retry shortly."
                : status == 502 ? "Provider returned error"
                : status == 503 ? "No available model provider that meets your routing "
                                  "requirements"
                                : "Request failed with status " + std::to_string(status);
    break;
  case dialect::anthropic:
    e.type = anthropic_type(status);
    e.message = status == 429   ? "This request would exceed the rate limit for your "
                                  "organization of 10,000 requests per minute. Please "
                                  "retry after the time in the retry-after header."
                : status == 529 ? "Overloaded"
                : status >= 500 ? "Internal server error"
                                : "Request failed with status " + std::to_string(status);
    break;
  case dialect::gemini:
    e.type = gemini_status(status);
    e.message = status == 429   ? "Resource has been exhausted (e.g. check quota)."
                : status == 503 ? "The model is overloaded. Please try again later."
                : status >= 500 ? "An internal error has occurred. Please retry or report in "
                                  "https://developers.generativeai.google/guide/troubleshooting"
                                : "Request failed with status " + std::to_string(status);
    break;
  }
  return e;
}

/// Retry-After as a Gemini RetryInfo detail too, which is where Google puts the delay.
inline void add_retry_after(dialect d, provider_error& e, const std::string& seconds) {
  if (seconds.empty())
    return;
  e.retry_after = seconds;
  if (d == dialect::gemini)
    e.details.push_back(json::object{{"@type", "type.googleapis.com/google.rpc.RetryInfo"},
                                     {"retryDelay", seconds + "s"}});
}

/// Quota, credit or spend limit exhausted: retrying does not help until someone pays.
inline provider_error quota_error(dialect d, const std::string& model) {
  provider_error e;
  e.status = 429;
  switch (d) {
  case dialect::openai:
    e.type = "insufficient_quota";
    e.code = "insufficient_quota";
    e.message = "You exceeded your current quota, please check your plan and billing details. "
                "For more information on this error, read the docs: "
                "https://platform.openai.com/docs/guides/error-codes/api-errors.";
    break;
  case dialect::openrouter:
    // OpenRouter signals an empty credit balance with 402, not 429.
    e.status = 402;
    e.message = "Insufficient credits. Add more using https://openrouter.ai/settings/credits";
    break;
  case dialect::anthropic:
    // The monthly spend cap: a rate_limit_error told apart by error.details.error_code.
    e.type = "rate_limit_error";
    e.code = "enforced_spend_limit_reached";
    e.message = "You have reached your specified API usage limits. You will regain access on "
                "the first day of next month at 00:00 UTC.";
    break;
  case dialect::gemini:
    e.type = "RESOURCE_EXHAUSTED";
    e.message = "You exceeded your current quota, please check your plan and billing details. "
                "For more information on this error, head to: "
                "https://ai.google.dev/gemini-api/docs/rate-limits.";
    e.details.push_back(json::object{
        {"@type", "type.googleapis.com/google.rpc.QuotaFailure"},
        {"violations",
         json::array{json::object{
             {"quotaMetric", "generativelanguage.googleapis.com/generate_content_requests"},
             {"quotaId", "GenerateRequestsPerDayPerProjectPerModel"},
             {"quotaDimensions", json::object{{"location", "global"}, {"model", model}}}}}}});
    break;
  }
  return e;
}

/// Anthropic's 529; the other APIs say "overloaded" with a 503.
inline provider_error overloaded_error(dialect d, const std::string& model) {
  return status_error(d, d == dialect::anthropic ? 529 : 503, model);
}

} // namespace lps::mock_wire
