#pragma once

// lpsctl's view of a running lps: blocking GET and POST over the project's HTTP client, with
// the operator's token as a Bearer header, and the answers as parsed JSON.

#include "runtime/http_client.hpp"

#include <boost/json/value.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace lps::ctl {

/// Exit codes scripts can trust (documented in docs/lpsctl.md).
enum exit_code : int {
  ok = 0,
  /// The command ran, but not everything succeeded (requests refused, a wait timed out).
  incomplete = 1,
  /// Bad command line or input file.
  usage = 2,
  /// lps could not be reached or answered with an error.
  unreachable = 3,
};

struct api_answer {
  /// HTTP status; 0 when no answer came (then `error` says why).
  unsigned status = 0;
  std::string body;
  std::string error;
  /// Seconds from a Retry-After header (0 when none).
  unsigned retry_after = 0;
  /// The body as JSON (null when it is not JSON).
  boost::json::value json;
  /// The error envelope's code and message, when the body has one.
  std::string error_code;
  std::string error_message;
};

class lps_api {
public:
  lps_api(std::string base_url, std::string token, std::chrono::seconds timeout);

  api_answer get(const std::string& path);
  api_answer post(const std::string& path, std::string body);

  /// Sends many GETs at once (at most `concurrency` in flight) and calls `done` for each
  /// answer, on the calling thread, in the order the answers arrive.
  void get_many(const std::vector<std::string>& paths, size_t concurrency,
                const std::function<void(size_t index, api_answer)>& done);

  const std::string& base_url() const {
    return base_url_;
  }

private:
  http_client_request request(const std::string& method, const std::string& path,
                              std::string body) const;

  std::string base_url_;
  std::string token_;
  std::chrono::seconds timeout_;
  http_client http_;
};

/// "lps answered 503 QUEUE_FULL: ..." or "cannot reach http://...: ..." for messages.
std::string describe(const api_answer& answer, const std::string& base_url);

} // namespace lps::ctl
