#pragma once

/// RFC 3339 timestamps as the Kubernetes API writes them, always in UTC:
/// metav1.Time ("2024-05-01T12:00:00Z"), metav1.MicroTime
/// ("2024-05-01T12:00:00.123456Z") and Go's RFC3339Nano
/// ("2024-05-01T12:00:00.1Z", trailing zeros dropped).

#include <chrono>
#include <string>
#include <string_view>

#include "deckhand/common/result.hpp"

namespace deckhand::api {

using time_point = std::chrono::system_clock::time_point;

/// metav1.Time: whole seconds (the fraction is truncated), "Z".
std::string format_rfc3339(time_point t);

/// metav1.MicroTime: always six fractional digits.
std::string format_rfc3339_micro(time_point t);

/// time.RFC3339Nano: up to nine fractional digits, trailing zeros and a
/// bare dot dropped.
std::string format_rfc3339_nano(time_point t);

/// format_rfc3339 of the current time.
std::string now_rfc3339();

/// Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)" ('t' and 'z'
/// accepted too, as Go does); the fraction may have up to nine digits.
result<time_point> parse_rfc3339(std::string_view text);

}  // namespace deckhand::api
