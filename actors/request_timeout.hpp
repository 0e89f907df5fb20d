#pragma once

// CAF 0.17.6 keeps a timed request's timeout in the actor clock until it fires, even when the
// response arrived long before, and with it a strong reference to the requesting actor. The
// bundler's 5-minute provider timeout at 2,000 requests/s so held a few hundred MiB, and each
// HTTP bridge actor stayed alive for its full timeout (docs/benchmarks.md, "Soak"). Every
// response handler of a timed request on a hot path forgets its timeout first.

#include <caf/actor_clock.hpp>
#include <caf/local_actor.hpp>
#include <caf/message_id.hpp>

namespace lps {

/// Drops the pending timeout of the request whose response handle had `response_id`.
inline void forget_request_timeout(caf::local_actor* self, caf::message_id response_id) {
  self->clock().cancel_request_timeout(self, response_id);
}

} // namespace lps
