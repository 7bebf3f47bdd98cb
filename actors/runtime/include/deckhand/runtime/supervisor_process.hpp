#pragma once

/// Starting, recognizing and stopping pod supervisor processes.
///
/// A supervisor runs in a session of its own, so that neither a signal to the
/// runtime's process group nor the runtime's death reaches it: killing the
/// runtime never stops a pod.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "deckhand/common/result.hpp"
#include "deckhand/runtime/options.hpp"

namespace deckhand::runtime {

/// Starts the supervisor of pod `uid`: fork/exec with setsid, stdin on
/// /dev/null, stdout and stderr appended to pod_dir::supervisor_log, args
/// `--data-dir D --pod-uid UID --oci-runtime R` plus `opts.supervisor_args`.
/// Writes pod_dir::supervisor_pid. Fails without leaving a child behind when
/// the program cannot be executed.
result<pid_t> start_supervisor(const runtime_options& opts, const std::string& uid);

/// pod_dir::supervisor_pid of the pod directory `dir`, if present and sane.
std::optional<pid_t> read_supervisor_pid(const std::filesystem::path& dir);

/// True if `pid` exists and is not a zombie.
bool process_alive(pid_t pid);

/// True if `pid` is a live supervisor of pod `uid`: its /proc/PID/cmdline
/// carries `--pod-uid UID`. Guards every signal the runtime sends against a
/// recycled pid.
bool is_supervisor_of(pid_t pid, const std::string& uid);

/// Reaps `pid` if it is a child of this process that has exited. True when
/// it is gone (reaped now, or not a child and not alive).
bool reap_if_exited(pid_t pid);

/// SIGTERM to the supervisor of `uid` at `pid` (only if it is one), SIGKILL
/// if it is still there after `grace`, and waits for it to go (reaping it
/// when it is a child).
void terminate_supervisor(pid_t pid, const std::string& uid,
                          std::chrono::milliseconds grace = std::chrono::seconds(2));

}  // namespace deckhand::runtime
