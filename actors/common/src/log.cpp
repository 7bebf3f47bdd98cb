#include "deckhand/common/log.hpp"

#include <mutex>

#include <spdlog/sinks/stdout_sinks.h>

namespace deckhand::log {

namespace {
std::mutex g_mutex;
std::shared_ptr<spdlog::logger> g_logger;
}  // namespace

void init(const std::string& component, const std::string& level, bool json) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(component, sink);
  if (json)
    logger->set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","component":"%n","pid":%P,"msg":"%v"})",
        spdlog::pattern_time_type::utc);
  else
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %L %n[%P] %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  std::lock_guard<std::mutex> guard{g_mutex};
  g_logger = logger;
}

std::shared_ptr<spdlog::logger> get() {
  {
    std::lock_guard<std::mutex> guard{g_mutex};
    if (g_logger)
      return g_logger;
  }
  init("deckhand");
  std::lock_guard<std::mutex> guard{g_mutex};
  return g_logger;
}

}  // namespace deckhand::log
