#pragma once

/// `deckhand up --demo`: once the node answers, make sure the demo image is in
/// the store (built locally from the host's busybox, since no registry can be
/// reached) and apply the demo pod.

#include <atomic>
#include <filesystem>

#include "deckhand/common/result.hpp"

namespace deckhand::cli {

/// Builds the demo image as an OCI layout at DATA/demo-image (replacing any
/// previous one) from a busybox root filesystem made in a temporary
/// directory. Returns the layout directory.
result<std::filesystem::path> build_demo_layout(const std::filesystem::path& data_dir);

/// Waits for the API server URL file and the runtime, imports the demo image
/// through the runtime unless it has it, then applies the demo manifest.
/// Progress and failures are logged; returns early once `cancel` is set.
/// True once the demo pod is applied.
bool run_demo(const std::filesystem::path& data_dir, const std::atomic<bool>& cancel);

}  // namespace deckhand::cli
