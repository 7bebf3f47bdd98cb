#pragma once

/// The kubelet's event recorder: client-go's EventRecorder and
/// EventBroadcaster in one actor.
///
/// Pod workers send `(record_atom, wire::event)` with involvedObject, type,
/// reason and message set and never wait for anything. The recorder:
///   - aggregates: the same involvedObject (with fieldPath), type, reason and
///     message seen again within `aggregation_window` is one series: count+1
///     and a new lastTimestamp, under the series' first name
///     (`NAME.<hex unix nanos>`, as client-go names them);
///   - batches: changed series go to the API server as one `event_report`
///     after `batch_delay`, at most `max_batch` per request, one request in
///     flight;
///   - is bounded: at most `max_pending` series wait to be sent; beyond that a
///     change is dropped and counted (the series' count still grows, so a
///     later send carries it). At most `max_series` series are remembered for
///     aggregation (least recently seen forgotten first);
///   - survives an API server that is down: a failed batch goes back to the
///     queue and is retried with back-off (`retry_initial` doubling up to
///     `retry_max`). The API server replaces a series by name, so a retry
///     never duplicates an event.
///
/// Messages it accepts:
///   (record_atom, wire::event)   from anyone; no reply
///   (reported_atom, peer_reply)  the API server's replies to its batches

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>

#include "deckhand/kubelet/api_client.hpp"
#include "deckhand/messages/bridge.hpp"
#include "deckhand/messages/model.hpp"

namespace deckhand::kubelet {

using record_atom = caf::atom_constant<caf::atom("dh_record")>;

struct event_recorder_config {
  /// source.component and reportingComponent.
  std::string component = "kubelet";
  /// source.host and reportingInstance: the node name.
  std::string host;
  /// client-go's correlator window for similar events.
  std::chrono::milliseconds aggregation_window{std::chrono::minutes(10)};
  std::chrono::milliseconds batch_delay{200};
  std::size_t max_batch = 100;
  std::size_t max_pending = 1000;
  std::size_t max_series = 4096;
  std::chrono::milliseconds request_deadline{5000};
  std::chrono::milliseconds retry_initial{500};
  std::chrono::milliseconds retry_max{30000};
  /// Wall clock for timestamps and names; system_clock if unset.
  std::function<std::chrono::system_clock::time_point()> wall_clock;
};

/// Counters, written by the recorder only; readable from any thread.
struct event_recorder_stats {
  std::atomic<uint64_t> recorded{0};    ///< record_atom messages accepted
  std::atomic<uint64_t> aggregated{0};  ///< of those, folded into an existing series
  std::atomic<uint64_t> sent{0};        ///< series updates acknowledged by the API server
  std::atomic<uint64_t> dropped{0};     ///< changes lost to the pending bound
  std::atomic<uint64_t> failed_batches{0};
};

/// Where the recorder sends its batches.
struct event_sink {
  std::shared_ptr<api_client> api;
};

/// Spawns the recorder. `stats` may be null.
caf::actor spawn_event_recorder(caf::actor_system& sys, event_sink sink, event_recorder_config cfg,
                                std::shared_ptr<event_recorder_stats> stats = nullptr);

/// The fieldPath Kubernetes gives a container's events: `spec.containers{NAME}`.
std::string container_field_path(const std::string& container);

/// An event about `pod` (and, if `field_path` is set, one of its
/// containers), ready for record_atom.
wire::event pod_event(const wire::pod& pod, const std::string& field_path, const std::string& type,
                      const std::string& reason, const std::string& message);

/// Go's time.Duration.String of `d` truncated to milliseconds ("512ms",
/// "1.5s", "2m3.25s"), as Kubernetes' Pulled message prints durations.
std::string go_duration(std::chrono::milliseconds d);

}  // namespace deckhand::kubelet
