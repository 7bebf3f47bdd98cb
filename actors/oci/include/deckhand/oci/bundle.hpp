#pragma once

/// OCI runtime bundles: what a container is, written as `config.json`
/// (runtime-spec 1.0.2) for runc or crun.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"

namespace deckhand::oci {

/// A bind mount from the host into the container.
struct bind_mount {
  std::filesystem::path source;       ///< host path (file or directory)
  std::filesystem::path destination;  ///< absolute path inside the container
  bool readonly = false;
};

/// cgroup limits; unset fields are left to the runtime's defaults.
struct resource_limits {
  std::optional<std::int64_t> memory_limit_bytes;
  /// v1 semantics: memory plus swap (runc turns it into memory.swap.max =
  /// swap - limit on cgroup v2). Equal to the memory limit: no swap.
  std::optional<std::int64_t> memory_swap_bytes;
  std::optional<std::uint64_t> cpu_shares;   ///< cgroup v1 shares (2..262144)
  std::optional<std::int64_t> cpu_quota_us;  ///< per period; with cpu_period_us
  std::optional<std::uint64_t> cpu_period_us;
  std::optional<std::int64_t> pids_limit;
};

/// Which seccomp filter a container gets.
enum class seccomp_mode {
  unconfined,       ///< none (Kubernetes' default)
  runtime_default,  ///< runtime_default_seccomp() for the container's capabilities
  profile,          ///< `bundle_spec::seccomp_profile`, Docker/containerd JSON
};

/// Everything deckhand decides about one container's OCI config. Defaults
/// give an unprivileged-ish Docker-like container with new pid, ipc, uts,
/// mount and network namespaces.
struct bundle_spec {
  // process
  std::vector<std::string> args;  ///< argv; must not be empty
  /// KEY=VALUE entries. A default PATH is added when none is given, as Docker
  /// does for images whose config lacks one.
  std::vector<std::string> env;
  std::string cwd = "/";
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  std::optional<int> oom_score_adj;
  /// RLIMIT_NOFILE (soft and hard). Unset: 1048576, lowered to the caller's
  /// own hard limit when the capability bounding set lacks CAP_SYS_RESOURCE
  /// (as on VMs that withhold it), since runc could not raise it there.
  std::optional<std::uint64_t> nofile_limit;
  /// Off by default, as in Kubernetes (allowPrivilegeEscalation unset means
  /// true); runtime::container_bundle_spec turns it on for
  /// allowPrivilegeEscalation: false.
  bool no_new_privileges = false;
  /// Capability names, with or without the CAP_ prefix, any case. "ALL" in
  /// `cap_drop` starts from nothing; "ALL" in `cap_add` grants every
  /// capability. Applied to Docker's default set.
  std::vector<std::string> cap_add;
  std::vector<std::string> cap_drop;
  /// Kubernetes' privileged: every capability this process holds in its
  /// bounding set (cap_add/cap_drop ignored), no seccomp, every host device
  /// (as runc's HostDevices: /dev except pts, shm, mqueue, fd, console), a
  /// writable /sys, no masked or read-only /proc paths.
  bool privileged = false;
  seccomp_mode seccomp = seccomp_mode::unconfined;
  std::string seccomp_profile;  ///< for seccomp_mode::profile

  // root filesystem
  std::filesystem::path rootfs;  ///< absolute
  bool readonly_rootfs = false;

  std::string hostname;  ///< empty: not set

  // namespaces
  /// Join this network namespace (a bind-mounted nsfs file, see netns.hpp).
  /// Empty with `host_network == false` gives a fresh, empty one.
  std::filesystem::path netns_path;
  /// Share the host's network: no network namespace at all.
  bool host_network = false;
  /// Join existing IPC / UTS namespaces (a pod's shared ones) instead of
  /// creating new ones.
  std::filesystem::path ipc_ns_path;
  std::filesystem::path uts_ns_path;

  std::vector<bind_mount> mounts;  ///< added after the standard mounts

  /// linux.cgroupsPath; unset lets the runtime pick (/<container id>).
  std::optional<std::string> cgroups_path;
  resource_limits resources;

  /// config.json `annotations`, e.g. org.opencontainers.image.stopSignal
  /// (the image's StopSignal, which the pod supervisor sends first).
  std::map<std::string, std::string> annotations;
};

/// The annotation carrying the image's StopSignal ("SIGQUIT").
inline constexpr const char* stop_signal_annotation = "org.opencontainers.image.stopSignal";

/// Docker's default capability set, as "CAP_..." names.
const std::vector<std::string>& default_capabilities();

/// The capabilities the process of `spec` gets ("CAP_..." names): Docker's
/// default set with cap_add/cap_drop applied ("ALL" expanding to the
/// capabilities of this process's bounding set), or that whole bounding set
/// when privileged. `errc::invalid` for an unknown name.
result<std::vector<std::string>> effective_capabilities(const bundle_spec& spec);

/// Renders `spec` as config.json text. Fails with `errc::invalid` on a spec
/// runc would reject later with a worse message (empty args, relative
/// rootfs or mount destination, unknown capability, both netns_path and
/// host_network, a Localhost seccomp profile that is not one), and with
/// `errc::unsupported` for a cap_add outside this host's bounding set.
result<std::string> render_config(const bundle_spec& spec);

/// Creates `dir` if needed and writes `dir/config.json` atomically (temp file
/// plus rename).
result<void> write_bundle(const std::filesystem::path& dir, const bundle_spec& spec);

}  // namespace deckhand::oci
