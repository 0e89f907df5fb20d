// Configuration: defaults, bounds, bad values, precedence, secrets never echoed.

#include "runtime/config.hpp"
#include "runtime/system_config.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

using namespace lps;

namespace {

env_lookup fake_env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    if (auto i = vars.find(name); i != vars.end())
      return i->second;
    return std::nullopt;
  };
}

std::vector<char*> make_argv(std::vector<std::string>& args) {
  std::vector<char*> result;
  for (auto& x : args)
    result.push_back(x.data());
  return result;
}

} // namespace

TEST_CASE("defaults match the contract") {
  config cfg;
  CHECK(cfg.processing_mode == queue_processing_mode::serial_bundle);
  CHECK(cfg.serial_bundle_max_requests_per_call == 4);
  CHECK(cfg.openai_batch_api_mode == batch_api_mode::disabled);
  CHECK(cfg.anthropic_batch_api_mode == batch_api_mode::disabled);
  CHECK(cfg.http_host == "127.0.0.1");
  CHECK(cfg.http_port == 8090);
  CHECK(cfg.data_dir == "./var");
  CHECK(cfg.default_llm_provider == "mock");
  CHECK(cfg.mock.seed == 42);
  CHECK(cfg.mock.error_codes == std::vector<int32_t>{429, 503, 500});
  CHECK(cfg.providers.at("openai").base_url == "https://api.openai.com/v1");
  CHECK(cfg.providers.at("anthropic").base_url == "https://api.anthropic.com");
  CHECK(validate(cfg).empty());
}

TEST_CASE("bundle size is bounded 1 to 64") {
  config cfg;
  CHECK(set_config_value(cfg, "serial-bundle-max-requests-per-call", "1").empty());
  CHECK(cfg.serial_bundle_max_requests_per_call == 1);
  CHECK(set_config_value(cfg, "SERIAL_BUNDLE_MAX_REQUESTS_PER_CALL", "64").empty());
  CHECK(cfg.serial_bundle_max_requests_per_call == 64);
  auto err = set_config_value(cfg, "serial-bundle-max-requests-per-call", "65");
  CHECK(err.find("SERIAL_BUNDLE_MAX_REQUESTS_PER_CALL") != std::string::npos);
  CHECK(err.find("'65'") != std::string::npos);
  CHECK(err.find("1..64") != std::string::npos);
  CHECK_FALSE(set_config_value(cfg, "serial-bundle-max-requests-per-call", "0").empty());
  CHECK_FALSE(set_config_value(cfg, "serial-bundle-max-requests-per-call", "four").empty());
  CHECK(cfg.serial_bundle_max_requests_per_call == 64);
}

TEST_CASE("enums accept only their values") {
  config cfg;
  CHECK(set_config_value(cfg, "queue-processing-mode", "per_request").empty());
  CHECK(cfg.processing_mode == queue_processing_mode::per_request);
  CHECK(set_config_value(cfg, "queue-processing-mode", "batch_api").empty());
  auto err = set_config_value(cfg, "queue-processing-mode", "parallel");
  CHECK(err.find("per_request, serial_bundle, batch_api") != std::string::npos);
  CHECK(set_config_value(cfg, "openai-batch-api-mode", "nightly").empty());
  CHECK(cfg.openai_batch_api_mode == batch_api_mode::nightly);
  CHECK_FALSE(set_config_value(cfg, "anthropic-batch-api-mode", "sometimes").empty());
  CHECK_FALSE(set_config_value(cfg, "default-llm-provider", "acme").empty());
  CHECK_FALSE(set_config_value(cfg, "no-such-key", "1").empty());
}

TEST_CASE("secrets are masked in dumps and errors") {
  config cfg;
  CHECK(set_config_value(cfg, "OPENAI_API_KEY", "sk-very-secret").empty());
  CHECK(cfg.providers.at("openai").api_key.reveal() == "sk-very-secret");
  auto text = dump(cfg);
  CHECK(text.find("sk-very-secret") == std::string::npos);
  CHECK(text.find("openai-api-key = ***") != std::string::npos);
  CHECK(text.find("anthropic-api-key = \n") != std::string::npos);
}

