#include "actors/metrics_registry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <utility>

namespace lps {

namespace {

using labels = std::vector<std::string>;

const std::vector<double> bundle_item_buckets{1, 2, 4, 8, 16, 32, 64};
const std::vector<double> wait_buckets{0.01, 0.05, 0.1, 0.5, 1,   5,    10,
                                       30,   60,   120, 300, 600, 1800, 3600};
const std::vector<double> response_buckets{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1,
                                           2.5,   5,     10,   30,   60,  120,  300};
const std::vector<double> batch_item_buckets{1, 10, 100, 1000, 10000, 50000, 100000};
const std::vector<double> batch_duration_buckets{60,   300,   900,   1800, 3600,
                                                 7200, 14400, 43200, 86400};

metric_definition counter(std::string name, std::string help, labels label_names) {
  return {std::move(name), std::move(help), metric_kind::counter, std::move(label_names), {}};
}

metric_definition gauge(std::string name, std::string help, labels label_names) {
  return {std::move(name), std::move(help), metric_kind::gauge, std::move(label_names), {}};
}

metric_definition histogram(std::string name, std::string help, labels label_names,
                            std::vector<double> buckets) {
  return {std::move(name), std::move(help), metric_kind::histogram, std::move(label_names),
          std::move(buckets)};
}

std::vector<metric_definition> build_definitions() {
  return {
      // -- CONTRACTS.md section 4 --
      counter("llm_provider_requests_total",
              "Comparison requests by provider, model and outcome status.",
              {"provider", "model", "status"}),
      counter("llm_provider_http_calls_total",
              "Outbound HTTP calls to LLM provider APIs by endpoint and HTTP status code.",
              {"provider", "endpoint", "status_code"}),
      counter("llm_provider_serial_bundle_calls_total",
              "Provider calls made for serial bundles (one per bundle call).",
              {"provider", "model"}),
      histogram("llm_provider_serial_bundle_items_per_call",
                "Number of comparisons carried by one serial bundle call.", {"provider", "model"},
                bundle_item_buckets),
      gauge("llm_provider_queue_depth", "Requests currently in the queue by status.", {"status"}),
      gauge("llm_provider_queue_waiting",
            "Requests waiting (queued or waiting for a retry) by provider and model; at most 10 "
            "models per provider, later ones as model other, model unknown while a request's "
            "text is only in the store.",
            {"provider", "model"}),
      gauge("llm_provider_queue_oldest_age_seconds",
            "Age of the oldest waiting request by provider and model (0 when none waits).",
            {"provider", "model"}),
      histogram("llm_provider_queue_wait_time_seconds",
                "Time from enqueue to final result, by queue processing mode and result.",
                {"queue_processing_mode", "result"}, wait_buckets),
      histogram("llm_provider_response_duration_seconds",
                "Latency of one provider call, from request sent to response parsed.",
                {"provider", "model"}, response_buckets),
      counter("llm_provider_tokens_used_total",
              "Tokens reported by providers, by token type (prompt or completion).",
              {"provider", "model", "token_type"}),
      counter("llm_provider_gateway_requests_total",
              "Calls of the OpenAI-compatible gateway path by provider, model (a manifest id or "
              "other) and the HTTP status answered.",
              {"provider", "model", "status_code", "queue_processing_mode"}),
      histogram("llm_provider_gateway_duration_seconds",
                "Time of one gateway call in lps, from admission to the answer (retries "
                "included).",
                {"provider", "queue_processing_mode"}, response_buckets),
      counter("llm_provider_cost_dollars_total", "Estimated provider spend in US dollars.",
              {"provider", "model"}),
      counter("llm_provider_comparison_callbacks_total",
              "Final result events produced, one per request whether or not it has a "
              "callback_url.",
              {"queue_processing_mode", "result"}),
      gauge("llm_provider_circuit_breaker_state",
            "Circuit breaker state per provider (0 closed, 1 open, 2 half-open).", {"provider"}),
      gauge("llm_provider_paused",
            "1 while a provider is paused because it rejected the key (401/403): its requests "
            "wait until POST /api/v1/providers/{name}/resume.",
            {"provider"}),
      counter("llm_provider_batch_api_jobs_total",
              "Provider batch API jobs by status (submitted, completed, cancelled, failed).",
              {"provider", "model", "status"}),
      gauge("llm_provider_batch_api_jobs_open",
            "Provider batch API jobs not yet finished, by stored state (created, uploaded, "
            "submitting, submitted, cancelling, ended).",
            {"provider", "state"}),
      histogram("llm_provider_batch_api_items_per_job",
                "Number of comparisons submitted in one provider batch API job.",
                {"provider", "model"}, batch_item_buckets),
      histogram("llm_provider_batch_api_job_duration_seconds",
                "Time from batch API job submission to its completed results.",
                {"provider", "model"}, batch_duration_buckets),
      // -- lps' own --
      counter("llm_provider_bundles_total", "Bundles formed by the bundler.",
              {"provider", "model", "queue_processing_mode"}),
      counter("llm_provider_callback_deliveries_total",
              "HTTP callback POST attempts by result (success, retry, failed).", {"result"}),
      counter("llm_provider_requests_accepted_total",
              "Comparison requests accepted into the queue.", {}),
      counter("llm_provider_cluster_adopted_total",
              "Cluster leader: requests other nodes' intake stored, taken into the queue's "
              "index (each once, however it arrived: message, notification or poll).",
              {}),
      counter("llm_provider_cluster_new_work_by_message_total",
              "Cluster leader: requests whose queue entries reached this node by a message "
              "from the node that accepted them (repeats of the store's sightings included).",
              {}),
      counter("llm_provider_requests_rejected_total",
              "Comparison requests rejected at intake, by reason.", {"reason"}),
      counter("llm_provider_queue_expiry_total", "Queued requests that expired before processing.",
              {"queue_processing_mode"}),
      counter("llm_provider_store_commits_total",
              "Transactions committed to the durable request store.", {}),
      gauge("llm_provider_store_up",
            "1 while the store can take writes, 0 while it has lost its database (PostgreSQL) "
            "and is reconnecting.",
            {}),
      counter("llm_provider_store_reconnects_total",
              "Times the store came back after losing its database.", {}),
      gauge("llm_provider_inflight_provider_calls",
            "HTTP calls to the provider on a connection and not answered yet (calls waiting for "
            "a pooled connection are not counted).",
            {"provider"}),
      gauge("llm_provider_calls_waiting_for_connection",
            "HTTP calls to the provider waiting for a pooled connection.", {"provider"}),
      gauge("llm_provider_inflight_bundles",
            "Bundles handed to the provider and not answered yet (a bundle may be several HTTP "
            "calls).",
            {"provider"}),
      gauge("llm_provider_build_info",
            "Always 1: the version, git revision and node name of the lps serving these "
            "metrics.",
            {"version", "revision", "node"}),
      // -- the process, under the names Prometheus' client libraries use --
      counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds.", {}),
      gauge("process_resident_memory_bytes", "Resident memory size in bytes.", {}),
      gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", {}),
      gauge("process_open_fds", "Open file descriptors.", {}),
      gauge("process_max_fds", "The limit of open file descriptors.", {}),
      gauge("process_start_time_seconds", "Start time of the process since the Unix epoch.", {}),
      gauge("process_threads", "Operating system threads of the process.", {}),
  };
}

// Shortest text that reads back to the same double; integral values get no decimal point.
// Prometheus spells the non-finite values NaN, +Inf and -Inf.
void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[32];
  // Integral values print as integers: plain to_chars would pick the shorter "1e+05" for a
  // bucket bound, and le is a label whose text must stay stable. Below 2^53 the conversion
  // to int64 is exact.
  if (std::abs(v) < 9007199254740992.0 && v == std::trunc(v)) {
    auto res = std::to_chars(buf, buf + sizeof(buf), static_cast<int64_t>(v));
    out.append(buf, res.ptr);
    return;
  }
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, res.ptr);
}

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, res.ptr);
}

