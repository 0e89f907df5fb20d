#pragma once

// The OpenAI provider actor (also OpenRouter, which speaks the same chat/completions format):
// one HTTP call per bundle item, all items in flight at once, one reply with every outcome in
// item order once the last call has answered. HTTP callbacks run on client threads, so they
// only stash the response in a thread-safe inbox and poke the actor with `tick, ticket`.

#include "actors/actors.hpp"
#include "runtime/model_manifest.hpp"
#include "runtime/http_client.hpp"

#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace lps {

struct provider_openai_config {
  /// "openai" or "openrouter": the name outcomes and status report.
  std::string provider = "openai";
  /// e.g. https://api.openai.com/v1 or http://127.0.0.1:PORT/v1; calls POST
  /// {base_url}/chat/completions.
  std::string base_url;
  /// Sent as a Bearer token only; never logged, never put into errors or status.
  std::string api_key;
  /// Model when neither the bundle nor the request names one.
  std::string default_model;
  /// Whole-call deadline per item.
  std::chrono::milliseconds request_timeout{60000};
  /// Extra request headers (OpenRouter: HTTP-Referer, X-Title).
  std::vector<std::pair<std::string, std::string>> extra_headers;
  /// Prices by model id (config/models.json): cost_estimate of successful items.
  std::map<std::string, model_price> prices;
};

/// HTTP responses handed over from client threads, by ticket. Shared with the callbacks, so
/// a callback that runs after the actor is gone still writes to live memory.
class openai_inbox {
public:
  void put(uint64_t ticket, http_client_response response);
  /// Removes and returns the response of `ticket`; false when there is none.
  bool take(uint64_t ticket, http_client_response& out);

private:
  std::mutex mtx_;
  std::map<uint64_t, http_client_response> responses_;
};

struct provider_openai_state {
  static inline const char* name = "provider:openai";
  provider_openai_config cfg;
  http_transport* http = nullptr;
  std::shared_ptr<openai_inbox> inbox = std::make_shared<openai_inbox>();
  /// A process call waiting for its items.
  struct pending_call {
    caf::typed_response_promise<std::vector<comparison_outcome>> promise;
    std::vector<comparison_outcome> outcomes;
    size_t remaining = 0;
  };
  /// One HTTP call in flight: which process call and item it answers.
  struct pending_item {
    uint64_t call = 0;
    size_t index = 0;
    bundle_item item;
    std::string model;
    std::chrono::steady_clock::time_point started;
  };
  std::map<uint64_t, pending_call> calls;
  std::map<uint64_t, pending_item> items;
  uint64_t next_call = 0;
  uint64_t next_ticket = 0;
  uint64_t handled = 0;
  uint64_t calls_total = 0;
  uint64_t items_total = 0;
  uint64_t errors_total = 0;
};

/// Spawns with the provider config and the transport (owned by the caller, outlives the actor).
provider_actor::behavior_type
provider_openai(provider_actor::stateful_pointer<provider_openai_state> self,
                provider_openai_config cfg, http_transport* http);

} // namespace lps
