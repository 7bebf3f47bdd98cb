#pragma once

/// A CAF 0.17 scheduler that runs every actor and timer on ONE thread, and
/// has no `aout` printer (do not use `aout` with it). CAF's own schedulers need at least three threads (a worker, the
/// "caf.clock" timer thread and the detached `aout` printer); a pod
/// supervisor runs one actor that is idle nearly always, and there are
/// hundreds of supervisors per node, so each thread's stack and TLS counts.
///
/// Jobs run in FIFO order with CAF's max-throughput per resume; timeouts and
/// delayed messages are kept in CAF's simple_actor_clock, guarded by a
/// mutex, and fired by the same thread when due. Install it with
/// `install_single_thread_scheduler(cfg)` before constructing the
/// actor_system.

#include <caf/actor_system_config.hpp>

namespace deckhand::host {

void install_single_thread_scheduler(caf::actor_system_config& cfg);

} // namespace deckhand::host
