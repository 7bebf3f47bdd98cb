#pragma once

/// deckhand-runtime's command line: every flag that fills runtime_options.

#include <string>

#include <CLI/CLI.hpp>

#include "deckhand/common/result.hpp"
#include "deckhand/runtime/options.hpp"

namespace deckhand::runtime {

/// Flags read as text first and checked once parsing is done.
struct runtime_flags {
  /// --image-gc-period, a duration (parse_duration).
  std::string image_gc_period = "5m";
  /// --cleanup-all: remove every pod and exit.
  bool cleanup_all = false;
};

/// Adds the runtime's flags to `app` (besides host::add_common_options).
void add_runtime_options(CLI::App& app, runtime_options& opts, runtime_flags& flags);

/// After parsing: the checks across flags, and `flags` into `opts`.
/// A bad value is `errc::invalid`, its message naming the flag.
error finish_runtime_options(runtime_options& opts, const runtime_flags& flags);

}  // namespace deckhand::runtime
