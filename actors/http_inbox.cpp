#include "actors/http_inbox.hpp"

#include "actors/providers/retry_policy.hpp"

namespace lps {

void http_inbox::put(uint64_t ticket, http_client_response response) {
  std::lock_guard<std::mutex> guard{mtx_};
  responses_.insert_or_assign(ticket, std::move(response));
}

bool http_inbox::take(uint64_t ticket, http_client_response& out) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = responses_.find(ticket);
  if (i == responses_.end())
    return false;
  out = std::move(i->second);
  responses_.erase(i);
  return true;
}

std::string http_status_label(const http_client_response& resp) {
  return resp.error == transport_error::none ? std::to_string(resp.status)
                                             : std::string{to_string(resp.error)};
}

namespace {

transport_kind kind_of(transport_error err) {
  switch (err) {
  case transport_error::none:
    return transport_kind::none;
  case transport_error::timeout:
    return transport_kind::timeout;
  case transport_error::connect:
    return transport_kind::connect;
  case transport_error::reset:
    return transport_kind::reset;
  case transport_error::tls:
    return transport_kind::tls;
  case transport_error::invalid:
    return transport_kind::invalid;
  case transport_error::cancelled: // only a gateway call is cancelled, and never retried
    return transport_kind::reset;
  }
  return transport_kind::reset;
}

} // namespace

wire_response transport_failure(const std::string& who, const http_client_response& resp) {
  auto verdict = classify(0, "", "", kind_of(resp.error));
  wire_response r;
  r.error_code = to_string(verdict.error_code);
  r.error_message = who + " call failed (" + to_string(resp.error) + "): " + resp.error_message;
  r.retryable = verdict.kind == failure_class::retryable;
  return r;
}

} // namespace lps