TEST_CASE("environment overrides and bare provider keys") {
  config cfg;
  auto errors = apply_environment(
      cfg, fake_env({{"LLM_PROVIDER_SERVICE_QUEUE_PROCESSING_MODE", "per_request"},
                     {"LLM_PROVIDER_SERVICE_MOCK_ERROR_CODES", "500, 502"},
                     {"ANTHROPIC_API_KEY", "bare"},
                     {"OPENAI_API_KEY", "bare-openai"},
                     {"LLM_PROVIDER_SERVICE_OPENAI_API_KEY", "prefixed"}}));
  CHECK(errors.empty());
  CHECK(cfg.processing_mode == queue_processing_mode::per_request);
  CHECK(cfg.mock.error_codes == std::vector<int32_t>{500, 502});
  CHECK(cfg.providers.at("anthropic").api_key.reveal() == "bare");
  CHECK(cfg.providers.at("openai").api_key.reveal() == "prefixed");
  auto bad = apply_environment(cfg, fake_env({{"LLM_PROVIDER_SERVICE_MOCK_ERROR_RATE", "2"}}));
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].find("MOCK_ERROR_RATE") != std::string::npos);
}

TEST_CASE("file then environment then command line") {
  auto path = std::string{"/tmp/lps-config-test-"} + std::to_string(::getpid()) + ".ini";
  {
    std::ofstream out{path};
    out << "[lps]\nserial-bundle-max-requests-per-call=8\nqueue-processing-mode=\"per_request\"\n"
           "mock-latency-ms=5\nhttp-port=9000\n";
  }
  std::vector<std::string> args{"lps", "--config-file=" + path, "--lps.http-port=9100",
                                "--mock-latency-ms=7"};
  auto argv = make_argv(args);
  system_config sys_cfg;
  auto result =
      load_startup(sys_cfg, static_cast<int>(argv.size()), argv.data(),
                   fake_env({{"LLM_PROVIDER_SERVICE_HTTP_PORT", "9050"},
                             {"LLM_PROVIDER_SERVICE_MOCK_LATENCY_MS", "6"},
                             {"LLM_PROVIDER_SERVICE_QUEUE_PROCESSING_MODE", "serial_bundle"}}));
  std::remove(path.c_str());
  INFO((result.errors.empty() ? "" : result.errors.front()));
  REQUIRE(result.errors.empty());
  CHECK(result.cfg.serial_bundle_max_requests_per_call == 8);                // file
  CHECK(result.cfg.processing_mode == queue_processing_mode::serial_bundle); // env over file
  CHECK(result.cfg.http_port == 9100);                                       // CLI over env
  CHECK(result.cfg.mock.latency_ms == 7);                                    // CLI
}

TEST_CASE("a bad value in the file refuses to start with a clear line") {
  auto path = std::string{"/tmp/lps-config-bad-"} + std::to_string(::getpid()) + ".ini";
  {
    std::ofstream out{path};
    out << "[lps]\nserial-bundle-max-requests-per-call=100\nbogus-key=1\n";
  }
  std::vector<std::string> args{"lps", "--config-file=" + path, "--dump-config"};
  auto argv = make_argv(args);
  system_config sys_cfg;
  auto result = load_startup(sys_cfg, static_cast<int>(argv.size()), argv.data(), fake_env({}));
  std::remove(path.c_str());
  CHECK(result.dump_config);
  REQUIRE(result.errors.size() == 2);
  CHECK(result.errors[0].find("bogus-key") != std::string::npos);
  CHECK(result.errors[1].find("'100'") != std::string::npos);
}

TEST_CASE("unknown lps command-line options are errors") {
  auto split = split_command_line(
      3, std::array<const char*, 3>{"lps", "--lps.nope=1", "--scheduler.max-threads=1"}.data());
  REQUIRE(split.errors.size() == 1);
  CHECK(split.caf_args == std::vector<std::string>{"--scheduler.max-threads=1"});
}

