#pragma once

/// The supervisor's durable state: `status.json` (a wire::sandbox_status as
/// JSON, which the runtime reads) and the `stopping` marker.
///
/// status.json carries one extra top-level key, `deckhandSupervisor`, with the
/// back-off position of each container, so a restarted supervisor continues
/// the schedule instead of starting it over. Readers that decode the file as a
/// sandbox_status ignore it (unknown keys are ignored).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/messages/fields.hpp"
#include "deckhand/messages/wire.hpp"
#include "deckhand/supervisor/backoff.hpp"

namespace deckhand::supervisor {

/// Where one container stands in its back-off schedule.
struct backoff_record {
  static constexpr const char* type_name = "backoff_record";
  std::string name;
  int32_t step = 0;           ///< consecutive restarts so far
  int64_t restart_at_ms = 0;  ///< wall-clock ms of the pending restart, 0: none
  static constexpr auto fields() {
    return std::make_tuple(wire::field("name", &backoff_record::name),
                           wire::field_always("step", &backoff_record::step),
                           wire::field("restartAtMs", &backoff_record::restart_at_ms));
  }
};

/// Everything status.json holds.
struct status_document {
  wire::sandbox_status sandbox;
  std::vector<backoff_record> backoff;

  const backoff_record* find_backoff(const std::string& name) const;
};

/// status.json text for `doc`.
std::string encode_status(const status_document& doc);

/// Parses status.json text; `errc::invalid` for anything malformed.
result<status_document> decode_status(const std::string& text);

/// Content of the `stopping` marker: when the stop began and its deadline, so
/// a restarted supervisor finishes the stop on the original schedule.
struct stop_marker {
  static constexpr const char* type_name = "stop_marker";
  int64_t grace_period_seconds = 0;
  int64_t deadline_ms = 0;  ///< wall-clock ms after which SIGKILL is sent
  static constexpr auto fields() {
    return std::make_tuple(
        wire::field_always("gracePeriodSeconds", &stop_marker::grace_period_seconds),
        wire::field_always("deadlineMs", &stop_marker::deadline_ms));
  }
};

std::string encode_stop_marker(const stop_marker& m);

/// A marker that exists but cannot be parsed (e.g. written by hand) still
/// means "stopping": it decodes as a stop whose deadline has passed.
stop_marker decode_stop_marker(const std::string& text);

int64_t to_epoch_ms(time_point t);
time_point from_epoch_ms(int64_t ms);

}  // namespace deckhand::supervisor
