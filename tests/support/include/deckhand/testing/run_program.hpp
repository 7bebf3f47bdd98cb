#pragma once

// Running a program to completion from a test or a benchmark: the
// integration and conformance suites' node fixture and the node benchmarks
// share it. No Boost.Test here: the benchmarks are plain programs.

#include <chrono>
#include <string>
#include <vector>

namespace deckhand::testing {

/// A finished program: exit code (128 + signal when killed; -1 when it could
/// not be started) and what it wrote.
struct command_result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// Runs a program (looked up on PATH) to completion with a deadline,
/// capturing its output and feeding it `input`. The child gets its own
/// process group, killed with it at the deadline.
command_result run_program(const std::vector<std::string>& argv,
                           std::chrono::milliseconds deadline = std::chrono::seconds(60),
                           const std::string& input = {});

}  // namespace deckhand::testing