TEST_CASE("result retention is 30 days by default and takes fractions and 0") {
  config cfg;
  CHECK(cfg.result_retention_days == 30); // CONTRACTS.md section 6
  CHECK(set_config_value(cfg, "RESULT_RETENTION_DAYS", "0.0001").empty());
  CHECK(cfg.result_retention_days == 0.0001);
  CHECK(set_config_value(cfg, "result-retention-days", "0").empty());
  CHECK(cfg.result_retention_days == 0);
  auto err = set_config_value(cfg, "RESULT_RETENTION_DAYS", "-1");
  CHECK_THAT(err, Catch::Contains("RESULT_RETENTION_DAYS") && Catch::Contains("0: kept forever"));
  CHECK_FALSE(set_config_value(cfg, "RESULT_RETENTION_DAYS", "36501").empty());
}

TEST_CASE("front door keys: defaults, bounds and the mock guard") {
  config cfg;
  CHECK(cfg.mock_allowed);
  CHECK(cfg.http_max_bulk_body_bytes == 67'108'864); // 64 MiB, CONTRACTS.md section 6
  CHECK(cfg.bulk_max_requests == 10'000);
  CHECK_FALSE(cfg.dedupe_by_correlation_id);
  CHECK(set_config_value(cfg, "MOCK_ALLOWED", "false").empty());
  CHECK_FALSE(cfg.mock_allowed);
  CHECK(set_config_value(cfg, "http-max-bulk-body-bytes", "2048").empty());
  CHECK(cfg.http_max_bulk_body_bytes == 2048);
  CHECK(set_config_value(cfg, "BULK_MAX_REQUESTS", "0").find("1..1000000") != std::string::npos);
  CHECK(cfg.bulk_max_requests == 10'000);
}

TEST_CASE("an HTTP_HOST beyond loopback needs API_KEYS_FILE or ALLOW_UNAUTHENTICATED") {
  CHECK(is_loopback_host("127.0.0.1"));
  CHECK(is_loopback_host("127.1.2.3"));
  CHECK(is_loopback_host("localhost"));
  CHECK(is_loopback_host("::1"));
  CHECK_FALSE(is_loopback_host("0.0.0.0"));
  CHECK_FALSE(is_loopback_host("10.0.0.5"));
  config cfg;
  CHECK(validate(cfg).empty());
  cfg.http_host = "0.0.0.0";
  auto errors = validate(cfg);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("API_KEYS_FILE") != std::string::npos);
  CHECK(errors[0].find("ALLOW_UNAUTHENTICATED=true") != std::string::npos);
  cfg.allow_unauthenticated = true;
  CHECK(validate(cfg).empty());
  cfg.allow_unauthenticated = false;
  cfg.api_keys_file = "/etc/lps/keys";
  CHECK(validate(cfg).empty());
}

TEST_CASE("ADMIN_TOKEN is a secret read only with the prefix") {
  config cfg;
  auto errors = apply_environment(cfg, fake_env({{"ADMIN_TOKEN", "bare-token"}}));
  CHECK(errors.empty());
  CHECK(cfg.admin_token.empty());
  apply_environment(cfg, fake_env({{"LLM_PROVIDER_SERVICE_ADMIN_TOKEN", "t0ken"}}));
  CHECK(cfg.admin_token.reveal() == "t0ken");
  CHECK(dump(cfg).find("admin-token = ***") != std::string::npos);
  CHECK(dump(cfg).find("t0ken") == std::string::npos);
}

TEST_CASE("HTTP_TLS_CERT and HTTP_TLS_KEY go together") {
  config cfg;
  cfg.http_tls_cert = "cert.pem";
  REQUIRE(validate(cfg).size() == 1);
  CHECK(validate(cfg)[0].find("HTTP_TLS_KEY") != std::string::npos);
  cfg.http_tls_key = "key.pem";
  CHECK(validate(cfg).empty());
}

namespace {

// load_startup on a config file with `text`, plus `extra` arguments.
startup load_file(const std::string& text, std::vector<std::string> extra = {}) {
  auto path = std::string{"/tmp/lps-config-words-"} + std::to_string(::getpid()) + ".ini";
  std::ofstream{path} << text;
  std::vector<std::string> args{"lps", "--config-file=" + path};
  args.insert(args.end(), extra.begin(), extra.end());
  auto argv = make_argv(args);
  system_config sys_cfg;
  auto result = load_startup(sys_cfg, static_cast<int>(argv.size()), argv.data(), fake_env({}));
  std::remove(path.c_str());
  return result;
}

} // namespace

TEST_CASE("config file errors say file, line and what is wrong in words") {
  auto result = load_file("[lps]\nhttp-port=8090\nqueue-processing-mode=serial_bundle\n");
  REQUIRE(result.errors.size() == 1);
  auto& line = result.errors[0];
  INFO(line);
  CHECK(line.find("config file /tmp/lps-config-words-") == 0);
  CHECK(line.find(".ini, line 3, column ") != std::string::npos);
  CHECK(line.find("unexpected character") != std::string::npos);
  CHECK(line.find("parser_error") == std::string::npos);
  CHECK(line.find("double quotes") != std::string::npos);
  auto cli = load_file("[lps]\n", {"--scheduler.max-threads=abc"});
  REQUIRE(cli.errors.size() == 1);
  CHECK(cli.errors[0]
        == "command line: --scheduler.max-threads=abc: unexpected character (the "
           "value does not fit the option)");
}

TEST_CASE("ignored sections and keys are warned about with the nearest valid name") {
  auto result = load_file("http-prot=9000\n[lpz]\nhttp-port=1\n[scheduler]\nmax-threadz=3\n"
                          "[lps]\nhttp-port=9001\n");
  CHECK(result.errors.empty());
  REQUIRE(result.warnings.size() == 3);
  CHECK(result.warnings[0]
        == "config file: http-prot outside a section is ignored (lps keys go "
           "in [lps]: did you mean [lps] http-port?)");
  CHECK(result.warnings[1]
        == "config file: unknown section [lpz] is ignored (did you mean [lps]?)");
  CHECK(result.warnings[2]
        == "config file: [scheduler] max-threadz is not an option and is "
           "ignored (did you mean max-threads?)");
  CHECK(result.cfg.http_port == 9001);
}

TEST_CASE("an unknown key in the lps section refuses to start, naming the nearest key") {
  auto result = load_file("[lps]\nhttp-prot=9000\nqueue-max-sise=10\nhttp-port=9001\n");
  REQUIRE(result.errors.size() == 2);
  CHECK(result.errors[0]
        == "config file [lps]: unknown configuration key 'http-prot' (did you mean http-port?)");
  CHECK(result.errors[1]
        == "config file [lps]: unknown configuration key 'queue-max-sise' (did you mean "
           "queue-max-size?)");
  // A known key with a bad value names the rule, not another key.
  auto bad = load_file("[lps]\nhttp-port=\"x\"\n");
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].find("did you mean") == std::string::npos);
}

