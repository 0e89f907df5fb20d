// lpsctl against the real lps binary: a JSONL run submitted in chunks and every result
// collected exactly once, the script-friendly views, and exit codes scripts can trust.

#include "integration/lps_process.hpp"
#include "fixtures/raw_socket.hpp"
#include "fixtures/temp_dir.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <unistd.h>

using namespace lps;
namespace json = boost::json;

namespace {

test::run_result lpsctl(const test::lps_process& lps, std::vector<std::string> args) {
  args.insert(args.begin(), {LPSCTL_BINARY, "--url=" + lps.url("")});
  return test::run_command(args);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> result;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);)
    if (!line.empty())
      result.push_back(line);
  return result;
}

// The body of GET `path` exactly as lps sent it (Connection: close frames it).
std::string raw_body(const test::lps_process& lps, const std::string& path) {
  test::raw_socket client{lps.port()};
  client.write("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  bool closed = false;
  auto answer = client.read_until_closed(std::chrono::seconds{10}, closed);
  REQUIRE(closed);
  auto head_end = answer.find("\r\n\r\n");
  REQUIRE(head_end != std::string::npos);
  return answer.substr(head_end + 4);
}

} // namespace

TEST_CASE("submit --wait collects every result of a 2,000-comparison file exactly once") {
  test::temp_dir dir;
  test::lps_process lps{(dir.path() / "data").string()};
  REQUIRE(lps.port() != 0);
  auto input = dir.path() / "run.jsonl";
  constexpr int count = 2000;
  {
    std::ofstream out{input};
    for (int i = 0; i < count; ++i)
      out << R"({"user_prompt":"Which essay is better? )" << i << R"(","metadata":{"essay_a_id":"a)"
          << i << R"(","essay_b_id":"b)" << i << R"(","bos_batch_id":"run-1"}})"
          << "\n";
  }
  auto results = dir.path() / "results.jsonl";
  auto run = lpsctl(lps, {"submit", input.string(), "--chunk=300", "--wait", "--out",
                          results.string(), "--timeout=120"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(run.err.find("2000 requests, 2000 accepted, 0 refused") != std::string::npos);
  std::ifstream in{results};
  std::stringstream text;
  text << in.rdbuf();
  auto events = lines_of(text.str());
  REQUIRE(events.size() == count);
  std::set<std::string> ids, essays;
  for (const auto& line : events) {
    auto event = json::parse(line).as_object();
    CHECK(event["event_type"] == "LLMComparisonResultV1");
    auto& data = event["data"].as_object();
    ids.insert(std::string{data["request_id"].as_string()});
    essays.insert(std::string{data["request_metadata"].as_object()["essay_a_id"].as_string()});
  }
  CHECK(ids.size() == count);    // no request twice
  CHECK(essays.size() == count); // and every line of the file is there

  // status of one of them, as one JSON line (not a terminal)
  auto status = lpsctl(lps, {"status", *ids.begin()});
  REQUIRE(status.exit_code == 0);
  CHECK(json::parse(status.out).as_object()["status"] == "completed");
}

TEST_CASE("submit reports refused lines by number and exits 1, bad input exits 2") {
  test::temp_dir dir;
  test::lps_process lps{(dir.path() / "data").string()};
  REQUIRE(lps.port() != 0);
  auto input = dir.path() / "mixed.jsonl";
  std::ofstream{input} << R"({"user_prompt":"fine"})"
                       << "\n\n"
                       << R"({"user_prompt":""})"
                       << "\n";
  auto run = lpsctl(lps, {"submit", input.string()});
  CHECK(run.exit_code == 1);
  CHECK(run.err.find("line 3: VALIDATION_ERROR (user_prompt)") != std::string::npos);
  CHECK(lines_of(run.out).size() == 1); // the accepted request's queue_id

  auto broken = dir.path() / "broken.jsonl";
  std::ofstream{broken} << R"({"user_prompt":"fine"})"
                        << "\n"
                        << "not json\n";
  auto bad = lpsctl(lps, {"submit", broken.string()});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("broken.jsonl:2: not a JSON object") != std::string::npos);
  CHECK(lpsctl(lps, {"submit", (dir.path() / "missing.jsonl").string()}).exit_code == 2);
}

