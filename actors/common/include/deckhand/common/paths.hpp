#pragma once

/// The layout of a node's data directory. Every process of a node is given the
/// same `--data-dir` and derives its sockets and state locations from it.
///
///   DATA/run/                 sockets, pid files, the launcher's status file
///   DATA/apiserver/           the API server's durable store (WAL + snapshots)
///   DATA/images/              the image store (blobs, unpacked rootfs, index)
///   DATA/runtime/pods/UID/    a pod sandbox: bundles, supervisor state
///   DATA/runtime/runc/        runc's --root
///   DATA/logs/pods/NS_NAME_UID/CONTAINER/N.log   container logs
///   DATA/kubelet/             kubelet state

#include <cstdlib>
#include <filesystem>
#include <string>

namespace deckhand::paths {

namespace fs = std::filesystem;

/// The data directory used when `--data-dir` is not given: `$DECKHAND_DATA_DIR`,
/// else `/var/lib/deckhand`.
inline fs::path default_data_dir() {
  if (const char* env = std::getenv("DECKHAND_DATA_DIR"); env && *env)
    return env;
  return "/var/lib/deckhand";
}

inline fs::path run_dir(const fs::path& data) { return data / "run"; }
inline fs::path apiserver_dir(const fs::path& data) { return data / "apiserver"; }
inline fs::path image_dir(const fs::path& data) { return data / "images"; }
inline fs::path runtime_dir(const fs::path& data) { return data / "runtime"; }
inline fs::path pods_state_dir(const fs::path& data) { return data / "runtime" / "pods"; }
inline fs::path runc_root(const fs::path& data) { return data / "runtime" / "runc"; }
inline fs::path kubelet_dir(const fs::path& data) { return data / "kubelet"; }
inline fs::path pod_logs_root(const fs::path& data) { return data / "logs" / "pods"; }

/// Directory of one pod's logs, named like kubelet's /var/log/pods entries.
inline fs::path pod_log_dir(const fs::path& data, const std::string& ns, const std::string& name,
                            const std::string& uid) {
  return pod_logs_root(data) / (ns + "_" + name + "_" + uid);
}

/// `ipc://` endpoint of a component's request socket (ROUTER) on this node.
inline std::string ipc_endpoint(const fs::path& data, const std::string& name) {
  return "ipc://" + (run_dir(data) / (name + ".sock")).string();
}

/// `ipc://` endpoint of the runtime's PUB socket (image pull progress,
/// topic "pull").
inline std::string runtime_pub_endpoint(const fs::path& data) {
  return "ipc://" + (run_dir(data) / "runtime-pub.sock").string();
}

/// File in which the API server writes the URL of its HTTP listener (it binds
/// an OS-chosen port unless told otherwise).
inline fs::path apiserver_url_file(const fs::path& data) { return run_dir(data) / "apiserver.url"; }

/// Status file maintained by `deckhand up`: one entry per component process.
inline fs::path launcher_status_file(const fs::path& data) { return run_dir(data) / "up.json"; }

}  // namespace deckhand::paths