TEST_CASE("a CAF option of the wrong type in the file refuses to start") {
  auto result = load_file("[scheduler]\nmax-threads=\"two\"\n");
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].find("config file: [scheduler] max-threads: invalid value two (expected")
        == 0);
  CHECK(load_file("[scheduler]\nmax-threads=3\n").errors.empty());
}

TEST_CASE("misspelled LLM_PROVIDER_SERVICE_ variables refuse, bare keys are said to be unread") {
  auto check = check_environment_names({"PATH", "LLM_PROVIDER_SERVICE_DATA_DIRR", "DATA_DIR",
                                        "OPENAI_API_KEY", "LLM_PROVIDER_SERVICE_HTTP_PORT"});
  REQUIRE(check.errors.size() == 1);
  CHECK(check.errors[0]
        == "environment: LLM_PROVIDER_SERVICE_DATA_DIRR is not an lps key (did "
           "you mean LLM_PROVIDER_SERVICE_DATA_DIR?)");
  REQUIRE(check.warnings.size() == 1);
  CHECK(check.warnings[0]
        == "environment: DATA_DIR is not read; lps reads LLM_PROVIDER_SERVICE_DATA_DIR");
}

TEST_CASE("a relative model manifest in the config file is found beside the config file") {
  auto folder =
      std::filesystem::temp_directory_path() / ("lps-config-dir-" + std::to_string(::getpid()));
  std::filesystem::create_directories(folder);
  auto path = (folder / "lps.ini").string();
  std::ofstream{path} << "[lps]\nmodel-manifest=\"models.json\"\n";
  auto load = [&](std::vector<std::string> args, std::map<std::string, std::string> env) {
    args.insert(args.begin(), {"lps", "--config-file=" + path});
    auto argv = make_argv(args);
    system_config sys_cfg;
    return load_startup(sys_cfg, static_cast<int>(argv.size()), argv.data(), fake_env(env));
  };
  CHECK(load({}, {}).cfg.model_manifest == (folder / "models.json").string());
  // From the environment or the command line: as given (relative to the working folder).
  CHECK(load({}, {{"LLM_PROVIDER_SERVICE_MODEL_MANIFEST", "m.json"}}).cfg.model_manifest
        == "m.json");
  CHECK(load({"--model-manifest=x/m.json"}, {}).cfg.model_manifest == "x/m.json");
  std::ofstream{path} << "[lps]\nmodel-manifest=\"/abs/models.json\"\n";
  CHECK(load({}, {}).cfg.model_manifest == "/abs/models.json");
  std::filesystem::remove_all(folder);
}

