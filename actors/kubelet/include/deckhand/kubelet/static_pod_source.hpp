#pragma once

/// The kubelet's file source: an actor that reads `staticPodPath` every
/// `poll_period` (Kubernetes: within seconds; here 500 ms by default), tells
/// the sync loop the static pods to run, and keeps one mirror pod per static
/// pod in the API server.
///
/// Messages it sends:
///   to the sync loop   (static_atom, std::vector<wire::pod>)  the full set of
///                      static pods, whenever it changes (and once at start,
///                      also when the directory is missing or empty)
///   to the status mgr  (dh_stop, uid) after it (re)created the mirror of the
///                      static pod `uid`: the status is written again
///   to the API server  wire::mirror_pod_update (create/replace/remove)
/// Messages it accepts (from the sync loop, which filters mirror pods out of
/// the API source so that none is ever run):
///   (mirror_atom, "SNAPSHOT", std::vector<wire::pod>, uint64_t revision)
///   (mirror_atom, "ADDED"|"MODIFIED"|"DELETED", std::vector<wire::pod>{pod},
///    uint64_t revision)
/// It needs no API server to start static pods: requests to it only concern
/// mirror pods, and are retried until they succeed.

#include <chrono>
#include <filesystem>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>

#include "deckhand/kubelet/kubelet.hpp"

namespace deckhand::kubelet {

using static_atom = caf::atom_constant<caf::atom("dh_static")>;
using mirror_atom = caf::atom_constant<caf::atom("dh_mirror")>;

struct static_pod_source_config {
  std::filesystem::path dir;
  std::string node_name;
  std::chrono::milliseconds poll_period{500};
  std::chrono::milliseconds request_deadline{5000};
};

/// Spawns the source (detached: it reads files). `request` and `api` send
/// mirror_pod_update requests; `sync_loop` and `status_manager` receive the
/// messages above.
caf::actor spawn_static_pod_source(caf::actor_system& sys, static_pod_source_config cfg,
                                   request_fn request, int api, caf::actor sync_loop,
                                   caf::actor status_manager);

}  // namespace deckhand::kubelet
