#pragma once

/// Pod status from what the node knows: the desired pod, the runtime's sandbox
/// (with the supervisor's container records) and the last runtime error.
/// Pure functions: the kubelet's status manager publishes what they return.

#include <map>
#include <string>

#include "deckhand/messages/model.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::kubelet {

/// What the pod worker knows about a pod besides its spec.
struct observed_pod {
  const wire::sandbox_status* sandbox = nullptr;  ///< null: no sandbox (yet)
  std::string runtime_error_reason;   ///< e.g. ErrImagePull; empty if none
  std::string runtime_error_message;
  /// Per container name, a waiting state that overrides the runtime error
  /// for containers without a record (ErrImagePull, ImagePullBackOff, ...).
  std::map<std::string, wire::container_state_waiting> waiting;
  bool terminating = false;           ///< deletion under way
  std::string host_ip;
  std::string now;                    ///< RFC3339, for transition times
};

/// Kubernetes' phase, conditions and container statuses for `pod`.
/// `previous` supplies transition times and keeps terminal phases terminal.
wire::pod_status compute_status(const wire::pod& pod, const observed_pod& obs,
                                const wire::pod_status& previous);

/// Kubernetes' QoS class from the containers' requests and limits.
std::string qos_class(const wire::pod_spec& spec);

/// Current time as RFC3339 UTC with seconds precision.
std::string now_rfc3339();

} // namespace deckhand::kubelet
