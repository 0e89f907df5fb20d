#pragma once

// The lps configuration: plain structs with defaults, loaded once at start from (later wins)
// built-in defaults < CAF config file [lps] section < LLM_PROVIDER_SERVICE_* environment
// < command line, then validated. Actors get their part by value; nothing reads settings
// ad hoc.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lps {

/// How the bundler turns queued requests into provider calls.
enum class queue_processing_mode : uint8_t { per_request, serial_bundle, batch_api };

/// Whether and when a provider's batch API is used (batch_api mode).
enum class batch_api_mode : uint8_t { disabled, nightly, opportunistic };

const char* to_string(queue_processing_mode x);
const char* to_string(batch_api_mode x);

/// A secret (API key). It has no implicit conversion to text: printing goes through
/// masked(), so keys cannot leak into logs, metrics or error messages by accident.
class secret {
public:
  secret() = default;
  explicit secret(std::string value) : value_(std::move(value)) {}
  bool empty() const {
    return value_.empty();
  }
  /// The key itself, for the one place that puts it into a provider request header.
  const std::string& reveal() const {
    return value_;
  }
  /// "***" when set, "" when not.
  std::string masked() const {
    return value_.empty() ? "" : "***";
  }

private:
  std::string value_;
};

/// Per-provider connection settings.
struct provider_config {
  std::string name;
  secret api_key;
  std::string base_url;
  std::string default_model;
  /// Bundles in flight at once for this provider.
  uint32_t max_concurrent_calls = 64;
  /// Rate limits (0: unlimited); the bundler paces calls to stay under them.
  uint64_t requests_per_minute = 0;
  uint64_t tokens_per_minute = 0;
};

/// The built-in mock provider.
struct mock_config {
  uint64_t seed = 42;
  uint32_t latency_ms = 0;
  uint32_t latency_jitter_ms = 0;
  double error_rate = 0.0;
  std::vector<int32_t> error_codes{429, 503, 500};
  std::string default_model = "mock-model-v1";
  uint32_t max_concurrent_calls = 256;
  uint64_t requests_per_minute = 0;
  uint64_t tokens_per_minute = 0;
};

/// Everything lps reads at start.
struct config {
  // -- processing --
  queue_processing_mode processing_mode = queue_processing_mode::serial_bundle;
  uint32_t serial_bundle_max_requests_per_call = 4;
  bool serial_bundle_multi_prompt = false;
  batch_api_mode openai_batch_api_mode = batch_api_mode::disabled;
  batch_api_mode anthropic_batch_api_mode = batch_api_mode::disabled;
  std::string default_llm_provider = "mock";

  // -- HTTP API --
  std::string http_host = "127.0.0.1";
  uint16_t http_port = 8090;
  uint32_t http_io_threads = 1;
  uint64_t http_max_body_bytes = 1 << 20;
  /// A request must arrive completely within this time (slow clients, bodies that never end).
  uint32_t http_read_timeout_ms = 30'000;
  /// Idle keep-alive connections are closed after this.
  uint32_t http_idle_timeout_ms = 60'000;
  /// Connections beyond this are closed at once.
  uint32_t http_max_connections = 10'000;

  // -- store and queue --
  std::string data_dir = "./var";
  bool store_fsync = true;
  /// Delivered final results older than this are purged (fractions allowed; 0: kept forever).
  double result_retention_days = 30;
  uint64_t queue_max_size = 1'000'000;
  uint64_t queue_max_bytes = 8ull << 30;
  /// Request texts kept in memory at most; beyond it they stay only in the store.
  uint64_t queue_memory_text_bytes = 256ull << 20;
  double queue_request_ttl_hours = 24.0;
  uint32_t queue_max_retries = 3;

  // -- callbacks --
  uint32_t callback_timeout_ms = 10'000;
  uint32_t callback_max_attempts = 8;
  uint32_t callback_max_concurrent_per_host = 32;
  /// HMAC key of the X-LPS-Signature header on callbacks; empty: callbacks are not signed.
  secret callback_signing_secret;
  /// false: callbacks may not connect to loopback or private addresses (link-local and
  /// metadata addresses are always refused).
  bool callback_allow_private = true;