// Length of the valid UTF-8 sequence starting at text[i], or 0 if it is invalid.
size_t utf8_sequence_length(const std::string& text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  auto c = byte(i);
  if (c < 0x80)
    return 1;
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF; // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0)
      lo = 0xA0; // overlong
    if (c == 0xED)
      hi = 0x9F; // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0)
      lo = 0x90; // overlong
    if (c == 0xF4)
      hi = 0x8F; // above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > text.size() || byte(i + 1) < lo || byte(i + 1) > hi)
    return 0;
  for (size_t k = 2; k < len; ++k)
    if ((byte(i + k) & 0xC0) != 0x80)
      return 0;
  return len;
}

// Escapes backslash and newline (and double quote for label values). Invalid UTF-8 becomes
// U+FFFD, because Prometheus rejects the whole scrape on one bad label value.
void append_escaped(std::string& out, const std::string& text, bool quote) {
  for (size_t i = 0; i < text.size();) {
    char c = text[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else if (auto len = utf8_sequence_length(text, i); len == 0) {
      out += "\xEF\xBF\xBD";
    } else {
      out.append(text, i, len);
      i += len;
      continue;
    }
    ++i;
  }
}

// Writes `name{l1="v1",...,extra_name="extra_value"} value`; no braces without labels.
void append_series_line(std::string& out, const std::string& name, const char* suffix,
                        const metric_definition& def, const labels& values, const char* extra_name,
                        const std::string& extra_value, const std::string& value_text) {
  out += name;
  out += suffix;
  bool any = !values.empty() || extra_name != nullptr;
  if (any) {
    out += '{';
    for (size_t i = 0; i < values.size(); ++i) {
      if (i > 0)
        out += ',';
      out += def.label_names[i];
      out += "=\"";
      append_escaped(out, values[i], true);
      out += '"';
    }
    if (extra_name != nullptr) {
      if (!values.empty())
        out += ',';
      out += extra_name;
      out += "=\"";
      out += extra_value;
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  out += value_text;
  out += '\n';
}

const char* type_name(metric_kind kind) {
  switch (kind) {
  case metric_kind::counter:
    return "counter";
  case metric_kind::gauge:
    return "gauge";
  case metric_kind::histogram:
    return "histogram";
  }
  return "untyped";
}

std::string number_text(double v) {
  std::string out;
  append_number(out, v);
  return out;
}

std::string uint_text(uint64_t v) {
  std::string out;
  append_uint(out, v);
  return out;
}

} // namespace

const std::vector<metric_definition>& metric_definitions() {
  static const std::vector<metric_definition> definitions = build_definitions();
  return definitions;
}

metrics_registry::metrics_registry() {
  for (const auto& def : metric_definitions())
    families_[def.name].def = &def;
}

bool metrics_registry::apply(const metric_sample& sample) {
  auto it = families_.find(sample.name);
  if (it == families_.end() || sample.labels.size() != it->second.def->label_names.size()) {
    ++rejected_;
    return false;
  }
  const auto& def = *it->second.def;
  // Non-finite steps would poison a counter or a histogram sum forever; gauges may be NaN.
  bool finite = std::isfinite(sample.value);
  if ((def.kind == metric_kind::counter && (!finite || sample.value < 0))
      || (def.kind == metric_kind::histogram && !finite)) {
    ++rejected_;
    return false;
  }
  auto& by_labels = it->second.series_by_labels;
  // find first: the common case is an existing series, and lookup allocates nothing.
  auto sit = by_labels.find(sample.labels);
  if (sit == by_labels.end()) {
    sit = by_labels.emplace(sample.labels, series{}).first;
    if (def.kind == metric_kind::histogram)
      sit->second.bucket_counts.assign(def.buckets.size(), 0);
  }
  auto& s = sit->second;
  switch (def.kind) {
  case metric_kind::counter:
    s.value += sample.value;
    break;
  case metric_kind::gauge:
    s.value = sample.value;
    break;
  case metric_kind::histogram: {
    // Buckets are upper bounds (le): the first bound >= value takes the observation;
    // above the last bound only +Inf (the count) sees it.
    auto b = std::lower_bound(def.buckets.begin(), def.buckets.end(), sample.value);
    if (b != def.buckets.end())
      ++s.bucket_counts[static_cast<size_t>(b - def.buckets.begin())];
    ++s.count;
    s.sum += sample.value;
    break;
  }
  }
  return true;
}

std::string metrics_registry::render() const {
  std::string out;
  out.reserve(4096);
  for (const auto& [name, fam] : families_) {
    const auto& def = *fam.def;
    out += "# HELP ";
    out += name;
    out += ' ';
    append_escaped(out, def.help, false);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type_name(def.kind);
    out += '\n';
    for (const auto& [values, s] : fam.series_by_labels) {
      if (def.kind != metric_kind::histogram) {
        append_series_line(out, name, "", def, values, nullptr, {}, number_text(s.value));
        continue;
      }
      uint64_t cumulative = 0;
      for (size_t i = 0; i < def.buckets.size(); ++i) {
        cumulative += s.bucket_counts[i];
        append_series_line(out, name, "_bucket", def, values, "le", number_text(def.buckets[i]),
                           uint_text(cumulative));
      }
      auto count = uint_text(s.count);
      append_series_line(out, name, "_bucket", def, values, "le", "+Inf", count);
      append_series_line(out, name, "_sum", def, values, nullptr, {}, number_text(s.sum));
      append_series_line(out, name, "_count", def, values, nullptr, {}, count);
    }
  }
  return out;
}

double metrics_registry::value(const std::string& name, const labels& label_values) const {
  auto it = families_.find(name);
  if (it == families_.end() || it->second.def->kind == metric_kind::histogram)
    return 0.0;
  auto sit = it->second.series_by_labels.find(label_values);
  return sit == it->second.series_by_labels.end() ? 0.0 : sit->second.value;
}

uint64_t metrics_registry::count(const std::string& name, const labels& label_values) const {
  auto it = families_.find(name);
  if (it == families_.end() || it->second.def->kind != metric_kind::histogram)
    return 0;
  auto sit = it->second.series_by_labels.find(label_values);
  return sit == it->second.series_by_labels.end() ? 0 : sit->second.count;
}

std::vector<std::pair<std::string, uint64_t>>
metrics_registry::cumulative_buckets(const std::string& name) const {
  auto it = families_.find(name);
  if (it == families_.end() || it->second.def->kind != metric_kind::histogram)
    return {};
  const auto& bounds = it->second.def->buckets;
  std::vector<uint64_t> counts(bounds.size() + 1, 0);
  for (const auto& [labels, s] : it->second.series_by_labels) {
    for (size_t i = 0; i < bounds.size(); ++i)
      counts[i] += s.bucket_counts[i];
    counts.back() += s.count;
  }
  std::vector<std::pair<std::string, uint64_t>> result;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    cumulative += counts[i];
    result.emplace_back(number_text(bounds[i]), cumulative);
  }
  result.emplace_back("+Inf", counts.back());
  return result;
}

} // namespace lps
