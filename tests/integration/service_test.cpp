// The whole service over HTTP: the real lps binary on a free port, requests over the
// network, callbacks received by a local server, and the rules of CONTRACTS.md checked
// on what comes back. Everything binds 127.0.0.1.

#include "fixtures/process_helpers.hpp"
#include "fixtures/test_ca.hpp"
#include "integration/lps_process.hpp"
#include "integration/service_clients.hpp"
#include "tools/mock_provider/mock_provider_server.hpp"
#include "runtime/http_client.hpp"
#include "runtime/http_server.hpp"
#include "runtime/ids.hpp"
#include "runtime/json_codec.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>
#include <unistd.h>

using namespace lps;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

using lps::test::client;
using lps::test::receiver;
using lps::test::temp_dir;

std::string comparison_body(const std::string& prompt, const std::string& callback_url,
                            const std::string& extra = "") {
  return "{\"user_prompt\":" + json_quote(prompt) + ",\"callback_url\":" + json_quote(callback_url)
         + ",\"metadata\":{\"essay_a_id\":\"a\",\"essay_b_id\":\"b\",\"bos_batch_id\":\"batch-1\"}"
         + extra + "}";
}

std::string error_code_of(const http_client_response& res) {
  auto value = json::parse(res.body);
  return std::string{value.as_object().at("error").as_object().at("code").as_string()};
}

std::string error_field_of(const http_client_response& res) {
  auto doc = json::parse(res.body);
  auto& details = doc.as_object().at("error").as_object().at("details");
  auto* field = details.as_object().if_contains("field");
  return field ? std::string{field->as_string()} : std::string{};
}

/// Sets the providers' bare key variables to the mock's key for this scope (lps reads them
/// at start).
struct provider_keys {
  std::vector<std::string> names;
  explicit provider_keys(std::vector<std::string> xs = {"OPENAI_API_KEY", "OPENROUTER_API_KEY",
                                                        "ANTHROPIC_API_KEY", "GOOGLE_API_KEY"})
      : names(std::move(xs)) {
    for (const auto& name : names)
      ::setenv(name.c_str(), "test-key", 1);
  }
  ~provider_keys() {
    for (const auto& name : names)
      ::unsetenv(name.c_str());
  }
  provider_keys(const provider_keys&) = delete;
  provider_keys& operator=(const provider_keys&) = delete;
};

/// The result event of `id` once it is final (polled every 25 ms for up to 10 s); an empty
/// object when it never became final.
json::object wait_for_result(client& c, const test::lps_process& lps, const std::string& id) {
  for (int i = 0; i < 400; ++i) {
    auto r = c.call("GET", lps.url("/api/v1/results/" + id));
    if (r.status == 200)
      return json::parse(r.body).as_object();
    std::this_thread::sleep_for(std::chrono::milliseconds{25});
  }
  return json::object{};
}

/// The value of one series in lps' /metrics (-1 when it is absent).
double metric_value(client& c, const test::lps_process& lps, const std::string& series) {
  auto text = c.call("GET", lps.url("/metrics")).body;
  auto at = text.find("\n" + series + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 2));
}

/// True once /metrics shows `text` (metrics are recorded asynchronously; polled for 2 s).
bool metrics_show(client& c, const test::lps_process& lps, const std::string& text) {
  for (int i = 0; i < 80; ++i) {
    if (c.call("GET", lps.url("/metrics")).body.find(text) != std::string::npos)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{25});
  }
  return false;
}

/// Restarts lps on `dir` and checks that every id in `ids` was recovered (the queue
/// manager's recovered_total) and ends in one result.
void check_recovered_after_restart(const temp_dir& dir, const std::vector<std::string>& ids) {
  test::lps_process again{dir.path().string()};
  REQUIRE(again.port() != 0);
  client c;
  for (const auto& id : ids)
    CHECK_FALSE(wait_for_result(c, again, id).empty());
  auto inspect = c.call_json("GET", again.url("/api/v1/inspect"));
  for (auto& actor : inspect["actors"].as_array())
    if (actor.as_object()["kind"] == "queue_manager")
      CHECK(actor.as_object()["figures"].as_object()["recovered_total"].as_double()
            == static_cast<double>(ids.size()));
}

} // namespace

TEST_CASE("every accepted comparison gets exactly one result event") {
  temp_dir dir;
  test::lps_process lps{dir.path().string()};
  REQUIRE(lps.port() != 0);
  receiver sink;
  client c;
  std::vector<std::string> ids;
  for (int i = 0; i < 60; ++i) {
    auto res = c.call("POST", lps.url("/api/v1/comparison"),
                      comparison_body("single " + std::to_string(i), sink.url()));
    REQUIRE(res.status == 202);
    auto body = json::parse(res.body).as_object();
    CHECK(body["status"] == "queued");
    ids.emplace_back(body["queue_id"].as_string());
  }
  for (int batch = 0; batch < 3; ++batch) {
    std::string body = "{\"requests\":[";
    for (int i = 0; i < 50; ++i)
      body +=
          (i ? "," : "") + comparison_body("bulk " + std::to_string(batch * 50 + i), sink.url());
    body += "]}";
    auto res = c.call("POST", lps.url("/api/v1/comparisons"), body);
    REQUIRE(res.status == 202);
    auto results = json::parse(res.body).as_object()["results"].as_array();
    REQUIRE(results.size() == 50);
    for (auto& r : results)
      ids.emplace_back(r.as_object()["queue_id"].as_string());
  }
  REQUIRE(sink.wait_for(ids.size(), std::chrono::seconds{30}));
  std::this_thread::sleep_for(std::chrono::milliseconds{300}); // room for an unwanted duplicate
  std::lock_guard<std::mutex> guard{sink.mtx};
  CHECK(sink.total == ids.size());
  for (const auto& id : ids) {
    REQUIRE(sink.events[id].size() == 1);
    auto& event = sink.events[id].front();
    CHECK(event["event_type"] == "LLMComparisonResultV1");
    auto& data = event["data"].as_object();
    CHECK(data["error_detail"].is_null());
    CHECK((data["winner"] == "Essay A" || data["winner"] == "Essay B"));
    CHECK(data["request_metadata"].as_object()["bos_batch_id"] == "batch-1");
    CHECK(data["request_metadata"].as_object()["resolved_provider"] == "mock");
  }
  // The stored result is the delivered one, and the status says completed.
  auto stored = c.call_json("GET", lps.url("/api/v1/results/" + ids.front()));
  CHECK(stored["event_id"] == sink.events[ids.front()].front()["event_id"]);
  auto status = c.call_json("GET", lps.url("/api/v1/status/" + ids.front()));
  CHECK(status["status"] == "completed");
  CHECK(lps.stop() == 0);
}

TEST_CASE("bad input gets a clear 4xx naming the field and nothing is stored") {
  temp_dir dir;
  test::lps_process lps{dir.path().string(), {"--http-max-body-bytes=100000"}};
  REQUIRE(lps.port() != 0);
  client c;
  auto url = lps.url("/api/v1/comparison");
  struct bad_case {
    std::string body;
    std::string content_type;
    unsigned status;
    std::string code;
    std::string field;
  };
  std::vector<bad_case> cases{
      {"{not json", "application/json", 400, "VALIDATION_ERROR", ""},
      {"{\"user_prompt\":\"x\"}", "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE", ""},
      {"", "application/json", 400, "VALIDATION_ERROR", ""},
      {"{\"metadata\":{}}", "application/json", 400, "VALIDATION_ERROR", "user_prompt"},
      {"{\"user_prompt\":42}", "application/json", 400, "VALIDATION_ERROR", "user_prompt"},
      {"{\"user_prompt\":\"x\",\"llm_config_overrides\":{\"temperature_override\":3}}",
       "application/json", 400, "VALIDATION_ERROR", "llm_config_overrides.temperature_override"},
      {"{\"user_prompt\":\"x\",\"llm_config_overrides\":{\"provider_override\":\"acme\"}}",
       "application/json", 400, "VALIDATION_ERROR", "llm_config_overrides.provider_override"},
      {"{\"user_prompt\":\"x\",\"correlation_id\":\"not-a-uuid\"}", "application/json", 400,
       "VALIDATION_ERROR", "correlation_id"},
      {"{\"user_prompt\":\"x\",\"callback_url\":\"ftp://host/x\"}", "application/json", 400,
       "VALIDATION_ERROR", "callback_url"},
      {"{\"user_prompt\":\"x\",\"priority\":11}", "application/json", 400, "VALIDATION_ERROR",
       "priority"},
      {"{\"user_prompt\":\"x\",\"prompt_blocks\":[{\"target\":\"system\",\"content\":\"a\","
       "\"ttl\":\"5m\"},{\"target\":\"system\",\"content\":\"b\",\"ttl\":\"1h\"}]}",
       "application/json", 400, "VALIDATION_ERROR", "prompt_blocks[1].ttl"},
      {"{\"user_prompt\":\"\xC3\x28\"}", "application/json", 400, "VALIDATION_ERROR", ""},
      {std::string(70, '[') + std::string(70, ']'), "application/json", 400, "VALIDATION_ERROR",
       ""},
      {"{\"user_prompt\":\"" + std::string(200000, 'x') + "\"}", "application/json", 413,
       "PAYLOAD_TOO_LARGE", ""},
  };
  for (const auto& x : cases) {
    INFO("body " << x.body.substr(0, 80) << " content type " << x.content_type);
    auto res = c.call("POST", url, x.body, x.content_type);
    CHECK(res.status == x.status);
    REQUIRE(!res.body.empty());
    CHECK(error_code_of(res) == x.code);
    if (!x.field.empty())
      CHECK(error_field_of(res) == x.field);
  }
  // Every refusal counts under its code; the 413 is the HTTP server's own, before any route.
  std::map<std::string, int> refused;
  for (const auto& x : cases)
    if (x.status != 413)
      ++refused[x.code];
  REQUIRE(refused.size() == 2);
  for (const auto& [code, count] : refused) {
    INFO("reason " << code);
    CHECK(metrics_show(c, lps,
                       "llm_provider_requests_rejected_total{reason=\"" + code + "\"} "
                           + std::to_string(count) + "\n"));
  }
  // Nothing was accepted, and the service still works.
  auto metrics = c.call("GET", lps.url("/metrics"));
  CHECK(metrics.body.find("\nllm_provider_requests_accepted_total ") == std::string::npos);
  auto ok = c.call("POST", url, "{\"user_prompt\":\"still fine\"}");
  CHECK(ok.status == 202);
  auto unknown = c.call("GET", lps.url("/api/v1/results/" + new_uuid()));
  CHECK(unknown.status == 404);
  CHECK(error_code_of(unknown) == "RESOURCE_NOT_FOUND");
}