TEST_CASE("the callback signing secret is masked and read only with the prefix") {
  config cfg;
  CHECK(set_config_value(cfg, "CALLBACK_SIGNING_SECRET", " whsec-123 ").empty());
  CHECK(cfg.callback_signing_secret.reveal() == "whsec-123");
  auto text = dump(cfg);
  CHECK(text.find("callback-signing-secret = ***") != std::string::npos);
  CHECK(text.find("whsec-123") == std::string::npos);
  // Like ADMIN_TOKEN: only the provider keys are also read from their bare variables.
  config from_env;
  CHECK(
      apply_environment(from_env, fake_env({{"CALLBACK_SIGNING_SECRET", "bare-secret"}})).empty());
  CHECK(from_env.callback_signing_secret.empty());
  CHECK(apply_environment(from_env, fake_env({{"LLM_PROVIDER_SERVICE_CALLBACK_SIGNING_SECRET",
                                               "prefixed-secret"}}))
            .empty());
  CHECK(from_env.callback_signing_secret.reveal() == "prefixed-secret");
}

TEST_CASE("CALLBACK_ALLOW_PRIVATE defaults to true and takes a boolean") {
  config cfg;
  CHECK(cfg.callback_allow_private);
  CHECK(set_config_value(cfg, "CALLBACK_ALLOW_PRIVATE", "false").empty());
  CHECK_FALSE(cfg.callback_allow_private);
  CHECK(set_config_value(cfg, "CALLBACK_ALLOW_PRIVATE", "maybe").find("true or false")
        != std::string::npos);
}

TEST_CASE("the provider pool follows the concurrency limits") {
  config cfg;
  // The defaults: 64 bundles of up to 4 items, each item its own call.
  CHECK(provider_connections_per_host(cfg) == 256);
  for (auto& [name, p] : cfg.providers)
    p.max_concurrent_calls = 10;
  CHECK(provider_connections_per_host(cfg) == 64); // 10 bundles x 4 calls < 64
  cfg.providers["openai"].max_concurrent_calls = 4000;
  cfg.providers["anthropic"].max_concurrent_calls = 100;
  CHECK(provider_connections_per_host(cfg) == 16000); // 4000 bundles x 4 items, each a call
  cfg.processing_mode = lps::queue_processing_mode::per_request;
  CHECK(provider_connections_per_host(cfg) == 4000);
  cfg.provider_max_connections_per_host = 5000;
  CHECK(provider_connections_per_host(cfg) == 5000);
}

