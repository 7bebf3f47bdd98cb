#pragma once

/// The sync loop's state, shared by sync_loop.cpp (the API server's pods,
/// admission, static pods) and relist.cpp (the runtime's sandboxes, PLEG).

#include <map>
#include <set>
#include <string>
#include <vector>

#include <caf/stateful_actor.hpp>

#include "context.hpp"
#include "deckhand/kubelet/admission.hpp"
#include "deckhand/messages/feed.hpp"

namespace deckhand::kubelet::detail {

struct sync_state {
  ctx_ptr ctx;
  caf::actor status_mgr;
  caf::actor recorder;
  wire::feed_follower follower;
  bool api_synced = false;
  bool list_inflight = false;
  bool relist_inflight = false;
  std::map<std::string, wire::pod> desired;  // by uid
  std::map<std::string, caf::actor> workers;
  /// Pods whose worker has terminated: a pod uid, once killed, never runs
  /// again (a stale update must not revive it). Forgotten once a snapshot no
  /// longer lists the uid: the object is gone and uids are never reused.
  std::set<std::string> finished;
  std::map<std::string, wire::sandbox_status> sandboxes;  // last runtime relist
  bool runtime_listed = false;
  std::vector<wire::envelope> buffered;
  /// The file source (static_pod_source.hpp) and the static pods it asks
  /// for, by uid. Until it has reported once, no sandbox counts as orphaned.
  caf::actor static_source;
  std::map<std::string, wire::pod> static_pods;
  bool static_synced = true;
  /// Admission (admission.hpp): the node's allocatable resources and the
  /// pressure conditions the eviction manager reports True.
  resource_amounts allocatable;
  std::vector<std::string> pressure;
  static inline const char* name = "kubelet";
};

using sync_actor = caf::stateful_actor<sync_state>;

/// The pod `uid`'s worker, spawned (and told the last relist) if it has none.
caf::actor worker_for(sync_actor* self, const std::string& uid);

/// Asks the runtime for every sandbox, unless a relist is in flight.
void request_relist(sync_actor* self);

/// The runtime's answer to a relist: each worker learns its own sandbox; a
/// sandbox no pod asks for is an orphan and is stopped and removed. A failed
/// relist waits for the next tick.
void on_relist(sync_actor* self, const result<wire::list_sandboxes_reply>& reply);

}  // namespace deckhand::kubelet::detail
