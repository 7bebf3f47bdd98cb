#pragma once

/// Running the kernel tools the data planes drive (nft, iptables-restore,
/// conntrack) through deckhand_common's run_captured: an argv, never a shell; stdin from a pipe so
/// a whole rule set goes in as one transaction; stdout and stderr captured, so a failed transaction
/// reports the tool's own error text.

#include <chrono>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"

namespace deckhand::proxy {

struct command_output {
  int exit_code = -1;  ///< 128+signal if the tool was killed
  std::string out;
  std::string err;
};

/// Runs argv[0] (looked up in PATH) with `argv`, writing `input` to its stdin
/// and then closing it. Fails (as a value) only if the process cannot be
/// started or does not finish within `deadline` (it is then killed); a
/// non-zero exit is reported in `exit_code`.
result<command_output> run_command(const std::vector<std::string>& argv,
                                   const std::string& input = {},
                                   std::chrono::milliseconds deadline = std::chrono::seconds(60));

/// Like run_command, but a non-zero exit is an error carrying stderr.
result<command_output> run_checked(const std::vector<std::string>& argv,
                                   const std::string& input = {},
                                   std::chrono::milliseconds deadline = std::chrono::seconds(60));

/// True if `name` is an executable in PATH.
bool have_program(const std::string& name);

}  // namespace deckhand::proxy
