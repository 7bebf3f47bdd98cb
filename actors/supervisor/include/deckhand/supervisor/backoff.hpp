#pragma once

/// Restart policy and crash-loop back-off, as the kubelet applies them.
///
/// Pure logic: time is passed in, so tests drive it with virtual time.

#include <chrono>
#include <string>

#include "deckhand/common/backoff.hpp"

namespace deckhand::supervisor {

using wall_clock = std::chrono::system_clock;
using time_point = wall_clock::time_point;
using millis = std::chrono::milliseconds;

/// The back-off schedule, as the Go kubelet applies it: the first restart of
/// a crashed container is immediate, the k-th consecutive one after that
/// waits `initial * 2^(k-1)`, capped at `max` (0, 10s, 20s, 40s, ... 5m); a
/// container that ran for at least `reset` before it exited starts the
/// schedule over (immediate restart again).
struct backoff_config {
  millis initial = std::chrono::seconds(10);
  millis max = std::chrono::seconds(300);
  millis reset = std::chrono::seconds(600);
};

/// True when a container that exited with `exit_code` must be restarted under
/// the pod's `restart_policy` ("Always", "OnFailure", "Never"; anything else
/// counts as Always, the Kubernetes default).
bool should_restart(const std::string& restart_policy, int exit_code);

/// The common back-off schedule these settings give: the first restart
/// immediate, then `initial` doubling up to `max`, reset by a run of `reset`.
common::backoff_policy crash_loop_policy(const backoff_config& cfg);

/// The delay before restarting a container that ran from `started` to
/// `finished`, advancing `b`. An unknown start time (time_point{}) never
/// resets the schedule.
millis next_restart_delay(common::backoff& b, time_point started, time_point finished);

/// A duration the way Go prints it ("10s", "1m20s", "5m0s", "50ms"), which is
/// how the kubelet's CrashLoopBackOff messages show it.
std::string go_duration(millis d);

}  // namespace deckhand::supervisor
