#include "runtime/config.hpp"

#include "runtime/postgres.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace lps {

namespace {

// -- text parsing helpers: each returns false when the text is not a valid value --

std::string trim(const std::string& text) {
  auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos)
    return "";
  auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

bool parse_u64(const std::string& text, uint64_t& out) {
  auto t = trim(text);
  if (t.empty())
    return false;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  return ec == std::errc{} && ptr == t.data() + t.size();
}

bool parse_double(const std::string& text, double& out) {
  auto t = trim(text);
  if (t.empty())
    return false;
  char* end = nullptr;
  out = std::strtod(t.c_str(), &end);
  return end == t.c_str() + t.size() && std::isfinite(out);
}

bool parse_bool(const std::string& text, bool& out) {
  auto t = trim(text);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t == "true" || t == "1" || t == "yes" || t == "on")
    return out = true, true;
  if (t == "false" || t == "0" || t == "no" || t == "off")
    return out = false, true;
  return false;
}

// "429,503,500" or "[429, 503, 500]".
bool parse_int_list(const std::string& text, std::vector<int32_t>& out) {
  auto t = trim(text);
  if (!t.empty() && t.front() == '[' && t.back() == ']')
    t = t.substr(1, t.size() - 2);
  std::vector<int32_t> result;
  std::stringstream in{t};
  std::string item;
  while (std::getline(in, item, ',')) {
    uint64_t x = 0;
    if (!parse_u64(item, x) || x < 100 || x > 599)
      return false;
    result.push_back(static_cast<int32_t>(x));
  }
  if (result.empty())
    return false;
  out = std::move(result);
  return true;
}

std::string lower_dashed(const std::string& env_name) {
  std::string result;
  for (char c : env_name)
    result += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return result;
}

std::string join_ints(const std::vector<int32_t>& xs) {
  std::string result;
  for (auto x : xs) {
    if (!result.empty())
      result += ',';
    result += std::to_string(x);
  }
  return result;
}

