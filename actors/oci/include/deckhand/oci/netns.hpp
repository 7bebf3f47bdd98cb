#pragma once

/// Pod network namespaces kept alive by a bind mount on a file, as
/// `ip netns add` does but at any path the caller picks.

#include <filesystem>

#include "deckhand/common/result.hpp"
#include "deckhand/oci/result_void.hpp"

namespace deckhand::oci {

/// Creates a new network namespace with `lo` up and bind-mounts it onto
/// `file` (created, with its parent directories, if missing). The namespace
/// is made in a short-lived forked child, so the calling (multi-threaded)
/// process never changes namespace. If `file` already holds a namespace this
/// succeeds without making a new one.
result<void> create_netns(const std::filesystem::path& file);

/// Unmounts the namespace at `file` and deletes the file. The namespace itself
/// goes away once no process and no other mount holds it. Succeeds if `file`
/// is already gone.
result<void> remove_netns(const std::filesystem::path& file);

/// True if `file` is a bind mount of a namespace (nsfs).
bool is_netns_mount(const std::filesystem::path& file);

} // namespace deckhand::oci
