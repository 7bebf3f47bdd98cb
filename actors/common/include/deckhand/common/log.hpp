#pragma once

/// One named logger per component, `key=value` fields.
///
/// Call sites format their line as `key=value` pairs (`msg="..."` for the
/// human sentence). With `--log-format json` the same line becomes one JSON
/// object: each pair a member, so callers never build JSON themselves.

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

namespace deckhand::log {

/// Sets up the process-wide logger for `component` ("kubelet", "runtime", ...).
/// `level` is one of spdlog's names (debug, info, warn, error); `json` switches
/// the line format to one JSON object per line.
void init(const std::string& component, const std::string& level = "info", bool json = false);

/// The named logger of this process's component (created on first use).
std::shared_ptr<spdlog::logger> get();

/// One `key=value` pair of a log line, the value unquoted and unescaped.
using log_field = std::pair<std::string, std::string>;

/// Splits a formatted log line into its `key=value` pairs. A value is a bare
/// word or a double-quoted string with `\"` and `\\` as escapes. Callers
/// interpolate error texts that may hold quotes, so only a quote that ends the
/// line, precedes another `key=`, or is the line's last quote closes a value.
/// Words that are not pairs are joined with single spaces into a `msg` pair,
/// or into `text` when the line has its own `msg`.
std::vector<log_field> parse_fields(std::string_view line);

/// The formatter of `--log-format json`: `ts`, `level`, `component`, `pid`,
/// then the line's fields in order. A field named like one of the first four
/// is kept with a `_` appended.
std::unique_ptr<spdlog::formatter> make_json_formatter();

}  // namespace deckhand::log
