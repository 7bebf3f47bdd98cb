#pragma once

/// The on-disk contract between the runtime and a pod's supervisor:
///
///   DATA/runtime/pods/UID/
///     pod.json            the wire::pod the kubelet asked for (runtime writes it
///                         first; a directory without it is a half-created
///                         sandbox that the start-up sweep removes)
///     sandbox.json        the runtime's sandbox record (netns, created_at, state)
///     netns               bind-mounted network namespace (absent: hostNetwork)
///     containers/NAME/    OCI bundle: config.json, rootfs/ (overlay mount
///                         point), upper/, work/
///     status.json         the supervisor's durable wire::sandbox_status: every
///                         container's state, lastState, restartCount, runtime id
///     supervisor.pid      pid of the running supervisor
///     supervisor.log      the supervisor's own stderr
///     stopping            marker: the pod is being stopped; never restart it
///     io/NAME.stdout      FIFOs (named pipes) that container NAME writes its
///     io/NAME.stderr      stdout and stderr to; the supervisor reads them and
///                         writes the CRI-format log files
///
/// Why FIFOs and not plain pipes: a pipe dies with the supervisor that holds
/// its read end, and the container then gets SIGPIPE (or blocks forever on an
/// orphaned pipe nobody can reopen). A FIFO has a name, so a restarted
/// supervisor reopens the same pipe and continues. The container's own
/// descriptor is opened O_RDWR, so the pipe always has a reader: while no
/// supervisor runs, output waits in the pipe buffer (enlarged to 1 MiB where
/// the host allows) and a writer that fills it blocks instead of being
/// killed. containerd keeps a shim process per container for the same job.
///
/// Every JSON file is written to a temporary name, fsynced and renamed.

#include <filesystem>
#include <string>

#include "deckhand/common/paths.hpp"

namespace deckhand::pod_dir {

namespace fs = std::filesystem;

inline fs::path root(const fs::path& data, const std::string& uid) {
  return paths::pods_state_dir(data) / uid;
}
inline fs::path pod_json(const fs::path& d) { return d / "pod.json"; }
inline fs::path sandbox_json(const fs::path& d) { return d / "sandbox.json"; }
inline fs::path netns(const fs::path& d) { return d / "netns"; }
inline fs::path bundle(const fs::path& d, const std::string& container) {
  return d / "containers" / container;
}
inline fs::path status_json(const fs::path& d) { return d / "status.json"; }
inline fs::path supervisor_pid(const fs::path& d) { return d / "supervisor.pid"; }
inline fs::path supervisor_log(const fs::path& d) { return d / "supervisor.log"; }
inline fs::path stopping_marker(const fs::path& d) { return d / "stopping"; }
inline fs::path io_dir(const fs::path& d) { return d / "io"; }
/// `stream` is "stdout" or "stderr".
inline fs::path log_fifo(const fs::path& d, const std::string& container,
                         const std::string& stream) {
  return io_dir(d) / (container + "." + stream);
}

/// The OCI runtime's id of a pod's container.
inline std::string runtime_id(const std::string& uid, const std::string& container) {
  return uid + "-" + container;
}

/// The supervisor's request endpoint.
inline std::string supervisor_endpoint(const fs::path& data, const std::string& uid) {
  return paths::ipc_endpoint(data, "sup-" + uid);
}

}  // namespace deckhand::pod_dir
