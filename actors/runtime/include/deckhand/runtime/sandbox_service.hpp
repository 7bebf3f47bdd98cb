#pragma once

/// The sandbox and container services of the supervised back-ends (oci,
/// process).
///
/// Sandbox service (runtime_api.hpp):
///   run_pod_request        -> run_pod_reply: builds the sandbox
///                             (create_sandbox), starts the pod supervisor
///                             and hands it to the supervisor manager.
///   stop_pod_request       -> sandbox_status_reply: marks the pod stopping,
///                             asks its supervisor to stop it, or stops the
///                             containers directly when the supervisor is
///                             gone or does not answer in grace + 10 s.
///   remove_pod_request     -> ack: releases the pod from the supervisor
///                             manager and removes the sandbox.
///   list_sandboxes_request -> list_sandboxes_reply.
/// Requests for one pod run one at a time, in order; the work runs on
/// worker threads.
///
/// Container service:
///   exec_request            -> exec_reply (a command in a container).
///   container_stats_request -> container_stats_reply (cgroup figures).

#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "deckhand/image/image_store.hpp"
#include "deckhand/messages/bridge.hpp"
#include "deckhand/runtime/options.hpp"
#include "deckhand/runtime/supervised_backend.hpp"

namespace deckhand::runtime {

/// `manager` is the supervisor manager (supervisor_manager.hpp).
caf::actor spawn_sandbox_service(caf::actor_system& sys, transport::bridge& bus,
                                 const runtime_options& opts,
                                 std::shared_ptr<const supervised_backend> backend,
                                 std::shared_ptr<image::image_store> images, caf::actor manager);

caf::actor spawn_container_service(caf::actor_system& sys, transport::bridge& bus,
                                   const runtime_options& opts);

}  // namespace deckhand::runtime
