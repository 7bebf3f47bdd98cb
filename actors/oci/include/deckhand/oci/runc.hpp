#pragma once

/// A driver for the runc command line (crun takes the same commands).
///
/// Every call runs the binary as a child with explicit descriptors and a
/// deadline; a runtime that hangs is killed (with its process group) and the
/// call fails with `errc::unavailable`. A failing runtime's own error text
/// becomes the error message.
///
/// Containers started with create()+start() or run_detached() are orphaned
/// when runc exits: a caller that has called set_child_subreaper() (see
/// deckhand/common/process.hpp) becomes their parent and collects their exit status with
/// waitpid().

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "deckhand/common/process.hpp"
#include "deckhand/common/result.hpp"

namespace deckhand::oci {

/// A container's lifecycle state as the runtime reports it.
enum class container_status { creating, created, running, paused, stopped, unknown };

const char* to_string(container_status s);

/// One entry of `runc state` / `runc list`.
struct container_state {
  std::string id;
  container_status status = container_status::unknown;
  pid_t pid = 0;  ///< init's pid; 0 once stopped
  std::filesystem::path bundle;
};

/// A command to run in a running container with `runc exec` (no terminal).
struct exec_options {
  std::vector<std::string> args;  ///< argv; must not be empty
  /// KEY=VALUE entries added to the container's own environment.
  std::vector<std::string> env;
  std::string cwd;         ///< empty: the container's working directory
  std::string stdin_data;  ///< written to the command's stdin, then closed
  /// Kills the command (and runc) after this long; 0: no limit.
  std::chrono::milliseconds timeout{0};
  /// Output beyond this many bytes per stream is read and dropped.
  std::size_t output_limit = 1u << 20;
};

/// How an exec ended.
struct exec_result {
  int exit_code = 0;  ///< the command's, or 128 + signal; 137 after a timeout
  std::string out;
  std::string err;
  bool timed_out = false;
  bool truncated = false;  ///< some output was dropped (output_limit)
};

class runc {
 public:
  /// `root` is the runtime's state directory (--root), created on first use;
  /// give each independent user its own. `binary` is a name looked up in
  /// PATH or a path ("runc", "crun"). Every invocation is killed after
  /// `timeout`.
  explicit runc(std::filesystem::path root, std::string binary = "runc",
                std::chrono::milliseconds timeout = std::chrono::seconds(30));

  /// `runc create`: sets the container up, its init waiting for start().
  /// The container inherits `stdio` (-1 is /dev/null): pass files or pipes
  /// that the caller drains, never pipes nobody reads. `pid_file`, when not
  /// empty, receives init's pid.
  result<void> create(const std::string& id, const std::filesystem::path& bundle,
                      const common::stdio_fds& stdio, const std::filesystem::path& pid_file = {});

  /// `runc start`: lets a created container's init exec the process.
  result<void> start(const std::string& id);

  /// `runc run -d`: create and start in one step.
  result<void> run_detached(const std::string& id, const std::filesystem::path& bundle,
                            const common::stdio_fds& stdio,
                            const std::filesystem::path& pid_file = {});

  /// `runc state`. `errc::not_found` for an unknown id.
  result<container_state> state(const std::string& id);

  /// `runc kill [--all] ID SIGNAL`.
  result<void> kill(const std::string& id, int signal, bool all = false);

  /// `runc delete [--force]`. Removing a container that does not exist
  /// succeeds, so cleanup can be repeated.
  result<void> remove(const std::string& id, bool force = false);

  /// `runc list`: every container under this root.
  result<std::vector<container_state>> list();

  /// `runc exec`: runs `opts.args` inside running container `id` and
  /// collects its output and exit code. A command that runs and fails is a
  /// result (non-zero exit_code); an error means it did not run: the
  /// container is unknown (`errc::not_found`) or not running
  /// (`errc::conflict`), or runc could not start the process (its message).
  /// The exec'd process is the runc child's own; the caller must not reap
  /// children with waitpid(-1) concurrently. The same function serves exec
  /// probes.
  result<exec_result> exec(const std::string& id, const exec_options& opts);

  const std::filesystem::path& root() const { return root_; }
  const std::string& binary() const { return binary_; }

 private:
  /// Runs `binary --root ROOT args...` with output captured.
  result<common::run_output> invoke(const std::vector<std::string>& args);
  /// Turns a failed invocation into an error carrying runc's words.
  error failure(const std::string& what, const common::run_output& out) const;
  /// create and run -d: runc's stdio belongs to the container, so its errors
  /// are read back from a --log file instead.
  result<void> launch(const std::string& verb, const std::string& id,
                      const std::filesystem::path& bundle, const common::stdio_fds& stdio,
                      const std::filesystem::path& pid_file);
  result<void> ensure_root();

  std::filesystem::path root_;
  std::string binary_;
  std::chrono::milliseconds timeout_;
};

}  // namespace deckhand::oci
