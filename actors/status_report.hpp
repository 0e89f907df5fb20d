#pragma once

// The common part of every actor's answer to `status` (the inspection protocol), and the
// count of messages handled that it reports.

#include "messages/status.hpp"

#include <caf/detail/type_traits.hpp>

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

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

// -- messages handled: counted once, where messages arrive --------------------------------

namespace detail {

// `handler` with its own parameter types (CAF matches messages by them), counting each call
// in `*handled` before it runs.
template <class F, class... Ts>
auto count_each_call(uint64_t* handled, F handler, caf::detail::type_list<Ts...>) {
  return [handled, handler = std::move(handler)](Ts... xs) mutable -> decltype(auto) {
    ++*handled;
    return handler(std::forward<Ts>(xs)...);
  };
}

} // namespace detail

/// The behaviour of the stateful actor `self` made of `handlers`, each of which counts its
/// message in `self->state.handled` (the figure `status` reports) before it runs, so no
/// handler counts on its own.
template <class Self, class... Fs>
auto counted(Self self, Fs... handlers) {
  using behavior_type = typename std::remove_pointer_t<Self>::behavior_type;
  auto* handled = &self->state.handled;
  return behavior_type{detail::count_each_call(
      handled, std::move(handlers), typename caf::detail::get_callable_trait<Fs>::arg_types{})...};
}

} // namespace lps
