#include "deckhand/kubelet/admission.hpp"

#include <algorithm>

#include "deckhand/api/quantity.hpp"
#include "deckhand/kubelet/pod_status.hpp"

namespace deckhand::kubelet {

namespace {

/// requests[name], or limits[name] when no request is given (the API
/// server's defaulting); 0 if neither parses.
int64_t request_of(const wire::container& c, const char* name, bool milli) {
  const auto& r = c.resources;
  auto it = r.requests.find(name);
  if (it == r.requests.end()) {
    it = r.limits.find(name);
    if (it == r.limits.end())
      return 0;
  }
  auto q = milli ? api::quantity_milli_value(it->second) : api::quantity_value(it->second);
  return q ? std::max<int64_t>(*q, 0) : 0;
}

resource_amounts container_requests(const wire::container& c) {
  resource_amounts r;
  r.cpu_milli = request_of(c, "cpu", true);
  r.memory = request_of(c, "memory", false);
  r.ephemeral_storage = request_of(c, "ephemeral-storage", false);
  return r;
}

void add(resource_amounts& a, const resource_amounts& b) {
  a.cpu_milli += b.cpu_milli;
  a.memory += b.memory;
  a.ephemeral_storage += b.ephemeral_storage;
}

void max_into(resource_amounts& a, const resource_amounts& b) {
  a.cpu_milli = std::max(a.cpu_milli, b.cpu_milli);
  a.memory = std::max(a.memory, b.memory);
  a.ephemeral_storage = std::max(a.ephemeral_storage, b.ephemeral_storage);
}

}  // namespace

resource_amounts pod_requests(const wire::pod_spec& spec) {
  // k8s.io/component-helpers/resource.PodRequests.
  resource_amounts reqs;
  for (const auto& c : spec.containers)
    add(reqs, container_requests(c));
  resource_amounts sidecars, init_max;
  for (const auto& ic : spec.init_containers) {
    auto r = container_requests(ic);
    resource_amounts during;
    if (ic.is_sidecar()) {
      add(reqs, r);
      add(sidecars, r);
      during = sidecars;
    } else {
      during = r;
      add(during, sidecars);
    }
    max_into(init_max, during);
  }
  max_into(reqs, init_max);
  return reqs;
}

bool is_best_effort(const wire::pod_spec& spec) {
  return pod_qos(spec) == api::qos_class::best_effort;
}

admit_result admit_pod(const wire::pod& pod, const std::vector<const wire::pod*>& active,
                       const resource_amounts& allocatable,
                       const std::vector<std::string>& pressure) {
  admit_result r;
  // 1. The eviction manager's admit handler.
  if (!pressure.empty()) {
    bool only_memory = pressure.size() == 1 && pressure[0] == "MemoryPressure";
    if (!only_memory || is_best_effort(pod.spec)) {
      std::string list;
      for (const auto& c : pressure)
        list += (list.empty() ? "" : " ") + c;
      r.admit = false;
      r.reason = "Evicted";
      r.message = "The node had condition: [" + list + "]. ";
      return r;
    }
  }
  // 2. The resource predicate (scheduler's fitsRequest), first failure wins:
  // pods, then cpu, memory, ephemeral-storage.
  auto insufficient = [&](const char* name, int64_t requested, int64_t used, int64_t capacity) {
    r.admit = false;
    r.reason = std::string("OutOf") + name;
    r.message = std::string("Node didn't have enough resource: ") + name +
                ", requested: " + std::to_string(requested) + ", used: " + std::to_string(used) +
                ", capacity: " + std::to_string(capacity);
    return r;
  };
  auto count = static_cast<int64_t>(active.size());
  if (count + 1 > allocatable.pods)
    return insufficient("pods", 1, count, allocatable.pods);
  auto want = pod_requests(pod.spec);
  if (want.cpu_milli == 0 && want.memory == 0 && want.ephemeral_storage == 0)
    return r;
  resource_amounts used;
  for (const auto* p : active)
    add(used, pod_requests(p->spec));
  if (want.cpu_milli > 0 && want.cpu_milli > allocatable.cpu_milli - used.cpu_milli)
    return insufficient("cpu", want.cpu_milli, used.cpu_milli, allocatable.cpu_milli);
  if (want.memory > 0 && want.memory > allocatable.memory - used.memory)
    return insufficient("memory", want.memory, used.memory, allocatable.memory);
  if (want.ephemeral_storage > 0 &&
      want.ephemeral_storage > allocatable.ephemeral_storage - used.ephemeral_storage)
    return insufficient("ephemeral-storage", want.ephemeral_storage, used.ephemeral_storage,
                        allocatable.ephemeral_storage);
  return r;
}

wire::pod_status rejected_status(const admit_result& r) {
  wire::pod_status st;
  st.phase = "Failed";
  st.reason = r.reason;
  st.message = "Pod was rejected: " + r.message;
  return st;
}

bool rejected_by_kubelet(const wire::pod_status& status) {
  if (status.phase != "Failed")
    return false;
  const auto& r = status.reason;
  return r == "Evicted" || r == "OutOfcpu" || r == "OutOfmemory" || r == "OutOfpods" ||
         r == "OutOfephemeral-storage";
}

}  // namespace deckhand::kubelet