TEST_CASE("top prints a snapshot when not on a terminal, an unreachable lps exits 3") {
  test::temp_dir dir;
  test::lps_process lps{(dir.path() / "data").string()};
  REQUIRE(lps.port() != 0);
  auto top = lpsctl(lps, {"top"});
  REQUIRE(top.exit_code == 0);
  CHECK(top.out.find("queue     queued 0  processing 0  total 0") != std::string::npos);
  CHECK(top.out.find("queue-manager") != std::string::npos);
  CHECK(top.out.find("mock         closed") != std::string::npos);
  CHECK(top.out.find("PAUSED") != std::string::npos);
  CHECK(top.out.find("\033[") == std::string::npos); // no terminal control codes
  auto jobs = lpsctl(lps, {"jobs"});
  CHECK(jobs.exit_code == 0);
  CHECK(jobs.out.find("JOB") == 0);
  auto down = test::run_command({LPSCTL_BINARY, "--url=http://127.0.0.1:9", "health"});
  CHECK(down.exit_code == 3);
  CHECK(down.err.find("cannot reach http://127.0.0.1:9") != std::string::npos);
}

TEST_CASE("top shows the queue by provider and model and the runs with their progress") {
  test::temp_dir dir;
  // One call at a time, one request per call, a minute each: the rest of the run waits.
  test::lps_process lps{(dir.path() / "data").string(),
                        {"--mock-latency-ms=60000", "--mock-max-concurrent-calls=1",
                         "--serial-bundle-max-requests-per-call=1"}};
  REQUIRE(lps.port() != 0);
  auto file = dir.path() / "night.jsonl";
  {
    std::ofstream out{file};
    for (int i = 0; i < 5; ++i)
      out << R"({"user_prompt":"Which essay is better? )" << i
          << R"(","metadata":{"essay_a_id":"a","essay_b_id":"b","bos_batch_id":"night-1"}})"
          << "\n";
  }
  REQUIRE(lpsctl(lps, {"submit", file.string()}).exit_code == 0);
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  auto has_queue_row = [&] {
    std::istringstream in{out};
    for (std::string line; std::getline(in, line);) {
      std::istringstream row{line};
      std::string provider, model;
      double waiting = -1, oldest = -1;
      row >> provider >> model >> waiting >> oldest;
      if (provider == "mock" && model == "mock-model-v1" && waiting == 4 && oldest >= 0)
        return true;
    }
    return false;
  };
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds{500}); // the next inspector snapshot
    auto top = lpsctl(lps, {"top"});
    REQUIRE(top.exit_code == 0);
    out = top.out;
  } while (!has_queue_row() && std::chrono::steady_clock::now() < deadline);
  INFO(out);
  CHECK(has_queue_row());
  CHECK(out.find("PROVIDER     MODEL") != std::string::npos);
  // The run: none of its 5 done, 0 %, no rate yet so no ETA.
  std::istringstream in{out};
  bool run_row = false;
  for (std::string line; std::getline(in, line);)
    if (line.rfind("night-1 ", 0) == 0) {
      std::istringstream row{line};
      std::string name, progress, percent;
      row >> name >> progress >> percent;
      run_row = progress == "0/5" && percent == "0%";
    }
  CHECK(run_row);
}

