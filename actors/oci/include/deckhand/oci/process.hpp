#pragma once

/// Transitional: the process helpers moved to deckhand_common
/// (deckhand/common/process.hpp). These names keep code that still spells
/// them `oci::` compiling until it is switched over; new code uses
/// `deckhand::common` directly.

#include "deckhand/common/process.hpp"

namespace deckhand::oci {

using common::exit_status;
using common::find_program;
using common::kill_and_reap;
using common::make_pipe;
using common::open_fd;
using common::run_captured;
using common::run_options;
using common::run_output;
using common::set_child_subreaper;
using common::spawn;
using common::spawn_options;
using common::stdio_fds;
using common::unique_fd;
using common::wait_with_deadline;

}  // namespace deckhand::oci