TEST_CASE("STORE_BACKEND is sqlite or postgres, and postgres needs a valid POSTGRES_URL") {
  config cfg;
  CHECK(cfg.store_backend == "sqlite");
  CHECK(set_config_value(cfg, "STORE_BACKEND", "mysql").find("one of sqlite, postgres")
        != std::string::npos);
  CHECK(set_config_value(cfg, "STORE_BACKEND", "postgres").empty());
  auto errors = validate(cfg);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("POSTGRES_URL is empty") != std::string::npos);

  CHECK(set_config_value(cfg, "POSTGRES_URL", "mysql://u:hunter2@db/lps").empty());
  errors = validate(cfg);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("postgresql://") != std::string::npos);
  CHECK(errors[0].find("hunter2") == std::string::npos);

  CHECK(
      set_config_value(cfg, "POSTGRES_URL", "postgresql://lps:hunter2@127.0.0.1:5432/lps").empty());
  CHECK(validate(cfg).empty());
}

TEST_CASE("POSTGRES_URL shows its password masked in dumps and never in errors") {
  config cfg;
  CHECK(set_config_value(cfg, "POSTGRES_URL", "postgresql://lps:hunter2@db:5432/lps").empty());
  auto text = dump(cfg);
  CHECK(text.find("postgres-url = postgresql://lps:***@db:5432/lps") != std::string::npos);
  CHECK(text.find("hunter2") == std::string::npos);
  CHECK(dump(config{}).find("postgres-url = \n") != std::string::npos);
}

TEST_CASE("STORE_BACKEND=postgres accepts provider batch jobs, which it holds too") {
  config cfg;
  cfg.store_backend = "postgres";
  cfg.postgres_url = secret{"postgresql://lps@127.0.0.1/lps"};
  cfg.processing_mode = queue_processing_mode::batch_api;
  cfg.openai_batch_api_mode = batch_api_mode::opportunistic;
  cfg.anthropic_batch_api_mode = batch_api_mode::nightly;
  CHECK(validate(cfg).empty());
  // The URL is still checked in batch_api mode.
  cfg.postgres_url = secret{"not a url"};
  auto errors = validate(cfg);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("POSTGRES_URL") != std::string::npos);
}

TEST_CASE("cluster keys: defaults as in the contract, and bounds") {
  config cfg;
  CHECK_FALSE(cfg.cluster_enabled);
  CHECK(cfg.cluster_node_name.empty()); // the host name
  CHECK(cfg.cluster_host == "127.0.0.1");
  CHECK(cfg.cluster_port == 0);
  CHECK(cfg.cluster_lease_seconds == 5);
  CHECK(set_config_value(cfg, "CLUSTER_NODE_NAME", "node-1").empty());
  CHECK(cfg.cluster_node_name == "node-1");
  CHECK(set_config_value(cfg, "cluster-port", "4101").empty());
  CHECK(cfg.cluster_port == 4101);
  CHECK(set_config_value(cfg, "CLUSTER_PORT", "65536").find("integer 0..65535")
        != std::string::npos);
  CHECK(set_config_value(cfg, "CLUSTER_LEASE_SECONDS", "0").find("integer 1..3600")
        != std::string::npos);
  CHECK(set_config_value(cfg, "CLUSTER_ENABLED", "maybe").find("true or false")
        != std::string::npos);
  CHECK(dump(cfg).find("cluster-lease-seconds = 5\n") != std::string::npos);
}

TEST_CASE("CLUSTER_ENABLED needs STORE_BACKEND=postgres and a loopback CLUSTER_HOST") {
  config cfg;
  cfg.cluster_enabled = true;
  auto errors = validate(cfg);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("CLUSTER_ENABLED=true needs STORE_BACKEND=postgres") != std::string::npos);
  CHECK(errors[0].find("STORE_BACKEND is sqlite") != std::string::npos);

  cfg.store_backend = "postgres";
  cfg.postgres_url = secret{"postgresql://lps@127.0.0.1/lps"};
  CHECK(validate(cfg).empty());
  cfg.cluster_host = "10.0.0.7";
  errors = validate(cfg);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("CLUSTER_HOST '10.0.0.7' is beyond loopback") != std::string::npos);

  cfg.cluster_enabled = false; // the cluster keys are not checked when it is off
  cfg.store_backend = "sqlite";
  CHECK(validate(cfg).empty());
}

