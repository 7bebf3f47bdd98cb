#pragma once

/// overlayfs snapshots: one read-write layer over read-only image layers.

#include <filesystem>
#include <vector>

#include "deckhand/common/result.hpp"

namespace deckhand::oci {

/// Mounts overlayfs at `target` with `lower_dirs` read-only (the first entry is
/// the top-most layer, as in overlayfs' lowerdir=), `upper` receiving writes
/// and `work` as overlayfs' scratch directory (same filesystem as `upper`).
/// Creates `upper`, `work` and `target` if missing. Paths containing ':' or
/// ',' are rejected, since overlayfs' option syntax cannot carry them.
result<void> mount_overlay(const std::vector<std::filesystem::path>& lower_dirs,
                           const std::filesystem::path& upper, const std::filesystem::path& work,
                           const std::filesystem::path& target);

/// Unmounts `target`; a busy mount is detached lazily (MNT_DETACH) instead.
/// A path that is not mounted (or does not exist) succeeds, so cleanup can be
/// repeated.
result<void> unmount(const std::filesystem::path& target);

/// True if `path` is the root of a mount (bind mounts included). False for a
/// path that does not exist.
bool is_mountpoint(const std::filesystem::path& path);

}  // namespace deckhand::oci
