#include "tools/mock_provider/mock_provider_batches.hpp"

#include "tools/mock_provider/batch_service.hpp"

#include <cmath>
#include <mutex>

// The batch service: routing to the two dialects (openai_batches.cpp,
// anthropic_batches.cpp), counters, settings. Threading and time: batch_service.hpp.

namespace lps::mock_batch {

namespace {

// -- settings --------------------------------------------------------------------------------

std::optional<std::string> apply_setting(const std::string& key, const json::value& v,
                                         mock_batch_options& o) {
  if (key == "validating_ms" || key == "processing_ms" || key == "cancel_ms") {
    auto n = mock_wire::number_of(v);
    if (!n || *n < 0 || *n > static_cast<double>(max_duration.count()) || *n != std::floor(*n))
      return key + " must be an integer in 0..86400000";
    milliseconds ms{static_cast<int64_t>(*n)};
    (key == "validating_ms" ? o.validating : key == "processing_ms" ? o.processing : o.cancel) = ms;
    return std::nullopt;
  }
  if (key == "item_error_rate" || key == "item_expire_rate") {
    auto n = mock_wire::number_of(v);
    if (!n || !(*n >= 0.0 && *n <= 1.0))
      return key + " must be a number in [0, 1]";
    (key == "item_error_rate" ? o.item_error_rate : o.item_expire_rate) = *n;
    return std::nullopt;
  }
  if (key == "fail_next_openai_batch") {
    if (v.is_bool()) {
      o.fail_next_openai_batches = v.get_bool() ? 1 : 0;
      return std::nullopt;
    }
    auto n = mock_wire::number_of(v);
    if (!n || *n < 0 || *n > max_forced_failures || *n != std::floor(*n))
      return "fail_next_openai_batch must be true, false or a count in 0..10000";
    o.fail_next_openai_batches = static_cast<uint32_t>(*n);
    return std::nullopt;
  }
  return "unknown batch setting '" + key + "'";
}

} // namespace

// -- free functions --------------------------------------------------------------------------

std::optional<std::string> check_options(const mock_batch_options& o) {
  for (auto d : {o.validating, o.processing, o.cancel})
    if (d.count() < 0 || d > max_duration)
      return "batch timings must be in 0..86400000 ms";
  if (!(o.item_error_rate >= 0.0 && o.item_error_rate <= 1.0)
      || !(o.item_expire_rate >= 0.0 && o.item_expire_rate <= 1.0))
    return "batch item_error_rate and item_expire_rate must be in [0, 1]";
  if (o.item_error_rate + o.item_expire_rate > 1.0 + 1e-9)
    return "batch item_error_rate + item_expire_rate must not exceed 1";
  if (o.fail_next_openai_batches > max_forced_failures)
    return "fail_next_openai_batch must be at most 10000";
  return std::nullopt;
}

bool is_batch_path(std::string_view path) {
  return under(path, openai_files) || under(path, openai_batches) || under(path, anthropic_batches);
}

namespace {

json::object counts_json(const std::map<std::string, uint64_t>& m) {
  json::object o;
  for (const auto& [k, v] : m)
    o[k] = v;
  return o;
}

} // namespace

json::object stats_json(const mock_batch_stats& s) {
  json::object by_pair;
  for (const auto& [d, m] : s.by_dialect_endpoint)
    by_pair[d] = counts_json(m);
  return {{"calls", s.calls},
          {"by_endpoint", counts_json(s.by_endpoint)},
          {"by_dialect_endpoint", std::move(by_pair)},
          {"by_outcome", counts_json(s.by_outcome)},
          {"batches_created", counts_json(s.batches_created)},
          {"items_submitted", counts_json(s.items_submitted)}};
}

json::object options_json(const mock_batch_options& o) {
  return {{"validating_ms", o.validating.count()},
          {"processing_ms", o.processing.count()},
          {"cancel_ms", o.cancel.count()},
          {"item_error_rate", o.item_error_rate},
          {"item_expire_rate", o.item_expire_rate},
          {"fail_next_openai_batch", o.fail_next_openai_batches}};
}

// -- the service -----------------------------------------------------------------------------

/// Where batches stand: start_options.batch_clock, or the steady clock.
steady::time_point service::impl::clock_now() const {
  return start_options.batch_clock ? start_options.batch_clock() : steady::now();
}

/// Under mu.
std::string service::impl::random_chars(size_t n, std::string_view alphabet) {
  return mock_wire::random_chars(rng, n, alphabet);
}

std::string service::impl::request_id(dialect d) {
  std::lock_guard<std::mutex> lock{mu};
  return mock_wire::request_id(rng, d);
}

void service::impl::clear() {
  std::lock_guard<std::mutex> lock{mu};
  settings = start_options.batch;
  counters = {};
  rng.seed(seed ^ 0x6261746368ull);
  ordinal = 0;
  files.clear();
  openai_list.clear();
  openai_index.clear();
  anthropic_list.clear();
  anthropic_index.clear();
}

http_response service::impl::handle(const http_request& req) {
  auto r = route_of(req.method, req.path);
  auto rid = request_id(r.d);
  auto out = r.d == dialect::anthropic ? anthropic_call(req, r, rid) : openai_call(req, r, rid);
  std::lock_guard<std::mutex> lock{mu};
  counters.calls += 1;
  counters.by_endpoint[r.endpoint] += 1;
  counters.by_dialect_endpoint[mock_wire::to_string(r.d)][r.endpoint] += 1;
  counters.by_outcome[outcome_of_status(out.status)] += 1;
  return out;
}

service::service() : impl_(std::make_unique<impl>()) {}

service::~service() = default;

void service::start(const mock_provider_options& options) {
  impl_->start_options = options;
  impl_->seed = options.seed;
  impl_->api_key = options.api_key;
  impl_->tls = !options.tls_cert_file.empty();
  impl_->clear();
}

http_response service::handle(const http_request& request) {
  return impl_->handle(request);
}

mock_batch_stats service::stats() const {
  std::lock_guard<std::mutex> lock{impl_->mu};
  return impl_->counters;
}

void service::reset() {
  impl_->clear();
}

mock_batch_options service::options() const {
  std::lock_guard<std::mutex> lock{impl_->mu};
  return impl_->settings;
}

std::optional<std::string> service::set_options(const mock_batch_options& options) {
  if (auto e = check_options(options))
    return e;
  std::lock_guard<std::mutex> lock{impl_->mu};
  impl_->settings = options;
  return std::nullopt;
}

std::optional<std::string> service::configure(std::string_view text) {
  auto doc = parse_json(text);
  if (!doc || !doc->is_object())
    return "the body must be a JSON object of batch settings";
  std::lock_guard<std::mutex> lock{impl_->mu};
  auto next = impl_->settings;
  for (const auto& [k, v] : doc->get_object())
    if (auto e = apply_setting(std::string(k), v, next))
      return e;
  if (auto e = check_options(next))
    return e;
  impl_->settings = next;
  return std::nullopt;
}

} // namespace lps::mock_batch
