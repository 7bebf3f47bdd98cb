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

/// The OCI runtime's id of a pod's container.
inline std::string runtime_id(const std::string& uid, const std::string& container) {
  return uid + "-" + container;
}

/// The supervisor's request endpoint.
inline std::string supervisor_endpoint(const fs::path& data, const std::string& uid) {
  return paths::ipc_endpoint(data, "sup-" + uid);
}

} // namespace deckhand::pod_dir
