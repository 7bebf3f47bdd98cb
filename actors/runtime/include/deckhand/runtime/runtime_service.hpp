#pragma once

/// The deckhand-runtime process: its actors and its entry points.
///
/// Actors (all requests arrive as `transport::inbound_request` from the
/// ROUTER at paths::ipc_endpoint(data, "runtime"); what each request gets
/// back is in runtime_api.hpp):
///
///   front               routes requests by type; anything else gets
///                       error_reply errc::invalid.
///   image service       image requests (image_service.hpp).
///   sandbox service     pod requests, from the back-end (sandbox_backend.hpp;
///                       sandbox_service.hpp for oci and process).
///   container service   exec and stats, from the back-end.
///   supervisor manager  (detached) keeps one pod supervisor per pod running
///                       (supervisor_manager.hpp).

#include <memory>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "deckhand/host/config.hpp"
#include "deckhand/image/image_store.hpp"
#include "deckhand/messages/bridge.hpp"
#include "deckhand/runtime/options.hpp"
#include "deckhand/runtime/sandbox_backend.hpp"
#include "deckhand/runtime/sandbox_ops.hpp"

namespace deckhand::runtime {

struct runtime_actors {
  caf::actor front;
  caf::actor images;
  caf::actor sandboxes;
  caf::actor containers;
  caf::actor supervisors;
};

/// Spawns the actors with `backend`. `recovered` (from the back-end's
/// recover()) seeds the supervisor manager. `bus` must outlive the actors.
runtime_actors spawn_runtime(caf::actor_system& sys, transport::bridge& bus,
                             const runtime_options& opts, const sandbox_backend& backend,
                             std::shared_ptr<image::image_store> images,
                             const std::vector<recovered_pod>& recovered);

/// The front: routes each request to the actor in `to` that serves it.
caf::actor spawn_front(caf::actor_system& sys, transport::bridge& bus, const runtime_actors& to);

/// --cleanup-all: removes every pod (supervisors included). Returns the
/// number of pods that could not be removed completely.
int cleanup_all(const runtime_options& opts);

/// The whole process after option parsing: the back-end named by
/// `opts.backend` (an unknown one fails here), recovery, actors, the ROUTER,
/// waiting for SIGINT/SIGTERM. Returns the exit code.
int run_runtime(const runtime_options& opts, const host::common_options& common,
                bool cleanup_all_and_exit);

}  // namespace deckhand::runtime
