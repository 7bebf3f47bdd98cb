#pragma once

/// The API server as the kubelet uses it: one typed call per operation.
/// Every call answers exactly once through `done`, on any thread
/// (peer_reply.hpp); the deadline bounds the wait for it.
///
/// The process talks to the API server over its DEALER (`make_api_client`);
/// tests implement the interface with a small fake.

#include <chrono>
#include <memory>

#include "deckhand/kubelet/peer_reply.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::kubelet {

/// A list of pods and the incarnation of the API server that answered (the
/// feed's sequence numbers count per incarnation).
struct pod_list {
  wire::list_reply list;
  uint64_t incarnation = 0;
};

class api_client {
 public:
  virtual ~api_client() = default;

  /// The pods bound to a node and the feed position of the snapshot (the
  /// sync loop, at start and after a feed gap).
  virtual void list_pods(const wire::list_request& req, std::chrono::milliseconds deadline,
                         reply_fn<pod_list> done) = 0;

  /// A pod's status (the status manager, its single writer); `not_found`
  /// once the pod is gone.
  virtual void update_pod_status(const wire::pod_status_update& req,
                                 std::chrono::milliseconds deadline, reply_fn<wire::ack> done) = 0;

  /// Deletes a terminated pod's object (a pod worker, last step).
  virtual void finalize_pod(const wire::pod_finalize& req, std::chrono::milliseconds deadline,
                            reply_fn<wire::ack> done) = 0;

  /// Registers the node or updates its status (the node status actor).
  virtual void node_heartbeat(const wire::node_heartbeat& req, std::chrono::milliseconds deadline,
                              reply_fn<wire::ack> done) = 0;

  /// Renews the node's Lease; `unsupported` (or an `invalid` "not served")
  /// from an API server without leases.
  virtual void renew_lease(const wire::lease_renew& req, std::chrono::milliseconds deadline,
                           reply_fn<wire::ack> done) = 0;

  /// Creates or replaces a batch of events (the event recorder).
  virtual void report_events(const wire::event_report& req, std::chrono::milliseconds deadline,
                             reply_fn<wire::ack> done) = 0;
};

/// The API server behind `dealer`, through `request` (kubelet_sockets::request).
std::shared_ptr<api_client> make_api_client(request_fn request, int dealer);

}  // namespace deckhand::kubelet