TEST_CASE("a request for a provider without a key is refused at submission, naming it") {
  temp_dir dir;
  test::lps_process lps{dir.path().string()};
  REQUIRE(lps.port() != 0);
  client c;
  auto res =
      c.call("POST", lps.url("/api/v1/comparison"),
             comparison_body("needs openai", "http://127.0.0.1:9/results",
                             ",\"llm_config_overrides\":{\"provider_override\":\"openai\"}"));
  CHECK(res.status == 400);
  CHECK(error_code_of(res) == "VALIDATION_ERROR");
  CHECK(error_field_of(res) == "llm_config_overrides.provider_override");
  CHECK(res.body.find("provider openai") != std::string::npos);
  CHECK(res.body.find("OPENAI_API_KEY") != std::string::npos);
  // In bulk the item is refused in its place; the others are accepted.
  auto bulk = c.call_json("POST", lps.url("/api/v1/comparisons"),
                          "{\"requests\":[{\"user_prompt\":\"fine\"},{\"user_prompt\":\"x\","
                          "\"llm_config_overrides\":{\"provider_override\":\"google\"}}]}");
  auto& results = bulk["results"].as_array();
  REQUIRE(results.size() == 2);
  CHECK(results[0].as_object()["status"] == "queued");
  auto& error = results[1].as_object()["error"].as_object();
  CHECK(error["details"].as_object()["field"]
        == "requests[1].llm_config_overrides.provider_override");
  CHECK(std::string{error["message"].as_string()}.find("GOOGLE_API_KEY") != std::string::npos);
  // Nothing refused was stored: only the one accepted request counts, and the two refused
  // (one alone, one item of the bulk body) count as rejected; the store committed the one.
  CHECK(metrics_show(c, lps, "llm_provider_requests_accepted_total 1\n"));
  CHECK(metrics_show(c, lps,
                     "llm_provider_requests_rejected_total{reason=\"VALIDATION_ERROR\"} 2\n"));
  // The commits counter moves on the queue manager's tick (every 200 ms).
  bool committed = false;
  for (int i = 0; i < 120 && !committed; ++i) {
    committed = metric_value(c, lps, "llm_provider_store_commits_total") >= 1;
    if (!committed)
      std::this_thread::sleep_for(std::chrono::milliseconds{25});
  }
  CHECK(committed);
}

TEST_CASE("metrics exposition passes promtool and counts bundles") {
  temp_dir dir;
  test::lps_process lps{dir.path().string()};
  REQUIRE(lps.port() != 0);
  client c;
  std::string body = "{\"requests\":[";
  for (int i = 0; i < 20; ++i)
    body += std::string{i ? "," : ""} + "{\"user_prompt\":\"m" + std::to_string(i) + "\"}";
  body += "]}";
  REQUIRE(c.call("POST", lps.url("/api/v1/comparisons"), body).status == 202);
  std::string text;
  for (int i = 0; i < 100; ++i) {
    text = c.call("GET", lps.url("/metrics")).body;
    if (text.find("llm_provider_comparison_callbacks_total{queue_processing_mode=\"serial_bundle\","
                  "result=\"success\"} 20")
        != std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  CHECK(text.find("llm_provider_serial_bundle_calls_total{provider=\"mock\"") != std::string::npos);
  CHECK(text.find("llm_provider_serial_bundle_items_per_call_bucket") != std::string::npos);
  CHECK(text.find("result=\"success\"} 20") != std::string::npos);
  auto file = dir.path() / "metrics.txt";
  fs::create_directories(dir.path());
  std::ofstream{file} << text;
  auto check = test::run_command({"/bin/sh", "-c", "promtool check metrics < " + file.string()});
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
  CHECK(check.out.empty());
}

TEST_CASE("the first scrape after start has every gauge series and passes promtool") {
  temp_dir dir;
  provider_keys keys{{"OPENAI_API_KEY"}};
  // OpenAI through its batch API: its open-job gauges exist; the other providers are bundled.
  // No job exists, so the unreachable base URL is never called.
  test::lps_process lps{dir.path().string(),
                        {"--queue-processing-mode=batch_api",
                         "--openai-batch-api-mode=opportunistic",
                         "--openai-base-url=http://127.0.0.1:9/v1"}};
  REQUIRE(lps.port() != 0);
  client c;
  REQUIRE(c.call("GET", lps.url("/healthz")).status == 200);
  auto text = c.call("GET", lps.url("/metrics")).body;
  auto has = [&](const std::string& series) {
    INFO(series);
    CHECK(text.find("\n" + series + " 0\n") != std::string::npos);
  };
  for (const auto* status : {"queued", "processing", "total"})
    has(std::string{"llm_provider_queue_depth{status=\""} + status + "\"}");
  for (const auto* provider : {"mock", "anthropic", "google", "openrouter"}) {
    has(std::string{"llm_provider_circuit_breaker_state{provider=\""} + provider + "\"}");
    has(std::string{"llm_provider_inflight_provider_calls{provider=\""} + provider + "\"}");
    has(std::string{"llm_provider_calls_waiting_for_connection{provider=\""} + provider + "\"}");
    has(std::string{"llm_provider_inflight_bundles{provider=\""} + provider + "\"}");
  }
  for (const auto* state :
       {"created", "uploaded", "submitting", "submitted", "cancelling", "ended"})
    has(std::string{"llm_provider_batch_api_jobs_open{provider=\"openai\",state=\""} + state
        + "\"}");
  // The batch provider has no breaker at the bundler, so no breaker series.
  CHECK(text.find("llm_provider_circuit_breaker_state{provider=\"openai\"}") == std::string::npos);
  auto file = dir.path() / "metrics-at-start.txt";
  std::ofstream{file} << text;
  auto check = test::run_command({"/bin/sh", "-c", "promtool check metrics < " + file.string()});
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
  CHECK(check.out.empty());
}

TEST_CASE("the scrape names the build and carries the process figures") {
  temp_dir dir;
  test::lps_process lps{dir.path().string()};
  REQUIRE(lps.port() != 0);
  client c;
  auto first = c.call("GET", lps.url("/metrics")).body;
  // One value of a series without labels, or -1 when it is missing.
  auto value_of = [](const std::string& text, const std::string& name) {
    auto at = text.find("\n" + name + " ");
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + name.size() + 2));
  };
  const std::regex build_info{
      R"(\nllm_provider_build_info\{version="[0-9]+\.[0-9]+\.[0-9]+",revision="[^"]+",node="[^"]+"\} 1\n)"};
  CHECK(std::regex_search(first, build_info));
  auto rss = value_of(first, "process_resident_memory_bytes");
  CHECK(rss > 1024.0 * 1024);
  CHECK(rss < 4.0 * 1024 * 1024 * 1024);
  CHECK(value_of(first, "process_threads") >= 2);
  CHECK(value_of(first, "process_open_fds") >= 3);
  CHECK(value_of(first, "process_max_fds") >= value_of(first, "process_open_fds"));
  auto now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch());
  auto started = value_of(first, "process_start_time_seconds");
  CHECK(started <= now.count() + 1);
  CHECK(started > now.count() - 600);
  // The CPU counter never goes back between scrapes.
  auto cpu_first = value_of(first, "process_cpu_seconds_total");
  CHECK(cpu_first >= 0);
  auto second = c.call("GET", lps.url("/metrics")).body;
  CHECK(value_of(second, "process_cpu_seconds_total") >= cpu_first);
}

