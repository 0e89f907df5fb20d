#pragma once

// Starts the real lps binary for integration tests: a fresh data folder, port 0, and the
// port read from the "lps starting on ..." line; by default it also waits for the "lps
// listening on ..." line (recovery done, requests served). Stops it with SIGTERM (or SIGKILL).
// On PostgreSQL when the environment says so (pg_backend.hpp).

#include "integration/pg_backend.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace lps::test {

struct run_result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// Runs a command to completion and captures stdout and stderr (for short commands).
inline run_result run_command(const std::vector<std::string>& args,
                              const std::vector<std::pair<std::string, std::string>>& env = {}) {
  auto dir = std::filesystem::temp_directory_path();
  auto out_path = dir / ("lps-cmd-out-" + std::to_string(::getpid()));
  auto err_path = dir / ("lps-cmd-err-" + std::to_string(::getpid()));
  run_result result;
  auto pid = ::fork();
  if (pid == 0) {
    std::freopen(out_path.c_str(), "w", stdout);
    std::freopen(err_path.c_str(), "w", stderr);
    for (const auto& [k, v] : env)
      ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    for (const auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  auto slurp = [](const std::filesystem::path& p) {
    std::string text;
    if (auto* f = std::fopen(p.c_str(), "r")) {
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0)
        text.append(buf, n);
      std::fclose(f);
    }
    std::filesystem::remove(p);
    return text;
  };
  result.out = slurp(out_path);
  result.err = slurp(err_path);
  return result;
}

class lps_process {
public:
  /// Starts lps with `--http-port=0 --data-dir=<data_dir>` plus `extra` flags; returns once
  /// it serves, or with `until_serving` false once its port answers (recovery may still run).
  /// With `log_file` its stderr (the log) goes to that file instead of the test's.
  lps_process(std::string data_dir, std::vector<std::string> extra = {}, bool until_serving = true,
              const std::filesystem::path& log_file = {}) {
    auto env = store_backend_env(data_dir);
    int out_pipe[2];
    if (::pipe(out_pipe) != 0)
      return;
    pid_ = ::fork();
    if (pid_ == 0) {
      for (const auto& [k, v] : env)
        ::setenv(k.c_str(), v.c_str(), 1);
      ::dup2(out_pipe[1], STDOUT_FILENO);
      if (!log_file.empty() && std::freopen(log_file.c_str(), "w", stderr) == nullptr)
        ::_exit(126);
      ::close(out_pipe[0]);
      ::close(out_pipe[1]);
      std::vector<std::string> args{
          LPS_BINARY, "--http-port=0", "--data-dir=" + data_dir, "--log-level=warn",
          std::string{"--model-manifest="} + LPS_SOURCE_DIR + "/config/models.json"};
      args.insert(args.end(), extra.begin(), extra.end());
      std::vector<char*> argv;
      for (auto& a : args)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out_pipe[1]);
    out_ = ::fdopen(out_pipe[0], "r");
    if (out_ != nullptr)
      port_ = port_of(next_line(), "lps starting on");
    if (until_serving && !wait_until_serving())
      port_ = 0;
  }

  /// Waits for the "lps listening on" line; false when lps ended or printed something else.
  bool wait_until_serving() {
    return port_ != 0 && port_of(next_line(), "lps listening on") == port_;
  }

  ~lps_process() {
    stop(SIGKILL);
    if (out_ != nullptr)
      std::fclose(out_);
  }

  lps_process(const lps_process&) = delete;
  lps_process& operator=(const lps_process&) = delete;

  /// 0 when the process did not start listening.
  uint16_t port() const {
    return port_;
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  /// Sends `sig` without waiting (SIGSTOP, SIGCONT).
  void signal(int sig) const {
    if (pid_ > 0)
      ::kill(pid_, sig);
  }

  /// Sends `sig` and waits; returns the exit code (-1 when killed by a signal).
  int stop(int sig = SIGTERM) {
    if (pid_ <= 0)
      return exit_code_;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return exit_code_;
  }

private:
  std::string next_line() {
    char line[256];
    return out_ != nullptr && std::fgets(line, sizeof(line), out_) != nullptr ? line : "";
  }

  /// The port of a "<prefix> http://127.0.0.1:<port>" line, 0 for any other line.
  static uint16_t port_of(const std::string& text, const std::string& prefix) {
    auto colon = text.rfind(':');
    if (text.rfind(prefix, 0) != 0 || colon == std::string::npos)
      return 0;
    return static_cast<uint16_t>(std::atoi(text.c_str() + colon + 1));
  }

  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  uint16_t port_ = 0;
  int exit_code_ = -1;
};

} // namespace lps::test
