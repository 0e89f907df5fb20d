#include "tools/lpsctl/lps_api.hpp"

#include <boost/json/parse.hpp>

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>

namespace json = boost::json;

namespace lps::ctl {

namespace {

api_answer answer_of(http_client_response res) {
  api_answer out;
  out.status = res.error == transport_error::none ? res.status : 0;
  if (res.error != transport_error::none)
    out.error = std::string{to_string(res.error)} + ": " + res.error_message;
  for (const auto& [name, value] : res.headers)
    if (name == "retry-after")
      out.retry_after = static_cast<unsigned>(std::strtoul(value.c_str(), nullptr, 10));
  out.body = std::move(res.body);
  json::error_code ec;
  out.json = json::parse(out.body, ec);
  if (ec)
    out.json = nullptr;
  if (const auto* obj = out.json.if_object())
    if (const auto* err = obj->if_contains("error"); err != nullptr && err->is_object()) {
      const auto& e = err->as_object();
      if (const auto* code = e.if_contains("code"); code != nullptr && code->is_string())
        out.error_code = std::string{code->as_string()};
      if (const auto* msg = e.if_contains("message"); msg != nullptr && msg->is_string())
        out.error_message = std::string{msg->as_string()};
    }
  return out;
}

} // namespace

lps_api::lps_api(std::string base_url, std::string token, std::chrono::seconds timeout)
    : base_url_(std::move(base_url)), token_(std::move(token)), timeout_(timeout),
      http_(http_client_options{1, 64, "", true}) {
  while (!base_url_.empty() && base_url_.back() == '/')
    base_url_.pop_back();
}

http_client_request lps_api::request(const std::string& method, const std::string& path,
                                     std::string body) const {
  http_client_request req;
  req.method = method;
  req.url = base_url_ + path;
  req.body = std::move(body);
  req.timeout = timeout_;
  if (method == "POST")
    req.headers.emplace_back("Content-Type", "application/json");
  if (!token_.empty())
    req.headers.emplace_back("Authorization", "Bearer " + token_);
  return req;
}

api_answer lps_api::get(const std::string& path) {
  std::promise<http_client_response> done;
  auto result = done.get_future();
  http_.send(request("GET", path, {}),
             [&done](http_client_response res) { done.set_value(std::move(res)); });
  return answer_of(result.get());
}

api_answer lps_api::post(const std::string& path, std::string body) {
  std::promise<http_client_response> done;
  auto result = done.get_future();
  http_.send(request("POST", path, std::move(body)),
             [&done](http_client_response res) { done.set_value(std::move(res)); });
  return answer_of(result.get());
}

void lps_api::get_many(const std::vector<std::string>& paths, size_t concurrency,
                       const std::function<void(size_t, api_answer)>& done) {
  std::mutex mtx;
  std::condition_variable cv;
  std::deque<std::pair<size_t, http_client_response>> arrived;
  size_t next = 0, in_flight = 0;
  // Sends while there is room; without the lock held, since a send may answer at once.
  auto launch = [&] {
    for (;;) {
      size_t index = 0;
      {
        std::lock_guard<std::mutex> guard{mtx};
        if (in_flight >= std::max<size_t>(1, concurrency) || next >= paths.size())
          return;
        index = next++;
        ++in_flight;
      }
      http_.send(request("GET", paths[index], {}), [&, index](http_client_response res) {
        std::lock_guard<std::mutex> guard{mtx};
        arrived.emplace_back(index, std::move(res));
        cv.notify_one();
      });
    }
  };
  launch();
  for (size_t handled = 0; handled < paths.size(); ++handled) {
    std::pair<size_t, http_client_response> item;
    {
      std::unique_lock<std::mutex> lock{mtx};
      cv.wait(lock, [&] { return !arrived.empty(); });
      item = std::move(arrived.front());
      arrived.pop_front();
      --in_flight;
    }
    launch();
    done(item.first, answer_of(std::move(item.second)));
  }
}

std::string describe(const api_answer& answer, const std::string& base_url) {
  if (answer.status == 0)
    return "cannot reach " + base_url + ": " + answer.error;
  auto text = "lps answered " + std::to_string(answer.status);
  if (!answer.error_code.empty())
    text += " " + answer.error_code + ": " + answer.error_message;
  return text;
}

} // namespace lps::ctl
