#pragma once

/// The process of a container: what runs (argv), with which environment,
/// working directory and user, computed from the Kubernetes container spec and
/// the image config the way the kubelet and containerd do it.

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/image/image_record.hpp"
#include "deckhand/messages/model.hpp"
#include "deckhand/messages/wire.hpp"
#include "deckhand/oci/bundle.hpp"
#include "deckhand/runtime/options.hpp"
#include "deckhand/runtime/pod_env.hpp"

namespace deckhand::runtime {

/// Everything the OCI `process` object needs from Kubernetes and the image.
struct container_process {
  std::vector<std::string> args;
  std::vector<std::string> env;  ///< KEY=value, image env first
  std::string cwd = "/";
  uid_t uid = 0;
  gid_t gid = 0;
  /// The image's `User` as written ("", "1000", "app:staff"), which
  /// runAsNonRoot checks and securityContext overrides.
  std::string image_user;
  /// The image's StopSignal ("SIGQUIT"), empty for the default.
  std::string stop_signal;
};

/// Node-wide settings for containers' security and limits (what kubelet
/// flags decide on Kubernetes).
struct container_options {
  /// Where `Localhost` seccomp profiles live (kubelet's --seccomp-profile-root,
  /// /var/lib/kubelet/seccomp); empty: Localhost profiles are refused.
  std::filesystem::path seccomp_dir;
  /// pids.max of each pod's cgroup (kubelet's --pod-max-pids); unset: none.
  std::optional<int64_t> pod_pids_limit;
};

/// The container's environment: the image's `KEY=value` entries, then the
/// container's resolved `env` (a name the image also sets is replaced in
/// place).
std::vector<std::string> container_env(const env_list& env, const image::image_config& img);

/// container_env() of the container's plain `env` values (see plain_env()).
std::vector<std::string> container_env(const wire::container& c, const image::image_config& img);

/// argv by Kubernetes' rules: `command` replaces ENTRYPOINT and `args` replaces
/// CMD; a `command` without `args` drops CMD. `$(VAR)` references expand
/// against the container's resolved `env` (not the image's). An empty result
/// is `errc::invalid`.
result<std::vector<std::string>>
container_args(const wire::container& c, const image::image_config& img, const env_list& env);

/// container_args() against the container's plain `env` values.
result<std::vector<std::string>> container_args(const wire::container& c,
                                                const image::image_config& img);

/// workingDir, else the image's WorkingDir, else "/".
std::string container_cwd(const wire::container& c, const image::image_config& img);

/// Resolves an image `User` (`uid`, `uid:gid`, `name`, `name:group`, empty for
/// root) to numbers, reading names from `rootfs`/etc/passwd and /etc/group.
/// A numeric uid without a group takes its primary group from /etc/passwd if
/// listed there, else 0. An unknown name is `errc::invalid`.
result<std::pair<uid_t, gid_t>> resolve_user(const std::string& user,
                                             const std::filesystem::path& rootfs);

/// All of the above, with `env` the container's resolved environment
/// (resolve_env()); null: plain_env().
result<container_process> make_container_process(const wire::container& c,
                                                 const image::image_config& img,
                                                 const std::filesystem::path& rootfs,
                                                 const env_list* env = nullptr);

/// A container's cgroup limits from its resources, with the kubelet's
/// formulas: cpu shares = max(2, milliCPU request * 1024 / 1000) (the request
/// defaults to the limit; neither gives 2); CFS quota = milliCPU limit *
/// 100000 / 1000 (at least 1000) per 100000 us period; memory limit (and
/// memory+swap, so no swap) = limits.memory. Quantities that do not parse or
/// are negative are `errc::invalid`.
result<oci::resource_limits> container_resource_limits(const wire::container& c);

/// The pod's own cgroup limits, as the kubelet's ResourceConfigForPod: cpu
/// shares from the summed cpu requests (2 for a BestEffort pod); the summed
/// cpu quota only when every container has a cpu limit, the summed memory
/// limit only when every container has a memory limit (Guaranteed pods, and
/// Burstable ones for the resources all containers limit); pids from
/// `opts.pod_pids_limit`.
result<oci::resource_limits> pod_resource_limits(const wire::pod& p,
                                                 const container_options& opts = {});

/// Creates pod `p`'s cgroup (oci::pod_cgroup_path) with pod_resource_limits()
/// before its containers are created below it.
error setup_pod_cgroup(const wire::pod& p, const container_options& opts = {});

/// The OCI bundle spec of container `c` of pod `p` from its process, before
/// the sandbox adds what the pod shares (network, IPC, UTS namespaces and the
/// pod's files). `rootfs` is the container's mounted root filesystem.
///
/// Applies the container's and the pod's securityContext as the kubelet and
/// containerd do: runAsUser/runAsGroup (container over pod over image; a
/// runAsUser without runAsGroup takes the primary group of /etc/passwd, else
/// 0), the image's /etc/group memberships, supplementalGroups and fsGroup as
/// additional gids, runAsNonRoot (refused for uid 0 or a non-numeric image
/// user, with the kubelet's messages), readOnlyRootFilesystem,
/// allowPrivilegeEscalation: false as no_new_privileges, capabilities,
/// privileged, seccompProfile (container over pod; RuntimeDefault, Localhost
/// from `opts.seccomp_dir`, else Unconfined); resources as
/// container_resource_limits(); cgroupsPath oci::container_cgroup_path().
/// Fails with `errc::invalid` (or `errc::not_found` for a missing Localhost
/// profile) where Kubernetes reports CreateContainerConfigError.
result<oci::bundle_spec> container_bundle_spec(const wire::pod& p, const wire::container& c,
                                               const container_process& proc,
                                               const std::filesystem::path& rootfs,
                                               const container_options& opts = {});

/// Usage of the running containers of every sandbox on the node (of pod
/// `uid` only when not empty), read from their cgroups. Containers whose
/// cgroup is gone are left out. Blocking (file reads): call off the
/// cooperative actors.
std::vector<wire::container_stats> collect_container_stats(const runtime_options& opts,
                                                           const std::string& uid);

}  // namespace deckhand::runtime
