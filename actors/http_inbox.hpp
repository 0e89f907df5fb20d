#pragma once

// The hand-over of HTTP answers from the client's I/O threads to an actor, shared by the
// provider actors and the batch jobs actors: the callback only stores the response under its
// ticket and pokes the actor with `http_answered, ticket`; the actor takes it out in its own
// thread.

#include "actors/actors.hpp"
#include "actors/providers/provider_wire.hpp"
#include "runtime/http_client.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <caf/weak_intrusive_ptr.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace lps {

/// HTTP responses handed over from client threads, by ticket. Shared with the callbacks, so
/// a callback that runs after the actor is gone still writes to live memory.
class http_inbox {
public:
  void put(uint64_t ticket, http_client_response response);
  /// Removes and returns the response of `ticket`; false when there is none.
  bool take(uint64_t ticket, http_client_response& out);

  /// The callback of one call: stores the response, then sends `http_answered, ticket` to `actor`
  /// (a handle of type Handle). A weak handle: a late answer must not keep a stopped actor
  /// alive.
  template <class Handle>
  static http_client_callback callback(std::shared_ptr<http_inbox> inbox, caf::weak_actor_ptr actor,
                                       uint64_t ticket) {
    return [inbox = std::move(inbox), actor = std::move(actor), ticket](http_client_response resp) {
      inbox->put(ticket, std::move(resp));
      if (auto strong = actor.lock())
        caf::anon_send(caf::actor_cast<Handle>(strong), atom::http_answered_v, ticket);
    };
  }

private:
  std::mutex mtx_;
  std::map<uint64_t, http_client_response> responses_;
};

/// The status_code label of llm_provider_http_calls_total: the HTTP status, or the transport
/// error ("timeout", "connect", ...) of a call that got no response.
std::string http_status_label(const http_client_response& resp);

/// A call that got no HTTP response, classified like every provider failure (timeouts and
/// connection failures are retryable; TLS failures and bad URLs are not). `who` names the
/// provider in the message.
wire_response transport_failure(const std::string& who, const http_client_response& resp);

} // namespace lps
