#pragma once

/// OCI runtime bundles: what a container is, written as `config.json`
/// (runtime-spec 1.0.2) for runc or crun.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/oci/result_void.hpp"

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
  std::optional<std::uint64_t> cpu_shares;   ///< cgroup v1 shares (2..262144)
  std::optional<std::int64_t> cpu_quota_us;  ///< per period; with cpu_period_us
  std::optional<std::uint64_t> cpu_period_us;
  std::optional<std::int64_t> pids_limit;
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
  bool no_new_privileges = true;
  /// Capability names, with or without the CAP_ prefix, any case. "ALL" in
  /// `cap_drop` starts from nothing; "ALL" in `cap_add` grants every
  /// capability. Applied to Docker's default set.
  std::vector<std::string> cap_add;
  std::vector<std::string> cap_drop;

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
};

/// Docker's default capability set, as "CAP_..." names.
const std::vector<std::string>& default_capabilities();

/// Renders `spec` as config.json text. Fails with `errc::invalid` on a spec
/// runc would reject later with a worse message (empty args, relative
/// rootfs or mount destination, unknown capability, both netns_path and
/// host_network).
result<std::string> render_config(const bundle_spec& spec);

/// Creates `dir` if needed and writes `dir/config.json` atomically (temp file
/// plus rename).
result<void> write_bundle(const std::filesystem::path& dir, const bundle_spec& spec);

} // namespace deckhand::oci
