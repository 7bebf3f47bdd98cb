#pragma once

/// Pod volumes as the kubelet's volume plugins make them: emptyDir (a
/// directory of the pod, or a tmpfs for `medium: Memory`), hostPath (with
/// its `type` checks) and downwardAPI (files written atomically), and the
/// bind mounts that put them into containers (volumeMounts: readOnly,
/// subPath).
///
/// Layout, as the kubelet's: POD_DIR/volumes/kubernetes.io~empty-dir/NAME and
/// POD_DIR/volumes/kubernetes.io~downward-api/NAME. Everything lives under
/// the pod's directory, so removing the sandbox (which unmounts everything
/// under it, then deletes it) and the start-up orphan sweep remove volumes
/// too. A hostPath is only ever bind-mounted into containers, never on the
/// host, and never deleted.
///
/// Errors of the set-up are the kubelet's FailedMount event messages:
/// `MountVolume.SetUp failed for volume "NAME" : REASON`, e.g. REASON
/// `hostPath type check failed: /x is not a directory`.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/messages/model.hpp"
#include "deckhand/oci/bundle.hpp"
#include "deckhand/runtime/pod_env.hpp"

namespace deckhand::runtime {

/// The prefix of volume set-up errors (the kubelet's FailedMount message).
inline constexpr const char* mount_volume_error = "MountVolume.SetUp failed for volume ";

/// The directory of pod volume `v` under `pod_dir` (emptyDir, downwardAPI);
/// a hostPath's own path.
std::filesystem::path volume_path(const std::filesystem::path& pod_dir, const wire::volume& v);

/// Checks what needs no file system: every volume has exactly one supported
/// source (`errc::unsupported` naming the volume otherwise), names are unique,
/// emptyDir medium and sizeLimit, hostPath path and type, downwardAPI items
/// (relative paths without "..", one of fieldRef (pod metadata only) or
/// resourceFieldRef (with containerName), modes within 0777), and every
/// volumeMount of every container and init container (a defined volume, an
/// absolute mountPath used once, a relative subPath without ".."). Errors are
/// `errc::invalid`.
error validate_volumes(const wire::pod& p);

/// Kubernetes' hostPath type check (checkTypeInternal), creating the path for
/// DirectoryOrCreate (a directory, 0755, with its parents) and FileOrCreate
/// (an empty file, 0644; the parent must exist). Type "" checks nothing but,
/// like containerd, creates a missing path as a directory. Errors are
/// `hostPath type check failed: PATH is not a directory` (a file, a socket
/// file, a character device, a block device), `TYPE is an invalid volume
/// type`.
error check_host_path(const std::string& path, const std::string& type);

/// One file of a downwardAPI volume.
struct downward_file {
  std::string path;  ///< relative, may have directories
  std::string content;
  int mode = 0644;
};

/// The files of a downwardAPI volume: fieldRef values (labels and
/// annotations as format_map()), resourceFieldRef values, each with its
/// `mode`, else `defaultMode`, else 0644.
result<std::vector<downward_file>> downward_api_files(const wire::pod& p,
                                                      const wire::downward_api_volume_source& src,
                                                      const node_allocatable& node);

/// The kubelet's AtomicWriter: writes `files` into a fresh `..TIMESTAMP`
/// directory of `dir`, points the `..data` symlink at it with one rename, and
/// makes each top-level entry a symlink through `..data`. Readers never see
/// a half-written set.
error write_atomic_files(const std::filesystem::path& dir, const std::vector<downward_file>& files);

/// Host paths of a pod's volumes, by volume name.
using volume_paths = std::map<std::string, std::filesystem::path>;

/// Creates every volume of `p` under `pod_dir` (after validate_volumes()):
/// emptyDir directories (0777, as the kubelet), tmpfs mounts for
/// `medium: Memory` (`size=` sizeLimit when set), hostPath checks,
/// downwardAPI files. What it leaves on failure lives under `pod_dir`.
result<volume_paths> set_up_volumes(const wire::pod& p, const std::filesystem::path& pod_dir,
                                    const node_allocatable& node);

/// The bind mounts of container `c`'s volumeMounts, parents before children
/// (sorted by the depth of the mount path, stable). A subPath is created in
/// the volume when missing and must resolve inside it (no symlink out).
result<std::vector<oci::bind_mount>> container_volume_mounts(const wire::container& c,
                                                             const volume_paths& paths);

}  // namespace deckhand::runtime
