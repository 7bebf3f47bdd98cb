#pragma once

/// A pod's quality-of-service class, computed once for the API server
/// (status.qosClass), the kubelet's pod status, eviction ranking and cgroup
/// placement, as Kubernetes' GetPodQOS computes it.

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace deckhand::api {

/// Ordered as the eviction manager ranks them: BestEffort pods go first.
enum class qos_class { best_effort, burstable, guaranteed };

/// "BestEffort", "Burstable" or "Guaranteed".
const char* to_string(qos_class c);

/// One container's resources as written in its spec (quantity text).
struct container_resources {
  std::map<std::string, std::string> requests;
  std::map<std::string, std::string> limits;
};

/// GetPodQOS over every container, init containers included. Only cpu and
/// memory count, and only positive amounts. A request left out defaults to
/// the limit, as the API server defaults it. Amounts are summed and compared
/// by value, so a 1Gi request against a 1024Mi limit is equal. Guaranteed
/// when every container limits cpu and memory and the pod's summed requests
/// equal its summed limits; BestEffort when nothing is requested or limited;
/// Burstable otherwise. Text that is not a quantity counts as absent.
qos_class pod_qos(const std::vector<container_resources>& containers);

/// The same over a Pod's JSON spec (`containers` and `initContainers`).
qos_class pod_qos(const nlohmann::json& spec);

}  // namespace deckhand::api