std::string format_double(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

// -- the key table --

using setter = std::function<bool(config&, const std::string&)>;
using getter = std::function<std::string(const config&)>;

struct key_entry {
  config_key_info info;
  setter set;
  getter get;
};

template <class T>
key_entry uint_key(std::string env, T config::*field, uint64_t min, uint64_t max) {
  auto rule = "integer " + std::to_string(min) + ".." + std::to_string(max);
  return {{env, lower_dashed(env), rule, false},
          [=](config& c, const std::string& v) {
            uint64_t x = 0;
            if (!parse_u64(v, x) || x < min || x > max)
              return false;
            c.*field = static_cast<T>(x);
            return true;
          },
          [=](const config& c) { return std::to_string(c.*field); }};
}

key_entry double_key(std::string env, double config::*field, double min, double max) {
  auto rule = "number " + format_double(min) + ".." + format_double(max);
  return {{env, lower_dashed(env), rule, false},
          [=](config& c, const std::string& v) {
            double x = 0;
            if (!parse_double(v, x) || x < min || x > max)
              return false;
            c.*field = x;
            return true;
          },
          [=](const config& c) { return format_double(c.*field); }};
}

key_entry bool_key(std::string env, bool config::*field) {
  return {{env, lower_dashed(env), "true or false", false},
          [=](config& c, const std::string& v) { return parse_bool(v, c.*field); },
          [=](const config& c) { return std::string{c.*field ? "true" : "false"}; }};
}

key_entry string_key(std::string env, std::string config::*field, std::string rule) {
  return {{env, lower_dashed(env), rule, false},
          [=](config& c, const std::string& v) {
            auto t = trim(v);
            if (t.empty())
              return false;
            c.*field = t;
            return true;
          },
          [=](const config& c) { return c.*field; }};
}

template <class Enum>
key_entry enum_key(std::string env, Enum config::*field, std::vector<Enum> values) {
  std::string rule;
  for (auto x : values)
    rule += (rule.empty() ? "" : ", ") + std::string{to_string(x)};
  return {{env, lower_dashed(env), "one of " + rule, false},
          [=](config& c, const std::string& v) {
            auto t = trim(v);
            for (auto x : values)
              if (t == to_string(x))
                return c.*field = x, true;
            return false;
          },
          [=](const config& c) { return std::string{to_string(c.*field)}; }};
}

// <PROVIDER>_REQUESTS_PER_MINUTE and _TOKENS_PER_MINUTE (0: no limit of our own; the
// provider's rate-limit headers are still obeyed).
void add_provider_rate_keys(std::vector<key_entry>& xs, const std::string& name,
                            const std::string& up) {
  using field_t = uint64_t provider_config::*;
  for (auto [suffix, field] : {std::pair<const char*, field_t>{
                                   "_REQUESTS_PER_MINUTE", &provider_config::requests_per_minute},
                               std::pair<const char*, field_t>{
                                   "_TOKENS_PER_MINUTE", &provider_config::tokens_per_minute}}) {
    auto env = up + suffix;
    xs.push_back({{env, lower_dashed(env), "integer 0..10000000000 (0: no limit)", false},
                  [=](config& c, const std::string& v) {
                    uint64_t x = 0;
                    if (!parse_u64(v, x) || x > 10'000'000'000ull)
                      return false;
                    c.providers[name].*field = x;
                    return true;
                  },
                  [=](const config& c) { return std::to_string(c.providers.at(name).*field); }});
  }
}

// <PROVIDER>_API_KEY, _BASE_URL, _DEFAULT_MODEL, _MAX_CONCURRENT_CALLS and the rate limits.
void add_provider_keys(std::vector<key_entry>& xs, const std::string& name) {
  std::string up;
  for (char c : name)
    up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto env = [&](const char* suffix) { return up + suffix; };
  xs.push_back({{env("_API_KEY"), lower_dashed(env("_API_KEY")), "the provider's API key", true},
                [=](config& c, const std::string& v) {
                  c.providers[name].api_key = secret{trim(v)};
                  return true;
                },
                [=](const config& c) { return c.providers.at(name).api_key.masked(); }});
  xs.push_back({{env("_BASE_URL"), lower_dashed(env("_BASE_URL")), "an http(s) URL", false},
                [=](config& c, const std::string& v) {
                  auto t = trim(v);
                  if (t.rfind("http://", 0) != 0 && t.rfind("https://", 0) != 0)
                    return false;
                  while (!t.empty() && t.back() == '/')
                    t.pop_back();
                  c.providers[name].base_url = t;
                  return true;
                },
                [=](const config& c) { return c.providers.at(name).base_url; }});
  xs.push_back({{env("_DEFAULT_MODEL"), lower_dashed(env("_DEFAULT_MODEL")), "a model id", false},
                [=](config& c, const std::string& v) {
                  auto t = trim(v);
                  if (t.empty())
                    return false;
                  c.providers[name].default_model = t;
                  return true;
                },
                [=](const config& c) { return c.providers.at(name).default_model; }});
  xs.push_back(
      {{env("_MAX_CONCURRENT_CALLS"), lower_dashed(env("_MAX_CONCURRENT_CALLS")),
        "integer 1..10000", false},
       [=](config& c, const std::string& v) {
         uint64_t x = 0;
         if (!parse_u64(v, x) || x < 1 || x > 10000)
           return false;
         c.providers[name].max_concurrent_calls = static_cast<uint32_t>(x);
         return true;
       },
       [=](const config& c) { return std::to_string(c.providers.at(name).max_concurrent_calls); }});
  add_provider_rate_keys(xs, name, up);
}

// A file path; empty turns the feature off.
key_entry path_key(std::string env, std::string config::*field, std::string rule) {
  return {{env, lower_dashed(env), rule, false},
          [=](config& c, const std::string& v) { return c.*field = trim(v), true; },
          [=](const config& c) { return c.*field; }};
}

// Submission limits, the mock guard, authentication and TLS of the API (issue 13).
void add_front_door_keys(std::vector<key_entry>& xs) {
  xs.push_back(bool_key("MOCK_ALLOWED", &config::mock_allowed));
  xs.push_back(
      uint_key("HTTP_MAX_BULK_BODY_BYTES", &config::http_max_bulk_body_bytes, 1024, 1ull << 32));
  xs.push_back(uint_key("BULK_MAX_REQUESTS", &config::bulk_max_requests, 1, 1'000'000));
  xs.push_back(bool_key("DEDUPE_BY_CORRELATION_ID", &config::dedupe_by_correlation_id));
  xs.push_back(
      path_key("API_KEYS_FILE", &config::api_keys_file,
               "a file of '<name> <sha256 hex of the key>' lines (empty: no client keys)"));
  xs.push_back(
      {{"ADMIN_TOKEN", "admin-token", "the operator routes' bearer token", true},
       [](config& c, const std::string& v) { return c.admin_token = secret{trim(v)}, true; },
       [](const config& c) { return c.admin_token.masked(); }});
  xs.push_back(bool_key("ALLOW_UNAUTHENTICATED", &config::allow_unauthenticated));
  xs.push_back(path_key("HTTP_TLS_CERT", &config::http_tls_cert,
                        "a PEM certificate chain for HTTPS on the API (empty: plain HTTP)"));
  xs.push_back(
      path_key("HTTP_TLS_KEY", &config::http_tls_key, "the PEM private key of HTTP_TLS_CERT"));
}

// Where the store lives (issue 10); POSTGRES_URL is checked against STORE_BACKEND in
// validate(), and shown with its password masked.
void add_store_backend_keys(std::vector<key_entry>& xs) {
  xs.push_back({{"STORE_BACKEND", "store-backend", "one of sqlite, postgres", false},
                [](config& c, const std::string& v) {
                  auto t = trim(v);
                  return (t == "sqlite" || t == "postgres") && (c.store_backend = t, true);
                },
                [](const config& c) { return c.store_backend; }});
  xs.push_back(
      {{"POSTGRES_URL", "postgres-url",
        "a libpq URI, e.g. postgresql://lps:PASSWORD@127.0.0.1:5432/lps (needed with "
        "STORE_BACKEND=postgres)",
        true},
       [](config& c, const std::string& v) { return c.postgres_url = secret{trim(v)}, true; },
       [](const config& c) { return pg::masked_url(c.postgres_url.reveal()); }});
  xs.push_back(uint_key("STORE_READER_THREADS", &config::store_reader_threads, 1, 64));
}

// The cluster (issue #11); CLUSTER_ENABLED is checked against the store and the middleman's
// address in validate().
void add_cluster_keys(std::vector<key_entry>& xs) {
  xs.push_back(bool_key("CLUSTER_ENABLED", &config::cluster_enabled));
  xs.push_back(path_key("CLUSTER_NODE_NAME", &config::cluster_node_name,
                        "this node's name, unique in the cluster (empty: the host name)"));
  xs.push_back(string_key("CLUSTER_HOST", &config::cluster_host,
                          "the CAF middleman's bind address (beyond loopback only with "
                          "CLUSTER_TLS_CERT, CLUSTER_TLS_KEY and CLUSTER_TLS_CA)"));
  xs.push_back(uint_key("CLUSTER_PORT", &config::cluster_port, 0, 65535));
  xs.push_back(string_key("CLUSTER_ADVERTISE_HOST", &config::cluster_advertise_host,
                          "the address other nodes dial, registered in the store (empty: "
                          "CLUSTER_HOST; needed when CLUSTER_HOST binds every interface)"));
  xs.push_back(path_key("CLUSTER_TLS_CERT", &config::cluster_tls_cert,
                        "PEM certificate of this node for mutual TLS between nodes, signed by "
                        "CLUSTER_TLS_CA (empty: no TLS)"));
  xs.push_back(path_key("CLUSTER_TLS_KEY", &config::cluster_tls_key,
                        "the unencrypted PEM private key of CLUSTER_TLS_CERT (the path is "
                        "shown, never the key)"));
  xs.push_back(path_key("CLUSTER_TLS_CA", &config::cluster_tls_ca,
                        "PEM certificate of the CA that signs every node's certificate: peers "
                        "it did not sign are refused"));
  xs.push_back(uint_key("CLUSTER_LEASE_SECONDS", &config::cluster_lease_seconds, 1, 3600));
}

std::vector<key_entry> make_key_table() {
  using qpm = queue_processing_mode;
  using bam = batch_api_mode;
  std::vector<key_entry> xs;
  xs.push_back(enum_key("QUEUE_PROCESSING_MODE", &config::processing_mode,
                        {qpm::per_request, qpm::serial_bundle, qpm::batch_api}));
  xs.push_back(uint_key("SERIAL_BUNDLE_MAX_REQUESTS_PER_CALL",
                        &config::serial_bundle_max_requests_per_call, 1, 64));
  xs.push_back(bool_key("SERIAL_BUNDLE_MULTI_PROMPT", &config::serial_bundle_multi_prompt));
  xs.push_back(enum_key("OPENAI_BATCH_API_MODE", &config::openai_batch_api_mode,
                        {bam::disabled, bam::nightly, bam::opportunistic}));
  xs.push_back(enum_key("ANTHROPIC_BATCH_API_MODE", &config::anthropic_batch_api_mode,
                        {bam::disabled, bam::nightly, bam::opportunistic}));
  xs.push_back({{"DEFAULT_LLM_PROVIDER", "default-llm-provider",
                 "one of anthropic, openai, google, openrouter, mock", false},
                [](config& c, const std::string& v) {
                  auto t = trim(v);
                  if (t != "mock" && !c.providers.count(t))
                    return false;
                  c.default_llm_provider = t;
                  return true;
                },
                [](const config& c) { return c.default_llm_provider; }});
  xs.push_back(string_key("HTTP_HOST", &config::http_host, "an IP address or host name"));
  xs.push_back(uint_key("HTTP_PORT", &config::http_port, 0, 65535));
  xs.push_back(uint_key("HTTP_IO_THREADS", &config::http_io_threads, 1, 64));
  xs.push_back(uint_key("HTTP_MAX_BODY_BYTES", &config::http_max_body_bytes, 1024, 1ull << 30));
  xs.push_back(uint_key("HTTP_READ_TIMEOUT_MS", &config::http_read_timeout_ms, 10, 3'600'000));
  xs.push_back(uint_key("HTTP_IDLE_TIMEOUT_MS", &config::http_idle_timeout_ms, 10, 3'600'000));
  xs.push_back(uint_key("HTTP_MAX_CONNECTIONS", &config::http_max_connections, 1, 1'000'000));
  xs.push_back(string_key("DATA_DIR", &config::data_dir, "a folder path"));
  xs.push_back(bool_key("STORE_FSYNC", &config::store_fsync));
  auto retention = double_key("RESULT_RETENTION_DAYS", &config::result_retention_days, 0, 36'500);
  retention.info.rule += " (fractions allowed; 0: kept forever)";
  xs.push_back(std::move(retention));
  xs.push_back(uint_key("QUEUE_MAX_SIZE", &config::queue_max_size, 1, 1ull << 40));
  xs.push_back(uint_key("QUEUE_MAX_BYTES", &config::queue_max_bytes, 1024, 1ull << 50));
  xs.push_back(
      uint_key("QUEUE_MEMORY_TEXT_BYTES", &config::queue_memory_text_bytes, 0, 1ull << 40));
  xs.push_back(
      double_key("QUEUE_REQUEST_TTL_HOURS", &config::queue_request_ttl_hours, 0.0001, 24.0 * 365));
  xs.push_back(uint_key("QUEUE_MAX_RETRIES", &config::queue_max_retries, 0, 100));
  xs.push_back(uint_key("CALLBACK_TIMEOUT_MS", &config::callback_timeout_ms, 10, 600'000));
  xs.push_back(uint_key("CALLBACK_MAX_ATTEMPTS", &config::callback_max_attempts, 1, 1000));
  xs.push_back(uint_key("CALLBACK_MAX_CONCURRENT_PER_HOST",
                        &config::callback_max_concurrent_per_host, 1, 10'000));
  xs.push_back({{"CALLBACK_SIGNING_SECRET", lower_dashed("CALLBACK_SIGNING_SECRET"),
                 "any text (the HMAC-SHA256 key)", true},
                [](config& c, const std::string& v) {
                  c.callback_signing_secret = secret{trim(v)};
                  return true;
                },
                [](const config& c) { return c.callback_signing_secret.masked(); }});
  xs.push_back(bool_key("CALLBACK_ALLOW_PRIVATE", &config::callback_allow_private));
  xs.push_back(uint_key("CIRCUIT_BREAKER_FAILURE_THRESHOLD",
                        &config::circuit_breaker_failure_threshold, 1, 1000));
  xs.push_back(double_key("CIRCUIT_BREAKER_OPEN_SECONDS", &config::circuit_breaker_open_seconds,
                          0.001, 86'400.0));
  xs.push_back(uint_key("CIRCUIT_BREAKER_SUCCESS_THRESHOLD",
                        &config::circuit_breaker_success_threshold, 1, 1000));
  xs.push_back(uint_key("RETRY_BASE_DELAY_MS", &config::retry_base_delay_ms, 0, 3'600'000));
  xs.push_back(uint_key("RETRY_MAX_DELAY_MS", &config::retry_max_delay_ms, 0, 86'400'000));
  xs.push_back(uint_key("GATEWAY_MAX_ATTEMPTS", &config::gateway_max_attempts, 1, 10));
  xs.push_back(uint_key("GATEWAY_KEY_REQUESTS_PER_MINUTE", &config::gateway_key_requests_per_minute,
                        0, 100'000'000));
  xs.push_back(uint_key("GATEWAY_KEY_TOKENS_PER_MINUTE", &config::gateway_key_tokens_per_minute, 0,
                        100'000'000'000));
  xs.push_back(uint_key("BATCH_API_MIN_ITEMS", &config::batch_api_min_items, 1, 100'000));
  xs.push_back(double_key("BATCH_API_MAX_WAIT_SECONDS", &config::batch_api_max_wait_seconds, 0.001,
                          86'400.0 * 7));
  xs.push_back(
      {{"BATCH_API_NIGHTLY_WINDOW", "batch-api-nightly-window", "HH:MM-HH:MM (local time)", false},
       [](config& c, const std::string& v) {
         auto t = trim(v);
         auto ok = t.size() == 11 && t[2] == ':' && t[5] == '-' && t[8] == ':'
                   && std::stoi(t.substr(0, 2)) < 24 && std::stoi(t.substr(3, 2)) < 60
                   && std::stoi(t.substr(6, 2)) < 24 && std::stoi(t.substr(9, 2)) < 60;
         if (!ok)
           return false;
         c.batch_api_nightly_window = t;
         return true;
       },
       [](const config& c) { return c.batch_api_nightly_window; }});
  xs.push_back(uint_key("BATCH_API_MAX_REQUESTS_PER_JOB", &config::batch_api_max_requests_per_job,
                        1, 100'000));
  xs.push_back(uint_key("BATCH_API_MAX_BYTES_PER_JOB", &config::batch_api_max_bytes_per_job, 1024,
                        256'000'000));
  xs.push_back(double_key("BATCH_API_POLL_INTERVAL_SECONDS",
                          &config::batch_api_poll_interval_seconds, 0.001, 86'400.0));
  xs.push_back({{"MOCK_PROVIDER_SEED", "mock-provider-seed", "integer >= 0", false},
                [](config& c, const std::string& v) { return parse_u64(v, c.mock.seed); },
                [](const config& c) { return std::to_string(c.mock.seed); }});
  auto mock_ms = [](std::string env, uint32_t mock_config::*field) {
    return key_entry{{env, lower_dashed(env), "integer 0..600000", false},
                     [=](config& c, const std::string& v) {
                       uint64_t x = 0;
                       if (!parse_u64(v, x) || x > 600'000)
                         return false;
                       c.mock.*field = static_cast<uint32_t>(x);
                       return true;
                     },
                     [=](const config& c) { return std::to_string(c.mock.*field); }};
  };
  xs.push_back(mock_ms("MOCK_LATENCY_MS", &mock_config::latency_ms));
  xs.push_back(mock_ms("MOCK_LATENCY_JITTER_MS", &mock_config::latency_jitter_ms));
  xs.push_back({{"MOCK_ERROR_RATE", "mock-error-rate", "number 0..1", false},
                [](config& c, const std::string& v) {
                  double x = 0;
                  if (!parse_double(v, x) || x < 0 || x > 1)
                    return false;
                  c.mock.error_rate = x;
                  return true;
                },
                [](const config& c) { return format_double(c.mock.error_rate); }});
  xs.push_back(
      {{"MOCK_ERROR_CODES", "mock-error-codes", "comma-separated HTTP status codes 100..599",
        false},
       [](config& c, const std::string& v) { return parse_int_list(v, c.mock.error_codes); },
       [](const config& c) { return join_ints(c.mock.error_codes); }});
  auto mock_u64 = [](std::string env, uint64_t mock_config::*field, uint64_t max) {
    return key_entry{{env, lower_dashed(env), "integer 0.." + std::to_string(max), false},
                     [=](config& c, const std::string& v) {
                       uint64_t x = 0;
                       if (!parse_u64(v, x) || x > max)
                         return false;
                       c.mock.*field = x;
                       return true;
                     },
                     [=](const config& c) { return std::to_string(c.mock.*field); }};
  };
  xs.push_back(mock_u64("MOCK_REQUESTS_PER_MINUTE", &mock_config::requests_per_minute, 10'000'000));
  xs.push_back(mock_u64("MOCK_TOKENS_PER_MINUTE", &mock_config::tokens_per_minute, 1'000'000'000));
  xs.push_back(
      {{"MOCK_MAX_CONCURRENT_CALLS", "mock-max-concurrent-calls", "integer 1..10000", false},
       [](config& c, const std::string& v) {
         uint64_t x = 0;
         if (!parse_u64(v, x) || x < 1 || x > 10000)
           return false;
         c.mock.max_concurrent_calls = static_cast<uint32_t>(x);
         return true;
       },
       [](const config& c) { return std::to_string(c.mock.max_concurrent_calls); }});
  xs.push_back({{"MOCK_DEFAULT_MODEL", "mock-default-model", "a model id", false},
                [](config& c, const std::string& v) {
                  auto t = trim(v);
                  return !t.empty() && (c.mock.default_model = t, true);
                },
                [](const config& c) { return c.mock.default_model; }});
  for (const auto& name : {"anthropic", "openai", "google", "openrouter"})
    add_provider_keys(xs, name);
  xs.push_back({{"LOG_LEVEL", "log-level", "one of trace, debug, info, warn, error", false},
                [](config& c, const std::string& v) {
                  auto t = trim(v);
                  for (auto x : {"trace", "debug", "info", "warn", "error"})
                    if (t == x)
                      return c.log_level = t, true;
                  return false;
                },
                [](const config& c) { return c.log_level; }});
  xs.push_back(uint_key("PROVIDER_REQUEST_TIMEOUT_MS", &config::provider_request_timeout_ms, 100,
                        3'600'000));
  xs.push_back(string_key("MODEL_MANIFEST", &config::model_manifest, "a JSON file path"));
  xs.push_back({{"PROVIDER_CA_FILE", "provider-ca-file",
                 "a PEM file of CA certificates trusted for provider calls besides the system "
                 "store (empty: system store only)",
                 false},
                [](config& c, const std::string& v) { return c.provider_ca_file = trim(v), true; },
                [](const config& c) { return c.provider_ca_file; }});
  xs.push_back(uint_key("PROVIDER_MAX_CONNECTIONS_PER_HOST",
                        &config::provider_max_connections_per_host, 1, 10000));
  xs.push_back(
      uint_key("ACTOR_REQUEST_TIMEOUT_MS", &config::actor_request_timeout_ms, 100, 3'600'000));
  add_front_door_keys(xs);
  xs.push_back(uint_key("SHUTDOWN_GRACE_SECONDS", &config::shutdown_grace_seconds, 0, 3600));
  add_store_backend_keys(xs);
  add_cluster_keys(xs);
  return xs;
}

const std::vector<key_entry>& key_table() {
  static const auto table = make_key_table();
  return table;
}

const key_entry* find_key(const std::string& key) {
  for (const auto& x : key_table())
    if (x.info.file_name == key || x.info.env_name == key)
      return &x;
  return nullptr;
}

} // namespace

const char* to_string(queue_processing_mode x) {
  switch (x) {
  case queue_processing_mode::per_request:
    return "per_request";
  case queue_processing_mode::serial_bundle:
    return "serial_bundle";
  case queue_processing_mode::batch_api:
    return "batch_api";
  }
  return "unknown";
}

const char* to_string(batch_api_mode x) {
  switch (x) {
  case batch_api_mode::disabled:
    return "disabled";
  case batch_api_mode::nightly:
    return "nightly";
  case batch_api_mode::opportunistic:
    return "opportunistic";
  }
  return "unknown";
}

config::config() {
  // Defaults follow the official SDKs' base URL conventions (CONTRACTS.md section 3).
  providers["anthropic"] = {
      "anthropic", {}, "https://api.anthropic.com", "claude-haiku-4-5-20251001", 64};
  providers["openai"] = {"openai", {}, "https://api.openai.com/v1", "gpt-5-mini-2025-08-07", 64};
  providers["google"] = {
      "google", {}, "https://generativelanguage.googleapis.com", "gemini-2.5-flash", 64};
  providers["openrouter"] = {
      "openrouter", {}, "https://openrouter.ai/api/v1", "anthropic/claude-haiku-4-5-20251001", 64};
}

env_lookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    if (const char* v = std::getenv(name.c_str()))
      return std::string{v};
    return std::nullopt;
  };
}

const std::vector<config_key_info>& config_keys() {
  static const auto infos = [] {
    std::vector<config_key_info> result;
    for (const auto& x : key_table())
      result.push_back(x.info);
    return result;
  }();
  return infos;
}

std::string set_config_value(config& cfg, const std::string& key, const std::string& value) {
  const auto* entry = find_key(key);
  if (entry == nullptr)
    return "unknown configuration key '" + key + "'";
  if (entry->set(cfg, value))
    return "";
  auto shown = entry->info.is_secret ? std::string{"***"} : "'" + value + "'";
  return "invalid value " + shown + " for " + entry->info.env_name + " (" + entry->info.file_name
         + "): expected " + entry->info.rule;
}

std::vector<std::string> apply_environment(config& cfg, const env_lookup& env) {
  std::vector<std::string> errors;
  // Bare <PROVIDER>_API_KEY first, so the prefixed spelling below wins. Other secrets
  // (ADMIN_TOKEN) are read only with the prefix.
  for (const auto& x : key_table()) {
    if (!x.info.is_secret || !x.info.env_name.ends_with("_API_KEY"))
      continue;
    if (auto v = env(x.info.env_name); v && !v->empty())
      x.set(cfg, *v);
  }
  for (const auto& x : key_table()) {
    if (auto v = env("LLM_PROVIDER_SERVICE_" + x.info.env_name)) {
      if (auto err = set_config_value(cfg, x.info.env_name, *v); !err.empty())
        errors.push_back("LLM_PROVIDER_SERVICE_" + x.info.env_name + ": " + err);
    }
  }
  return errors;
}

bool cluster_tls_configured(const config& cfg) {
  return !cfg.cluster_tls_cert.empty() && !cfg.cluster_tls_key.empty()
         && !cfg.cluster_tls_ca.empty();
}

bool is_wildcard_host(const std::string& host) {
  return host == "0.0.0.0" || host == "::" || host == "[::]";
}

std::string cluster_dial_host(const config& cfg) {
  return cfg.cluster_advertise_host.empty() ? cfg.cluster_host : cfg.cluster_advertise_host;
}

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

namespace {

void add_store_backend_errors(const config& cfg, std::vector<std::string>& errors) {
  if (cfg.store_backend != "postgres")
    return;
  if (auto why = pg::check_url(cfg.postgres_url.reveal()); !why.empty())
    errors.push_back("POSTGRES_URL " + why + " (STORE_BACKEND=postgres needs it)");
}

// The files of mutual TLS between nodes come as a set: CAF authenticates peers only with a
// certificate, its key and a CA, and without them would silently fall back to an anonymous,
// unauthenticated cipher.
void add_cluster_tls_errors(const config& cfg, std::vector<std::string>& errors) {
  std::vector<std::string> missing;
  if (cfg.cluster_tls_cert.empty())
    missing.push_back("CLUSTER_TLS_CERT");
  if (cfg.cluster_tls_key.empty())
    missing.push_back("CLUSTER_TLS_KEY");
  if (cfg.cluster_tls_ca.empty())
    missing.push_back("CLUSTER_TLS_CA");
  if (missing.empty() || missing.size() == 3)
    return;
  std::string names;
  for (const auto& x : missing)
    names += (names.empty() ? "" : ", ") + x;
  errors.push_back("CLUSTER_TLS_CERT, CLUSTER_TLS_KEY and CLUSTER_TLS_CA go together: set all "
                   "three or none (missing: "
                   + names + ")");
}

// Cluster mode keeps every node's state in the shared PostgreSQL store. Its middleman port
// accepts any peer that speaks CAF's protocol unless mutual TLS is on, so beyond loopback it
// needs the three CLUSTER_TLS_* files.
void add_cluster_errors(const config& cfg, std::vector<std::string>& errors) {
  add_cluster_tls_errors(cfg, errors);
  if (!cfg.cluster_enabled)
    return;
  if (cfg.store_backend != "postgres")
    errors.push_back("CLUSTER_ENABLED=true needs STORE_BACKEND=postgres (the nodes share the "
                     "queue, the leader lease and the node registry in PostgreSQL); STORE_BACKEND "
                     "is "
                     + cfg.store_backend);
  if (!is_loopback_host(cfg.cluster_host) && !cluster_tls_configured(cfg))
    errors.push_back("CLUSTER_HOST '" + cfg.cluster_host
                     + "' is beyond loopback, which needs mutual TLS between the nodes: set "
                       "CLUSTER_TLS_CERT, CLUSTER_TLS_KEY and CLUSTER_TLS_CA (docs/cluster.md), "
                       "or use 127.0.0.1");
  // The registry holds the address the leader dials; a wildcard bind address is none.
  if (is_wildcard_host(cluster_dial_host(cfg)))
    errors.push_back("CLUSTER_HOST '" + cfg.cluster_host
                     + "' binds every interface, which no other node can dial: set "
                       "CLUSTER_ADVERTISE_HOST to this node's address (docs/cluster.md)");
}

} // namespace

std::vector<std::string> validate(const config& cfg) {
  std::vector<std::string> errors;
  if (cfg.default_llm_provider != "mock" && !cfg.providers.count(cfg.default_llm_provider))
    errors.push_back("DEFAULT_LLM_PROVIDER: unknown provider '" + cfg.default_llm_provider + "'");
  if (cfg.http_host.empty())
    errors.push_back("HTTP_HOST must not be empty");
  if (!is_loopback_host(cfg.http_host) && cfg.api_keys_file.empty() && !cfg.allow_unauthenticated)
    errors.push_back("HTTP_HOST '" + cfg.http_host
                     + "' is reachable beyond this machine but API_KEYS_FILE is not set: set "
                       "API_KEYS_FILE, or ALLOW_UNAUTHENTICATED=true to serve the API open on "
                       "purpose");
  if (cfg.http_tls_cert.empty() != cfg.http_tls_key.empty())
    errors.push_back("HTTP_TLS_CERT and HTTP_TLS_KEY go together: set both or neither");
  add_store_backend_errors(cfg, errors);
  add_cluster_errors(cfg, errors);
  return errors;
}

size_t provider_connections_per_host(const config& cfg) {
  size_t items_per_bundle = cfg.processing_mode == queue_processing_mode::per_request
                                ? 1
                                : size_t{cfg.serial_bundle_max_requests_per_call};
  size_t result = cfg.provider_max_connections_per_host;
  for (const auto& [name, p] : cfg.providers)
    result = std::max(result, size_t{p.max_concurrent_calls} * items_per_bundle);
  return result;
}

// The getters of the key table mask secrets, so every view built on this one masks them.
std::vector<shown_setting> shown_settings(const config& cfg) {
  std::vector<shown_setting> result;
  for (const auto& x : key_table())
    result.push_back({x.info.env_name, x.info.file_name, x.get(cfg), x.info.is_secret});
  return result;
}

std::string dump(const config& cfg) {
  std::string result;
  for (const auto& x : shown_settings(cfg))
    result += x.file_name + " = " + x.value + "\n";
  return result;
}

std::string describe_keys() {
  config defaults;
  std::string result =
      "| environment (LLM_PROVIDER_SERVICE_ prefix) | [lps] file key / --flag | default "
      "| allowed |\n|---|---|---|---|\n";
  for (const auto& x : key_table())
    result += "| " + x.info.env_name + " | " + x.info.file_name + " | " + x.get(defaults) + " | "
              + x.info.rule + " |\n";
  return result;
}

cli_split split_command_line(int argc, const char* const* argv) {
  cli_split result;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--dump-config") {
      result.dump_config = true;
      continue;
    }
    if (arg == "--help-config") {
      result.help_config = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      result.caf_args.push_back(arg);
      continue;
    }
    auto eq = arg.find('=');
    auto name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (name.rfind("lps.", 0) == 0)
      name = name.substr(4);
    else if (find_key(name) == nullptr) {
      result.caf_args.push_back(arg); // scheduler.*, config-file, help, ...
      continue;
    }
    if (find_key(name) == nullptr) {
      result.errors.push_back("unknown option '--lps." + name + "'");
      continue;
    }
    if (eq == std::string::npos) {
      if (i + 1 >= argc) {
        result.errors.push_back("option '--" + name + "' needs a value");
        continue;
      }
      result.lps_options.emplace_back(name, argv[++i]);
    } else {
      result.lps_options.emplace_back(name, arg.substr(eq + 1));
    }
  }
  return result;
}

} // namespace lps