  // -- provider resilience --
  uint32_t circuit_breaker_failure_threshold = 5;
  double circuit_breaker_open_seconds = 30;
  uint32_t circuit_breaker_success_threshold = 2;
  /// Retry backoff of failed provider calls (doubling, jittered, capped).
  uint32_t retry_base_delay_ms = 1000;
  uint32_t retry_max_delay_ms = 60'000;

  // -- the gateway path (docs/gateway.md) --
  /// Attempts of one gateway call while its failures are retryable.
  uint32_t gateway_max_attempts = 3;
  /// Per client key (0: unlimited).
  uint64_t gateway_key_requests_per_minute = 0;
  uint64_t gateway_key_tokens_per_minute = 0;

  // -- batch API (issue 5; parsed and validated now) --
  uint32_t batch_api_min_items = 1000;
  double batch_api_max_wait_seconds = 300;
  std::string batch_api_nightly_window = "01:00-05:00";
  uint32_t batch_api_max_requests_per_job = 50'000;
  uint64_t batch_api_max_bytes_per_job = 190'000'000;
  double batch_api_poll_interval_seconds = 30;

  // -- providers --
  mock_config mock;
  /// anthropic, openai, google, openrouter (the mock is configured by `mock`).
  std::map<std::string, provider_config> providers;

  // -- runtime --
  /// The model manifest served at /api/v1/models (ids, prices, limits).
  std::string model_manifest = "config/models.json";
  /// trace, debug, info, warn, error.
  std::string log_level = "info";
  /// Deadline of one provider HTTP call.
  uint32_t provider_request_timeout_ms = 60'000;
  /// Extra CA certificates (PEM) trusted for provider calls; empty: the system store only.
  std::string provider_ca_file;
  /// Keep-alive connections per provider host; more calls wait for a free one. The pool may
  /// open more when the concurrency limits need them (provider_connections_per_host).
  uint32_t provider_max_connections_per_host = 64;
  /// Finite timeout of requests between actors.
  uint32_t actor_request_timeout_ms = 60'000;
  /// On SIGTERM, how long provider calls already made may take to finish.
  uint32_t shutdown_grace_seconds = 30;

  // -- front door (issue 13) --
  /// false: requests that would resolve to the mock provider are refused at submission.
  bool mock_allowed = true;
  /// Body limit of POST /api/v1/comparisons (the other routes: http_max_body_bytes).
  uint64_t http_max_bulk_body_bytes = 64ull << 20;
  /// Most requests in one POST /api/v1/comparisons body.
  uint32_t bulk_max_requests = 10'000;
  /// true: a repeated correlation_id is a repeated submission, like a repeated
  /// Idempotency-Key header.
  bool dedupe_by_correlation_id = false;
  /// Client keys ("<name> <sha256 hex of the key>" per line); empty: the API is open.
  std::string api_keys_file;
  /// Bearer token of the operator routes; empty: they need what the other routes need.
  secret admin_token;
  /// Serve an HTTP_HOST beyond loopback without API_KEYS_FILE, on purpose.
  bool allow_unauthenticated = false;
  /// HTTPS on the API: certificate chain and private key (PEM); both empty: plain HTTP.
  std::string http_tls_cert;
  std::string http_tls_key;

  // -- store backend (issue 10) --
  /// "sqlite" (DATA_DIR, one process) or "postgres" (POSTGRES_URL).
  std::string store_backend = "sqlite";
  /// libpq URI of the PostgreSQL store; its password is never printed (pg::masked_url).
  secret postgres_url;
  /// Reader threads of the store, each with a read connection of its own (runtime/store_reader).
  uint32_t store_reader_threads = 2;

  // -- cluster (issue #11) --
  /// true: run as a node of a cluster on the shared PostgreSQL store (needs STORE_BACKEND
  /// postgres): every node takes requests, the lease holder runs the queue (docs/cluster.md).
  bool cluster_enabled = false;
  /// This node's name, unique in the cluster; empty: the host name.
  std::string cluster_node_name;
  /// The CAF middleman's bind address and port (0: any free port, registered in the store).
  std::string cluster_host = "127.0.0.1";
  uint16_t cluster_port = 0;
  /// The host the other nodes dial, registered in the store; empty: CLUSTER_HOST. Needed when
  /// CLUSTER_HOST binds every interface (0.0.0.0, ::), which no peer can dial.
  std::string cluster_advertise_host;
  /// Mutual TLS between the nodes (PEM files; all three or none): this node's certificate, its
  /// private key (unencrypted), and the CA that signs every node's certificate. Needed when
  /// CLUSTER_HOST is beyond loopback; with them a node talks only to peers the CA signed.
  std::string cluster_tls_cert;
  std::string cluster_tls_key;
  std::string cluster_tls_ca;
  /// The leader lease's length; a new leader within twice this after the old one stops.
  uint32_t cluster_lease_seconds = 5;

