#pragma once

/// The deckhand-runtime process: its actors and its entry points.
///
/// Actors (all requests arrive as `transport::inbound_request` from the
/// ROUTER at paths::ipc_endpoint(data, "runtime")):
///
///   front               routes requests by type; anything else gets
///                       error_reply errc::invalid.
///   image service       image_import_request -> image_import_reply,
///                       image_list_request -> image_list_reply; the store
///                       work runs on detached workers.
///   sandbox service     run_pod_request -> run_pod_reply,
///                       stop_pod_request -> sandbox_status_reply,
///                       remove_pod_request -> ack,
///                       list_sandboxes_request -> list_sandboxes_reply.
///                       Requests for one pod run one at a time, in order;
///                       the work runs on detached workers.
///   supervisor manager  (detached) tracks one supervisor pid per pod, checks
///                       them every 500 ms and restarts a dead one with
///                       back-off (200 ms doubling to 10 s) unless the pod is
///                       stopping or being removed.

#include <memory>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "deckhand/host/config.hpp"
#include "deckhand/image/image_store.hpp"
#include "deckhand/messages/bridge.hpp"
#include "deckhand/runtime/options.hpp"
#include "deckhand/runtime/sandbox_ops.hpp"

namespace deckhand::runtime {

struct runtime_actors {
  caf::actor front;
  caf::actor images;
  caf::actor sandboxes;
  caf::actor supervisors;
};

/// Spawns the actors. `recovered` (from recover_sandboxes) seeds the
/// supervisor manager. `bus` must outlive the actors.
runtime_actors spawn_runtime(caf::actor_system& sys, transport::bridge& bus,
                             const runtime_options& opts,
                             std::shared_ptr<image::image_store> images,
                             const std::vector<recovered_pod>& recovered);

/// --cleanup-all: removes every pod (supervisors included). Returns the
/// number of pods that could not be removed completely.
int cleanup_all(const runtime_options& opts);

/// The whole process after option parsing: recovery, actors, the ROUTER,
/// waiting for SIGINT/SIGTERM. Returns the exit code.
int run_runtime(const runtime_options& opts, const host::common_options& common,
                bool cleanup_all_and_exit);

}  // namespace deckhand::runtime
