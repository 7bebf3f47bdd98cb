#pragma once

/// How the runtime runs pods: the interface of its sandbox back-ends.
///
/// Three implementations, chosen once at start-up from `--backend`:
///   oci      containers through the OCI runtime (runc or crun), each pod in
///            namespaces, cgroups and overlay mounts of its own, under a pod
///            supervisor (oci_backend.hpp);
///   process  plain host processes through deckhand-process-oci, no
///            privileges needed, under a pod supervisor (process_backend.hpp);
///   sim      no processes at all, pods simulated in memory (sim_backend.hpp).
/// Nothing outside the implementations depends on which one runs.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "deckhand/common/result.hpp"
#include "deckhand/image/image_store.hpp"
#include "deckhand/runtime/options.hpp"

namespace deckhand::transport {
class bridge;
}

namespace deckhand::runtime {

struct recovered_pod;

/// The actors a back-end serves requests with (runtime_api.hpp): one may
/// serve both kinds.
struct backend_actors {
  /// run_pod, stop_pod, remove_pod, list_sandboxes.
  caf::actor sandboxes;
  /// exec, container_stats.
  caf::actor containers;
};

/// Made by make_sandbox_backend() and held by shared pointer: the actors a
/// back-end spawns keep it alive.
class sandbox_backend : public std::enable_shared_from_this<sandbox_backend> {
 public:
  virtual ~sandbox_backend() = default;

  /// The name `--backend` takes.
  virtual std::string_view name() const = 0;

  /// Start-up, before anything else runs: options this back-end sets for
  /// itself (e.g. the OCI runtime binary it needs).
  virtual void configure(runtime_options& opts) const = 0;

  /// Whether pods run under pod supervisor processes: then start-up recovers
  /// the pods on disk for the supervisor manager and starts a supervisor
  /// zygote.
  virtual bool runs_supervisors() const = 0;

  /// Start-up: the pods found on disk that the supervisor manager takes over
  /// (half-created ones are swept). A back-end without supervisors recovers
  /// its pods itself and returns none.
  virtual std::vector<recovered_pod> recover(const runtime_options& opts) const = 0;

  /// Spawns the actors serving sandbox and container requests. `supervisors`
  /// is the supervisor manager (supervisor_manager.hpp); `bus` outlives them.
  virtual backend_actors spawn(caf::actor_system& sys, transport::bridge& bus,
                               const runtime_options& opts,
                               std::shared_ptr<image::image_store> images,
                               caf::actor supervisors) const = 0;
};

/// The back-end `--backend` names: "oci", "process" or "sim"; any other
/// name is `errc::invalid`, with a message that lists the valid ones.
result<std::shared_ptr<const sandbox_backend>> make_sandbox_backend(std::string_view name);

/// The names make_sandbox_backend() accepts, for the command line's help.
std::vector<std::string> sandbox_backend_names();

}  // namespace deckhand::runtime
