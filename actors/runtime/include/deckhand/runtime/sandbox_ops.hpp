#pragma once

/// The blocking work of the sandbox service: building a pod's sandbox on disk
/// (pod dir, netns, overlay mounts, bundles), reading it back, stopping its
/// containers without a supervisor, and tearing it down. Every function here
/// may block (mounts, runc, disk) and runs on a worker thread, never on an
/// actor that shares the scheduler.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/image/image_store.hpp"
#include "deckhand/messages/wire.hpp"
#include "deckhand/runtime/options.hpp"
#include "deckhand/runtime/sandbox_record.hpp"

namespace deckhand::runtime {

class supervised_backend;

/// Checks what the runtime relies on: uid and container names usable as path
/// components and runc ids, a name, at least one container, unique container
/// names, an image per container.
error validate_pod(const wire::pod& p);

/// Builds the sandbox of `p` (everything but the supervisor): pod.json first,
/// sandbox.json, the pod's shared namespaces (network unless hostNetwork, UTS
/// with the pod's hostname, IPC), its address and veth on the node bridge
/// (network.hpp; hostNetwork pods report the node's address), a /dev/shm
/// tmpfs and /etc/{hostname,hosts,resolv.conf}, and per container an overlay
/// mount over the image rootfs plus config.json joining all of these; what
/// isolates the pod on the host is `backend`'s (supervised_backend.hpp). A
/// missing image is `errc::not_found`. On failure everything done is undone.
result<wire::sandbox_status> create_sandbox(const runtime_options& opts,
                                            const supervised_backend& backend,
                                            const image::image_store& images, const wire::pod& p);

/// The status of pod `uid` from its files (sandbox.json, status.json,
/// supervisor.pid); `errc::not_found` when there is no complete sandbox.
result<wire::sandbox_status> read_sandbox(const runtime_options& opts, const std::string& uid);

/// One status per complete sandbox, ordered by uid.
std::vector<wire::sandbox_status> list_sandboxes(const runtime_options& opts);

/// Marks the pod as stopping (pod_dir::stopping_marker): no supervisor will
/// restart its containers any more. The marker carries the supervisor's
/// format ({"gracePeriodSeconds", "deadlineMs"}) so that a supervisor started
/// later finishes the stop on this schedule. An existing marker is kept: a
/// repeated stop never extends the first one's deadline.
error mark_stopping(const runtime_options& opts, const std::string& uid, int64_t grace_seconds);

/// Records a completed stop in sandbox.json.
error mark_stopped(const runtime_options& opts, const std::string& uid);

/// Stops the pod's containers without their supervisor: `runc kill` SIGTERM,
/// SIGKILL after `grace`, `runc delete`. Marks the pod stopping first and
/// stopped at the end; returns the final status.
result<wire::sandbox_status> stop_containers(const runtime_options& opts, const std::string& uid,
                                             std::chrono::milliseconds grace);

/// Removes everything of pod `uid`: its supervisor (`supervisor_pid`, or the
/// one in supervisor.pid), its runc containers, its veth and address, every
/// mount under its directory (namespaces, /dev/shm, overlays), the directory
/// and the pod's log directory.
/// Idempotent; never deletes through a mount that could not be unmounted.
error remove_sandbox(const runtime_options& opts, const std::string& uid, pid_t supervisor_pid = 0);

/// What start-up does with a directory found under the pods dir.
enum class startup_action {
  sweep,             ///< half-created: remove it
  adopt,             ///< complete, supervisor alive: track it, change nothing
  start_supervisor,  ///< complete, supervisor dead: start a new one
  leave_stopped,     ///< stopped on purpose, supervisor gone: leave as is
};

const char* to_string(startup_action a);

/// The start-up decision. `record` is sandbox.json if it parsed.
startup_action decide_startup(bool has_pod_json, const std::optional<sandbox_record>& record,
                              bool supervisor_alive, bool stopping);

/// A pod found at start-up.
struct recovered_pod {
  std::string uid;
  startup_action action = startup_action::sweep;
  pid_t supervisor_pid = 0;  ///< for `adopt`
};

/// Scans the pods dir, sweeps half-created sandboxes and returns the rest.
std::vector<recovered_pod> recover_sandboxes(const runtime_options& opts);

/// Removes what start-up finds without a live pod, `live` being the uids
/// whose directories remain: address allocations and host veths
/// (pod_network::sweep) and mounts under the pods dir outside those
/// directories. recover_sandboxes() ends with it.
void sweep_orphans(const runtime_options& opts, const std::set<std::string>& live);

/// Where a pod's shared pieces live in its directory, besides the ones in
/// pod_dir.hpp.
namespace sandbox_files {
/// Bind-mounted UTS namespace (hostname), joined by every container.
inline std::filesystem::path uts_ns(const std::filesystem::path& d) { return d / "utsns"; }
/// Bind-mounted IPC namespace, joined by every container.
inline std::filesystem::path ipc_ns(const std::filesystem::path& d) { return d / "ipcns"; }
/// tmpfs (64 MiB, as Docker's default) bind-mounted on every container's /dev/shm.
inline std::filesystem::path shm(const std::filesystem::path& d) { return d / "shm"; }
/// hostname, hosts and resolv.conf, bind-mounted on every container's /etc/X.
inline std::filesystem::path etc(const std::filesystem::path& d) { return d / "etc"; }
}  // namespace sandbox_files

/// A pod's /etc/hosts: the kubelet's localhost lines and `pod_ip hostname`.
std::string render_hosts_file(const std::string& pod_ip, const std::string& hostname);

/// A pod's /etc/resolv.conf (see runtime_options::dns_nameservers).
/// `host_network` keeps the node's loopback nameservers.
std::string render_resolv_conf(const runtime_options& opts, bool host_network);

/// Every pod directory under the pods dir (complete or not).
std::vector<std::string> pod_uids_on_disk(const runtime_options& opts);

/// Mount points at or under `dir` in /proc/self/mountinfo, deepest first.
std::vector<std::filesystem::path> mounts_under(const std::filesystem::path& dir);

}  // namespace deckhand::runtime
