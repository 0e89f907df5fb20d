#include "app/gateway_direct.hpp"

#include "actors/http_inbox.hpp"
#include "messages/gateway.hpp"
#include "runtime/gateway_stream.hpp"

#include <atomic>

namespace lps {

namespace {

/// Sends `request` on `http` and runs `read` once with the answer: on a client I/O thread, or
/// here when send() throws, unless the client already answered as it dropped the call.
void send_once(http_transport& http, http_client_request request,
               std::function<void(http_client_response)> read) {
  auto once = std::make_shared<std::function<void(http_client_response)>>(
      [read = std::move(read),
       done = std::make_shared<std::atomic<bool>>(false)](http_client_response resp) {
        if (!done->exchange(true))
          read(std::move(resp));
      });
  try {
    http.send(std::move(request), [once](http_client_response resp) { (*once)(std::move(resp)); });
  } catch (const std::exception& ex) {
    http_client_response failed;
    failed.error = transport_error::invalid;
    failed.error_message = ex.what();
    (*once)(std::move(failed));
  }
}

/// The answer to a call that could not be translated (nothing was sent).
gateway_attempt refused(const gateway_error& e) {
  gateway_attempt out;
  out.result.status = e.status;
  out.result.body = render_gateway_error(e);
  return out;
}

} // namespace

void send_gateway_attempt(http_transport& http, const gateway_direct_target& t,
                          std::shared_ptr<const gateway_call> call, bool as_is,
                          std::shared_ptr<http_call_cancel> cancel,
                          std::function<void(gateway_attempt)> done) {
  auto upstream = gateway_upstream_request(t.dialect, t.target, call->body, call->model, as_is);
  if (upstream.error)
    return done(refused(*upstream.error));
  upstream.request.cancel = std::move(cancel);
  // The answer is read against the client's body (the model and options it asked for), so
  // the call stays alive until then.
  send_once(http, std::move(upstream.request),
            [dialect = t.dialect, name = t.display_name, call = std::move(call),
             done = std::move(done)](http_client_response resp) {
              gateway_attempt out;
              out.status_label = http_status_label(resp);
              out.result = resp.error != transport_error::none
                               ? gateway_transport_failure(name, resp.error, resp.error_message)
                               : gateway_read_upstream(dialect, resp.status, resp.body,
                                                       resp.headers, call->body, call->model,
                                                       std::chrono::system_clock::now());
              done(std::move(out));
            });
}

void send_gateway_stream_attempt(http_transport& http, const gateway_direct_target& t,
                                 std::shared_ptr<const gateway_call> call, bool as_is,
                                 std::shared_ptr<gateway_stream> sink,
                                 std::function<void(gateway_attempt)> done) {
  auto upstream =
      gateway_upstream_stream_request(t.dialect, t.target, call->body, call->model, as_is);
  if (upstream.error)
    return done(refused(*upstream.error));
  sink->begin_attempt(t.dialect);
  upstream.request.on_body_data = [sink](std::string_view piece) { sink->on_piece(piece); };
  upstream.request.cancel = sink->cancel_token();
  send_once(http, std::move(upstream.request),
            [dialect = t.dialect, name = t.display_name, call = std::move(call),
             sink = std::move(sink), done = std::move(done)](http_client_response resp) {
              gateway_attempt out;
              out.status_label = http_status_label(resp);
              out.result = gateway_stream_attempt_result(*sink, dialect, name, resp, call->body,
                                                         call->model);
              done(std::move(out));
            });
}

} // namespace lps
