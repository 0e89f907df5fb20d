#pragma once

// The common part of every actor's answer to `status` (the inspection protocol).

#include "messages/status.hpp"

#include <cstdint>
#include <string>

namespace lps {

/// Name, kind, mailbox size and messages handled; the caller adds its own figures.
/// Call only from the actor's own handler (mailbox().size() is consumer-side).
template <class Self>
actor_status status_header(Self* self, std::string name, std::string kind, uint64_t handled) {
  actor_status result;
  result.name = std::move(name);
  result.kind = std::move(kind);
  result.mailbox_size = self->mailbox().size();
  result.messages_handled = handled;
  return result;
}

} // namespace lps
