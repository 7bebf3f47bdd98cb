#pragma once

/// Pod admission: whether the kubelet runs a pod it was just given, as
/// Kubernetes' admit handlers decide, in their order:
///   1. the eviction manager's: under node pressure, reject with reason
///      `Evicted` and "The node had condition: [MemoryPressure]. " (under
///      MemoryPressure alone only BestEffort pods are rejected; pods carry no
///      tolerations here, so none tolerates the memory-pressure taint);
///   2. the resource predicate: the pod must fit the node's allocatable CPU,
///      memory and pod count next to the admitted, non-terminated pods:
///      reasons `OutOfpods`, `OutOfcpu`, `OutOfmemory`, `OutOfephemeral-storage`
///      with "Node didn't have enough resource: cpu, requested: 2000, used:
///      500, capacity: 1000".
/// A rejected pod is Failed with that reason and "Pod was rejected: " +
/// message, no container of it starts, and a Warning event with the same
/// reason and message is recorded.
///
/// Pure functions: the sync loop calls them when a pod arrives.

#include <string>
#include <vector>

#include "deckhand/kubelet/node_status.hpp"
#include "deckhand/messages/model.hpp"

namespace deckhand::kubelet {

/// A pod's effective requests as Kubernetes computes them (PodRequests):
/// max(sum of app containers + restartable init containers (sidecars),
///     the largest init container plus the sidecars started before it).
/// A resource with a limit but no request counts the limit (API defaulting).
/// Only cpu_milli, memory and ephemeral_storage are set.
resource_amounts pod_requests(const wire::pod_spec& spec);

/// Whether no container (init containers included) requests or limits CPU or memory.
bool is_best_effort(const wire::pod_spec& spec);

/// The outcome of admission.
struct admit_result {
  bool admit = true;
  std::string reason;   ///< OutOfcpu, OutOfmemory, OutOfpods, Evicted, ...
  std::string message;  ///< Kubernetes' message, without "Pod was rejected: "
};

/// Decides for `pod`, given the pods already admitted and not terminated
/// (`active`, not including `pod`), the node's allocatable resources and the
/// pressure conditions that are True ("MemoryPressure", "DiskPressure",
/// "PIDPressure").
admit_result admit_pod(const wire::pod& pod, const std::vector<const wire::pod*>& active,
                       const resource_amounts& allocatable,
                       const std::vector<std::string>& pressure);

/// The pod status of a rejected pod: phase Failed, the reason, and
/// "Pod was rejected: " + message.
wire::pod_status rejected_status(const admit_result& r);

/// Whether a status says the kubelet refused or evicted the pod (it must
/// never start, also after a kubelet restart).
bool rejected_by_kubelet(const wire::pod_status& status);

}  // namespace deckhand::kubelet
