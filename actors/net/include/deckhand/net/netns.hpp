#pragma once

/// Pod namespaces (network, UTS, IPC) kept alive by a bind mount on a file,
/// as `ip netns add` does but at any path the caller picks, so that every
/// container of a pod can join them.

#include <filesystem>
#include <string>

#include "deckhand/common/result.hpp"

namespace deckhand::net {

/// Where a pod's shared namespaces are bind-mounted. An empty path skips
/// that namespace.
struct namespace_files {
  std::filesystem::path net;
  std::filesystem::path uts;
  std::filesystem::path ipc;
};

/// Creates a new namespace for every non-empty path of `files` and
/// bind-mounts it there (files and parent directories are created as
/// needed): the network namespace with `lo` up, the UTS namespace with
/// `hostname` (when not empty). A path that already holds a namespace is kept
/// as it is. The namespaces are made by a short-lived thread (unshare() of
/// these three moves only the calling thread), so no thread of the caller
/// ever changes namespace. On failure nothing new is left behind.
result<void> create_namespaces(const namespace_files& files, const std::string& hostname = {});

/// A network namespace only: `create_namespaces({file})`.
result<void> create_netns(const std::filesystem::path& file);

/// Unmounts the namespace at `file` and deletes the file. The namespace itself
/// goes away once no process and no other mount holds it. Succeeds if `file`
/// is already gone. Works for any bind-mounted namespace file, not only
/// network ones.
result<void> remove_netns(const std::filesystem::path& file);

/// True if `file` is a bind mount of a namespace (nsfs).
bool is_netns_mount(const std::filesystem::path& file);

}  // namespace deckhand::net
