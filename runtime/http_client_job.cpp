#include "runtime/http_client_job.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <stdexcept>
#include <string_view>

namespace lps::http_client_detail {

namespace {

namespace http = boost::beast::http;

bool valid_token(std::string_view s) {
  static constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || extra.find(static_cast<char>(c)) != std::string_view::npos;
  });
}

bool valid_header_value(std::string_view s) {
  return std::none_of(s.begin(), s.end(),
                      [](unsigned char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

} // namespace

// -- tracker -------------------------------------------------------------------------------------

void tracker::add() {
  std::lock_guard<std::mutex> lock{mutex_};
  ++outstanding_;
}

void tracker::done() {
  std::lock_guard<std::mutex> lock{mutex_};
  if (--outstanding_ == 0)
    idle_.notify_all();
}

bool tracker::wait_idle(std::chrono::milliseconds limit) {
  std::unique_lock<std::mutex> lock{mutex_};
  return idle_.wait_for(lock, limit, [this] { return outstanding_ == 0; });
}

// -- job -----------------------------------------------------------------------------------------

http_client_response failure(transport_error kind, std::string message) {
  http_client_response r;
  r.error = kind;
  r.error_message = std::move(message);
  return r;
}

job::job(http_client_callback done, tracker& track) : done_(std::move(done)), track_(track) {
  track_.add();
}

job::~job() {
  if (!finished_)
    finish(failure(transport_error::reset, "http client stopped"));
}

void job::finish(http_client_response r) {
  if (finished_)
    return;
  finished_ = true;
  if (cancel) // the hook must not outlive the call (it names the pool)
    cancel->clear_hook();
  auto fn = std::move(done_);
  try {
    if (fn)
      fn(std::move(r));
  } catch (const std::exception& e) {
    spdlog::error("http client: callback threw: {}", e.what());
  } catch (...) {
    spdlog::error("http client: callback threw a non-standard exception");
  }
  track_.done();
}

void build_request(job& j, const http_url& url, http_client_request& in) {
  if (!valid_token(in.method))
    throw std::invalid_argument("invalid method");
  auto& req = j.request;
  req.version(11);
  req.method_string(in.method);
  req.target(url.target);
  req.set(http::field::host, url.host_header());
  req.set(http::field::user_agent, "lps/0.1");
  for (const auto& [name, value] : in.headers) {
    // No names or values in the message: headers may carry credentials.
    if (!valid_token(name) || !valid_header_value(value))
      throw std::invalid_argument("invalid request header");
    req.set(name, value);
  }
  req.body() = std::move(in.body);
  req.prepare_payload();
  j.head = req.method() == http::verb::head;
}

} // namespace lps::http_client_detail
