#pragma once

/// The kubelet's actors, the way the Go kubelet maps onto goroutines:
///
///   sync loop       owns the node's pod set: the API server snapshot + feed
///                   (feed_follower), the runtime relist (PLEG-like, every
///                   `relist_period`), one pod worker per pod, orphan cleanup.
///   pod worker      one per pod: sync (image pulls by imagePullPolicy, with
///                   a per-image back-off; run_pod) -> terminating (stop_pod,
///                   remove_pod, pod_finalize) -> terminated. Updates arriving
///                   while a request is in flight coalesce; once a pod is
///                   terminating nothing turns it back.
///   status manager  the single writer of pod status to the API server;
///                   de-duplicates and retries.
///   event recorder  aggregates the pod workers' events and sends them to
///                   the API server in batches (event_recorder.hpp).
///   node status     registers the node and renews its lease.
///
/// Messages the sync loop accepts (besides its own timers and the replies
/// of its peers, peer_reply.hpp):
///   (feed_atom, envelope)     watch_event / feed_heartbeat from the API feed
///   inbound_request           pod_status_notify from pod supervisors
///
/// Source layout, as pkg/kubelet: sync_loop.cpp, relist.cpp (PLEG),
/// pod_worker.cpp and pod_worker_images.cpp, status_manager.cpp.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "deckhand/kubelet/api_client.hpp"
#include "deckhand/kubelet/event_recorder.hpp"
#include "deckhand/kubelet/eviction.hpp"
#include "deckhand/kubelet/node_status.hpp"
#include "deckhand/kubelet/peer_reply.hpp"
#include "deckhand/kubelet/runtime_client.hpp"
#include "deckhand/messages/bridge.hpp"

namespace deckhand::kubelet {

struct kubelet_config {
  std::string node_name;
  std::filesystem::path data_dir;
  std::string host_ip;
  std::chrono::milliseconds relist_period{1000};
  std::chrono::milliseconds node_status_period{10000};
  std::chrono::milliseconds feed_silence{3000};
  std::chrono::milliseconds request_deadline{5000};
  std::chrono::milliseconds retry_initial{500};
  std::chrono::milliseconds retry_max{10000};
  /// How long the runtime may take over one image pull. The pod worker waits
  /// for it without blocking the kubelet's other pods.
  std::chrono::milliseconds image_pull_deadline{std::chrono::minutes(30)};
  /// Per pod and image, after a failed pull: no new pull for this long
  /// (ImagePullBackOff), doubling up to the maximum (Kubernetes: 10 s, 300 s).
  std::chrono::milliseconds image_pull_backoff_initial{10000};
  std::chrono::milliseconds image_pull_backoff_max{300000};
  /// The event recorder's bounds and timings (host is the node name).
  event_recorder_config events;
  /// Optional: the recorder's counters, for tests and metrics.
  std::shared_ptr<event_recorder_stats> event_stats;
  /// Kubernetes' staticPodPath: a directory of pod manifests the kubelet runs
  /// without the API server (static_pod_source.hpp). Empty: none.
  std::filesystem::path static_pod_path;
  /// How often the static pod directory is read.
  std::chrono::milliseconds static_pod_poll{500};
  /// Node status and lease: maxPods, reservations, hard eviction thresholds
  /// (subtracted from allocatable), timings (node_status.hpp).
  node_status_config node;
  /// The eviction manager (eviction.hpp); its thresholds are node.eviction_hard.
  eviction_config eviction;
};

/// Sockets the kubelet uses; created by the process before spawning.
struct kubelet_sockets {
  transport::bridge* bus = nullptr;
  int api = -1;      ///< DEALER to the API server
  int runtime = -1;  ///< DEALER to the runtime
  /// Optional: how requests go out. Empty means `bus->request`. Tests set it
  /// to run reply handlers on their own thread, because CAF's test
  /// coordinator must not be entered from the bridge thread.
  request_fn request;
  /// Optional: the runtime and the API server as the kubelet's actors call
  /// them (runtime_client.hpp, api_client.hpp). Empty means requests on
  /// `runtime` and `api` through `request`; tests set fakes.
  std::shared_ptr<runtime_client> runtime_peer;
  std::shared_ptr<api_client> api_peer;
};

/// Spawns the kubelet's actors and returns the sync loop, which must receive
/// the feed and inbound requests. The node status actor is linked to it.
caf::actor spawn_kubelet(caf::actor_system& sys, kubelet_sockets sockets, kubelet_config cfg);

}  // namespace deckhand::kubelet
