#pragma once

/// Pod status from what the node knows: the desired pod, the runtime's sandbox
/// (with the supervisor's container records) and the last runtime error.
/// Pure functions, the Go kubelet's generateAPIPodStatus and getPhase
/// (pkg/kubelet/kubelet_pods.go, pkg/kubelet/status/generate.go): the
/// kubelet's status manager publishes what they return.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "deckhand/api/qos.hpp"
#include "deckhand/api/time.hpp"
#include "deckhand/messages/model.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::kubelet {

/// Reasons and messages users grep for, as the Go kubelet writes them.
inline constexpr const char* reason_container_creating = "ContainerCreating";
inline constexpr const char* reason_pod_initializing = "PodInitializing";
inline constexpr const char* reason_create_container_config_error = "CreateContainerConfigError";
inline constexpr const char* reason_deadline_exceeded = "DeadlineExceeded";
inline constexpr const char* message_deadline_exceeded =
    "Pod was active on the node longer than the specified deadline";

/// What the pod worker knows about a pod besides its spec.
struct observed_pod {
  const wire::sandbox_status* sandbox = nullptr;  ///< null: no sandbox (yet)
  std::string runtime_error_reason;               ///< e.g. ErrImagePull; empty if none
  std::string runtime_error_message;
  /// Per container name (init or regular), a waiting state that overrides
  /// the runtime error for containers without a record (ErrImagePull,
  /// ImagePullBackOff, ...).
  std::map<std::string, wire::container_state_waiting> waiting;
  bool terminating = false;  ///< deletion under way
  /// The kubelet has stopped every container of the terminating pod: the
  /// phase becomes terminal (Succeeded or Failed) whatever the restart policy.
  bool containers_stopped = false;
  /// The pod ran past spec.activeDeadlineSeconds: Failed, DeadlineExceeded.
  bool deadline_exceeded = false;
  std::string host_ip;
  std::string now;  ///< RFC3339, for transition times
};

/// Kubernetes' phase, conditions and container statuses for `pod`.
/// `previous` supplies transition times and keeps terminal phases terminal
/// (with their reason and message).
wire::pod_status compute_status(const wire::pod& pod, const observed_pod& obs,
                                const wire::pod_status& previous);

/// Kubernetes' getPhase from the pod's (init and regular) container statuses.
/// `pod_is_terminal`: the kubelet has stopped the pod for good, so no
/// container will restart whatever the restart policy. A running sidecar
/// does not keep a pod Running once its regular containers completed (the
/// kubelet stops sidecars then).
std::string pod_phase(const wire::pod_spec& spec,
                      const std::vector<wire::container_status>& init_statuses,
                      const std::vector<wire::container_status>& statuses,
                      bool pod_is_terminal = false);

/// Kubernetes' QoS class (GetPodQOS, computed by api::pod_qos) from the cpu
/// and memory requests and limits of the regular and init containers; a
/// limit without a request counts as a request of the same amount, as the
/// API server defaults it.
api::qos_class pod_qos(const wire::pod_spec& spec);

/// pod_qos as status.qosClass writes it: "BestEffort", "Burstable", "Guaranteed".
std::string qos_class(const wire::pod_spec& spec);

/// A run_pod error of a container that cannot be configured (the runtime's
/// message starts with "CreateContainerConfigError: "): the waiting state
/// Kubernetes shows, reason CreateContainerConfigError and the rest of the
/// message. Nothing for other errors.
std::optional<wire::container_state_waiting> config_error_waiting(const std::string& message);

/// Current time as RFC3339 UTC with seconds precision.
using api::now_rfc3339;

}  // namespace deckhand::kubelet
