#pragma once

/// What the runtime is told on its command line.

#include <filesystem>
#include <string>
#include <vector>

namespace deckhand::runtime {

struct runtime_options {
  std::filesystem::path data_dir;
  /// The OCI runtime binary (name in PATH or a path): runc or crun.
  std::string oci_runtime = "runc";
  /// deckhand-pod-supervisor; empty: next to /proc/self/exe.
  std::filesystem::path supervisor_bin;
  /// Appended to every supervisor's command line (e.g. back-off flags).
  std::vector<std::string> supervisor_args;
};

/// `supervisor_bin`, or deckhand-pod-supervisor in the directory of the
/// running executable.
std::filesystem::path supervisor_binary(const runtime_options& opts);

} // namespace deckhand::runtime
