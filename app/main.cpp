// lps: the composition root. Reads the configuration, opens the store, spawns the actor
// topology, serves HTTP, and shuts down in order on SIGINT or SIGTERM.

#include "app/cluster_member.hpp"
#include "app/cluster_transport.hpp"
#include "app/cluster_route.hpp"
#include "app/node_identity.hpp"
#include "app/http_api.hpp"
#include "app/topology.hpp"
#include "runtime/address_guard.hpp"
#include "runtime/api_keys.hpp"
#include "runtime/batch_job_store.hpp"
#include "runtime/cancel_relay.hpp"
#include "runtime/cluster_status.hpp"
#include "runtime/cluster_tls_files.hpp"
#include "runtime/pg_batch_job_store.hpp"
#include "runtime/data_dir_lock.hpp"
#include "runtime/config.hpp"
#include "runtime/http_client.hpp"
#include "runtime/http_server.hpp"
#include "runtime/logging.hpp"
#include "app/gateway_routes.hpp"
#include "runtime/model_manifest.hpp"
#include "runtime/pg_schema.hpp"
#include "runtime/pg_store.hpp"
#include "runtime/store.hpp"
#include "runtime/store_reader.hpp"
#include "runtime/system_config.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <span>
#include <string_view>
#include <sstream>

using namespace lps;

