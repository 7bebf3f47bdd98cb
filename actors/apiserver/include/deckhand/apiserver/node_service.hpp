#pragma once

/// The API server's face towards nodes: requests from kubelets and proxies over
/// ZeroMQ (list, pod status, pod finalization, node heartbeats, event
/// batches) and the numbered state feed (PUB) that fans every Pod, Service
/// and EndpointSlice change out to them (topics and list kinds "pods",
/// "services", "endpointslices"). Also the scheduler: pods without spec.nodeName are
/// bound to the live node with the fewest pods (with a `Scheduled` event).
///
/// Requests are served by a detached actor (its own thread), because registry
/// writes fsync and must never stall the bridge thread.

#include <chrono>
#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "deckhand/apiserver/events.hpp"
#include "deckhand/apiserver/registry.hpp"
#include "deckhand/messages/bridge.hpp"

namespace deckhand::apiserver {

struct node_service_options {
  std::chrono::milliseconds feed_heartbeat{1000};
  /// A node whose last heartbeat is older than this gets no new pods.
  std::chrono::milliseconds node_lease{40000};
  std::chrono::milliseconds schedule_period{500};
  /// Bounds on stored events (event_report batches, the scheduler's events).
  event_limits events;
};

/// Spawns the service; it subscribes to `reg` and publishes on `pub_socket`.
/// Requests must be forwarded to the returned actor (host::forward_to).
caf::actor spawn_node_service(caf::actor_system& sys, registry& reg, transport::bridge& bus,
                              int pub_socket, node_service_options opts = {});

}  // namespace deckhand::apiserver