TEST_CASE("results --follow writes every event of a run once and runs and run count them") {
  test::temp_dir dir;
  // A slow mock, so the run is still active when the follow starts.
  test::lps_process lps{(dir.path() / "data").string(), {"--mock-latency-ms=100"}};
  REQUIRE(lps.port() != 0);
  auto input = dir.path() / "run.jsonl";
  constexpr int count = 150;
  {
    std::ofstream out{input};
    for (int i = 0; i < count; ++i)
      out << R"({"user_prompt":"Which essay is better? )" << i
          << R"(","metadata":{"essay_a_id":"a","essay_b_id":"b","bos_batch_id":"run 7"}})"
          << "\n";
  }
  auto submitted = lpsctl(lps, {"submit", input.string()});
  REQUIRE(submitted.exit_code == 0);
  auto follow = lpsctl(lps, {"results", "--run", "run 7", "--follow"});
  INFO(follow.err);
  REQUIRE(follow.exit_code == 0);
  auto events = lines_of(follow.out);
  std::set<std::string> ids;
  for (const auto& line : events)
    ids.insert(
        std::string{json::parse(line).as_object()["data"].as_object()["request_id"].as_string()});
  CHECK(events.size() == count);
  auto queue_ids = lines_of(submitted.out);
  CHECK(ids == std::set<std::string>(queue_ids.begin(), queue_ids.end()));
  // Once final, a plain read gives them all again, in the same order.
  auto again = lpsctl(lps, {"results", "run 7"});
  REQUIRE(again.exit_code == 0);
  CHECK(lines_of(again.out).size() == count);
  // Each event byte for byte as lps serves it (0.0, not Boost.JSON's 0E0).
  auto first = lines_of(again.out).front();
  auto id = json::parse(first).as_object()["data"].as_object()["request_id"].as_string();
  CHECK(first == raw_body(lps, "/api/v1/results/" + std::string{id}));

  auto one = lpsctl(lps, {"run", "run 7"});
  REQUIRE(one.exit_code == 0);
  auto run = json::parse(one.out).as_object();
  CHECK(run["active"] == 0);
  CHECK(run["completed"] == count);
  auto table = lpsctl(lps, {"runs"});
  REQUIRE(table.exit_code == 0);
  auto rows = lines_of(table.out);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].find("RUN") == 0);
  CHECK(rows[1].find("run 7") == 0);
  CHECK(rows[1].find(" 150 ") != std::string::npos);
  CHECK(lpsctl(lps, {"run", "no-such-run"}).exit_code == 1);
  // The run is named once: as the positional or as --run.
  CHECK(lpsctl(lps, {"results"}).exit_code == 2);
  CHECK(lpsctl(lps, {"results", "run 7", "--run", "run 7"}).exit_code == 2);
}

