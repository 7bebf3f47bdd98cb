#pragma once

/// The process of a container: what runs (argv), with which environment,
/// working directory and user, computed from the Kubernetes container spec and
/// the image config the way the kubelet and containerd do it.

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/image/image_record.hpp"
#include "deckhand/messages/model.hpp"
#include "deckhand/oci/bundle.hpp"

namespace deckhand::runtime {

/// Everything the OCI `process` object needs from Kubernetes and the image.
struct container_process {
  std::vector<std::string> args;
  std::vector<std::string> env;  ///< KEY=value, image env first
  std::string cwd = "/";
  uid_t uid = 0;
  gid_t gid = 0;
};

/// Kubernetes' `$(VAR)` expansion: `$(NAME)` becomes the value of NAME when it
/// is in `vars` and stays as written otherwise; `$$` is an escaped `$`.
std::string expand_references(const std::string& in,
                              const std::map<std::string, std::string>& vars);

/// The container's environment: the image's `KEY=value` entries, then the
/// container's `env` (a name the image also sets is replaced in place). Values
/// of the container's entries expand `$(VAR)` against the entries before them.
std::vector<std::string> container_env(const wire::container& c,
                                       const image::image_config& img);

/// argv by Kubernetes' rules: `command` replaces ENTRYPOINT and `args` replaces
/// CMD; a `command` without `args` drops CMD. `$(VAR)` references expand
/// against the container's own `env`. An empty result is `errc::invalid`.
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

/// All of the above.
result<container_process> make_container_process(const wire::container& c,
                                                 const image::image_config& img,
                                                 const std::filesystem::path& rootfs);

/// The OCI bundle spec of container `c` of pod `p` from its process, before
/// the sandbox adds what the pod shares (network, IPC, UTS namespaces and the
/// pod's files). `rootfs` is the container's mounted root filesystem.
oci::bundle_spec container_bundle_spec(const wire::pod& p, const wire::container& c,
                                       const container_process& proc,
                                       const std::filesystem::path& rootfs);

} // namespace deckhand::runtime
