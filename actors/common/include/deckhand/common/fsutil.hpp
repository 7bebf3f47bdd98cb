#pragma once

/// Small durable-file helpers used wherever state must survive SIGKILL.

#include <filesystem>
#include <string>
#include <string_view>

#include "deckhand/common/result.hpp"

namespace deckhand::fsutil {

/// What a write must survive.
enum class durability {
  /// A power loss or kernel crash: fsync of the file and of its directory.
  machine_crash,
  /// The writing process being killed at any moment: rename alone gives
  /// that. For node-local state that a machine crash makes moot anyway (the
  /// containers it describes are gone then too), at a fraction of the cost.
  process_crash,
};

/// Writes `data` to `path` atomically: temp file in the same directory
/// created with `mode`, (fsync), rename, (fsync of the directory). Readers see
/// the old content or the new, whole; a failure leaves no temp file behind.
/// Errors carry errno's text and the path.
error write_file_atomic(const std::filesystem::path& path, std::string_view data,
                        durability d = durability::machine_crash, unsigned mode = 0644);

/// Reads a whole file (up to `max_size` bytes).
result<std::string> read_file(const std::filesystem::path& path, std::size_t max_size = 64u << 20);

/// fsync of a directory, so that a rename or create inside it is durable.
error sync_dir(const std::filesystem::path& dir);

}  // namespace deckhand::fsutil