  config();
};

/// Looks up an environment variable; returns nullopt when unset.
using env_lookup = std::function<std::optional<std::string>(const std::string&)>;

/// The process environment.
env_lookup process_environment();

/// One configuration key as documented (env spelling, file spelling, default, rule).
struct config_key_info {
  /// QUEUE_PROCESSING_MODE
  std::string env_name;
  /// queue-processing-mode (the [lps] file and --lps.<key> CLI spelling)
  std::string file_name;
  std::string rule;
  bool is_secret = false;
};

/// Every key lps reads.
const std::vector<config_key_info>& config_keys();

/// Sets one key (file spelling or env spelling) from text; returns an error line naming
/// the key, the value and what is allowed, or "" on success. Secrets are never echoed.
std::string set_config_value(config& cfg, const std::string& key, const std::string& value);

/// Reads every LLM_PROVIDER_SERVICE_<KEY> variable (and the bare <PROVIDER>_API_KEY ones,
/// which the prefixed spelling overrides); returns one error line per bad value.
std::vector<std::string> apply_environment(config& cfg, const env_lookup& env);

/// 127.x.y.z, ::1 or localhost: only this machine can connect.
bool is_loopback_host(const std::string& host);

/// 0.0.0.0, :: or [::]: a bind to every interface, an address nobody can dial.
bool is_wildcard_host(const std::string& host);

/// The host other cluster nodes dial to reach this one's middleman: CLUSTER_ADVERTISE_HOST,
/// else CLUSTER_HOST.
std::string cluster_dial_host(const config& cfg);

/// All three of CLUSTER_TLS_CERT, CLUSTER_TLS_KEY and CLUSTER_TLS_CA are set: the nodes talk
/// over mutual TLS (validate() refuses one or two of them).
bool cluster_tls_configured(const config& cfg);

/// Cross-field checks after all sources were applied; one error line per problem.
std::vector<std::string> validate(const config& cfg);

/// One key of the effective configuration as operators see it.
struct shown_setting {
  /// QUEUE_PROCESSING_MODE
  std::string env_name;
  /// queue-processing-mode
  std::string file_name;
  /// The value as text; a secret shows "***" when set and "" when not (POSTGRES_URL: the URL
  /// with its password masked).
  std::string value;
  bool is_secret = false;
};

/// Every key with its value, secrets masked, in the order of config_keys(): the one view of
/// the configuration that --dump-config and GET /api/v1/config both print.
std::vector<shown_setting> shown_settings(const config& cfg);

/// The effective configuration as "key = value" lines, secrets masked (shown_settings).
std::string dump(const config& cfg);

/// Connections the provider HTTP pool may open per provider host: the larger of
/// PROVIDER_MAX_CONNECTIONS_PER_HOST and the most HTTP calls one provider may have in flight
/// (its <PROVIDER>_MAX_CONCURRENT_CALLS bundles x the items a bundle holds, each its own call),
/// so a call the concurrency limit lets through never queues for a connection.
size_t provider_connections_per_host(const config& cfg);

/// A Markdown table of every key: environment name, file key, default, rule.
std::string describe_keys();

/// Extracts lps' own command-line options (--lps.<key>=v, --<key>=v for known keys,
/// --dump-config) from argv. The rest goes to CAF (scheduler.*, --config-file, --help).
struct cli_split {
  std::vector<std::pair<std::string, std::string>> lps_options;
  std::vector<std::string> caf_args;
  bool dump_config = false;
  /// --help-config: print describe_keys() and exit.
  bool help_config = false;
  std::vector<std::string> errors;
};
cli_split split_command_line(int argc, const char* const* argv);

} // namespace lps
