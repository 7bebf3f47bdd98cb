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

/// Kubernetes' format.Pod: `NAME_NAMESPACE(UID)`.
std::string format_pod(const wire::pod& pod);

} // namespace deckhand::kubelet
