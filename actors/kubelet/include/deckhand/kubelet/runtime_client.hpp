#pragma once

/// The container runtime (deckhand-runtime) as the kubelet uses it: one
/// typed call per operation. Every call answers exactly once through `done`,
/// on any thread (peer_reply.hpp); the deadline bounds the wait for it.
///
/// The process talks to the runtime over its DEALER (`make_runtime_client`);
/// tests implement the interface with a small fake.

#include <chrono>
#include <memory>

#include "deckhand/kubelet/peer_reply.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::kubelet {

class runtime_client {
 public:
  virtual ~runtime_client() = default;

  /// Makes an image present (`if_not_present`: only when it is missing).
  /// Sent by a pod worker before the pod starts; may take minutes.
  virtual void pull_image(const wire::image_pull_request& req, std::chrono::milliseconds deadline,
                          reply_fn<wire::image_pull_reply> done) = 0;

  /// Creates the pod's sandbox and starts its containers. A missing image
  /// fails with `not_found`, naming it.
  virtual void run_pod(const wire::run_pod_request& req, std::chrono::milliseconds deadline,
                       reply_fn<wire::run_pod_reply> done) = 0;

  /// Stops the pod's containers within the grace period. A second stop with
  /// a shorter grace period moves the SIGKILL deadline earlier. The reply
  /// holds the stopped sandbox (empty uid: there was none).
  virtual void stop_pod(const wire::stop_pod_request& req, std::chrono::milliseconds deadline,
                        reply_fn<wire::sandbox_status_reply> done) = 0;

  /// Removes a stopped pod's sandbox.
  virtual void remove_pod(const wire::remove_pod_request& req, std::chrono::milliseconds deadline,
                          reply_fn<wire::ack> done) = 0;

  /// Every sandbox on the node (the sync loop's relist).
  virtual void list_sandboxes(std::chrono::milliseconds deadline,
                              reply_fn<wire::list_sandboxes_reply> done) = 0;

  /// Per-container usage (the eviction manager's ranking).
  virtual void container_stats(std::chrono::milliseconds deadline,
                               reply_fn<wire::container_stats_reply> done) = 0;
};

/// The runtime behind `dealer`, through `request` (kubelet_sockets::request).
std::shared_ptr<runtime_client> make_runtime_client(request_fn request, int dealer);

}  // namespace deckhand::kubelet