TEST_CASE("a CLUSTER_HOST beyond loopback starts only with all three CLUSTER_TLS files set") {
  config cfg;
  cfg.cluster_enabled = true;
  cfg.store_backend = "postgres";
  cfg.postgres_url = secret{"postgresql://lps@127.0.0.1/lps"};
  cfg.cluster_host = "0.0.0.0";
  cfg.cluster_advertise_host = "10.0.0.7";
  auto errors = validate(cfg);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("CLUSTER_HOST '0.0.0.0' is beyond loopback, which needs mutual TLS")
        != std::string::npos);
  CHECK(errors[0].find("CLUSTER_TLS_CERT, CLUSTER_TLS_KEY and CLUSTER_TLS_CA")
        != std::string::npos);

  cfg.cluster_tls_cert = "/etc/lps/node.pem";
  cfg.cluster_tls_ca = "/etc/lps/ca.pem";
  CHECK_FALSE(cluster_tls_configured(cfg));
  errors = validate(cfg);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].find("go together: set all three or none (missing: CLUSTER_TLS_KEY)")
        != std::string::npos);
  CHECK(errors[1].find("is beyond loopback") != std::string::npos);

  cfg.cluster_tls_key = "/etc/lps/node.key";
  CHECK(cluster_tls_configured(cfg));
  CHECK(validate(cfg).empty());

  // Half a TLS set is refused even with the cluster off or on loopback: it is a mistake.
  cfg.cluster_tls_ca.clear();
  cfg.cluster_enabled = false;
  errors = validate(cfg);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("(missing: CLUSTER_TLS_CA)") != std::string::npos);
}

TEST_CASE("a CLUSTER_HOST that binds every interface needs CLUSTER_ADVERTISE_HOST, which the "
          "other nodes dial") {
  config cfg;
  cfg.cluster_enabled = true;
  cfg.store_backend = "postgres";
  cfg.postgres_url = secret{"postgresql://lps@127.0.0.1/lps"};
  cfg.cluster_tls_cert = "/etc/lps/node.pem";
  cfg.cluster_tls_key = "/etc/lps/node.key";
  cfg.cluster_tls_ca = "/etc/lps/ca.pem";
  CHECK(cluster_dial_host(cfg) == "127.0.0.1");
  for (auto wildcard : {"0.0.0.0", "::", "[::]"}) {
    cfg.cluster_host = wildcard;
    auto errors = validate(cfg);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].find("binds every interface, which no other node can dial: set "
                         "CLUSTER_ADVERTISE_HOST")
          != std::string::npos);
  }
  CHECK(set_config_value(cfg, "cluster-advertise-host", "10.0.0.7").empty());
  CHECK(validate(cfg).empty());
  CHECK(cluster_dial_host(cfg) == "10.0.0.7");
  CHECK(dump(cfg).find("cluster-advertise-host = 10.0.0.7\n") != std::string::npos);
  // An advertised wildcard is as undialable as a bound one.
  cfg.cluster_advertise_host = "0.0.0.0";
  CHECK(validate(cfg).size() == 1);
  // Off, the key is only a string.
  cfg.cluster_enabled = false;
  CHECK(validate(cfg).empty());
}

TEST_CASE("the CLUSTER_TLS keys are paths: --dump-config shows the paths, empty by default") {
  config cfg;
  CHECK(dump(cfg).find("cluster-tls-cert = \n") != std::string::npos);
  CHECK(set_config_value(cfg, "CLUSTER_TLS_KEY", " /etc/lps/node.key ").empty());
  CHECK(set_config_value(cfg, "cluster-tls-ca", "/etc/lps/ca.pem").empty());
  CHECK(cfg.cluster_tls_key == "/etc/lps/node.key");
  CHECK(dump(cfg).find("cluster-tls-key = /etc/lps/node.key\n") != std::string::npos);
  CHECK(dump(cfg).find("cluster-tls-ca = /etc/lps/ca.pem\n") != std::string::npos);
}

