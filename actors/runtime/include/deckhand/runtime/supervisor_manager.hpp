#pragma once

/// The supervisor manager (a detached actor): tracks one pod supervisor
/// process per pod, checks them every 500 ms and restarts a dead one with
/// back-off (supervisor_restart_policy) unless the pod is stopping or being
/// removed. A pod whose pod.json is gone is forgotten.
///
/// Messages (from the sandbox service and start-up):
///   (supervisor_adopt_atom, uid, pid)   track pod `uid` whose supervisor
///                                       runs as `pid`; pid 0: start one
///                                       now. No reply.
///   (supervisor_release_atom, uid)      stop tracking `uid` (before its
///                                       removal); reply: the pid it had
///                                       (int64_t, 0 if none).

#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>

#include "deckhand/common/backoff.hpp"
#include "deckhand/runtime/options.hpp"

namespace deckhand::runtime {

using supervisor_adopt_atom = caf::atom_constant<caf::atom("rt_adopt")>;
using supervisor_release_atom = caf::atom_constant<caf::atom("rt_release")>;

/// Restarts of a dead supervisor: 200 ms doubling to 10 s, and a supervisor
/// that ran 10 s without dying starts the schedule over.
inline constexpr common::backoff_policy supervisor_restart_policy{
    std::chrono::milliseconds(200), std::chrono::milliseconds(10'000),
    std::chrono::milliseconds(10'000), false};

caf::actor spawn_supervisor_manager(caf::actor_system& sys, const runtime_options& opts);

}  // namespace deckhand::runtime
