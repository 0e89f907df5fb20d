#include "runtime/logging.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>

namespace lps {

namespace {

std::mutex logger_mutex;
spdlog::level::level_enum current_level = spdlog::level::info;

} // namespace

void setup_logging(const std::string& level) {
  std::lock_guard<std::mutex> guard{logger_mutex};
  current_level = spdlog::level::from_str(level);
  // The default logger (used by the store and the HTTP code) writes to stderr too:
  // stdout carries only the "lps starting on" and "lps listening on" lines and --dump-config.
  if (!spdlog::get("lps"))
    spdlog::set_default_logger(spdlog::stderr_color_mt("lps"));
  spdlog::set_level(current_level);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
}

std::shared_ptr<spdlog::logger> get_logger(const std::string& component) {
  std::lock_guard<std::mutex> guard{logger_mutex};
  auto name = "lps." + component;
  if (auto existing = spdlog::get(name))
    return existing;
  auto result = spdlog::stderr_color_mt(name);
  result->set_level(current_level);
  result->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
  return result;
}

void shutdown_logging() {
  spdlog::shutdown();
}

} // namespace lps
