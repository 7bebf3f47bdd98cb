#pragma once

/// `deckhand exec POD [-n NS] [-c C] [-i] [--timeout D] -- CMD ARGS...`: runs a
/// command in a running container through the node's runtime
/// (wire::exec_request), prints its stdout and stderr, and exits with its exit
/// code, as `kubectl exec` does.

#include <chrono>
#include <string>
#include <vector>

#include "deckhand/cli/commands.hpp"

namespace deckhand::cli {

struct exec_options {
  node_options node;
  std::string pod;        ///< NAME or pod/NAME
  std::string container;  ///< empty: the pod's first
  std::vector<std::string> command;
  bool pass_stdin = false;               ///< send everything on `io.in` as the command's stdin
  std::chrono::milliseconds timeout{0};  ///< 0: none
};

/// Returns the command's exit code, or 1 when it could not run (the error is
/// printed kubectl-style).
int exec_command(const exec_options& opts, io_streams io);

}  // namespace deckhand::cli
