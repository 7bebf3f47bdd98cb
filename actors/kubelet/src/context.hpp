#pragma once

/// What the kubelet's actors (sync loop, pod workers, status manager) share:
/// the configuration, the peers, and the actor messages between them.

#include <chrono>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>

#include "deckhand/host/caf_glue.hpp"
#include "deckhand/kubelet/api_client.hpp"
#include "deckhand/kubelet/event_recorder.hpp"
#include "deckhand/kubelet/kubelet.hpp"
#include "deckhand/kubelet/runtime_client.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::kubelet::detail {

using host::feed_atom;
using host::status_atom;
using host::stop_atom;
using host::sync_atom;
using host::tick_atom;
using clock_type = std::chrono::steady_clock;

/// Replies, one atom per operation (peer_reply.hpp).
using pulled_atom = caf::atom_constant<caf::atom("kl_pulled")>;
using ran_atom = caf::atom_constant<caf::atom("kl_ran")>;
using stopped_atom = caf::atom_constant<caf::atom("kl_stopped")>;
/// The reply to a stop that only shortened the grace period.
using shortened_atom = caf::atom_constant<caf::atom("kl_shorten")>;
using removed_atom = caf::atom_constant<caf::atom("kl_removed")>;
using finalized_atom = caf::atom_constant<caf::atom("kl_final")>;
using listed_atom = caf::atom_constant<caf::atom("kl_listed")>;
using relisted_atom = caf::atom_constant<caf::atom("kl_relist")>;
/// A status update's reply; carries the uid and the status body sent.
using status_sent_atom = caf::atom_constant<caf::atom("kl_stsent")>;

struct context {
  kubelet_sockets sockets;
  kubelet_config cfg;
  std::shared_ptr<event_recorder_stats> event_stats;
  std::shared_ptr<runtime_client> runtime;
  std::shared_ptr<api_client> api;
};
using ctx_ptr = std::shared_ptr<const context>;

inline std::string pod_ref(const wire::pod& p) {
  return "pod=" + p.metadata.namespace_ + "/" + p.metadata.name + " uid=" + p.metadata.uid;
}

/// The single writer of pod status to the API server. Accepts
/// `(status_atom, pod_status_update)` and `(stop_atom, uid)` (forget a pod).
caf::actor spawn_status_manager(caf::actor_system& sys, ctx_ptr ctx);

/// One pod's worker, linked to `parent` (the sync loop), which it tells
/// `(stop_atom, uid)` once the pod has terminated.
caf::actor spawn_pod_worker(caf::event_based_actor* parent, ctx_ptr ctx, caf::actor status_mgr,
                            caf::actor recorder, std::string uid);

/// The sync loop (sync_loop.cpp).
caf::actor spawn_sync_loop(caf::actor_system& sys, ctx_ptr ctx);

}  // namespace deckhand::kubelet::detail
