#pragma once

/// Container events (Created, Started, BackOff) from what the pod supervisor
/// reports, the way the Go kubelet emits them, but derived from status
/// changes: the supervisor, not the kubelet, starts and restarts containers,
/// and it keeps doing so while the kubelet is down. So the kubelet compares
/// the container statuses it knew (those it last saw, or after a restart the
/// ones in the API server's pod status) with the runtime's records, and
/// reports every container instance it has not reported yet and that the
/// records still show (the current state and the last terminated state).
/// Restarts in between leave no trace in the records, so no event is invented
/// for them.
///
/// Supervisor notes (wire::supervisor_note: Unhealthy, Killing,
/// FailedPreStopHook, ... that the pod supervisor recorded, also while the
/// kubelet was down) become one event each: every note whose seq is above
/// the highest one already reported for that container. The marks live in
/// this process (container_events() keeps them per pod uid); after a kubelet
/// restart, notes older than the kubelet's start count as reported (the
/// previous kubelet saw them), so a restart repeats none. Notes made while no
/// kubelet ran and stamped before the new one started are the price: they
/// stay visible in the supervisor's records but get no event.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "deckhand/messages/model.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::kubelet {

/// One event about a pod, before the recorder gives it a name and times.
struct pod_event_note {
  std::string field_path;  ///< "spec.containers{NAME}"
  std::string type;        ///< Normal or Warning
  std::string reason;
  std::string message;
};

/// Events for the changes from `known` (container statuses already reported)
/// to the records in `sandbox`, in the order they happened.
std::vector<pod_event_note> container_events(const wire::pod& pod,
                                             const std::vector<wire::container_status>& known,
                                             const wire::sandbox_status& sandbox);

/// Highest note seq already reported, by container name.
using note_marks = std::map<std::string, uint64_t>;

/// One event per note of `sandbox` (init and app containers) above its
/// container's mark, oldest first; raises the marks. For a container with no
/// mark yet, notes stamped before `baseline` (RFC 3339; empty: none) count
/// as reported. A container whose notes went back below its mark (its
/// status was lost) starts over.
std::vector<pod_event_note> note_events(const wire::sandbox_status& sandbox, note_marks& marks,
                                        const std::string& baseline);

/// Kubernetes' format.Pod: `NAME_NAMESPACE(UID)`.
std::string format_pod(const wire::pod& pod);

}  // namespace deckhand::kubelet
