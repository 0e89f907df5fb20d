#include "actors/providers/openai_batch_format.hpp"

#include "actors/providers/batch_common.hpp"
#include "actors/providers/openai_format.hpp"
#include "actors/providers/retry_policy.hpp"
#include "actors/providers/wire_common.hpp"

#include <algorithm>
#include <exception>
#include <optional>
#include <utility>

namespace lps {

namespace json = boost::json;
using namespace wire;

// batch_wire.hpp has no .cpp of its own; lps_wire_batch is where its one function lives.
const char* to_string(batch_job_state x) {
  switch (x) {
  case batch_job_state::validating:
    return "validating";
  case batch_job_state::in_progress:
    return "in_progress";
  case batch_job_state::cancelling:
    return "cancelling";
  case batch_job_state::ended:
    return "ended";
  case batch_job_state::failed:
    return "failed";
  }
  return "?";
}

namespace {

/// Starts the messages of bad_answer and unreadable.
constexpr std::string_view provider_name = "OpenAI";

/// The multipart boundary before the clash check; not a word any prompt is likely to hold.
constexpr std::string_view boundary_token = "lps-batch-Vq7Zr2xK9mW4tB8cN1dL6hJ3";

/// The file name of an upload: the job id with anything that could break the
/// Content-Disposition header (quotes, CR, LF, ...) replaced.
std::string file_name_of(const std::string& job_id) {
  std::string name = job_id.empty() ? std::string{"batch"} : job_id.substr(0, 200);
  for (auto& c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
          || c == '_' || c == '.'))
      c = '_';
  return name + ".jsonl";
}

http_client_request make_request(const wire_target& target, std::string method, std::string url,
                                 std::string body, std::string content_type) {
  http_client_request req;
  req.method = std::move(method);
  req.url = std::move(url);
  req.timeout = target.timeout;
  req.headers = {{"Authorization", "Bearer " + target.api_key}};
  if (!content_type.empty())
    req.headers.emplace_back("Content-Type", std::move(content_type));
  for (const auto& h : target.extra_headers)
    req.headers.push_back(h);
  req.body = std::move(body);
  return req;
}

/// A step's non-2xx answer, read exactly like a sync call's (classification, Retry-After).
wire_response http_failure(unsigned status, std::string_view body, const wire_headers& headers,
                           std::chrono::system_clock::time_point now) {
  auto result = parse_openai_response(status, body, headers, now);
  result.error_message = mask_keys(std::move(result.error_message));
  return result;
}

std::optional<batch_job_state> state_of(std::string_view status) {
  if (status == "validating")
    return batch_job_state::validating;
  if (status == "in_progress" || status == "finalizing")
    return batch_job_state::in_progress;
  if (status == "cancelling")
    return batch_job_state::cancelling;
  if (status == "completed" || status == "expired" || status == "cancelled")
    return batch_job_state::ended;
  if (status == "failed")
    return batch_job_state::failed;
  return std::nullopt;
}

/// The first of `errors.data[]`, as "line N: message (and M more)"; "" when there is none.
std::string job_error_of(const json::object& root) {
  auto* data = array_field(object_field(&root, "errors"), "data");
  if (data == nullptr || data->empty() || !(*data)[0].is_object())
    return {};
  const auto& first = (*data)[0].get_object();
  auto message = string_field(first, "message");
  if (message.empty())
    message = string_field(first, "code");
  if (message.empty())
    message = "unspecified error";
  std::string text;
  if (auto* line = first.if_contains("line"); line && (line->is_int64() || line->is_uint64()))
    text = "line " + json::serialize(*line) + ": ";
  text += quoted(message);
  if (data->size() > 1)
    text += " (and " + std::to_string(data->size() - 1) + " more)";
  return text;
}

/// The status_code of a line's response, 0 when absent or not an HTTP status.
unsigned status_code_of(const json::object& response) {
  auto* v = response.if_contains("status_code");
  if (v == nullptr || !(v->is_int64() || v->is_uint64()))
    return 0;
  auto code = v->to_number<int64_t>();
  return code >= 100 && code <= 599 ? static_cast<unsigned>(code) : 0;
}

/// One line of an output or error file; false when it has no custom_id.
bool read_line(std::string_view line, std::chrono::system_clock::time_point now,
               std::vector<batch_item_result>& items) {
  json::error_code ec;
  auto doc = json::parse(line, ec);
  if (ec || !doc.is_object())
    return false;
  const auto& root = doc.get_object();
  batch_item_result item;
  item.custom_id = string_field(root, "custom_id");
  if (item.custom_id.empty())
    return false;
  using kind = batch_item_result::kind;
  if (auto* response = object_field(&root, "response")) {
    auto code = status_code_of(*response);
    auto* body = response->if_contains("body");
    if (code == 0)
      item.response =
          failure(ec::parsing_error, "OpenAI batch line has no valid status_code", 0, false);
    else
      item.response =
          parse_openai_response(code, body ? json::serialize(*body) : std::string{}, {}, now);
    item.response.error_message = mask_keys(std::move(item.response.error_message));
    item.outcome = item.response.success ? kind::succeeded : kind::errored;
  } else if (auto* error = object_field(&root, "error")) {
    auto code = string_field(*error, "code");
    auto message = string_field(*error, "message");
    auto verdict = classify(0, "", code);
    bool not_run = code == "batch_expired" || code == "batch_cancelled";
    item.outcome = code == "batch_expired"     ? kind::expired
                   : code == "batch_cancelled" ? kind::cancelled
                                               : kind::errored;
    std::string text = "OpenAI batch item " + (code.empty() ? std::string{"error"} : quoted(code))
                       + ": " + std::string{verdict.reason};
    if (!message.empty())
      text += ": " + quoted(message);
    // Expired and cancelled items were never processed: they go back to the queue.
    item.response = failure(verdict.error_code, std::move(text), 0,
                            not_run || verdict.kind == failure_class::retryable);
  } else {
    item.response =
        failure(ec::parsing_error, "OpenAI batch line has neither response nor error", 0, false);
    item.outcome = kind::errored;
  }
  items.push_back(std::move(item));
  return true;
}

} // namespace

