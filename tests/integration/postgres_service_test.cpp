// The lps binary on PostgreSQL (STORE_BACKEND=postgres) against the test run's server (the
// ctest fixture "postgres"): `lps migrate --check`, and the refusals at start with exit 2 and
// one line that never holds the password. Serving and crash safety on PostgreSQL are the
// crash test's (tools/crash_test.py --backend=postgres) and service_test's [durability] cases.

#include "fixtures/store_backend.hpp"
#include "fixtures/temp_dir.hpp"
#include "integration/lps_process.hpp"
#include "runtime/pg_schema.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <unistd.h>

using namespace lps;

namespace {

/// A database of its own for one test case.
std::string fresh_database_url(const std::string& name) {
  std::string error;
  auto url = test::database_url_for(name + "-" + std::to_string(::getpid()), error);
  INFO(error);
  REQUIRE_FALSE(url.empty());
  return url;
}

std::vector<std::pair<std::string, std::string>> postgres_env(const std::string& url) {
  return {{"LLM_PROVIDER_SERVICE_STORE_BACKEND", "postgres"},
          {"LLM_PROVIDER_SERVICE_POSTGRES_URL", url}};
}

// Each run gets a DATA_DIR of its own (the batch job store lives there, and one lps process
// holds a DATA_DIR at a time: two runs on a shared default would refuse each other).
test::run_result run_lps(std::vector<std::string> args, const std::string& url) {
  test::temp_dir data_dir;
  args.insert(args.begin(), LPS_BINARY);
  if (args.size() > 1 && args[1] != "migrate")
    args.push_back("--data-dir=" + data_dir.str());
  return test::run_command(args, postgres_env(url));
}

size_t lines_of(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

} // namespace

TEST_CASE("migrate --check says behind on a new database and current once lps migrated it") {
  auto url = fresh_database_url("migrate-check");
  auto before = run_lps({"migrate", "--check"}, url);
  CHECK(before.exit_code == 1);
  CHECK(before.out
        == "schema version 0, this lps knows " + std::to_string(pg::binary_schema_version())
               + ": behind (lps applies the missing migrations when it starts)\n");
  std::string error;
  auto db = pg::connection::open(url, std::chrono::seconds{5}, error);
  REQUIRE(db);
  REQUIRE(pg::migrate(*db).error.empty());
  auto after = run_lps({"migrate", "--check"}, url);
  CHECK(after.exit_code == 0);
  CHECK(after.out.find(": current\n") != std::string::npos);

  auto usage = run_lps({"migrate"}, url);
  CHECK(usage.exit_code == 2);
  CHECK(usage.err.find("usage: lps migrate --check") != std::string::npos);
}

TEST_CASE("a database with a newer schema refuses migrate --check and the start, with exit 2") {
  auto url = fresh_database_url("newer-schema");
  std::string error;
  auto db = pg::connection::open(url, std::chrono::seconds{5}, error);
  REQUIRE(db);
  REQUIRE(pg::migrate(*db).error.empty());
  REQUIRE(db->exec("INSERT INTO lps_schema_migrations(version, description) VALUES($1, 'future')",
                   {std::to_string(pg::binary_schema_version() + 1)})
              .ok);
  auto check = run_lps({"migrate", "--check"}, url);
  CHECK(check.exit_code == 2);
  CHECK(check.err.find("newer than this lps knows") != std::string::npos);
  auto start = run_lps({"--http-port=0", "--log-level=warn"}, url);
  CHECK(start.exit_code == 2);
  CHECK(start.err.find("newer than this lps knows") != std::string::npos);
  CHECK(lines_of(start.err) == 1);
}

TEST_CASE("an unreachable or malformed POSTGRES_URL refuses to start: exit 2, one line, no "
          "password") {
  // Port 1 on loopback: nothing listens there.
  auto unreachable = run_lps({"--http-port=0"}, "postgresql://lps:hunter2@127.0.0.1:1/lps");
  CHECK(unreachable.exit_code == 2);
  CHECK(lines_of(unreachable.err) == 1);
  CHECK(unreachable.err.find("postgresql://lps:***@127.0.0.1:1/lps") != std::string::npos);
  CHECK(unreachable.err.find("hunter2") == std::string::npos);

  auto check = run_lps({"migrate", "--check"}, "postgresql://lps:hunter2@127.0.0.1:1/lps");
  CHECK(check.exit_code == 2);
  CHECK(check.err.find("hunter2") == std::string::npos);

  auto malformed = run_lps({"--http-port=0"}, "mysql://lps:hunter2@127.0.0.1/lps");
  CHECK(malformed.exit_code == 2);
  CHECK(malformed.err.find("POSTGRES_URL must start with postgresql://") != std::string::npos);
  CHECK(malformed.err.find("hunter2") == std::string::npos);

  auto dump = run_lps({"--dump-config"}, "postgresql://lps:hunter2@db.example:5432/lps");
  CHECK(dump.exit_code == 0);
  CHECK(dump.out.find("postgres-url = postgresql://lps:***@db.example:5432/lps")
        != std::string::npos);
  CHECK(dump.out.find("hunter2") == std::string::npos);
}
