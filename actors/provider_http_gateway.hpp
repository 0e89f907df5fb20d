#pragma once

// The gateway path inside an HTTP provider actor (docs/gateway.md): one OpenAI-shaped chat call
// translated for the provider (runtime/gateway_translate), sent, retried while the failure is
// retryable (429 with a Retry-After it may wait out, 5xx, 529, timeouts), and answered in
// OpenAI's shape. Functions of provider_http's behaviour, kept apart from the bundle path.

#include "actors/provider_http.hpp"
#include "runtime/gateway_translate.hpp"

#include <chrono>
#include <optional>

namespace lps {

using provider_http_self = provider_http_impl_actor::stateful_pointer<provider_http_state>;

/// The client's reply of one read-back answer, after `attempts` attempts.
/// What a call whose client left before its end records: status 499 (nginx's "client closed
/// request"), neither retried nor a provider failure, no body.
gateway_result gateway_client_left(gateway_result r);

gateway_reply gateway_reply_of(const gateway_result& r, uint32_t attempts);

/// How long to wait before the next attempt of `call` after `attempts` attempts ended in `r`,
/// or nullopt when none may follow (not retryable, no attempts left, or a Retry-After longer
/// than the call may wait, which the client gets instead). Backoff: 200 ms, doubling, jittered.
std::optional<std::chrono::milliseconds>
gateway_retry_wait(const gateway_call& call, uint32_t attempts, const gateway_result& r);

/// `gateway, call`: translates and sends it; the reply waits for the last attempt.
caf::result<gateway_reply> start_gateway_call(provider_http_self self, gateway_call call);

/// Takes the HTTP answer of `ticket` when it belongs to a gateway call (true), and either
/// delivers the reply or schedules another attempt.
bool take_gateway_answer(provider_http_self self, uint64_t ticket, http_client_response& resp);

/// `retry_due, ticket`: the backoff of a gateway call is over; sends it again.
void retry_gateway_call(provider_http_self self, uint64_t ticket);

} // namespace lps
