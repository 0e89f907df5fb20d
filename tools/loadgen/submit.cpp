#include "tools/loadgen/submit.hpp"

#include <stdexcept>

namespace lps::loadgen {

std::string start_receiver(lps::http_server& server, run_context& ctx) {
  lps::http_server_options o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.io_threads = 1;
  o.max_body_bytes = 16 << 20;
  auto handler = [&ctx](lps::http_request&& req, lps::http_responder respond) {
    auto at = now_ns(ctx.origin);
    // Answer first: the server's delivery slots are the scarce resource, not our parsing.
    respond({200, "", "", {}});
    if (auto event = parse_event(req.body))
      ctx.track.result(*event, at);
    else
      ctx.track.bad_event();
  };
  std::string error;
  if (!server.start(o, handler, error))
    throw std::runtime_error("cannot start the callback receiver: " + error);
  return "http://127.0.0.1:" + std::to_string(server.port()) + "/lps-callback";
}

} // namespace lps::loadgen
