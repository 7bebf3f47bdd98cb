#pragma once

/// Applying an untrusted layer tarball to a root filesystem directory.
///
/// The unpacker never writes outside `root`: every path is resolved one
/// component at a time with `openat(O_NOFOLLOW)` from a descriptor of `root`.
/// A parent directory that is a symlink (planted by this or an earlier layer,
/// e.g. `bin -> usr/bin`) is resolved with `openat2(RESOLVE_IN_ROOT)`, which
/// treats `root` as `/` the way the container will, so neither `..`, absolute
/// names, nor symlinks can redirect a write outside `root`; the entry itself
/// is never followed. Entries it refuses make the whole layer fail.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "deckhand/common/result.hpp"

namespace deckhand::image {

/// Limits and switches for `unpack_layer`.
struct unpack_options {
  /// Refuse a layer whose uncompressed tar stream exceeds this many bytes.
  std::uint64_t max_uncompressed_size = std::uint64_t{4} << 30;
  /// Apply `.wh.` whiteouts (image layers) or treat them as plain files.
  bool whiteouts = true;
  /// Restore uid/gid from the archive (needs CAP_CHOWN).
  bool preserve_owner = true;
};

/// What `unpack_layer` saw.
struct layer_stats {
  std::string diff_id;  ///< `sha256:` of the uncompressed tar stream
  std::uint64_t uncompressed_size = 0;
  std::uint64_t entries = 0;
};

/// Applies the layer at `layer` (tar, or tar compressed with gzip or zstd) on
/// top of the existing directory `root`. Rejected with `errc::invalid`: `..`
/// components, absolute paths, writes through a dangling symlink or one that
/// does not resolve to a directory inside `root`, symlinks whose
/// relative target climbs above `root`, hardlinks to anything outside the
/// layer's view of `root`, char/block devices. `errc::too_large` past
/// `max_uncompressed_size`. After an error, `root` may hold part of the layer:
/// callers unpack into a scratch directory.
result<layer_stats> unpack_layer(const std::filesystem::path& layer,
                                 const std::filesystem::path& root,
                                 const unpack_options& opts = {});

/// The same for a layer held in memory.
result<layer_stats> unpack_layer(const void* data, std::size_t size,
                                 const std::filesystem::path& root,
                                 const unpack_options& opts = {});

}  // namespace deckhand::image
