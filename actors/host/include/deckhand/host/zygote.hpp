#pragma once

/// A fork server ("zygote") for processes started many times from the same
/// executable, such as one pod supervisor per pod.
///
/// Why: a freshly exec'd supervisor spends ~30 ms loading and relocating two
/// dozen shared libraries, and each copy keeps ~450 kB of relocated library
/// data private. A zygote does that work once; every child forked from it
/// starts in well under a millisecond and shares those pages copy-on-write,
/// so their proportional memory (PSS) is divided among all of them.
///
/// The zygote is single-threaded and must stay so: it forks, and only the
/// child creates threads (CAF, ZeroMQ). It listens on a SOCK_SEQPACKET unix
/// socket; one request per connection:
///
///   request  = log path NUL argv[0] NUL argv[1] NUL ...   (at most 64 KiB)
///   reply    = "pid <n>" | "error <text>"
///
/// The child starts a session of its own (a signal to the zygote's group
/// never reaches it), gets stdin from /dev/null and stdout/stderr appended to
/// the log path, default signal dispositions and an empty signal mask, and
/// then runs `entry(argc, argv)` with the requested argv and exits with its
/// value. Its /proc/PID/cmdline is rewritten to the requested argv (the zygote
/// is started with room for it), so tools and pid checks see what they would
/// see after an exec. The zygote reaps its children automatically and exits
/// when its parent dies.

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"

namespace deckhand::host {

/// Bytes of /proc/PID/cmdline a zygote's child can hold (the zygote's own
/// argv is padded to this size).
inline constexpr std::size_t zygote_cmdline_capacity = 4096;

/// The zygote's main loop, for an executable's main(): call it when argv is
/// `PROG --zygote SOCKET PADDING`. Never returns in a child (it exits with
/// entry's value); returns the zygote's exit code when it stops.
int run_zygote(int argc, char** argv, int (*entry)(int, char**));

/// True when argv asks for the zygote (argv[1] == "--zygote").
bool is_zygote_invocation(int argc, char** argv);

/// Starts the zygote of `program` listening on `socket_path`, as a child of
/// the calling thread that dies with it (PR_SET_PDEATHSIG): call it from the
/// main thread. Waits until the socket accepts connections (at most
/// `timeout`). Returns the zygote's pid.
result<pid_t> start_zygote(const std::filesystem::path& program,
                           const std::filesystem::path& socket_path,
                           std::chrono::milliseconds timeout = std::chrono::seconds(5));

/// Asks the zygote at `socket_path` to start `argv` (argv[0] is only a name)
/// with output to `log_path`. `errc::unavailable` when no zygote answers or
/// the argv does not fit its cmdline capacity: the caller falls back to
/// fork/exec.
result<pid_t> zygote_spawn(const std::filesystem::path& socket_path,
                           const std::filesystem::path& log_path,
                           const std::vector<std::string>& argv);

}  // namespace deckhand::host
