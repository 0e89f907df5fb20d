#pragma once

// Asking an actor from an HTTP route (an I/O thread): one short-lived bridge actor per call
// turns request/then into a callback.

#include "actors/request_timeout.hpp"
#include "app/http_api.hpp"

#include <caf/typed_event_based_actor.hpp>
#include <caf/send.hpp>

#include <functional>

namespace lps {

// Told the request, the bridge asks `hdl` and hands `done` the reply or the error (the
// timeout's too), then ends.
template <class Reply, class Handle, class... Ts>
typename request_bridge_actor<Ts...>::behavior_type
request_bridge(typename request_bridge_actor<Ts...>::pointer self, Handle hdl,
               caf::timespan timeout, std::function<void(caf::expected<Reply>)> done) {
  return {[=](Ts&... request) {
    auto finish = [=](caf::expected<Reply> x) {
      done(std::move(x));
      self->quit();
    };
    auto reply = self->request(hdl, timeout, std::move(request)...);
    auto reply_id = reply.id();
    std::move(reply).then(
        [=](Reply& x) {
          forget_request_timeout(self, reply_id);
          finish(std::move(x));
        },
        [=](caf::error& err) {
          forget_request_timeout(self, reply_id);
          finish(std::move(err));
        });
  }};
}

/// Asks `hdl` with `xs` within `timeout` and hands `done` the reply or the error.
template <class Reply, class Handle, class... Ts>
void ask_within(const api_context& ctx, caf::timespan timeout, const Handle& hdl,
                std::function<void(caf::expected<Reply>)> done, Ts... xs) {
  auto bridge = ctx.sys->spawn(request_bridge<Reply, Handle, Ts...>, hdl, timeout, std::move(done));
  caf::anon_send(bridge, std::move(xs)...);
}

/// Asks `hdl` with `xs` (within ctx.timeout) and hands `done` the reply or the error.
template <class Reply, class Handle, class... Ts>
void ask(const api_context& ctx, const Handle& hdl, std::function<void(caf::expected<Reply>)> done,
         Ts... xs) {
  ask_within<Reply>(ctx, ctx.timeout, hdl, std::move(done), std::move(xs)...);
}

} // namespace lps