namespace {

// Blocks SIGINT and SIGTERM in every thread (threads inherit the mask), so only the main
// thread's sigwait sees them and shutdown runs in one known place.
sigset_t block_shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// The model manifest: a missing file leaves /api/v1/models empty (with a warning); a broken
// one refuses to start, since its prices feed every cost estimate.
bool read_manifest(const std::string& path, model_manifest& out, std::string& error,
                   const std::shared_ptr<spdlog::logger>& log) {
  std::ifstream in{path};
  if (!in) {
    LPS_LOG_WARN(log,
                 "model manifest {} not found; /api/v1/models lists no models and costs "
                 "are 0",
                 path);
    return true;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  if (!parse_model_manifest(buf.str(), out, error)) {
    error = path + ": " + error;
    return false;
  }
  return true;
}

// Every variable name of the process environment.
std::vector<std::string> environment_names() {
  std::vector<std::string> result;
  for (char** x = environ; *x != nullptr; ++x) {
    std::string entry = *x;
    result.push_back(entry.substr(0, entry.find('=')));
  }
  return result;
}

// Unknown LLM_PROVIDER_SERVICE_* variables refuse to start like unknown keys; ignored
// settings are printed once, before anything else runs.
void check_names(startup& start) {
  auto env = check_environment_names(environment_names());
  start.errors.insert(start.errors.end(), env.errors.begin(), env.errors.end());
  start.warnings.insert(start.warnings.end(), env.warnings.begin(), env.warnings.end());
  for (const auto& line : start.warnings)
    std::fprintf(stderr, "lps: warning: %s\n", line.c_str());
}

int fail(const std::vector<std::string>& errors) {
  for (const auto& line : errors)
    std::fprintf(stderr, "lps: %s\n", line.c_str());
  std::fprintf(stderr, "lps: refusing to start (see --dump-config and README.md)\n");
  return 2;
}

// The CLUSTER_TLS_* files of a cluster node, read and matched before anything starts: CAF
// reads them only when the first connection between nodes opens, and fails there.
std::vector<std::string> cluster_tls_errors(const config& cfg) {
  if (!cfg.cluster_enabled || !cluster_tls_configured(cfg))
    return {};
  return check_cluster_tls_files(cluster_tls_files_of(cfg));
}

api_context make_api_context(caf::actor_system& sys, const config& cfg, topology actors, store* db,
                             std::string manifest) {
  api_context ctx;
  ctx.sys = &sys;
  ctx.actors = std::move(actors);
  ctx.db = db;
  ctx.cfg = cfg;
  ctx.model_manifest_json = std::move(manifest);
  ctx.limits.max_batch_items = cfg.bulk_max_requests;
  ctx.timeout = std::chrono::milliseconds{cfg.actor_request_timeout_ms};
  return ctx;
}

http_server_options server_options(const config& cfg) {
  http_server_options result;
  result.host = cfg.http_host;
  result.port = cfg.http_port;
  result.io_threads = cfg.http_io_threads;
  result.max_body_bytes = cfg.http_max_body_bytes;
  result.max_body_setting = "HTTP_MAX_BODY_BYTES";
  result.route_body_limits = {
      {"POST", "/api/v1/comparisons", cfg.http_max_bulk_body_bytes, "HTTP_MAX_BULK_BODY_BYTES", {}},
      {"POST", "/v1/chat/completions", cfg.http_max_body_bytes, "HTTP_MAX_BODY_BYTES",
       gateway_too_large_body}};
  result.tls_cert_file = cfg.http_tls_cert;
  result.tls_key_file = cfg.http_tls_key;
  result.read_timeout = std::chrono::milliseconds{cfg.http_read_timeout_ms};
  result.idle_timeout = std::chrono::milliseconds{cfg.http_idle_timeout_ms};
  result.max_connections = cfg.http_max_connections;
  return result;
}

void announce(const char* what, const config& cfg, uint16_t port) {
  std::printf("lps %s %s://%s:%u\n", what, cfg.http_tls_cert.empty() ? "http" : "https",
              cfg.http_host.c_str(), unsigned{port});
  std::fflush(stdout);
}

// The store STORE_BACKEND names: the SQLite file in DATA_DIR, or the PostgreSQL database of
// POSTGRES_URL (migrated to this binary's schema first).
std::unique_ptr<store> open_store(const config& cfg, std::string& error) {
  auto retention =
      std::chrono::duration<double, std::milli>(cfg.result_retention_days * 86'400'000);
  store_options options{.data_dir = cfg.data_dir,
                        .fsync_every_commit = cfg.store_fsync,
                        .result_retention =
                            std::chrono::round<std::chrono::milliseconds>(retention)};
  if (cfg.store_backend == "postgres")
    return open_postgres_store(cfg.postgres_url.reveal(), options, error);
  return store::open(options, error);
}

// The batch job store in the same backend as the store: DATA_DIR's lps.db, or the
// PostgreSQL database of POSTGRES_URL (migrated already by open_store).
std::unique_ptr<batch_job_store> open_batch_job_store(const config& cfg, std::string& error) {
  if (cfg.store_backend == "postgres")
    return open_postgres_batch_job_store(cfg.postgres_url.reveal(), error);
  return batch_job_store::open({cfg.data_dir, cfg.store_fsync}, error);
}

int run(system_config& sys_cfg, const config& cfg, const sigset_t& signals) {
  auto log = get_logger("main");
  std::string error;
  auto lock = data_dir_lock::acquire(cfg.data_dir, error);
  if (!lock.held()) {
    std::fprintf(stderr, "lps: %s\n", error.c_str());
    return 2;
  }
  auto db = open_store(cfg, error);
  if (!db) {
    std::fprintf(stderr, "lps: cannot open the store: %s\n", error.c_str());
    // An unreachable or refusing database is a setting to fix, like a bad value.
    return cfg.store_backend == "postgres" ? 2 : 1;
  }
  // Each reader thread also reads the batch job store (its routes, the console) through a
  // connection of its own: the writer's connection (one mutex) is held for each write of
  // the batch jobs actors.
  auto reads = store_reader::start(
      {.threads = cfg.store_reader_threads},
      [&db](std::string& why) { return db->open_reader(why); }, error,
      [&cfg](std::string& why) { return open_batch_job_store(cfg, why); });
  if (!reads) {
    std::fprintf(stderr, "lps: cannot open the store's reader connections: %s\n", error.c_str());
    return cfg.store_backend == "postgres" ? 2 : 1;
  }
  auto jobs_db = open_batch_job_store(cfg, error);
  if (!jobs_db) {
    std::fprintf(stderr, "lps: cannot open the batch job store: %s\n", error.c_str());
    return cfg.store_backend == "postgres" ? 2 : 1;
  }
  model_manifest manifest;
  if (!read_manifest(cfg.model_manifest, manifest, error, log)) {
    std::fprintf(stderr, "lps: MODEL_MANIFEST %s\n", error.c_str());
    return 2;
  }
  api_keys keys;
  if (!cfg.api_keys_file.empty() && !api_keys::load(cfg.api_keys_file, keys, error)) {
    std::fprintf(stderr, "lps: API_KEYS_FILE %s\n", error.c_str());
    return 2;
  }
  if (!cfg.provider_ca_file.empty() && !std::ifstream{cfg.provider_ca_file}) {
    std::fprintf(stderr, "lps: PROVIDER_CA_FILE '%s' cannot be read\n",
                 cfg.provider_ca_file.c_str());
    return 2;
  }
  // The callback target guard checks every resolved address right before connecting.
  http_client_options callback_options;
  callback_options.address_filter = [allow = cfg.callback_allow_private](const std::string& ip) {
    return callback_target_refusal(ip, allow);
  };
  http_client callback_client{callback_options};
  http_client_options provider_options;
  provider_options.max_connections_per_origin = provider_connections_per_host(cfg);
  provider_options.ca_file = cfg.provider_ca_file;
  http_client provider_client{provider_options};
  // Cluster nodes reach each other through CAF's middleman (docs/cluster.md).
  if (cfg.cluster_enabled)
    load_cluster_transport(sys_cfg, cluster_tls_files_of(cfg));
  caf::actor_system sys{sys_cfg};
  auto streams = std::make_shared<inspect_stream_hub>();
  auto actors = spawn_topology(
      sys, cfg, db.get(), reads.get(), &callback_client, &provider_client, manifest, jobs_db.get(),
      [streams](const inspection_snapshot& snapshot) { streams->publish(snapshot); });
  auto ctx =
      std::make_shared<api_context>(make_api_context(sys, cfg, actors, db.get(), manifest.json));
  ctx->inspect_streams = streams;
  ctx->reads = reads.get();
  ctx->keys = std::move(keys);
  ctx->gateway = make_gateway_context(cfg, manifest, actors.gate, &provider_client);
  ctx->starting->store(true);
  http_server server;
  auto handler = [ctx](http_request&& req, http_responder respond) {
    handle_http(*ctx, std::move(req), std::move(respond));
  };
  if (!server.start(server_options(cfg), handler, error)) {
    std::fprintf(stderr, "lps: cannot serve HTTP on %s:%u: %s\n", cfg.http_host.c_str(),
                 unsigned{cfg.http_port}, error.c_str());
    shutdown_topology(sys, actors, std::chrono::seconds{0});
    return 1;
  }
  // Two lines on stdout that scripts and tests read to find the port (HTTP_PORT=0): the port
  // answers "starting" at once, and serves once the queue manager recovered the store.
  announce("starting on", cfg, server.port());
  await_recovery(sys, actors, std::chrono::milliseconds{cfg.actor_request_timeout_ms});
  std::unique_ptr<cluster_member> member;
  // Cluster mode: cancels asked here are recorded for the leader (docs/cluster.md).
  std::unique_ptr<cluster::cancel_relay> cancels;
  if (cfg.cluster_enabled) {
    member = cluster_member::join({&sys, &cfg, db.get(), &actors, &callback_client,
                                   &provider_client, &manifest, jobs_db.get()},
                                  error);
    if (!member) {
      std::fprintf(stderr, "lps: %s\n", error.c_str());
      server.stop();
      shutdown_topology(sys, actors, std::chrono::seconds{0});
      return 2;
    }
    ctx->cluster_answer = [m = member.get()] { return cluster_response(m->view()); };
    ctx->cluster_node = member->node();
    ctx->cluster_nodes = [m = member.get()] { return m->peers(); };
    cancels = cluster::cancel_relay::start(
        {cfg.postgres_url.reveal(), member->view().self, std::chrono::seconds{5}}, error);
    if (!cancels) {
      std::fprintf(stderr, "lps: cannot record cancels in the store: %s\n", error.c_str());
      server.stop();
      member.reset();
      shutdown_topology(sys, actors, std::chrono::seconds{0});
      return 2;
    }
    ctx->cancel_relay = cancels.get();
  }
  // The inspection views list the cluster's nodes from its last tick (no I/O).
  streams->set_nodes([m = member.get()] {
    return node_directory_of(m != nullptr ? std::optional{m->view()} : std::nullopt);
  });
  ctx->starting->store(false);
  announce("listening on", cfg, server.port());
  LPS_LOG_INFO(log, "lps serving on {}:{} (mode {}, store {})", cfg.http_host, server.port(),
               to_string(cfg.processing_mode), db->path());
  if (auto warning = mock_default_warning(cfg); !warning.empty())
    LPS_LOG_WARN(log, "{}", warning);
  int sig = 0;
  sigwait(&signals, &sig);
  LPS_LOG_INFO(log, "lps received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  if (member) {
    // No new request is stored here from now on; a leader finishes its bundles in flight and
    // hands the lease on (docs/cluster.md).
    caf::anon_send(actors.intake, atom::stop_v);
    member->leave(std::chrono::seconds{cfg.shutdown_grace_seconds});
  }
  shutdown_topology(sys, actors, std::chrono::seconds{cfg.shutdown_grace_seconds});
  // The inspector is told to exit but may still publish a snapshot: from here it no longer
  // asks the member, which ends with this function.
  streams->set_nodes({});
  server.stop();
  cancels.reset(); // after the server: no route asks it any more
  // After the server: no route posts a read any more; reads still queued answer 503.
  reads->stop();
  callback_client.stop();
  provider_client.stop();
  db->flush();
  LPS_LOG_INFO(log, "lps stopped");
  return 0;
}

// `lps migrate --check`: the PostgreSQL store's schema version against this binary's.
// Exit 0: current; 1: behind (lps migrates it at start); 2: newer, unreachable, or not a
// PostgreSQL store.
int check_migrations(const config& cfg) {
  if (cfg.store_backend != "postgres") {
    std::fprintf(stderr, "lps: migrate --check reads a PostgreSQL store (STORE_BACKEND=postgres); "
                         "a SQLite store is migrated when lps opens it\n");
    return 2;
  }
  std::string error;
  auto db = pg::connection::open(cfg.postgres_url.reveal(), std::chrono::seconds{10}, error);
  if (!db) {
    std::fprintf(stderr, "lps: %s\n", error.c_str());
    return 2;
  }
  auto report = pg::read_schema_version(*db);
  if (!report.error.empty()) {
    std::fprintf(stderr, "lps: %s\n", report.error.c_str());
    return 2;
  }
  bool current = report.before == pg::binary_schema_version();
  std::printf("schema version %d, this lps knows %d: %s\n", report.before,
              pg::binary_schema_version(),
              current ? "current" : "behind (lps applies the missing migrations when it starts)");
  return current ? 0 : 1;
}

// `lps cluster --status`: the leader lease and the registered nodes in the PostgreSQL store,
// live when their heartbeat is newer than CLUSTER_LEASE_SECONDS. Exit 0; 2 when the store is
// not PostgreSQL, cannot be reached, or has no cluster tables.
int print_cluster_status(const config& cfg) {
  if (cfg.store_backend != "postgres") {
    std::fprintf(stderr,
                 "lps: cluster --status reads a PostgreSQL store (STORE_BACKEND=postgres)\n");
    return 2;
  }
  std::string error;
  std::string text;
  auto db = pg::connection::open(cfg.postgres_url.reveal(), std::chrono::seconds{10}, error);
  if (!db
      || !cluster::read_status(*db, std::chrono::seconds{cfg.cluster_lease_seconds}, text, error)) {
    std::fprintf(stderr, "lps: %s\n", error.c_str());
    return 2;
  }
  std::fputs(text.c_str(), stdout);
  return 0;
}

// Takes `<command> <flag>` (`migrate --check`, `cluster --status`) off the front of the
// command line; the rest is read as for a start. Sets `usage_error` when `command` comes
// without `flag`.
bool take_subcommand(int& argc, char**& argv, std::string_view command, std::string_view flag,
                     bool& usage_error) {
  if (argc < 2 || std::string_view{argv[1]} != command)
    return false;
  usage_error = argc < 3 || std::string_view{argv[2]} != flag;
  if (usage_error)
    return true;
  // argv[0] stays the program name.
  argv[2] = argv[0];
  argv += 2;
  argc -= 2;
  return true;
}

} // namespace

int main(int argc, char** argv) {
  auto signals = block_shutdown_signals();
  system_config sys_cfg;
  // Before CAF sees them: CAF's own help text misnames the default config file.
  for (std::string_view arg : std::span{argv + 1, argv + argc})
    if (arg == "--help" || arg == "-h" || arg == "-?" || arg == "--long-help") {
      std::fputs(sys_cfg.help_text(arg == "--long-help").c_str(), stdout);
      return 0;
    }
  bool usage_error = false;
  bool migrate_check = take_subcommand(argc, argv, "migrate", "--check", usage_error);
  if (usage_error) {
    std::fprintf(stderr, "lps: usage: lps migrate --check [configuration options]\n");
    return 2;
  }
  bool cluster_status = take_subcommand(argc, argv, "cluster", "--status", usage_error);
  if (usage_error) {
    std::fprintf(stderr, "lps: usage: lps cluster --status [configuration options]\n");
    return 2;
  }
  auto start = load_startup(sys_cfg, argc, argv, process_environment());
  if (start.help_printed)
    return 0;
  if (start.help_config) {
    std::fputs(describe_keys().c_str(), stdout);
    return 0;
  }
  check_names(start);
  if (!start.errors.empty())
    return fail(start.errors);
  if (start.dump_config) {
    std::fputs(dump(start.cfg).c_str(), stdout);
    return 0;
  }
  if (migrate_check)
    return check_migrations(start.cfg);
  if (cluster_status)
    return print_cluster_status(start.cfg);
  if (auto errors = cluster_tls_errors(start.cfg); !errors.empty())
    return fail(errors);
  setup_logging(start.cfg.log_level);
  auto rc = run(sys_cfg, start.cfg, signals);
  shutdown_logging();
  return rc;
}
