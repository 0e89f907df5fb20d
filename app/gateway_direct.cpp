#include "app/gateway_direct.hpp"

#include "actors/http_inbox.hpp"
#include "messages/gateway.hpp"

#include <atomic>

namespace lps {

void send_gateway_attempt(http_transport& http, const gateway_direct_target& t,
                          std::shared_ptr<const gateway_call> call,
                          std::shared_ptr<http_call_cancel> cancel,
                          std::function<void(gateway_attempt)> done) {
  auto upstream = gateway_upstream_request(t.dialect, t.target, call->body, call->model);
  upstream.request.cancel = std::move(cancel);
  if (upstream.error) {
    gateway_attempt refused;
    refused.result.status = upstream.error->status;
    refused.result.body = render_gateway_error(*upstream.error);
    return done(std::move(refused));
  }
  // The answer is read against the client's body (the model and options it asked for), so
  // the call stays alive until then. Shared, and run once: a send() that throws answers here,
  // unless the client already answered as it dropped the call.
  auto read = std::make_shared<std::function<void(http_client_response)>>(
      [dialect = t.dialect, name = t.display_name, call = std::move(call), done = std::move(done),
       once = std::make_shared<std::atomic<bool>>(false)](http_client_response resp) {
        if (once->exchange(true))
          return;
        gateway_attempt out;
        out.status_label = http_status_label(resp);
        out.result =
            resp.error != transport_error::none
                ? gateway_transport_failure(name, resp.error, resp.error_message)
                : gateway_read_upstream(dialect, resp.status, resp.body, resp.headers, call->body,
                                        call->model, std::chrono::system_clock::now());
        done(std::move(out));
      });
  try {
    http.send(std::move(upstream.request),
              [read](http_client_response resp) { (*read)(std::move(resp)); });
  } catch (const std::exception& ex) {
    http_client_response failed;
    failed.error = transport_error::invalid;
    failed.error_message = ex.what();
    (*read)(std::move(failed));
  }
}

} // namespace lps
