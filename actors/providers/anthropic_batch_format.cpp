#include "actors/providers/anthropic_batch_format.hpp"

#include "actors/providers/batch_common.hpp"
#include "actors/providers/rate_limiter.hpp"
#include "actors/providers/retry_policy.hpp"
#include "actors/providers/wire_common.hpp"
#include "runtime/url.hpp"

#include <algorithm>
#include <exception>
#include <optional>
#include <utility>

namespace lps {

namespace json = boost::json;
using namespace wire;

namespace {

/// Starts the messages of bad_answer and unreadable.
constexpr std::string_view provider_name = "Anthropic";

constexpr std::string_view batches_path = "/v1/messages/batches";

/// "scheme://host:port" of an absolute http(s) URL, nullopt for anything else.
std::optional<std::string> origin_of(std::string_view url) {
  std::string ignored;
  auto parsed = parse_http_url(url, ignored);
  return parsed ? std::optional{parsed->origin()} : std::nullopt;
}

std::optional<batch_job_state> state_of(std::string_view status) {
  if (status == "in_progress")
    return batch_job_state::in_progress;
  if (status == "canceling")
    return batch_job_state::cancelling;
  if (status == "ended")
    return batch_job_state::ended;
  return std::nullopt;
}

/// The HTTP status Anthropic answers a sync call with for an error of `type`, 0 when unknown
/// (docs "Errors": HTTP errors).
unsigned status_of_error_type(std::string_view type) {
  struct entry {
    std::string_view type;
    unsigned status;
  };
  static constexpr entry table[] = {
      {"invalid_request_error", 400}, {"authentication_error", 401},
      {"billing_error", 402},         {"permission_error", 403},
      {"not_found_error", 404},       {"request_too_large", 413},
      {"rate_limit_error", 429},      {"api_error", 500},
      {"timeout_error", 504},         {"overloaded_error", 529},
  };
  for (const auto& e : table)
    if (e.type == type)
      return e.status;
  return 0;
}

/// An `errored` result's error response `{"type":"error","error":{"type","message",
/// "details":{"error_code"}}}`, classified as a sync error of that type would be.
wire_response item_error(const json::object& result) {
  auto* envelope = object_field(&result, "error");
  auto* err = object_field(envelope, "error");
  std::string type, message, code;
  if (err != nullptr) {
    type = string_field(*err, "type");
    message = string_field(*err, "message");
    if (auto* details = object_field(err, "details"))
      code = string_field(*details, "error_code");
  }
  auto status = status_of_error_type(type);
  auto verdict = classify(static_cast<int>(status), type, code);
  std::string text = "Anthropic batch item errored";
  if (!type.empty())
    text += " (" + quoted(type) + ")";
  text += ": " + std::string{verdict.reason};
  if (!message.empty())
    text += ": " + quoted(message);
  return failure(verdict.error_code, std::move(text), status,
                 verdict.kind == failure_class::retryable);
}

/// One line of a results file into `items`; false when it is not a result line.
bool read_result_line(const anthropic_wire& sync, std::string_view line,
                      std::chrono::system_clock::time_point now,
                      std::vector<batch_item_result>& items) {
  using kind = batch_item_result::kind;
  json::error_code ec;
  auto doc = json::parse(line, ec);
  if (ec || !doc.is_object())
    return false;
  const auto& root = doc.get_object();
  batch_item_result item;
  item.custom_id = string_field(root, "custom_id");
  if (item.custom_id.empty())
    return false;
  auto* result = object_field(&root, "result");
  auto type = result ? string_field(*result, "type") : std::string{};
  if (type == "succeeded") {
    auto* message = result->if_contains("message");
    item.response =
        message && message->is_object()
            ? sync.read_single(200, json::serialize(*message), {}, now)
            : failure(ec::parsing_error, "Anthropic batch result has no message", 200, false);
    item.outcome = item.response.success ? kind::succeeded : kind::errored;
  } else if (type == "errored") {
    item.response = item_error(*result);
    item.outcome = kind::errored;
  } else if (type == "canceled" || type == "expired") {
    // Never processed: the item goes back to the queue.
    item.outcome = type == "canceled" ? kind::cancelled : kind::expired;
    item.response = failure(ec::external_service_error,
                            "Anthropic batch item " + type + " before it was processed", 0, true);
  } else {
    item.outcome = kind::errored;
    item.response =
        failure(ec::parsing_error,
                type.empty() ? std::string{"Anthropic batch result has no type"}
                             : "Anthropic batch result type \"" + quoted(type) + "\" unknown",
                0, false);
  }
  items.push_back(std::move(item));
  return true;
}

} // namespace

bool anthropic_custom_id_ok(std::string_view id) {
  return !id.empty() && id.size() <= 64
         && std::all_of(id.begin(), id.end(), [](char c) { return key_char(c); });
}

anthropic_batch_wire::anthropic_batch_wire(std::string version, uint64_t max_items,
                                           uint64_t max_bytes)
    : batch_wire(max_items, max_bytes, anthropic_batch_max_items, anthropic_batch_max_bytes),
      sync_(version), version_(std::move(version)) {
  // nop
}

std::string_view anthropic_batch_wire::display_name() const {
  return "Anthropic";
}

std::string anthropic_batch_wire::item_entry(const comparison_request& request,
                                             const std::string& custom_id,
                                             const std::string& model) const {
  auto params = build_anthropic_body(request, model);
  auto id = json::serialize(json::string{custom_id});
  std::string entry;
  entry.reserve(params.size() + id.size() + 32);
  entry += R"({"custom_id":)";
  entry += id;
  entry += R"(,"params":)";
  entry += params;
  entry += '}';
  return entry;
}

bool anthropic_batch_wire::needs_upload() const {
  return false;
}

http_client_request anthropic_batch_wire::upload(const wire_target& target,
                                                 const std::vector<std::string>& /*entries*/,
                                                 const std::string& /*job_id*/) const {
  http_client_request none;
  none.url.clear();
  none.timeout = target.timeout;
  return none;
}

std::string anthropic_batch_wire::read_upload(unsigned status, std::string_view /*body*/,
                                              const wire_headers& /*headers*/,
                                              std::chrono::system_clock::time_point /*now*/,
                                              wire_response& error) const {
  error = failure(ec::configuration_error, "Anthropic message batches take no file upload", status,
                  false);
  return {};
}

http_client_request anthropic_batch_wire::request(const wire_target& target, std::string method,
                                                  std::string url, std::string body) const {
  http_client_request result;
  result.method = std::move(method);
  result.url = std::move(url);
  result.headers = {{"x-api-key", target.api_key}, {"anthropic-version", version_}};
  if (!body.empty())
    result.headers.emplace_back("content-type", "application/json");
  result.headers.insert(result.headers.end(), target.extra_headers.begin(),
                        target.extra_headers.end());
  result.body = std::move(body);
  result.timeout = target.timeout;
  return result;
}

http_client_request anthropic_batch_wire::create(const wire_target& target,
                                                 const std::string& /*file_id*/,
                                                 const std::vector<std::string>& entries,
                                                 const std::string& /*job_id*/) const {
  constexpr std::string_view head = R"({"requests":[)";
  constexpr std::string_view tail = "]}";
  size_t size = head.size() + tail.size();
  for (const auto& e : entries)
    size += e.size() + 1;
  std::string body;
  body.reserve(size);
  body += head;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0)
      body += ',';
    body += entries[i];
  }
  body += tail;
  return request(target, "POST", base_of(target) + std::string{batches_path}, std::move(body));
}