TEST_CASE("results survive a restart", "[durability]") {
  temp_dir dir;
  std::string id;
  {
    test::lps_process lps{dir.path().string()};
    REQUIRE(lps.port() != 0);
    client c;
    auto res = c.call_json("POST", lps.url("/api/v1/comparison"), "{\"user_prompt\":\"keep me\"}");
    id = std::string{res["queue_id"].as_string()};
    for (int i = 0; i < 100; ++i) {
      if (c.call("GET", lps.url("/api/v1/results/" + id)).status == 200)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    CHECK(lps.stop() == 0);
  }
  test::lps_process again{dir.path().string()};
  REQUIRE(again.port() != 0);
  client c;
  auto res = c.call("GET", again.url("/api/v1/results/" + id));
  CHECK(res.status == 200);
  CHECK(json::parse(res.body).as_object()["data"].as_object()["request_id"].as_string() == id);
}

TEST_CASE("dump-config masks secrets and bad values refuse to start") {
  auto dump = test::run_command({LPS_BINARY, "--dump-config"},
                                {{"OPENAI_API_KEY", "sk-test-secret-value"}});
  CHECK(dump.exit_code == 0);
  CHECK(dump.out.find("sk-test-secret-value") == std::string::npos);
  CHECK(dump.out.find("openai-api-key = ***") != std::string::npos);
  CHECK(dump.out.find("queue-processing-mode = serial_bundle") != std::string::npos);
  CHECK(dump.out.find("serial-bundle-max-requests-per-call = 4") != std::string::npos);
  auto bad = test::run_command({LPS_BINARY, "--serial-bundle-max-requests-per-call=0"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("SERIAL_BUNDLE_MAX_REQUESTS_PER_CALL") != std::string::npos);
  CHECK(bad.err.find("1..64") != std::string::npos);
  auto bad_env = test::run_command({LPS_BINARY, "--dump-config"},
                                   {{"LLM_PROVIDER_SERVICE_QUEUE_PROCESSING_MODE", "fast"}});
  CHECK(bad_env.exit_code == 2);
  CHECK(bad_env.err.find("QUEUE_PROCESSING_MODE") != std::string::npos);
  // A broken model manifest refuses to start (its prices feed every cost estimate).
  temp_dir dir;
  fs::create_directories(dir.path());
  auto manifest = dir.path() / "models.json";
  std::ofstream{manifest} << R"({"models": [{"model_id": "m", "input_per_1m": "cheap"}]})";
  auto bad_manifest =
      test::run_command({LPS_BINARY, "--http-port=0", "--data-dir=" + (dir.path() / "var").string(),
                         "--model-manifest=" + manifest.string()});
  CHECK(bad_manifest.exit_code == 2);
  CHECK(bad_manifest.err.find("MODEL_MANIFEST") != std::string::npos);
  CHECK(bad_manifest.err.find("input_per_1m must be a number") != std::string::npos);
  // A CA file that cannot be read refuses to start: provider calls would all fail later.
  auto bad_ca =
      test::run_command({LPS_BINARY, "--http-port=0", "--data-dir=" + (dir.path() / "var").string(),
                         "--provider-ca-file=" + (dir.path() / "missing-ca.pem").string()});
  CHECK(bad_ca.exit_code == 2);
  CHECK(bad_ca.err.find("PROVIDER_CA_FILE") != std::string::npos);
  // Per-provider rate limits are checked like every other key.
  auto bad_rate = test::run_command({LPS_BINARY, "--openai-requests-per-minute=lots"});
  CHECK(bad_rate.exit_code == 2);
  CHECK(bad_rate.err.find("OPENAI_REQUESTS_PER_MINUTE") != std::string::npos);
}

TEST_CASE("batch_api mode without a batch provider says it runs as serial_bundle") {
  temp_dir dir;
  test::lps_process lps{dir.path().string(), {"--queue-processing-mode=batch_api"}};
  REQUIRE(lps.port() != 0);
  client c;
  auto health = c.call_json("GET", lps.url("/healthz"));
  CHECK(health["status"] == "healthy");
  CHECK(health["queue_processing_mode"] == "batch_api");
  CHECK(health["effective_processing_mode"] == "serial_bundle");
  CHECK(health["warnings"].as_array().size() == 1);
}

TEST_CASE("requests accepted before a crash are processed after the restart", "[durability]") {
  temp_dir dir;
  std::vector<std::string> ids;
  {
    // A slow mock keeps the requests queued or processing when the process is killed.
    test::lps_process lps{dir.path().string(), {"--mock-latency-ms=60000"}};
    REQUIRE(lps.port() != 0);
    client c;
    for (int i = 0; i < 10; ++i) {
      auto res = c.call_json("POST", lps.url("/api/v1/comparison"),
                             "{\"user_prompt\":\"survive " + std::to_string(i) + "\"}");
      ids.emplace_back(res["queue_id"].as_string());
    }
    CHECK(c.call("GET", lps.url("/api/v1/results/" + ids.front())).status == 202);
    lps.stop(SIGKILL);
  }
  check_recovered_after_restart(dir, ids);
}

TEST_CASE("SIGTERM refuses new requests and loses nothing in flight", "[durability]") {
  temp_dir dir;
  std::vector<std::string> ids;
  {
    test::lps_process lps{dir.path().string(), {"--mock-latency-ms=1500"}};
    REQUIRE(lps.port() != 0);
    client c;
    for (int i = 0; i < 6; ++i) {
      auto res = c.call_json("POST", lps.url("/api/v1/comparison"),
                             "{\"user_prompt\":\"in flight " + std::to_string(i) + "\"}");
      ids.emplace_back(res["queue_id"].as_string());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{100}); // let the bundles go out
    auto url = lps.url("/api/v1/comparison");
    auto stopper = std::async(std::launch::async, [&lps] { return lps.stop(SIGTERM); });
    // While draining, new requests get 503 SERVICE_UNAVAILABLE (never a silent 202).
    unsigned status = 0;
    std::string code;
    for (int i = 0; i < 100 && status != 503; ++i) {
      auto res = c.call("POST", url, "{\"user_prompt\":\"too late\"}");
      status = res.status;
      if (status == 503)
        code = error_code_of(res);
      else if (status == 0)
        break; // already closed
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    // The bundles in flight take 1.5 s, so the drain lasts long enough to see the refusal.
    CHECK(status == 503);
    CHECK(code == "SERVICE_UNAVAILABLE");
    CHECK(stopper.get() == 0);
  }
  // Everything accepted before SIGTERM ends in exactly one result, now or after a restart.
  test::lps_process again{dir.path().string()};
  REQUIRE(again.port() != 0);
  client c;
  for (const auto& id : ids)
    CHECK_FALSE(wait_for_result(c, again, id).empty());
}

TEST_CASE("a full queue answers 503 QUEUE_FULL with Retry-After and stores nothing more",
          "[durability]") {
  temp_dir dir;
  test::lps_process lps{dir.path().string(), {"--mock-latency-ms=60000", "--queue-max-size=3"}};
  REQUIRE(lps.port() != 0);
  client c;
  std::vector<unsigned> statuses;
  http_client_response last;
  for (int i = 0; i < 5; ++i) {
    last = c.call("POST", lps.url("/api/v1/comparison"),
                  "{\"user_prompt\":\"fill " + std::to_string(i) + "\"}");
    statuses.push_back(last.status);
  }
  CHECK(statuses == std::vector<unsigned>{202, 202, 202, 503, 503});
  CHECK(error_code_of(last) == "QUEUE_FULL");
  bool has_retry_after = false;
  for (const auto& [name, value] : last.headers)
    has_retry_after |= name == "retry-after" && std::atoi(value.c_str()) > 0;
  CHECK(has_retry_after);
  // A bulk submission of which nothing fits is refused as a whole, like a single one.
  auto bulk = c.call("POST", lps.url("/api/v1/comparisons"),
                     "{\"requests\":[{\"user_prompt\":\"a\"},{\"user_prompt\":\"b\"}]}");
  CHECK(bulk.status == 503);
  CHECK(error_code_of(bulk) == "QUEUE_FULL");
  bool bulk_retry_after = false;
  for (const auto& [name, value] : bulk.headers)
    bulk_retry_after |= name == "retry-after" && std::atoi(value.c_str()) > 0;
  CHECK(bulk_retry_after);
}

TEST_CASE("providers report configuration and circuit state but never keys") {
  temp_dir dir;
  test::lps_process lps{dir.path().string()};
  REQUIRE(lps.port() != 0);
  client c;
  auto res = c.call("GET", lps.url("/api/v1/providers"));
  REQUIRE(res.status == 200);
  auto body = json::parse(res.body).as_object();
  CHECK(body["default_provider"] == "mock");
  std::map<std::string, json::object> by_name;
  for (auto& p : body["providers"].as_array())
    by_name[std::string{p.as_object()["name"].as_string()}] = p.as_object();
  REQUIRE(by_name.size() == 5);
  CHECK(by_name["mock"]["available"] == true);
  CHECK(by_name["mock"]["circuit_state"] == "closed");
  CHECK(by_name["openai"]["configured"] == false);
  CHECK(by_name["openai"]["available"] == false);
  // /healthz says the same: healthy, with the unconfigured providers named and explained.
  auto health = c.call_json("GET", lps.url("/healthz"));
  CHECK(health["status"] == "healthy");
  auto& providers = health["providers"].as_object();
  CHECK(providers["mock"].as_object()["available"] == true);
  CHECK(providers["anthropic"].as_object()["configured"] == false);
  auto note = std::string{providers["anthropic"].as_object()["note"].as_string()};
  CHECK(note.find("ANTHROPIC_API_KEY") != std::string::npos);
}

TEST_CASE("an API key never appears in any response") {
  temp_dir dir;
  const std::string key = "sk-test-never-show-this-0123456789";
  ::setenv("OPENAI_API_KEY", key.c_str(), 1);
  // A closed local port: the call fails at once (never a real provider), and the error
  // text must not carry the key either.
  test::lps_process lps{dir.path().string(),
                        {"--openai-base-url=http://127.0.0.1:9/v1", "--queue-max-retries=0"}};
  ::unsetenv("OPENAI_API_KEY");
  REQUIRE(lps.port() != 0);
  client c;
  auto submitted = c.call("POST", lps.url("/api/v1/comparison"),
                          "{\"user_prompt\":\"x\",\"llm_config_overrides\":"
                          "{\"provider_override\":\"openai\"}}");
  REQUIRE(submitted.status == 202);
  auto id = std::string{json::parse(submitted.body).as_object()["queue_id"].as_string()};
  std::string result;
  for (int i = 0; i < 200 && result.empty(); ++i) {
    auto res = c.call("GET", lps.url("/api/v1/results/" + id));
    if (res.status == 200)
      result = res.body;
    else
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  REQUIRE(!result.empty());
  auto providers = c.call("GET", lps.url("/api/v1/providers")).body;
  CHECK(providers.find("\"configured\":true") != std::string::npos);
  for (const auto& path : {"/api/v1/providers", "/api/v1/inspect", "/metrics", "/healthz"})
    CHECK(c.call("GET", lps.url(path)).body.find(key) == std::string::npos);
  CHECK(result.find(key) == std::string::npos);
}

TEST_CASE("openai requests go through the provider actor to the mock provider server") {
  mock_provider_server mock;
  std::string error;
  REQUIRE(mock.start(mock_provider_options{}, error));
  // The first call meets exhausted quota (final), the second a rate limit (retried).
  REQUIRE(mock.add_faults(R"({"faults":[{"kind":"quota"},)"
                          R"({"kind":"status","status":429,"retry_after":"0"}]})",
                          error));
  temp_dir dir;
  auto base = "http://127.0.0.1:" + std::to_string(mock.port()) + "/v1";
  provider_keys keys{{"OPENAI_API_KEY"}};
  test::lps_process lps{dir.path().string(),
                        {"--openai-base-url=" + base,
                         "--openai-default-model=gpt-4o-mini-2024-07-18",
                         "--retry-base-delay-ms=10"}};
  REQUIRE(lps.port() != 0);
  client c;
  auto submit_and_wait = [&](const std::string& prompt) {
    auto res = c.call_json("POST", lps.url("/api/v1/comparison"),
                           "{\"user_prompt\":" + json_quote(prompt)
                               + ",\"llm_config_overrides\":{\"provider_override\":\"openai\"}}");
    auto id = std::string{res["queue_id"].as_string()};
    auto event = wait_for_result(c, lps, id);
    if (event.empty())
      FAIL("no result for " << id);
    return event;
  };
  auto quota = submit_and_wait("Compare essay one and essay two.");
  auto& quota_data = quota["data"].as_object();
  CHECK(quota_data["error_detail"].as_object()["error_code"] == "QUOTA_EXCEEDED");
  CHECK(quota_data["provider"] == "openai");
  auto ok = submit_and_wait("Compare essay three and essay four.");
  auto& ok_data = ok["data"].as_object();
  CHECK(ok_data["error_detail"].is_null());
  CHECK((ok_data["winner"] == "Essay A" || ok_data["winner"] == "Essay B"));
  CHECK(ok_data["model"] == "gpt-4o-mini-2024-07-18");
  auto& usage = ok_data["token_usage"].as_object();
  CHECK(usage["total_tokens"].as_int64() > 0);
  // Priced from config/models.json: $0.15 per 1M input, $0.60 per 1M output tokens.
  auto expected = (static_cast<double>(usage["prompt_tokens"].as_int64()) * 0.15
                   + static_cast<double>(usage["completion_tokens"].as_int64()) * 0.6)
                  / 1e6;
  CHECK(ok_data["cost_estimate"].as_double() == Approx(expected));
  // Three calls reached the mock: the quota failure, the rate limit and its retry.
  CHECK(mock.stats().by_dialect["openai"] == 3);
  auto providers = c.call_json("GET", lps.url("/api/v1/providers"));
  for (auto& p : providers["providers"].as_array())
    if (p.as_object()["name"] == "openai")
      CHECK(p.as_object()["available"] == true);
}

TEST_CASE("a hung provider does not slow down requests for another provider") {
  mock_provider_server mock;
  std::string error;
  REQUIRE(mock.start(mock_provider_options{}, error));
  // Every openai call hangs (the "drop" fault holds the connection without answering).
  REQUIRE(
      mock.add_faults(R"({"faults":[{"kind":"drop","count":1000}],"dialect":"openai"})", error));
  temp_dir dir;
  provider_keys keys{{"OPENAI_API_KEY"}};
  test::lps_process lps{
      dir.path().string(),
      {"--openai-base-url=http://127.0.0.1:" + std::to_string(mock.port()) + "/v1",
       "--openai-max-concurrent-calls=4", "--provider-request-timeout-ms=60000"}};
  REQUIRE(lps.port() != 0);
  receiver sink;
  client c;
  auto bulk = [&](const std::string& provider, int n, const std::string& tag) {
    std::string body = "{\"requests\":[";
    for (int i = 0; i < n; ++i)
      body += std::string{i ? "," : ""} + "{\"user_prompt\":\"" + tag + std::to_string(i)
              + "\",\"callback_url\":" + json_quote(sink.url())
              + ",\"llm_config_overrides\":{\"provider_override\":\"" + provider + "\"}}";
    return c.call("POST", lps.url("/api/v1/comparisons"), body + "]}");
  };
  REQUIRE(bulk("openai", 40, "stuck ").status == 202);
  auto start = std::chrono::steady_clock::now();
  REQUIRE(bulk("mock", 200, "flowing ").status == 202);
  // All 200 mock requests finish while every openai call hangs (a liveness bound, far
  // above the ~50 ms they take alone).
  CHECK(sink.wait_for(200, std::chrono::seconds{20}));
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(took < std::chrono::seconds{10});
  std::lock_guard<std::mutex> guard{sink.mtx};
  CHECK(sink.total == 200);
  for (const auto& [id, events] : sink.events)
    CHECK(events.front().at("data").at("provider") == "mock");
}

TEST_CASE("every real provider is served through the mock server, packed by multi-prompt") {
  mock_provider_server mock;
  std::string error;
  REQUIRE(mock.start(mock_provider_options{}, error));
  temp_dir dir;
  auto base = "http://127.0.0.1:" + std::to_string(mock.port());
  const std::vector<std::string> providers{"openai", "openrouter", "anthropic", "google"};
  provider_keys keys;
  test::lps_process lps{dir.path().string(),
                        {"--openai-base-url=" + base + "/v1",
                         "--openrouter-base-url=" + base + "/api/v1",
                         "--anthropic-base-url=" + base, "--google-base-url=" + base,
                         "--serial-bundle-multi-prompt=true"}};
  REQUIRE(lps.port() != 0);
  receiver sink;
  client c;
  constexpr int per_provider = 8;
  for (const auto& provider : providers) {
    std::string body = "{\"requests\":[";
    for (int i = 0; i < per_provider; ++i)
      body += std::string{i ? "," : ""} + "{\"user_prompt\":\"Essay A: " + provider
              + std::to_string(i) + ". Essay B: other.\",\"callback_url\":" + json_quote(sink.url())
              + ",\"llm_config_overrides\":{\"provider_override\":\"" + provider + "\"}}";
    REQUIRE(c.call("POST", lps.url("/api/v1/comparisons"), body + "]}").status == 202);
  }
  size_t total = providers.size() * per_provider;
  REQUIRE(sink.wait_for(total, std::chrono::seconds{30}));
  std::map<std::string, int> successes;
  {
    std::lock_guard<std::mutex> guard{sink.mtx};
    CHECK(sink.total == total);
    for (const auto& [id, events] : sink.events) {
      CHECK(events.size() == 1);
      const auto& data = events.front().at("data").as_object();
      INFO(json::serialize(data));
      CHECK(data.at("error_detail").is_null());
      successes[std::string{data.at("provider").as_string()}] += 1;
    }
  }
  auto metrics = c.call("GET", lps.url("/metrics")).body;
  for (const auto& provider : providers) {
    INFO(provider);
    CHECK(successes[provider] == per_provider);
    // Every provider call is counted, and packing needed fewer calls than comparisons.
    auto calls = mock.stats().by_dialect[provider == "google" ? "gemini" : provider];
    CHECK(calls >= 2);
    CHECK(calls < static_cast<uint64_t>(per_provider));
    CHECK(metrics.find("llm_provider_http_calls_total{provider=\"" + provider + "\"")
          != std::string::npos);
  }
  auto listed = c.call_json("GET", lps.url("/api/v1/providers"));
  for (auto& p : listed["providers"].as_array())
    CHECK(p.as_object()["available"] == true);
}

// -- provider batch jobs (batch_api mode) against the mock server's batch endpoints -------

namespace {

/// lps in batch_api mode with OpenAI and Anthropic batch jobs pointed at `mock`.
std::vector<std::string> batch_flags(const mock_provider_server& mock, const std::string& extra) {
  auto base = "http://127.0.0.1:" + std::to_string(mock.port());
  std::vector<std::string> flags{"--queue-processing-mode=batch_api",
                                 "--openai-batch-api-mode=opportunistic",
                                 "--anthropic-batch-api-mode=opportunistic",
                                 "--openai-base-url=" + base + "/v1",
                                 "--anthropic-base-url=" + base,
                                 "--batch-api-min-items=10",
                                 "--batch-api-max-wait-seconds=0.2",
                                 "--batch-api-poll-interval-seconds=0.05",
                                 "--retry-base-delay-ms=10"};
  if (!extra.empty())
    flags.push_back(extra);
  return flags;
}

std::vector<std::string> submit_bulk(client& c, const test::lps_process& lps,
                                     const std::string& provider, int n, const std::string& tag,
                                     const std::string& callback_url) {
  std::string body = "{\"requests\":[";
  for (int i = 0; i < n; ++i)
    body += std::string{i ? "," : ""} + "{\"user_prompt\":\"Essay A: " + tag + std::to_string(i)
            + ". Essay B: other.\","
            + (callback_url.empty() ? "" : "\"callback_url\":" + json_quote(callback_url) + ",")
            + "\"llm_config_overrides\":{\"provider_override\":\"" + provider + "\"}}";
  auto res = c.call_json("POST", lps.url("/api/v1/comparisons"), body + "]}");
  std::vector<std::string> ids;
  for (auto& r : res["results"].as_array())
    ids.emplace_back(r.as_object()["queue_id"].as_string());
  return ids;
}

/// Waits until some batch job reaches `state` (true) or the time is up (false).
bool wait_for_job_state(client& c, const test::lps_process& lps, const std::string& state) {
  for (int i = 0; i < 400; ++i) {
    auto jobs = c.call_json("GET", lps.url("/api/v1/batch-jobs"));
    for (auto& job : jobs["jobs"].as_array())
      if (job.as_object()["state"] == json::value(state))
        return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{25});
  }
  return false;
}

} // namespace

TEST_CASE("batch_api: OpenAI and Anthropic jobs give one result per request at the batch price",
          "[durability]") {
  mock_provider_server mock;
  std::string error;
  REQUIRE(mock.start(mock_provider_options{}, error));
  temp_dir dir;
  provider_keys keys{{"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}};
  test::lps_process lps{dir.path().string(), batch_flags(mock, "")};
  REQUIRE(lps.port() != 0);
  receiver sink;
  client c;
  auto openai_ids = submit_bulk(c, lps, "openai", 25, "o", sink.url());
  auto anthropic_ids = submit_bulk(c, lps, "anthropic", 25, "a", sink.url());
  REQUIRE(sink.wait_for(50, std::chrono::seconds{30}));
  std::lock_guard<std::mutex> guard{sink.mtx};
  CHECK(sink.total == 50);
  std::set<std::string> jobs;
  for (const auto& [id, events] : sink.events) {
    CHECK(events.size() == 1);
    const auto& data = events.front().at("data").as_object();
    INFO(json::serialize(data));
    CHECK(data.at("error_detail").is_null());
    const auto& meta = data.at("request_metadata").as_object();
    CHECK(meta.at("queue_processing_mode") == "batch_api");
    jobs.insert(std::string{meta.at("batch_job_id").as_string()});
    // Priced from config/models.json with its batch discount of 0.5.
    auto provider = std::string{data.at("provider").as_string()};
    auto [in, out] = provider == "openai" ? std::pair{0.25, 2.0} : std::pair{1.0, 5.0};
    const auto& usage = data.at("token_usage").as_object();
    auto full = (static_cast<double>(usage.at("prompt_tokens").as_int64()) * in
                 + static_cast<double>(usage.at("completion_tokens").as_int64()) * out)
                / 1e6;
    CHECK(data.at("cost_estimate").as_double() == Approx(full * 0.5));
  }
  // No sync calls: everything went through jobs, a handful of HTTP calls for 50 requests.
  auto stats = mock.stats();
  CHECK(stats.calls == 0);
  CHECK(stats.batch.batches_created["openai"]
        == jobs.size() - stats.batch.batches_created["anthropic"]);
  CHECK(stats.batch.items_submitted["openai"] == 25);
  CHECK(stats.batch.items_submitted["anthropic"] == 25);
  // A job's row says collected once the batch job writer committed it, which may come just
  // after the last callback: those leave as soon as the results are committed.
  auto collected = [&] {
    auto listed = c.call_json("GET", lps.url("/api/v1/batch-jobs"));
    size_t count = 0;
    for (auto& job : listed["jobs"].as_array())
      count += job.as_object()["state"] == "collected" ? 1 : 0;
    return listed["jobs"].as_array().size() == jobs.size() && count == jobs.size();
  };
  CHECK(test::eventually(collected, std::chrono::seconds{10}));
  auto metrics = c.call("GET", lps.url("/metrics")).body;
  CHECK(metrics.find("llm_provider_batch_api_jobs_total{provider=\"openai\"") != std::string::npos);
  CHECK(metrics.find("endpoint=\"batch_create\"") != std::string::npos);
}

TEST_CASE("batch_api: a job survives SIGKILL and is never submitted twice", "[durability]") {
  mock_provider_server mock;
  std::string error;
  mock_provider_options options;
  options.batch.processing = std::chrono::milliseconds{2000};
  REQUIRE(mock.start(options, error));
  temp_dir dir;
  provider_keys keys{{"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}};
  std::vector<std::string> ids;
  {
    test::lps_process lps{dir.path().string(), batch_flags(mock, "")};
    REQUIRE(lps.port() != 0);
    client c;
    ids = submit_bulk(c, lps, "openai", 20, "k", "");
    REQUIRE(wait_for_job_state(c, lps, "submitted"));
    lps.stop(SIGKILL);
  }
  test::lps_process again{dir.path().string(), batch_flags(mock, "")};
  REQUIRE(again.port() != 0);
  client c;
  for (const auto& id : ids) {
    auto event = wait_for_result(c, again, id);
    REQUIRE_FALSE(event.empty());
    CHECK(event["data"].as_object()["error_detail"].is_null());
  }
  CHECK(mock.stats().batch.batches_created["openai"] == 1);
  CHECK(mock.stats().batch.items_submitted["openai"] == 20);
}

TEST_CASE("batch_api: an operator cancels a job and its unfinished items end CANCELLED",
          "[durability]") {
  mock_provider_server mock;
  std::string error;
  mock_provider_options options;
  options.batch.processing = std::chrono::milliseconds{20000};
  REQUIRE(mock.start(options, error));
  temp_dir dir;
  provider_keys keys{{"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}};
  test::lps_process lps{dir.path().string(), batch_flags(mock, "")};
  REQUIRE(lps.port() != 0);
  client c;
  auto ids = submit_bulk(c, lps, "anthropic", 12, "x", "");
  REQUIRE(wait_for_job_state(c, lps, "submitted"));
  auto jobs = c.call_json("GET", lps.url("/api/v1/batch-jobs"));
  auto job_id = std::string{jobs["jobs"].as_array()[0].as_object()["job_id"].as_string()};
  CHECK(c.call("POST", lps.url("/api/v1/batch-jobs/" + job_id + "/cancel"), "", "").status == 202);
  CHECK(c.call("POST", lps.url("/api/v1/batch-jobs/bj-unknown/cancel"), "", "").status == 404);
  size_t cancelled = 0;
  for (const auto& id : ids) {
    auto event = wait_for_result(c, lps, id);
    REQUIRE_FALSE(event.empty());
    auto data = event["data"].as_object();
    if (!data["error_detail"].is_null()
        && data["error_detail"].as_object()["error_code"] == "CANCELLED")
      ++cancelled;
  }
  CHECK(cancelled > 0);
  auto job = c.call_json("GET", lps.url("/api/v1/batch-jobs/" + job_id));
  CHECK(job["cancel_requested"] == true);
  CHECK(job["state"] == "collected");
  // The console's jobs view reads the same row (on the reader pool, through the batch job
  // store's read connection), with its progress.
  auto inspected = c.call_json("GET", lps.url("/api/v1/inspect/jobs"));
  REQUIRE(inspected["jobs"].as_array().size() == 1);
  auto seen = inspected["jobs"].as_array()[0].as_object();
  CHECK(seen["job_id"].as_string() == job_id);
  CHECK(seen["state"] == "collected");
  CHECK(seen["cancel_requested"] == true);
  CHECK(seen["done"].as_int64() == job["succeeded"].as_int64() + job["failed"].as_int64());
  // A finished job cannot be cancelled again: 409, not a silent 202.
  auto again = c.call("POST", lps.url("/api/v1/batch-jobs/" + job_id + "/cancel"), "", "");
  CHECK(again.status == 409);
  CHECK(error_code_of(again) == "INVALID_REQUEST");
}

TEST_CASE("every provider over HTTPS with a CA made at test time, refused without it") {
  temp_dir dir;
  auto tls = test::make_test_ca(dir.path() / "tls");
  mock_provider_server mock;
  std::string error;
  mock_provider_options options;
  options.tls_cert_file = tls.cert_file.string();
  options.tls_key_file = tls.key_file.string();
  REQUIRE(mock.start(options, error));
  auto base = "https://localhost:" + std::to_string(mock.port());
  const std::vector<std::string> providers{"openai", "openrouter", "anthropic", "google"};
  auto flags = [&](bool trust) {
    std::vector<std::string> xs{
        "--openai-base-url=" + base + "/v1", "--openrouter-base-url=" + base + "/api/v1",
        "--anthropic-base-url=" + base, "--google-base-url=" + base, "--retry-base-delay-ms=10"};
    if (trust)
      xs.push_back("--provider-ca-file=" + tls.ca_file.string());
    return xs;
  };
  auto run = [&](bool trust, const std::string& data) {
    provider_keys keys;
    test::lps_process lps{(dir.path() / data).string(), flags(trust)};
    REQUIRE(lps.port() != 0);
    receiver sink;
    client c;
    for (const auto& provider : providers)
      submit_bulk(c, lps, provider, 2, "tls-" + provider, sink.url());
    REQUIRE(sink.wait_for(8, std::chrono::seconds{30}));
    if (trust) {
      // Every provider call is counted, the retried 429s included.
      auto metrics = c.call("GET", lps.url("/metrics")).body;
      for (const auto& provider : providers)
        CHECK(metrics.find("llm_provider_http_calls_total{provider=\"" + provider + "\",endpoint=")
              != std::string::npos);
      CHECK(metrics.find("status_code=\"429\"") != std::string::npos);
    }
    std::lock_guard<std::mutex> guard{sink.mtx};
    std::map<std::string, std::string> codes;
    for (const auto& [id, events] : sink.events) {
      const auto& data = events.front().at("data").as_object();
      auto provider = std::string{data.at("provider").as_string()};
      codes[provider] = data.at("error_detail").is_null()
                            ? "ok"
                            : std::string{data.at("error_detail").at("error_code").as_string()};
    }
    return codes;
  };
  // One rate limit per provider on the way: retried by lps, then answered.
  REQUIRE(mock.add_faults(R"({"faults":[
      {"kind":"status","status":429,"retry_after":"0","dialect":"openai"},
      {"kind":"status","status":429,"retry_after":"0","dialect":"openrouter"},
      {"kind":"status","status":429,"retry_after":"0","dialect":"anthropic"},
      {"kind":"status","status":429,"retry_after":"0","dialect":"gemini"}]})",
                          error));
  for (const auto& [provider, code] : run(true, "trusted"))
    CHECK(code == "ok");
  CHECK(mock.stats().scripted_faults == 4);
  CHECK(mock.stats().by_outcome["rate_limited"] == 4);
  // Without the CA the certificate cannot be verified: a permanent connection error, no retry.
  auto refused = run(false, "untrusted");
  CHECK(refused.size() == 4);
  for (const auto& [provider, code] : refused)
    CHECK(code == "CONNECTION_ERROR");
}

TEST_CASE("batch_api: failed and expired items go back to the queue and succeed in later jobs") {
  mock_provider_server mock;
  std::string error;
  mock_provider_options options;
  options.batch.item_error_rate = 0.2;
  options.batch.item_expire_rate = 0.1;
  REQUIRE(mock.start(options, error));
  temp_dir dir;
  provider_keys keys{{"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}};
  test::lps_process lps{dir.path().string(), batch_flags(mock, "--queue-max-retries=10")};
  REQUIRE(lps.port() != 0);
  receiver sink;
  client c;
  submit_bulk(c, lps, "openai", 15, "r", sink.url());
  submit_bulk(c, lps, "anthropic", 15, "r", sink.url());
  REQUIRE(sink.wait_for(30, std::chrono::seconds{60}));
  std::lock_guard<std::mutex> guard{sink.mtx};
  CHECK(sink.total == 30);
  for (const auto& [id, events] : sink.events) {
    CHECK(events.size() == 1);
    CHECK(events.front().at("data").at("error_detail").is_null());
  }
  auto stats = mock.stats();
  // Some items ran more than once: in later jobs, after their first job's failure.
  CHECK(stats.batch.items_submitted["openai"] + stats.batch.items_submitted["anthropic"] > 30);
  CHECK(stats.batch.batches_created["openai"] + stats.batch.batches_created["anthropic"] > 2);
}

// -- the front door (issue 13) --

namespace {

/// A call with extra request headers (Authorization, Idempotency-Key).
http_client_response call_with(client& c, const std::string& method, const std::string& url,
                               std::string body,
                               std::vector<std::pair<std::string, std::string>> headers) {
  http_client_request req;
  req.method = method;
  req.url = url;
  req.body = std::move(body);
  req.headers = std::move(headers);
  req.headers.emplace_back("Content-Type", "application/json");
  req.timeout = std::chrono::seconds{20};
  std::promise<http_client_response> done;
  auto result = done.get_future();
  c.http.send(std::move(req),
              [&done](http_client_response res) { done.set_value(std::move(res)); });
  return result.get();
}

/// Sends this process's stderr (which lps children inherit) to a file for the scope.
struct stderr_to_file {
  int saved = -1;
  explicit stderr_to_file(const fs::path& path) {
    std::fflush(stderr);
    saved = ::dup(STDERR_FILENO);
    auto* f = std::fopen(path.c_str(), "w");
    REQUIRE(f != nullptr);
    ::dup2(::fileno(f), STDERR_FILENO);
    std::fclose(f);
  }
  ~stderr_to_file() {
    std::fflush(stderr);
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
  }
  stderr_to_file(const stderr_to_file&) = delete;
  stderr_to_file& operator=(const stderr_to_file&) = delete;
};

std::string read_text(const fs::path& path) {
  std::ifstream in{path};
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::string bulk_of(size_t n, size_t prompt_bytes) {
  std::string body = "{\"requests\":[";
  for (size_t i = 0; i < n; ++i)
    body += std::string{i ? "," : ""} + "{\"user_prompt\":\"" + std::to_string(i)
            + std::string(prompt_bytes, 'p') + "\"}";
  return body + "]}";
}

} // namespace

TEST_CASE("a real provider's key with the mock as default is warned about at start and in "
          "/healthz") {
  temp_dir dir;
  fs::create_directories(dir.path());
  auto log = dir.path() / "stderr.txt";
  provider_keys keys{{"OPENAI_API_KEY"}};
  std::optional<test::lps_process> lps;
  {
    stderr_to_file capture{log};
    lps.emplace((dir.path() / "data").string());
  }
  REQUIRE(lps->port() != 0);
  client c;
  auto health = c.call_json("GET", lps->url("/healthz"));
  CHECK(health["status"] == "healthy");
  std::string warnings;
  for (auto& w : health["warnings"].as_array())
    warnings += std::string{w.as_string()} + "\n";
  CHECK(warnings.find("DEFAULT_LLM_PROVIDER is mock although OPENAI_API_KEY is set")
        != std::string::npos);
  CHECK(warnings.find("DEFAULT_LLM_PROVIDER=openai") != std::string::npos);
  lps->stop();
  auto text = read_text(log);
  CHECK(text.find("DEFAULT_LLM_PROVIDER is mock although OPENAI_API_KEY is set")
        != std::string::npos);
  // With the provider set as meant, no warning.
  test::lps_process meant{(dir.path() / "meant").string(), {"--default-llm-provider=openai"}};
  REQUIRE(meant.port() != 0);
  auto quiet = c.call_json("GET", meant.url("/healthz"));
  CHECK(quiet["warnings"].as_array().empty());
}

TEST_CASE("MOCK_ALLOWED=false refuses requests that would resolve to the mock") {
  temp_dir dir;
  provider_keys keys{{"OPENAI_API_KEY"}};
  test::lps_process lps{dir.path().string(),
                        {"--mock-allowed=false", "--openai-base-url=http://127.0.0.1:9/v1"}};
  REQUIRE(lps.port() != 0);
  client c;
  auto by_default = c.call("POST", lps.url("/api/v1/comparison"), "{\"user_prompt\":\"x\"}");
  CHECK(by_default.status == 400);
  CHECK(by_default.body.find("provider mock (DEFAULT_LLM_PROVIDER=mock)") != std::string::npos);
  CHECK(by_default.body.find("MOCK_ALLOWED=false") != std::string::npos);
  auto by_override =
      c.call("POST", lps.url("/api/v1/comparison"),
             "{\"user_prompt\":\"x\",\"llm_config_overrides\":{\"provider_override\":\"mock\"}}");
  CHECK(by_override.status == 400);
  CHECK(error_field_of(by_override) == "llm_config_overrides.provider_override");
  // A request for a configured real provider still goes in.
  auto real =
      c.call("POST", lps.url("/api/v1/comparison"),
             "{\"user_prompt\":\"x\",\"llm_config_overrides\":{\"provider_override\":\"openai\"}}");
  CHECK(real.status == 202);
  CHECK(metrics_show(c, lps, "llm_provider_requests_accepted_total 1\n"));
  // /api/v1/providers and /healthz say why the mock is unavailable.
  auto health = c.call_json("GET", lps.url("/healthz"));
  auto& mock = health["providers"].as_object()["mock"].as_object();
  CHECK(mock["available"] == false);
  CHECK(mock["note"] == "MOCK_ALLOWED=false refuses requests for the mock provider");
}

TEST_CASE("the bulk route has its own body and item limits, and every 413 names its key") {
  temp_dir dir;
  client c;
  // 300 comparisons of 8 KB (2.4 MB): over the 1 MiB of the single route, within the bulk one.
  auto big = bulk_of(300, 8000);
  REQUIRE(big.size() > 2'400'000);
  SECTION("accepted with the defaults") {
    test::lps_process lps{dir.path().string(), {"--mock-latency-ms=60000"}};
    REQUIRE(lps.port() != 0);
    auto res = c.call_json("POST", lps.url("/api/v1/comparisons"), big);
    REQUIRE(res["results"].as_array().size() == 300);
    for (auto& item : res["results"].as_array())
      CHECK(item.as_object()["status"] == "queued");
    auto one = c.call("POST", lps.url("/api/v1/comparison"),
                      "{\"user_prompt\":\"" + std::string(2'000'000, 'p') + "\"}");
    CHECK(one.status == 413);
    CHECK(one.body.find("raise HTTP_MAX_BODY_BYTES") != std::string::npos);
  }
  SECTION("refused over HTTP_MAX_BULK_BODY_BYTES and BULK_MAX_REQUESTS") {
    test::lps_process lps{dir.path().string(),
                          {"--http-max-bulk-body-bytes=1048576", "--bulk-max-requests=5"}};
    REQUIRE(lps.port() != 0);
    auto res = c.call("POST", lps.url("/api/v1/comparisons"), big);
    CHECK(res.status == 413);
    CHECK(error_code_of(res) == "PAYLOAD_TOO_LARGE");
    CHECK(res.body.find("raise HTTP_MAX_BULK_BODY_BYTES") != std::string::npos);
    auto many = c.call("POST", lps.url("/api/v1/comparisons"), bulk_of(6, 10));
    CHECK(many.status == 413);
    CHECK(error_code_of(many) == "PAYLOAD_TOO_LARGE");
    CHECK(many.body.find("raise BULK_MAX_REQUESTS") != std::string::npos);
    CHECK(c.call("POST", lps.url("/api/v1/comparisons"), bulk_of(5, 10)).status == 202);
  }
}

namespace {

std::string queue_id_of(const http_client_response& res) {
  return std::string{json::parse(res.body).as_object().at("queue_id").as_string()};
}

} // namespace

TEST_CASE("the same Idempotency-Key twice creates one request, also across a restart") {
  temp_dir dir;
  receiver sink;
  client c;
  auto body = comparison_body("idempotent", sink.url());
  auto post = [&](const test::lps_process& lps, const std::string& key) {
    return call_with(c, "POST", lps.url("/api/v1/comparison"), body, {{"Idempotency-Key", key}});
  };
  std::string first_id;
  {
    test::lps_process lps{dir.path().string()};
    REQUIRE(lps.port() != 0);
    auto first = post(lps, "run-1/item-1");
    REQUIRE(first.status == 202);
    first_id = queue_id_of(first);
    auto second = post(lps, "run-1/item-1");
    CHECK(second.status == 200);
    CHECK(queue_id_of(second) == first_id);
    REQUIRE(sink.wait_for(1, std::chrono::seconds{20}));
    // One request, one provider call, one result.
    CHECK(metrics_show(c, lps, "llm_provider_requests_accepted_total 1\n"));
    CHECK(metrics_show(c, lps,
                       "llm_provider_serial_bundle_items_per_call_count{provider=\"mock\","
                       "model=\"mock-model-v1\"} 1\n"));
    // Two at once with a new key: one request between them.
    auto a = std::async(std::launch::async, [&] { return post(lps, "run-1/item-2"); });
    auto b = std::async(std::launch::async, [&] { return post(lps, "run-1/item-2"); });
    auto ra = a.get();
    auto rb = b.get();
    CHECK(std::multiset<unsigned>{ra.status, rb.status} == std::multiset<unsigned>{200, 202});
    CHECK(queue_id_of(ra) == queue_id_of(rb));
    CHECK(queue_id_of(ra) != first_id);
    REQUIRE(sink.wait_for(2, std::chrono::seconds{20}));
    CHECK(metrics_show(c, lps, "llm_provider_requests_accepted_total 2\n"));
    CHECK(lps.stop(SIGTERM) == 0); // an orderly shutdown still ends
  }
  test::lps_process again{dir.path().string()};
  REQUIRE(again.port() != 0);
  auto after_restart = post(again, "run-1/item-1");
  CHECK(after_restart.status == 200);
  CHECK(queue_id_of(after_restart) == first_id);
  auto parsed = json::parse(after_restart.body).as_object();
  CHECK(parsed["status"] == "completed");
  CHECK(c.call("GET", again.url("/api/v1/results/" + first_id)).status == 200);
  // Two requests, each with one result event (a callback whose delivery was not yet marked
  // when the first process was killed comes again after the restart, with the same event_id).
  std::lock_guard<std::mutex> guard{sink.mtx};
  CHECK(sink.events.size() == 2);
  for (const auto& event : sink.events[first_id])
    CHECK(event.at("event_id") == sink.events[first_id].front().at("event_id"));
}

TEST_CASE("DEDUPE_BY_CORRELATION_ID makes a repeated correlation_id a repeated submission") {
  temp_dir dir;
  client c;
  auto body = "{\"user_prompt\":\"x\",\"correlation_id\":\"" + new_uuid() + "\"}";
  test::lps_process plain{(dir.path() / "plain").string()};
  REQUIRE(plain.port() != 0);
  auto p1 = c.call("POST", plain.url("/api/v1/comparison"), body);
  auto p2 = c.call("POST", plain.url("/api/v1/comparison"), body);
  CHECK(p1.status == 202);
  CHECK(p2.status == 202);
  CHECK(queue_id_of(p1) != queue_id_of(p2));
  test::lps_process dedupe{(dir.path() / "dedupe").string(), {"--dedupe-by-correlation-id=true"}};
  REQUIRE(dedupe.port() != 0);
  auto d1 = c.call("POST", dedupe.url("/api/v1/comparison"), body);
  auto d2 = c.call("POST", dedupe.url("/api/v1/comparison"), body);
  CHECK(d1.status == 202);
  CHECK(d2.status == 200);
  CHECK(queue_id_of(d1) == queue_id_of(d2));
  auto too_long = call_with(c, "POST", dedupe.url("/api/v1/comparison"), body,
                            {{"Idempotency-Key", std::string(256, 'k')}});
  CHECK(too_long.status == 400);
  CHECK(error_field_of(too_long) == "Idempotency-Key");
}

TEST_CASE("API keys protect the client routes, ADMIN_TOKEN the operator routes, and neither "
          "is ever shown") {
  temp_dir dir;
  fs::create_directories(dir.path());
  const std::string key = "client-key-7f3a9c";
  const std::string token = "admin-token-51be02";
  auto keys_file = dir.path() / "keys.txt";
  std::ofstream{keys_file} << "# test clients\ncj " << sha256_hex(key) << "\n";
  auto log = dir.path() / "stderr.txt";
  std::optional<test::lps_process> lps;
  {
    stderr_to_file capture{log};
    lps.emplace((dir.path() / "data").string(),
                std::vector<std::string>{"--api-keys-file=" + keys_file.string(),
                                         "--admin-token=" + token, "--log-level=debug"});
  }
  REQUIRE(lps->port() != 0);
  client c;
  std::string seen;
  auto call = [&](const std::string& method, const std::string& path, const std::string& bearer,
                  std::string body = {}) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!bearer.empty())
      headers.emplace_back("Authorization", "Bearer " + bearer);
    auto res = call_with(c, method, lps->url(path), std::move(body), headers);
    seen += res.body;
    for (const auto& [name, value] : res.headers)
      seen += name + ": " + value + "\n";
    return res;
  };
  auto body = std::string{"{\"user_prompt\":\"x\"}"};
  auto anonymous = call("POST", "/api/v1/comparison", "", body);
  CHECK(anonymous.status == 401);
  CHECK(error_code_of(anonymous) == "AUTHENTICATION_ERROR");
  CHECK(call("POST", "/api/v1/comparison", key + "x", body).status == 401);
  CHECK(call("POST", "/api/v1/comparison", token, body).status == 401);
  auto accepted = call("POST", "/api/v1/comparison", key, body);
  REQUIRE(accepted.status == 202);
  auto id = queue_id_of(accepted);
  CHECK(call("GET", "/api/v1/status/" + id, "").status == 401);
  CHECK(call("GET", "/api/v1/status/" + id, key).status == 200);
  CHECK(call("GET", "/api/v1/results/" + id, "").status == 401);
  CHECK(call("POST", "/api/v1/comparisons", "", "{\"requests\":[{\"user_prompt\":\"y\"}]}").status
        == 401);
  // Probes stay open.
  CHECK(call("GET", "/healthz", "").status == 200);
  CHECK(call("GET", "/metrics", "").status == 200);
  // Operator routes take the admin token, not a client key.
  CHECK(call("GET", "/api/v1/inspect", key).status == 401);
  CHECK(call("GET", "/api/v1/inspect", token).status == 200);
  CHECK(call("POST", "/api/v1/batch-jobs/nope/cancel", "").status == 401);
  CHECK(call("POST", "/api/v1/batch-jobs/nope/cancel", token).status == 404);
  // The admin token reads what clients read (one token for the console and lpsctl), but
  // never submits or cancels as a client.
  for (auto path : {"/api/v1/runs", "/api/v1/providers", "/api/v1/batch-jobs", "/api/v1/models",
                    "/api/v1/results?bos_batch_id=none"}) {
    INFO(path);
    CHECK(call("GET", path, token).status == 200);
    CHECK(call("GET", path, "").status == 401);
    CHECK(call("GET", path, token + "x").status == 401);
  }
  CHECK(call("GET", "/api/v1/status/" + id, token).status == 200);
  CHECK(call("POST", "/api/v1/requests/" + id + "/cancel", token).status == 401);
  CHECK(
      call("POST", "/api/v1/comparisons", token, "{\"requests\":[{\"user_prompt\":\"y\"}]}").status
      == 401);
  lps->stop();
  auto text = read_text(log);
  CHECK_FALSE(text.empty()); // debug logging was on
  for (const auto& secret : {key, token}) {
    CHECK(seen.find(secret) == std::string::npos);
    CHECK(text.find(secret) == std::string::npos);
  }
}

TEST_CASE("a bad API keys file or an open non-loopback bind refuses to start") {
  temp_dir dir;
  fs::create_directories(dir.path());
  auto keys_file = dir.path() / "keys.txt";
  std::ofstream{keys_file} << "cj " << sha256_hex("k") << "\nnightly sk-in-clear\n";
  auto data = "--data-dir=" + (dir.path() / "data").string();
  auto bad = test::run_command(
      {LPS_BINARY, "--http-port=0", data, "--api-keys-file=" + keys_file.string()});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find(keys_file.string() + ":2: expected") != std::string::npos);
  CHECK(bad.err.find("sk-in-clear") == std::string::npos);
  // Checked before anything is bound: the refusal is the whole answer.
  auto open = test::run_command({LPS_BINARY, "--http-port=0", data, "--http-host=0.0.0.0"});
  CHECK(open.exit_code == 2);
  CHECK(open.err.find("HTTP_HOST '0.0.0.0'") != std::string::npos);
  CHECK(open.err.find("ALLOW_UNAUTHENTICATED=true") != std::string::npos);
  auto on_purpose = test::run_command(
      {LPS_BINARY, "--http-host=0.0.0.0", "--allow-unauthenticated=true", "--dump-config"});
  CHECK(on_purpose.exit_code == 0);
  CHECK(on_purpose.out.find("http-host = 0.0.0.0") != std::string::npos);
}

TEST_CASE("the API over HTTPS with HTTP_TLS_CERT and HTTP_TLS_KEY") {
  temp_dir dir;
  auto tls = test::make_test_ca(dir.path() / "tls");
  test::lps_process lps{
      (dir.path() / "data").string(),
      {"--http-tls-cert=" + tls.cert_file.string(), "--http-tls-key=" + tls.key_file.string()}};
  REQUIRE(lps.port() != 0);
  auto https = "https://localhost:" + std::to_string(lps.port());
  http_client secure{http_client_options{1, 4, tls.ca_file.string(), true}};
  auto send = [](http_client& http, const std::string& method, const std::string& url,
                 std::string body) {
    http_client_request req;
    req.method = method;
    req.url = url;
    req.body = std::move(body);
    req.headers.emplace_back("Content-Type", "application/json");
    req.timeout = std::chrono::seconds{10};
    std::promise<http_client_response> done;
    auto result = done.get_future();
    http.send(std::move(req),
              [&done](http_client_response res) { done.set_value(std::move(res)); });
    return result.get();
  };
  CHECK(send(secure, "GET", https + "/healthz", "").status == 200);
  auto accepted = send(secure, "POST", https + "/api/v1/comparison", "{\"user_prompt\":\"tls\"}");
  CHECK(accepted.status == 202);
  // Plain HTTP gets no answer; a client without the CA cannot verify the server.
  client plain;
  CHECK(plain.call("GET", lps.url("/healthz")).status == 0);
  http_client untrusting{http_client_options{1, 4, "", true}};
  auto refused = send(untrusting, "GET", https + "/healthz", "");
  CHECK(refused.status == 0);
  CHECK(refused.error == transport_error::tls);
}

TEST_CASE("lps --help names lps' own options and its default config file") {
  auto help = test::run_command({LPS_BINARY, "--help"});
  CHECK(help.exit_code == 0);
  auto text = help.out + help.err;
  CHECK(text.find("--dump-config         : print lps' effective configuration")
        != std::string::npos);
  CHECK(text.find("default: lps.ini") != std::string::npos);
  CHECK(text.find("caf-application.ini") == std::string::npos);
  CHECK(text.find("print configuration to STDERR") == std::string::npos);
  CHECK(text.find("--long-help") != std::string::npos); // CAF's own options stay
}

TEST_CASE("SIGTERM waits SHUTDOWN_GRACE_SECONDS, says draining and puts unfinished calls back") {
  temp_dir dir;
  std::vector<std::string> ids;
  {
    // Calls take 5 s, longer than the 1 s grace: they are cut off and put back.
    test::lps_process lps{dir.path().string(),
                          {"--mock-latency-ms=5000", "--shutdown-grace-seconds=1"}};
    REQUIRE(lps.port() != 0);
    client c;
    CHECK(c.call("HEAD", lps.url("/healthz"), {}, "").status == 200);
    for (int i = 0; i < 4; ++i) {
      auto res = c.call_json("POST", lps.url("/api/v1/comparison"),
                             "{\"user_prompt\":\"cut off " + std::to_string(i) + "\"}");
      ids.emplace_back(res["queue_id"].as_string());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{200}); // let the bundles go out
    auto started = std::chrono::steady_clock::now();
    auto stopper = std::async(std::launch::async, [&lps] { return lps.stop(SIGTERM); });
    // As soon as intake stops, /healthz answers 503 "draining", to GET and to HEAD.
    http_client_response health;
    for (int i = 0; i < 100 && health.status != 503; ++i) {
      health = c.call("GET", lps.url("/healthz"));
      if (health.status == 0)
        break; // already closed
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    REQUIRE(health.status == 503);
    CHECK(json::parse(health.body).as_object()["status"] == "draining");
    auto head = c.call("HEAD", lps.url("/healthz"), {}, "");
    CHECK(head.status == 503);
    CHECK(head.body.empty());
    CHECK(stopper.get() == 0);
    // The grace (1 s), not the calls (5 s), bounds the shutdown.
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::milliseconds{4500});
  }
  // Put back, not lost: the restart recovers all four and each ends in a result.
  check_recovered_after_restart(dir, ids);
}

namespace {

/// A callback receiver that keeps each POST's raw body and X-LPS-Signature header, and
/// answers with `status` (and `location`, for redirects).
struct raw_receiver {
  struct hit {
    std::string path;
    std::string body;
    std::string signature;
  };
  http_server server;
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<hit> hits;

  explicit raw_receiver(unsigned status = 200, std::string location = "") {
    std::string error;
    http_server_options options;
    options.port = 0;
    REQUIRE(server.start(
        options,
        [this, status, location](http_request&& req, http_responder respond) {
          hit h{req.path, req.body, ""};
          for (const auto& [name, value] : req.headers)
            if (name == "x-lps-signature")
              h.signature = value;
          {
            std::lock_guard<std::mutex> guard{mtx};
            hits.push_back(std::move(h));
          }
          cv.notify_all();
          http_response res{status, "{}", "application/json", {}};
          if (!location.empty())
            res.headers.emplace_back("Location", location);
          respond(std::move(res));
        },
        error));
  }

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(server.port()) + "/hook";
  }

  bool wait_for(size_t n, std::chrono::seconds limit) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, limit, [&] { return hits.size() >= n; });
  }
};

/// The callbacks actor's facts.last_error in /api/v1/inspect once it equals `expected`
/// (polled every 25 ms for up to 10 s); what it was last otherwise.
std::string wait_for_callback_error(client& c, const test::lps_process& lps,
                                    const std::string& expected) {
  std::string seen;
  for (int i = 0; i < 400 && seen != expected; ++i) {
    auto inspect = c.call_json("GET", lps.url("/api/v1/inspect"));
    for (auto& actor : inspect["actors"].as_array())
      if (actor.as_object()["kind"].as_string() == "callbacks")
        if (auto* x = actor.as_object()["facts"].as_object().if_contains("last_error"))
          seen = std::string{x->as_string()};
    if (seen != expected)
      std::this_thread::sleep_for(std::chrono::milliseconds{25});
  }
  return seen;
}

} // namespace

TEST_CASE("signed callbacks carry an X-LPS-Signature that the documented check accepts") {
  const std::string secret = "whsec-integration-7";
  auto dump =
      test::run_command({LPS_BINARY, "--dump-config", "--callback-signing-secret=" + secret});
  CHECK(dump.out.find("callback-signing-secret = ***") != std::string::npos);
  CHECK(dump.out.find(secret) == std::string::npos);
  temp_dir dir;
  test::lps_process lps{dir.path().string(), {"--callback-signing-secret=" + secret}};
  REQUIRE(lps.port() != 0);
  raw_receiver sink;
  client c;
  auto res = c.call("POST", lps.url("/api/v1/comparison"), comparison_body("signed", sink.url()));
  REQUIRE(res.status == 202);
  REQUIRE(sink.wait_for(1, std::chrono::seconds{20}));
  auto hit = sink.hits.front();
  REQUIRE(hit.signature.starts_with("t="));
  // Checked independently by Python's hmac with the verification code of docs/api.md, also
  // with a wrong secret and a changed body, which it must refuse.
  auto body_file = dir.path() / "body.json";
  std::ofstream{body_file, std::ios::binary} << hit.body;
  const std::string check = R"(
import hashlib, hmac, sys, time

def verify(secret: bytes, body: bytes, header: str, tolerance: int = 300) -> bool:
    fields = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    t, v1 = fields.get("t", ""), fields.get("v1", "")
    if not t.isdigit() or abs(time.time() - int(t)) > tolerance:
        return False  # missing, malformed, too old or from the future
    expected = hmac.new(secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, v1)

secret, header, body = sys.argv[1].encode(), sys.argv[2], open(sys.argv[3], "rb").read()
print(verify(secret, body, header), verify(b"wrong", body, header),
      verify(secret, body + b" ", header))
)";
  auto verdict = test::run_command(
      {"/usr/bin/python3", "-c", check, secret, hit.signature, body_file.string()});
  INFO(verdict.err);
  CHECK(verdict.out == "True False False\n");
}

TEST_CASE("the callback target guard refuses metadata and private targets and no redirect is "
          "followed") {
  client c;
  {
    temp_dir dir;
    test::lps_process lps{dir.path().string(), {"--callback-max-attempts=2"}};
    REQUIRE(lps.port() != 0);
    // Refused before any connection: the error is the guard's, not a connect failure or
    // timeout, and it comes at the first attempt (given up at once).
    auto res = c.call("POST", lps.url("/api/v1/comparison"),
                      comparison_body("metadata", "http://169.254.169.254/latest/meta-data/"));
    REQUIRE(res.status == 202);
    CHECK(wait_for_callback_error(c, lps,
                                  "invalid: callback target 169.254.169.254 is "
                                  "link-local/metadata: refused")
          == "invalid: callback target 169.254.169.254 is link-local/metadata: refused");
    // A receiver that redirects to the metadata address: the 302 is a failed attempt, the
    // Location is never requested, and after CALLBACK_MAX_ATTEMPTS (2) it is given up.
    raw_receiver redirector{302, "http://169.254.169.254/latest/meta-data/"};
    res = c.call("POST", lps.url("/api/v1/comparison"),
                 comparison_body("redirected", redirector.url()));
    REQUIRE(res.status == 202);
    CHECK(wait_for_callback_error(c, lps, "HTTP 302") == "HTTP 302");
    std::lock_guard<std::mutex> guard{redirector.mtx};
    CHECK(redirector.hits.size() == 2);
    for (const auto& hit : redirector.hits)
      CHECK(hit.path == "/hook");
  }
  {
    temp_dir dir;
    test::lps_process lps{dir.path().string(), {"--callback-allow-private=false"}};
    REQUIRE(lps.port() != 0);
    raw_receiver sink;
    auto res =
        c.call("POST", lps.url("/api/v1/comparison"), comparison_body("private", sink.url()));
    REQUIRE(res.status == 202);
    auto id = std::string{json::parse(res.body).as_object()["queue_id"].as_string()};
    CHECK(wait_for_callback_error(c, lps,
                                  "invalid: callback target 127.0.0.1 is loopback: "
                                  "refused (CALLBACK_ALLOW_PRIVATE=false)")
          == "invalid: callback target 127.0.0.1 is loopback: refused "
             "(CALLBACK_ALLOW_PRIVATE=false)");
    // The result itself is final and readable; the receiver got nothing.
    CHECK_FALSE(wait_for_result(c, lps, id).empty());
    std::lock_guard<std::mutex> guard{sink.mtx};
    CHECK(sink.hits.empty());
  }
}

// Issue 13: the provider pool follows <PROVIDER>_MAX_CONCURRENT_CALLS (the pool setting stays at
// its default of 64), the call timeout does not count the wait for a connection, and no call
// is given up and sent again: the provider receives exactly one call per request.
TEST_CASE("1000 requests at 1 s provider latency with 500 concurrent calls are each sent once") {
  mock_provider_options options;
  options.latency = std::chrono::milliseconds{1000};
  options.io_threads = 2;
  options.rate_limit_requests = 0; // no rate-limit headers: only the concurrency limit paces
  options.rate_limit_tokens = 0;
  mock_provider_server mock;
  std::string error;
  REQUIRE(mock.start(options, error));
  temp_dir dir;
  provider_keys keys{{"OPENAI_API_KEY"}};
  test::lps_process lps{
      dir.path().string(),
      {"--openai-base-url=http://127.0.0.1:" + std::to_string(mock.port()) + "/v1",
       "--openai-default-model=gpt-4o-mini-2024-07-18", "--default-llm-provider=openai",
       "--queue-processing-mode=per_request", "--openai-max-concurrent-calls=500",
       "--provider-request-timeout-ms=5000"}};
  REQUIRE(lps.port() != 0);
  client c;
  REQUIRE(c.call("POST", lps.url("/api/v1/comparisons"), bulk_of(1000, 40)).status == 202);
  // While the provider holds 500 calls for its 1 s, lps' gauge counts the calls open at the
  // provider: at most the 500 the concurrency limit (and so the pool) allows, none waiting.
  const std::string inflight = "llm_provider_inflight_provider_calls{provider=\"openai\"}";
  REQUIRE(mock.wait_for_calls([](const auto& s) { return s.in_flight >= 400; },
                              std::chrono::milliseconds{10000}));
  auto open = metric_value(c, lps, inflight);
  CHECK(open >= 400);
  CHECK(open <= 500);
  CHECK(metric_value(c, lps, "llm_provider_calls_waiting_for_connection{provider=\"openai\"}")
        == 0);
  auto all_answered = [](const mock_provider_stats& s) {
    return s.calls >= 1000 && s.in_flight == 0;
  };
  REQUIRE(mock.wait_for_calls(all_answered, std::chrono::milliseconds{25000}));
  // Anything given up and retried would show up as more calls after a moment.
  CHECK_FALSE(mock.wait_for_calls([](const auto& s) { return s.calls > 1000; },
                                  std::chrono::milliseconds{1500}));
  auto s = mock.stats();
  CHECK(s.calls == 1000);
  CHECK(s.by_outcome["ok"] == 1000);
  CHECK(s.peak_in_flight <= 500);
  CHECK(s.peak_in_flight >= 400); // with the old pool of 64 connections it stayed at 64
  CHECK(metrics_show(c, lps, inflight + " 0\n"));
  CHECK(lps.stop() == 0);
}

TEST_CASE("a rejected provider key pauses the provider and resume delivers every request once") {
  mock_provider_server mock;
  std::string error;
  REQUIRE(mock.start(mock_provider_options{}, error));
  // Every openai call is refused as with a revoked key, until the test resets the mock.
  REQUIRE(mock.add_faults(
      R"({"faults":[{"kind":"status","status":401,"count":1000}],"dialect":"openai"})", error));
  temp_dir dir;
  provider_keys keys{{"OPENAI_API_KEY"}};
  test::lps_process lps{
      dir.path().string(),
      {"--openai-base-url=http://127.0.0.1:" + std::to_string(mock.port()) + "/v1",
       "--retry-base-delay-ms=10"}};
  REQUIRE(lps.port() != 0);
  receiver sink;
  client c;
  std::string body = "{\"requests\":[";
  for (int i = 0; i < 20; ++i)
    body += std::string{i ? "," : ""} + "{\"user_prompt\":\"key " + std::to_string(i)
            + "\",\"callback_url\":" + json_quote(sink.url())
            + ",\"llm_config_overrides\":{\"provider_override\":\"openai\"}}";
  REQUIRE(c.call("POST", lps.url("/api/v1/comparisons"), body + "]}").status == 202);
  CHECK(metrics_show(c, lps, "llm_provider_paused{provider=\"openai\"} 1"));
  // Paused: once the calls already made have answered, no more go out and nothing becomes
  // final.
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  auto calls = mock.stats().by_dialect["openai"];
  CHECK(calls >= 1);
  std::this_thread::sleep_for(std::chrono::milliseconds{500});
  CHECK(mock.stats().by_dialect["openai"] == calls);
  CHECK_FALSE(sink.wait_for(1, std::chrono::seconds{0}));
  auto health = c.call("GET", lps.url("/healthz"));
  CHECK(health.status == 200);
  auto health_body = json::parse(health.body).as_object();
  CHECK(health_body["status"] == "degraded");
  auto warnings = json::serialize(health_body["warnings"]);
  CHECK(warnings.find("provider openai is paused: AUTHENTICATION_ERROR: fix the key, then POST "
                      "/api/v1/providers/openai/resume")
        != std::string::npos);
  auto providers = c.call_json("GET", lps.url("/api/v1/providers"));
  for (auto& p : providers["providers"].as_array()) {
    auto& provider = p.as_object();
    CHECK(provider["paused"].as_bool() == (provider["name"] == "openai"));
    if (provider["name"] == "openai")
      CHECK(std::string{provider["pause_reason"].as_string()}.starts_with("AUTHENTICATION_ERROR"));
  }
  CHECK(c.call("POST", lps.url("/api/v1/providers/nope/resume"), "").status == 404);
  CHECK(c.call("POST", lps.url("/api/v1/providers/mock/resume"), "").status == 409);
  // The operator fixes the key (the mock stops refusing) and resumes: every request
  // completes, exactly once.
  mock.reset();
  CHECK(c.call("POST", lps.url("/api/v1/providers/openai/resume"), "").status == 202);
  REQUIRE(sink.wait_for(20, std::chrono::seconds{20}));
  CHECK(metrics_show(c, lps, "llm_provider_paused{provider=\"openai\"} 0"));
  std::this_thread::sleep_for(std::chrono::milliseconds{200}); // room for a duplicate
  std::lock_guard<std::mutex> guard{sink.mtx};
  CHECK(sink.total == 20);
  CHECK(sink.events.size() == 20);
  for (const auto& [id, events] : sink.events) {
    CHECK(events.size() == 1);
    CHECK(events.front().at("data").at("error_detail").is_null());
  }
}

TEST_CASE("status shows a given-up callback as failed, not retried after a restart, and a "
          "retry's last error and next attempt while it waits") {
  temp_dir dir;
  raw_receiver failing{500};
  receiver healthy;
  client c;
  std::string id;
  auto status_of = [&](const test::lps_process& lps) {
    return c.call_json("GET", lps.url("/api/v1/status/" + id));
  };
  {
    test::lps_process lps{dir.path().string(), {"--callback-max-attempts=2"}};
    REQUIRE(lps.port() != 0);
    auto res = c.call("POST", lps.url("/api/v1/comparison"), comparison_body("x", failing.url()));
    REQUIRE(res.status == 202);
    id = std::string{json::parse(res.body).as_object()["queue_id"].as_string()};
    json::object status;
    for (int i = 0; i < 400; ++i) {
      status = status_of(lps);
      if (auto* d = status.if_contains("callback_delivery"); d && *d == "failed")
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds{25});
    }
    CHECK(status["callback_delivery"] == "failed");
    CHECK(status["callback_attempts"] == 2);
    CHECK(status["callback_last_error"] == "HTTP 500");
    CHECK(lps.stop() == 0);
  }
  test::lps_process again{dir.path().string(), {"--callback-max-attempts=2"}};
  REQUIRE(again.port() != 0);
  // Recovery hands undelivered results to the callbacks actor before the API answers, so once
  // a later request's callback arrived, a redelivery of the given-up one would have too.
  auto res = c.call("POST", again.url("/api/v1/comparison"), comparison_body("y", healthy.url()));
  REQUIRE(res.status == 202);
  REQUIRE(healthy.wait_for(1, std::chrono::seconds{20}));
  {
    std::lock_guard<std::mutex> guard{failing.mtx};
    CHECK(failing.hits.size() == 2);
  }
  auto status = status_of(again);
  CHECK(status["callback_delivery"] == "failed");
  CHECK(status["callback_attempts"] == 2);

  // Every mock call fails with a retryable 503; the minute's backoff keeps it waiting.
  temp_dir retry_dir;
  test::lps_process failing_lps{
      retry_dir.path().string(),
      {"--mock-error-rate=1", "--mock-error-codes=503", "--retry-base-delay-ms=60000"}};
  REQUIRE(failing_lps.port() != 0);
  res = c.call("POST", failing_lps.url("/api/v1/comparison"), "{\"user_prompt\":\"retry me\"}");
  REQUIRE(res.status == 202);
  id = std::string{json::parse(res.body).as_object()["queue_id"].as_string()};
  for (int i = 0; i < 400; ++i) {
    status = status_of(failing_lps);
    if (!status["next_attempt_at"].is_null())
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{25});
  }
  CHECK(status["status"] == "queued");
  CHECK(status["provider"] == "mock");
  CHECK(status["model"] == "mock-model-v1");
  CHECK(status["attempts"] == 1);
  REQUIRE(status["last_error"].is_object());
  CHECK(status["last_error"].as_object()["code"] == "EXTERNAL_SERVICE_ERROR");
  CHECK(status["last_error"].as_object()["message"] == "mock provider simulated HTTP 503");
  REQUIRE(status["next_attempt_at"].is_string());
  // 60 s with up to 50 % jitter: at least 30 s after the queued_at of the same clock.
  CHECK(std::string{status["next_attempt_at"].as_string()}
        > std::string{status["queued_at"].as_string()});
}

TEST_CASE("a second lps on a running one's DATA_DIR refuses to start, naming the PID") {
  temp_dir dir;
  test::lps_process first{dir.path().string()};
  REQUIRE(first.port() != 0);
  auto second = test::run_command(
      {LPS_BINARY, "--http-port=0", "--data-dir=" + dir.path().string(),
       std::string{"--model-manifest="} + LPS_SOURCE_DIR + "/config/models.json"});
  CHECK(second.exit_code == 2);
  CHECK(second.err.find("in use by another lps process (PID ") != std::string::npos);
  // The first one still serves.
  client c;
  CHECK(c.call("GET", first.url("/healthz")).status == 200);
  // Once the first is gone (even by SIGKILL), the directory can be used again.
  first.stop(SIGKILL);
  test::lps_process again{dir.path().string()};
  CHECK(again.port() != 0);
}
