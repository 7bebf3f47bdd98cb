#pragma once

/// Durations in Go's notation (time.ParseDuration / Duration.String), the
/// one grammar of every duration flag and config key: "300ms", "1.5h",
/// "2h45m", "-1.5s", "0".

#include <chrono>
#include <string>
#include <string_view>

#include "deckhand/common/result.hpp"

namespace deckhand::api {

/// time.ParseDuration: an optional sign, then one or more decimal numbers
/// each with a unit (ns, us, µs, ms, s, m, h); "0" alone needs no unit.
/// Errors carry Go's wording (`time: invalid duration "x"`, `time: missing
/// unit in duration "1"`, `time: unknown unit "d" in duration "1d"`).
result<std::chrono::nanoseconds> parse_duration(std::string_view text);

/// Duration.String(): "0s", "1.5s", "2h45m0s", "300ms", "1µs", "-1m30s".
std::string format_duration(std::chrono::nanoseconds d);

}  // namespace deckhand::api