batch_job_status anthropic_batch_wire::read_job(unsigned status, std::string_view body,
                                                const wire_headers& headers,
                                                std::chrono::system_clock::time_point now) const {
  return read_job_answer(
      provider_name, "processing_status", status, body, headers, now,
      [&] { return sync_.read_single(status, body, headers, now); },
      [](const json::object& root, batch_job_status& out) {
        out.provider_job_id = string_field(root, "id");
        out.provider_status = string_field(root, "processing_status");
        auto* counts = object_field(&root, "request_counts");
        out.succeeded = count_field(counts, "succeeded");
        out.failed = count_field(counts, "errored");
        out.total = count_field(counts, "processing") + out.succeeded + out.failed
                    + count_field(counts, "canceled") + count_field(counts, "expired");
        if (auto url = string_field(root, "results_url"); !url.empty())
          out.result_locations.push_back(std::move(url));
        if (auto archived = string_field(root, "archived_at"); !archived.empty())
          out.job_error = "results archived at " + quoted(archived) + ": no longer available";
        return state_of(out.provider_status);
      });
}

http_client_request anthropic_batch_wire::poll(const wire_target& target,
                                               const std::string& provider_job_id) const {
  return request(target, "GET",
                 base_of(target) + std::string{batches_path} + "/" + path_segment(provider_job_id),
                 {});
}

http_client_request anthropic_batch_wire::list(const wire_target& target) const {
  return request(target, "GET", base_of(target) + std::string{batches_path} + "?limit=100", {});
}

std::vector<batch_listing>
anthropic_batch_wire::read_list(unsigned status, std::string_view body, const wire_headers& headers,
                                std::chrono::system_clock::time_point now,
                                wire_response& error) const {
  return read_list_answer(
      provider_name, status, body, headers, now, error,
      [&] { return sync_.read_single(status, body, headers, now); },
      [](const json::object& b) {
        batch_listing item;
        item.provider_job_id = string_field(b, "id");
        // Message batches carry no metadata: the caller matches on time and size instead.
        item.created_at_s = rfc3339_unix_seconds(string_field(b, "created_at")).value_or(0);
        auto* counts = object_field(&b, "request_counts");
        for (auto key : {"processing", "succeeded", "errored", "canceled", "expired"})
          item.total += count_field(counts, key);
        return item;
      });
}

http_client_request anthropic_batch_wire::cancel(const wire_target& target,
                                                 const std::string& provider_job_id) const {
  return request(target, "POST",
                 base_of(target) + std::string{batches_path} + "/" + path_segment(provider_job_id)
                     + "/cancel",
                 {});
}

std::vector<http_client_request>
anthropic_batch_wire::downloads(const wire_target& target, const batch_job_status& job) const {
  std::vector<http_client_request> result;
  auto base_origin = origin_of(target.base_url);
  for (const auto& location : job.result_locations) {
    std::string url;
    if (location.starts_with('/') && !location.starts_with("//"))
      url = join_url(target.base_url, location);
    else if (base_origin && origin_of(location) == base_origin)
      url = location;
    else if (!job.provider_job_id.empty())
      url = join_url(target.base_url, std::string{batches_path} + "/"
                                          + path_segment(job.provider_job_id) + "/results");
    else
      continue;
    result.push_back(request(target, "GET", std::move(url), {}));
    result.back().max_response_bytes = batch_max_result_bytes;
  }
  return result;
}

batch_results anthropic_batch_wire::read_results(unsigned status, std::string_view body,
                                                 const wire_headers& headers,
                                                 std::chrono::system_clock::time_point now,
                                                 wire_response& error) const {
  return read_results_answer(
      provider_name, status, body, error,
      [&] { return sync_.read_single(status, body, headers, now); },
      [&](std::string_view line, std::vector<batch_item_result>& items) {
        return read_result_line(sync_, line, now, items);
      });
}

} // namespace lps
