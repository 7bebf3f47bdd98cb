#pragma once

/// core/v1 Events in the API server: the kind (REST names, field selectors,
/// validation), the upsert that node components' event batches go through,
/// the scheduler's `Scheduled` event, and the bounds that keep events from
/// filling the disk.
///
/// Events are not precious: they are stored like other objects (so lists,
/// watches and `kubectl describe` see them), but collect_events() removes
/// those not seen for `ttl` and the oldest beyond `max_per_namespace`, as
/// Kubernetes' --event-ttl does (1 h by default).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deckhand/apiserver/registry.hpp"
#include "deckhand/common/result.hpp"

namespace deckhand::apiserver {

/// Bounds on stored events.
struct event_limits {
  /// An event whose lastTimestamp (or creation) is older than this goes.
  std::chrono::seconds ttl{3600};
  /// Per namespace, only the most recently seen events are kept.
  std::size_t max_per_namespace = 1000;
  /// How often the node service collects events by age.
  std::chrono::milliseconds collect_period{60000};
};

/// The Event kind: resource "events", short name "ev", field selectors
/// involvedObject.{kind,namespace,name,uid,apiVersion,resourceVersion,fieldPath},
/// reason, reportingComponent, type (what `kubectl describe` sends).
kind_info event_kind();

/// What record_events() did.
struct record_stats {
  std::size_t created = 0;
  std::size_t updated = 0;
  std::size_t unchanged = 0;
  std::size_t rejected = 0;
};

/// Creates each event, or replaces the stored event of the same
/// namespace/name (an aggregated series whose count grew). A stored series
/// with a higher count is kept (a retried, older batch). Invalid events are
/// skipped and counted; the first error is logged.
record_stats record_events(registry& reg, const std::vector<nlohmann::json>& events);

/// Removes events not seen since `now - ttl`, then the least recently seen
/// beyond `max_per_namespace` in each namespace. Returns how many went.
std::size_t collect_events(registry& reg, const event_limits& limits,
                           std::chrono::system_clock::time_point now);

/// The scheduler's event for binding `pod` (its JSON) to `node`:
/// Normal/Scheduled "Successfully assigned NS/NAME to NODE" from
/// default-scheduler.
nlohmann::json scheduled_event(const nlohmann::json& pod, const std::string& node,
                               std::chrono::system_clock::time_point now);

/// The time an event was last seen: lastTimestamp, else eventTime, else
/// firstTimestamp, else creationTimestamp; the epoch if none parses.
std::chrono::system_clock::time_point event_last_seen(const nlohmann::json& event);

/// Parses an RFC 3339 UTC time as Kubernetes writes it ("2024-05-01T12:00:00Z",
/// optionally with a fraction); errc::invalid otherwise.
result<std::chrono::system_clock::time_point> parse_rfc3339(const std::string& text);

}  // namespace deckhand::apiserver
