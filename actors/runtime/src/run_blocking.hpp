#pragma once

/// Private to the runtime library: where the services' blocking work runs.

#include <utility>

#include <caf/all.hpp>

namespace deckhand::runtime {

/// Runs `fn` on a thread of its own (a blocking actor): the place for mounts,
/// runc, fork/exec, cgroup files and the image store, never an actor that
/// shares the scheduler.
template <class Fn>
void run_blocking(caf::actor_system& sys, Fn fn) {
  sys.spawn([fn = std::move(fn)](caf::blocking_actor*) mutable { fn(); });
}

}  // namespace deckhand::runtime