std::string openai_upload_boundary(const std::vector<std::string>& entries) {
  for (unsigned n = 0;; ++n) {
    std::string candidate{boundary_token};
    if (n > 0)
      candidate += "-" + std::to_string(n);
    bool clash = std::any_of(entries.begin(), entries.end(), [&](const std::string& e) {
      return e.find(candidate) != std::string::npos;
    });
    if (!clash)
      return candidate;
  }
}

openai_batch_wire::openai_batch_wire(uint64_t max_items, uint64_t max_bytes,
                                     openai_flags_table flags)
    : batch_wire(max_items, max_bytes, openai_batch_max_items, openai_batch_max_bytes),
      flags_(std::move(flags)) {
  // nop
}

std::string_view openai_batch_wire::display_name() const {
  return "OpenAI";
}

std::string openai_batch_wire::item_entry(const comparison_request& request,
                                          const std::string& custom_id,
                                          const std::string& model) const {
  auto body = build_openai_request(request, model, openai_model_flags_for(model, flags_));
  auto id = json::serialize(json::string{custom_id});
  std::string entry;
  entry.reserve(body.size() + id.size() + 80);
  entry += R"({"custom_id":)";
  entry += id;
  entry += R"(,"method":"POST","url":")";
  entry += openai_batch_endpoint;
  entry += R"(","body":)";
  entry += body;
  entry += '}';
  return entry;
}

bool openai_batch_wire::needs_upload() const {
  return true;
}

http_client_request openai_batch_wire::upload(const wire_target& target,
                                              const std::vector<std::string>& entries,
                                              const std::string& job_id) const {
  auto boundary = openai_upload_boundary(entries);
  const std::string delimiter = "--" + boundary + "\r\n";
  size_t size = 512 + boundary.size() * 3;
  for (const auto& e : entries)
    size += e.size() + 1;
  std::string body;
  body.reserve(size);
  body += delimiter;
  body += "Content-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n";
  body += delimiter;
  body += "Content-Disposition: form-data; name=\"file\"; filename=\"" + file_name_of(job_id)
          + "\"\r\nContent-Type: application/octet-stream\r\n\r\n";
  for (const auto& e : entries) {
    body += e;
    body += '\n';
  }
  body += "\r\n--" + boundary + "--\r\n";
  return make_request(target, "POST", base_of(target) + "/files", std::move(body),
                      "multipart/form-data; boundary=" + boundary);
}

