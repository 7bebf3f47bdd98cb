#pragma once

/// The endpoints controller: keeps each Service's core/v1 Endpoints and its
/// discovery.k8s.io/v1 EndpointSlices in line with the Pods its selector
/// picks, inside the API server (Kubernetes runs the same logic as three
/// controllers in kube-controller-manager: endpoints, endpointslice and
/// endpointslice-mirroring).
///
/// For a Service with a selector, every selected pod that is bound to a node,
/// has a podIP and is not finished becomes an endpoint:
///  - Endpoints: ready pods under `addresses`, the others under
///    `notReadyAddresses`; terminating pods (deletionTimestamp set) are left
///    out; the object carries `endpointslice.kubernetes.io/skip-mirror: "true"`.
///  - EndpointSlices (labels `kubernetes.io/service-name` and
///    `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`,
///    owned by the Service): conditions ready (Ready condition True and not
///    terminating), serving (Ready) and terminating; a Service without
///    endpoints keeps one slice with no endpoints, as Kubernetes' controller
///    does (consumers then see the Service exists but has nothing to route to).
///  - A named targetPort is resolved per pod from its containers' ports (and
///    protocol); pods whose resolved ports differ land in different subsets and
///    slices, and a pod without the named port is left out for that port.
/// A Service without a selector is not managed: an Endpoints object a user
/// wrote for it is mirrored into slices managed by
/// `endpointslicemirroring-controller.k8s.io`. A deleted Service takes its
/// Endpoints and slices with it.
///
/// Changes arrive as registry watch events; only the Services a change can
/// affect are queued, and an object is written only when its content differs
/// from what is stored. Writes go through the registry (durable before they
/// are visible, and in every watch). On attach every Service, Endpoints and
/// managed slice is queued, so work lost in a crash is redone at start.
///
/// Thread safety: sync_pending() and the worker thread must not run at the
/// same time (tests call sync_pending() without start()).

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "deckhand/apiserver/registry.hpp"
#include "deckhand/common/result.hpp"

namespace deckhand::apiserver {

struct endpoints_controller_options {
  /// Endpoints per EndpointSlice (Kubernetes' --max-endpoints-per-slice).
  std::size_t max_endpoints_per_slice = 100;
  /// How long a failed sync waits before it is tried again.
  std::chrono::milliseconds retry_after{1000};
};

/// What sync_pending() did, for tests and logs.
struct endpoints_sync_stats {
  std::size_t services = 0;  ///< Service keys synced
  std::size_t writes = 0;    ///< objects created, updated or deleted
  std::size_t failures = 0;  ///< syncs that failed and were queued again
};

class endpoints_controller {
 public:
  /// `reg` must outlive the controller.
  explicit endpoints_controller(registry& reg, endpoints_controller_options opts = {});
  ~endpoints_controller();
  endpoints_controller(const endpoints_controller&) = delete;
  endpoints_controller& operator=(const endpoints_controller&) = delete;

  /// Subscribes to the registry and queues everything for a first sync.
  void attach();

  /// attach() (if not yet), then a worker thread syncs queued Services as
  /// they come until stop().
  void start();

  /// Stops the worker and unsubscribes.
  void stop();

  /// Syncs every queued Service on the calling thread, repeating until
  /// nothing is left (its own writes queue their Service once more).
  endpoints_sync_stats sync_pending();

  /// Services waiting for a sync.
  std::size_t queued() const;

 private:
  struct pod_change {
    std::string ns;
    nlohmann::json labels_before;
    nlohmann::json labels_after;
  };
  using service_key = std::pair<std::string, std::string>;  // namespace, name

  void on_event(const watch_event& ev);
  void enqueue(const service_key& key, bool service_deleted = false);
  /// Pops the queue (resolving pod changes to Services); false when empty.
  bool take(std::map<service_key, bool>& keys);
  endpoints_sync_stats sync_round();
  result<std::size_t> sync_service(const service_key& key, bool service_deleted);
  void run();

  registry& reg_;
  endpoints_controller_options opts_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  /// Queued Service keys; true if the Service's deletion queued it.
  std::map<service_key, bool> dirty_;
  std::vector<pod_change> pod_changes_;
  std::uint64_t subscription_ = 0;
  bool attached_ = false;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace deckhand::apiserver
