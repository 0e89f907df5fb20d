#pragma once

// The binary under test runs on PostgreSQL when LPS_TEST_PG_DIR names the directory of a
// running tools/pg.sh server (tests/CMakeLists.txt sets it for the durability cases, tagged
// [durability], of service_test). Each lps data folder then gets a database of its own on
// that server, made on first use, so a restart on the same folder finds the same queue.
// psql makes it, so the tests need no libpq of their own.

#include <array>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lps::test {

/// The environment that points lps at the database standing for `data_dir`: empty on SQLite
/// (LPS_TEST_PG_DIR unset), STORE_BACKEND and POSTGRES_URL on PostgreSQL.
inline std::vector<std::pair<std::string, std::string>>
store_backend_env(const std::string& data_dir) {
  const char* pg_dir = std::getenv("LPS_TEST_PG_DIR");
  if (pg_dir == nullptr || *pg_dir == '\0')
    return {};
  std::string url;
  auto command = std::string{"bash " LPS_SOURCE_DIR "/tools/pg.sh url '"} + pg_dir + "'";
  std::unique_ptr<FILE, decltype(&pclose)> pipe{popen(command.c_str(), "r"), &pclose};
  std::array<char, 256> buf{};
  while (pipe && fgets(buf.data(), buf.size(), pipe.get()) != nullptr)
    url += buf.data();
  while (!url.empty() && url.back() == '\n')
    url.pop_back();
  auto name = "lps_it_" + std::to_string(std::hash<std::string>{}(data_dir));
  // Fails quietly when the database exists already (a restart on the same folder).
  auto create = "psql '" + url + "' -qc 'CREATE DATABASE " + name + "' >/dev/null 2>&1";
  (void)std::system(create.c_str());
  return {{"LLM_PROVIDER_SERVICE_STORE_BACKEND", "postgres"},
          {"LLM_PROVIDER_SERVICE_POSTGRES_URL", url.substr(0, url.rfind('/') + 1) + name}};
}

} // namespace lps::test