TEST_CASE("config prints KEY=value lines sorted, secrets masked as --dump-config masks them") {
  test::temp_dir dir;
  const std::string token = "admin-token-lpsctl-3e8";
  const std::string signing = "signing-secret-lpsctl-61a";
  auto data_dir = (dir.path() / "data").string();
  std::vector<std::string> flags{"--admin-token=" + token, "--callback-signing-secret=" + signing,
                                 "--queue-max-retries=9"};
  test::lps_process lps{data_dir, flags};
  REQUIRE(lps.port() != 0);
  auto refused = lpsctl(lps, {"config"});
  CHECK(refused.exit_code == 3);
  CHECK(refused.out.empty());

  auto shown = lpsctl(lps, {"--token=" + token, "config"});
  INFO(shown.err);
  REQUIRE(shown.exit_code == 0);
  auto lines = lines_of(shown.out);
  std::vector<std::string> keys;
  for (const auto& line : lines)
    keys.push_back(line.substr(0, line.find('=')));
  CHECK(std::is_sorted(keys.begin(), keys.end()));
  auto has = [&](const std::string& line) {
    return std::find(lines.begin(), lines.end(), line) != lines.end();
  };
  CHECK(has("QUEUE_MAX_RETRIES=9"));
  CHECK(has("CALLBACK_SIGNING_SECRET=***"));
  CHECK(has("ADMIN_TOKEN=***"));
  CHECK(has("OPENAI_API_KEY="));
  for (const auto& secret : {token, signing})
    CHECK(shown.out.find(secret) == std::string::npos);

  // The same values as `lps --dump-config` with the same settings, key by key.
  std::vector<std::string> dump_args{
      LPS_BINARY, "--http-port=0", "--data-dir=" + data_dir, "--log-level=warn",
      std::string{"--model-manifest="} + LPS_SOURCE_DIR + "/config/models.json"};
  dump_args.insert(dump_args.end(), flags.begin(), flags.end());
  dump_args.push_back("--dump-config");
  auto dumped = test::run_command(dump_args);
  REQUIRE(dumped.exit_code == 0);
  std::set<std::string> dumped_lines;
  for (const auto& line : lines_of(dumped.out))
    dumped_lines.insert(line);
  auto raw = lpsctl(lps, {"--token=" + token, "config", "--json"});
  REQUIRE(raw.exit_code == 0);
  auto settings = json::parse(raw.out).at("settings").as_array();
  CHECK(settings.size() == lines.size());
  CHECK(settings.size() == dumped_lines.size());
  for (const auto& x : settings) {
    auto file_key = std::string{x.at("file_key").as_string()};
    auto value = std::string{x.at("value").as_string()};
    CHECK(dumped_lines.count(file_key + " = " + value) == 1);
    CHECK(has(std::string{x.at("key").as_string()} + "=" + value));
  }
}

TEST_CASE("nodes lists this node alone outside a cluster, as a table and as lps' JSON, with the "
          "admin token") {
  test::temp_dir dir;
  const std::string token = "admin-token-nodes-9c1";
  test::lps_process lps{(dir.path() / "data").string(), {"--admin-token=" + token}};
  REQUIRE(lps.port() != 0);
  auto refused = lpsctl(lps, {"nodes"});
  CHECK(refused.exit_code == 3);
  CHECK(refused.out.empty());

  // Right after start the view may answer 503 until the first snapshot: lpsctl waits it out.
  auto table = lpsctl(lps, {"--token=" + token, "nodes"});
  INFO(table.err);
  REQUIRE(table.exit_code == 0);
  auto lines = lines_of(table.out);
  REQUIRE(lines.size() == 2); // the header and this node
  CHECK(lines[0].rfind("NODE", 0) == 0);
  char host[256] = {};
  REQUIRE(::gethostname(host, sizeof(host) - 1) == 0);
  std::istringstream row{lines[1]};
  std::string name, address, state, leader, self, heartbeat, version;
  size_t in_flight = 99, actors = 0, unresponsive = 99;
  std::string figures;
  row >> name >> address >> state >> leader >> self >> heartbeat >> version >> in_flight >> actors
      >> unresponsive >> figures;
  CHECK(name == host);
  CHECK(address == "-"); // not a cluster: no address, leader or heartbeat
  CHECK(state == "up");
  CHECK(leader == "-");
  CHECK(self == "yes");
  CHECK(heartbeat == "-");
  CHECK(!version.empty());
  CHECK(version != "-");
  CHECK(in_flight == 0);
  CHECK(actors >= 5); // the inspector, intake, queue manager, bundler, callbacks, metrics...
  CHECK(unresponsive == 0);
  CHECK(figures == "0.0s"); // its own, from this snapshot

  auto raw = lpsctl(lps, {"--token=" + token, "nodes", "--json"});
  REQUIRE(raw.exit_code == 0);
  auto body = json::parse(raw.out).as_object();
  const auto& nodes = body.at("nodes").as_array();
  REQUIRE(nodes.size() == 1);
  CHECK(body.at("cluster").is_null());
  CHECK(nodes[0].at("name") == host);
  CHECK(nodes[0].at("version").as_string() == version);
  CHECK(nodes[0].at("self") == true);
  CHECK(nodes[0].at("actors").to_number<size_t>() == actors);
}
