#pragma once

// spdlog with one named logger per component (lps.intake, lps.queue, ...). Logs go to
// stderr; nothing in the service prints to stdout except --dump-config and the port line.

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace lps {

/// Sets the global level (trace, debug, info, warn, error) and the output pattern.
void setup_logging(const std::string& level);

/// The logger of a component, created on first use ("lps.queue").
std::shared_ptr<spdlog::logger> get_logger(const std::string& component);

/// Flushes and drops all loggers (before exit).
void shutdown_logging();

} // namespace lps

#define LPS_LOG_DEBUG(logger, ...) SPDLOG_LOGGER_DEBUG(logger, __VA_ARGS__)
#define LPS_LOG_INFO(logger, ...) SPDLOG_LOGGER_INFO(logger, __VA_ARGS__)
#define LPS_LOG_WARN(logger, ...) SPDLOG_LOGGER_WARN(logger, __VA_ARGS__)
#define LPS_LOG_ERROR(logger, ...) SPDLOG_LOGGER_ERROR(logger, __VA_ARGS__)
