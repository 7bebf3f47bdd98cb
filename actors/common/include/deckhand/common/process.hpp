#pragma once

/// Child processes with explicit file descriptors and bounded waits.
///
/// Everything here is safe to call from a multi-threaded process: all memory
/// the child needs is prepared before fork(), and the child only makes
/// async-signal-safe system calls until execve().

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/common/unique_fd.hpp"

namespace deckhand::common {

/// A close-on-exec pipe: `first` is the read end, `second` the write end.
result<std::pair<unique_fd, unique_fd>> make_pipe();

/// open(2) with O_CLOEXEC added, as an owned descriptor.
result<unique_fd> open_fd(const std::filesystem::path& path, int flags, unsigned mode = 0644);

/// The descriptors a child gets as its stdin, stdout and stderr. -1 means
/// /dev/null. The caller keeps ownership; the child gets duplicates.
struct stdio_fds {
  int in = -1;
  int out = -1;
  int err = -1;
};

/// How a child ended, as waitpid() reported it.
struct exit_status {
  int raw = 0;

  bool exited() const;
  bool signaled() const;
  /// The exit code, or 128 + signal number for a child killed by a signal
  /// (the shell's and Kubernetes' convention: SIGKILL gives 137).
  int code() const;
  /// The terminating signal, or 0.
  int term_signal() const;
  /// "exited with 3" / "killed by signal 9".
  std::string describe() const;
};

/// Extra knobs for spawn(). The defaults suit most callers.
struct spawn_options {
  /// Put the child in a new process group of its own (pgid = pid), so that it
  /// and everything it forks can be killed together.
  bool new_process_group = false;
  /// Working directory of the child; empty keeps the caller's.
  std::filesystem::path cwd;
  /// Descriptors the child gets as 3, 4, ... (the caller keeps ownership),
  /// such as the write end of a pipe whose closing tells that it exited.
  std::vector<int> extra_fds;
};

/// Starts `argv[0]` (looked up in PATH when it has no '/') with exactly the
/// descriptors in `fds` as 0, 1 and 2 (and `opts.extra_fds` from 3 on) and
/// nothing else open. The child gets an
/// empty signal mask and default signal dispositions. `env` replaces the
/// environment; nullopt inherits the caller's. Fails (without leaving a child
/// behind) if the program cannot be executed.
result<pid_t> spawn(const std::vector<std::string>& argv, const stdio_fds& fds = {},
                    const std::optional<std::vector<std::string>>& env = std::nullopt,
                    const spawn_options& opts = {});

/// Waits for child `pid` to end, but not past `deadline`. Returns the exit
/// status (the child is reaped), or an `errc::unavailable` error when the
/// deadline passes first, in which case the child is left running and
/// unreaped. Works for any process that waitpid() can see, including
/// orphans re-parented to a subreaper.
result<exit_status> wait_with_deadline(pid_t pid, std::chrono::steady_clock::time_point deadline);

/// Same, with a timeout relative to now.
result<exit_status> wait_with_deadline(pid_t pid, std::chrono::milliseconds timeout);

/// Sends SIGKILL to `pid` (to its whole process group when `group`) and reaps
/// it. For cleaning up a child that overran its deadline.
void kill_and_reap(pid_t pid, bool group);

/// What run_captured() collected.
struct run_output {
  exit_status status;
  std::string out;
  std::string err;
  /// Output beyond `run_options::max_output` was dropped.
  bool truncated = false;
};

/// Options for run_captured().
struct run_options {
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
  std::optional<std::vector<std::string>> env;
  /// Output beyond this many bytes per stream is dropped.
  std::size_t max_output = 16u << 20;
  /// Written to the command's stdin, which is then closed; empty: stdin is
  /// /dev/null. A command that exits without reading it all is no error.
  std::string input;
};

/// Runs a short-lived command to completion with `opts.input` on its stdin and
/// stdout/stderr captured. The command runs in its own process group; if it
/// overruns `timeout` the whole group is killed and an `errc::unavailable`
/// error is returned. A non-zero exit is not an error here: inspect `status`.
result<run_output> run_captured(const std::vector<std::string>& argv, const run_options& opts = {});

/// Makes the calling process a child subreaper (PR_SET_CHILD_SUBREAPER):
/// orphaned descendants, such as a container's init once `runc run -d` has
/// exited, are re-parented to it and their exit status comes back through
/// waitpid(). Affects the whole process, not only the calling thread.
result<void> set_child_subreaper();

/// Resolves a program name the way execvp() would (PATH, then the usual
/// sbin directories root's tools live in). Names containing '/' are returned
/// unchanged.
result<std::string> find_program(const std::string& name);

}  // namespace deckhand::common