std::string openai_batch_wire::read_upload(unsigned status, std::string_view body,
                                           const wire_headers& headers,
                                           std::chrono::system_clock::time_point now,
                                           wire_response& error) const {
  try {
    if (!is_success(status)) {
      error = http_failure(status, body, headers, now);
      return {};
    }
    json::error_code ec;
    auto doc = json::parse(body, ec);
    if (ec || !doc.is_object()) {
      error = bad_answer(provider_name, status, "file upload answer is not a JSON object", headers,
                         now);
      return {};
    }
    const auto& root = doc.get_object();
    if (string_field(root, "status") == "error") {
      auto verdict = classify(static_cast<int>(status), "invalid_request_error", "");
      auto details = string_field(root, "status_details");
      error = failure(verdict.error_code,
                      "OpenAI rejected the batch file"
                          + (details.empty() ? "" : ": " + quoted(details)),
                      status, false);
      return {};
    }
    auto id = string_field(root, "id");
    if (id.empty()) {
      error = bad_answer(provider_name, status, "file upload answer has no id", headers, now);
      return {};
    }
    error = step_ok(status);
    return id;
  } catch (const std::exception& ex) {
    error = unreadable(provider_name, status, ex);
    return {};
  }
}

http_client_request openai_batch_wire::create(const wire_target& target, const std::string& file_id,
                                              const std::vector<std::string>& /*entries*/,
                                              const std::string& job_id) const {
  json::object body;
  body["input_file_id"] = file_id;
  body["endpoint"] = openai_batch_endpoint;
  body["completion_window"] = "24h";
  // Metadata values may hold at most 512 characters.
  body["metadata"] = json::object{{"lps_job_id", cut_utf8(job_id, 512)}};
  return make_request(target, "POST", base_of(target) + "/batches", json::serialize(body),
                      "application/json");
}

batch_job_status openai_batch_wire::read_job(unsigned status, std::string_view body,
                                             const wire_headers& headers,
                                             std::chrono::system_clock::time_point now) const {
  return read_job_answer(
      provider_name, "status", status, body, headers, now,
      [&] { return http_failure(status, body, headers, now); },
      [](const json::object& root, batch_job_status& out) {
        out.provider_job_id = string_field(root, "id");
        out.provider_status = string_field(root, "status");
        auto* counts = object_field(&root, "request_counts");
        out.total = count_field(counts, "total");
        out.succeeded = count_field(counts, "completed");
        out.failed = count_field(counts, "failed");
        for (auto key : {"output_file_id", "error_file_id"})
          if (auto id = string_field(root, key); !id.empty())
            out.result_locations.push_back(std::move(id));
        out.job_error = job_error_of(root);
        return state_of(out.provider_status);
      });
}

http_client_request openai_batch_wire::poll(const wire_target& target,
                                            const std::string& provider_job_id) const {
  return make_request(target, "GET", base_of(target) + "/batches/" + path_segment(provider_job_id),
                      {}, {});
}

http_client_request openai_batch_wire::list(const wire_target& target) const {
  return make_request(target, "GET", base_of(target) + "/batches?limit=100", {}, {});
}

std::vector<batch_listing> openai_batch_wire::read_list(unsigned status, std::string_view body,
                                                        const wire_headers& headers,
                                                        std::chrono::system_clock::time_point now,
                                                        wire_response& error) const {
  return read_list_answer(
      provider_name, status, body, headers, now, error,
      [&] { return http_failure(status, body, headers, now); },
      [](const json::object& b) {
        batch_listing item;
        item.provider_job_id = string_field(b, "id");
        if (auto* metadata = object_field(&b, "metadata"))
          item.lps_job_id = string_field(*metadata, "lps_job_id");
        item.created_at_s = static_cast<int64_t>(count_field(&b, "created_at"));
        item.total = count_field(object_field(&b, "request_counts"), "total");
        return item;
      });
}

http_client_request openai_batch_wire::cancel(const wire_target& target,
                                              const std::string& provider_job_id) const {
  return make_request(target, "POST",
                      base_of(target) + "/batches/" + path_segment(provider_job_id) + "/cancel", {},
                      {});
}

std::vector<http_client_request> openai_batch_wire::downloads(const wire_target& target,
                                                              const batch_job_status& job) const {
  std::vector<http_client_request> result;
  for (const auto& file_id : job.result_locations) {
    result.push_back(make_request(
        target, "GET", base_of(target) + "/files/" + path_segment(file_id) + "/content", {}, {}));
    result.back().max_response_bytes = batch_max_result_bytes;
  }
  return result;
}

batch_results openai_batch_wire::read_results(unsigned status, std::string_view body,
                                              const wire_headers& headers,
                                              std::chrono::system_clock::time_point now,
                                              wire_response& error) const {
  return read_results_answer(
      provider_name, status, body, error, [&] { return http_failure(status, body, headers, now); },
      [&](std::string_view line, std::vector<batch_item_result>& items) {
        return read_line(line, now, items);
      });
}

} // namespace lps
