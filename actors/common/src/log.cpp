#include "deckhand/common/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

namespace deckhand::log {

namespace {
std::shared_ptr<spdlog::logger> g_logger;
} // namespace

void init(const std::string& component, const std::string& level, bool json) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(component, sink);
  if (json)
    logger->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","component":"%n","pid":%P,"msg":"%v"})",
                        spdlog::pattern_time_type::utc);
  else
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %L %n[%P] %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  g_logger = logger;
}

std::shared_ptr<spdlog::logger> get() {
  if (!g_logger)
    init("deckhand");
  return g_logger;
}

} // namespace deckhand::log