TEST_CASE("STORE_READER_THREADS is 2 by default and takes 1 to 64") {
  config cfg;
  CHECK(cfg.store_reader_threads == 2);
  CHECK(set_config_value(cfg, "STORE_READER_THREADS", "0").find("integer 1..64")
        != std::string::npos);
  CHECK(set_config_value(cfg, "STORE_READER_THREADS", "65").find("integer 1..64")
        != std::string::npos);
  CHECK(set_config_value(cfg, "STORE_READER_THREADS", "8").empty());
  CHECK(cfg.store_reader_threads == 8);
}

TEST_CASE(
    "idle CAF workers poll 10 times before they wait, unless the command line says otherwise") {
  // What CAF's work-stealing policy reads when it makes its workers.
  auto poll_attempts = [](const system_config& cfg) {
    return caf::get_or(cfg, "work-stealing.moderate-poll-attempts", size_t{500});
  };
  system_config defaults;
  CHECK(poll_attempts(defaults) == idle_moderate_poll_attempts);
  CHECK(idle_moderate_poll_attempts == 10);
  auto path = std::string{"/tmp/lps-config-polls-"} + std::to_string(::getpid()) + ".ini";
  std::ofstream{path} << "[lps]\n";
  std::vector<std::string> args{"lps", "--config-file=" + path,
                                "--work-stealing.moderate-poll-attempts=500"};
  auto argv = make_argv(args);
  system_config overridden;
  auto result = load_startup(overridden, static_cast<int>(argv.size()), argv.data(), fake_env({}));
  std::remove(path.c_str());
  INFO((result.errors.empty() ? std::string{} : result.errors[0]));
  CHECK(result.errors.empty());
  CHECK(poll_attempts(overridden) == 500);
}

TEST_CASE("a scheduler.policy lps does not know refuses to start, naming the policies") {
  std::vector<std::string> args{"lps", "--scheduler.policy=stealin"};
  auto argv = make_argv(args);
  system_config cfg;
  auto result = load_startup(cfg, static_cast<int>(argv.size()), argv.data(), fake_env({}));
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0]
        == "scheduler.policy: unknown policy 'stealin' (lps, stealing or sharing)");
  std::vector<std::string> cafs{"lps", "--scheduler.policy=stealing"};
  auto cafs_argv = make_argv(cafs);
  system_config caf_cfg;
  CHECK(load_startup(caf_cfg, static_cast<int>(cafs_argv.size()), cafs_argv.data(), fake_env({}))
            .errors.empty());
}

namespace {

/// Each key row of a `| ENV | file-key | default | rule |` table as "ENV | file-key | default",
/// in order: the rule column is left out, since docs/configuration.md explains some keys
/// further than --help-config's short rule.
std::vector<std::string> key_rows(const std::string& table) {
  std::vector<std::string> rows;
  static const std::regex row{R"((^|\n)\| ([A-Z][A-Z0-9_]*) \| ([a-z0-9-]+) \| ([^|]*) \|)"};
  for (std::sregex_iterator i{table.begin(), table.end(), row}, end; i != end; ++i)
    rows.push_back((*i)[2].str() + " | " + (*i)[3].str() + " | " + (*i)[4].str());
  return rows;
}

} // namespace

TEST_CASE("docs/configuration.md lists every key with its default, in --help-config's order") {
  std::ifstream in{std::string{LPS_SOURCE_DIR} + "/docs/configuration.md"};
  std::stringstream doc;
  doc << in.rdbuf();
  auto documented = key_rows(doc.str());
  auto actual = key_rows(describe_keys());
  REQUIRE(actual.size() > 50);
  CHECK(documented == actual);
}
