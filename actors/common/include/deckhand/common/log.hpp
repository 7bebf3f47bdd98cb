#pragma once

/// One named logger per component, `key=value` fields.

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace deckhand::log {

/// Sets up the process-wide logger for `component` ("kubelet", "runtime", ...).
/// `level` is one of spdlog's names (debug, info, warn, error); `json` switches
/// the line format to one JSON object per line.
void init(const std::string& component, const std::string& level = "info", bool json = false);

/// The named logger of this process's component (created on first use).
std::shared_ptr<spdlog::logger> get();

}  // namespace deckhand::log
