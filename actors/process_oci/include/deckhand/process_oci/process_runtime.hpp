#pragma once

/// The `process` back-end: an OCI-runtime-compatible command line
/// (`deckhand-process-oci`) that runs a bundle's `process.args` as a plain
/// host process, with no privileges.
///
/// It is a host-process container, in the spirit of Windows HostProcess
/// containers: no namespaces, no mounts, no cgroups, no chroot, no
/// capabilities or seccomp. `root.path` is ignored; the command runs on the
/// host's filesystem, in `process.cwd` when that directory exists on the host
/// and in the bundle directory otherwise, with exactly `process.env` as its
/// environment. What it honours: `process.args`, `env`, `cwd`, `user` (uid,
/// gid, additionalGids: only when running as root; umask always),
/// `rlimits` (best effort: a hard limit above the caller's own is lowered to
/// it), `noNewPrivileges`, `oomScoreAdj` (best effort). A terminal is refused.
///
/// It speaks the subset of runc's command line that deckhand's runc driver
/// (runc.hpp) uses, with runc's semantics: create (the process waits, before
/// exec, on `ROOT/ID/exec.fifo` until start), start, run [-d], state, kill
/// [--all], delete [--force], list, exec. Each container is a session: `kill
/// --all` and delete signal every process of the session, which is as far as
/// a container reaches without cgroups (a process that calls setsid() itself
/// escapes it; exec'd processes are not part of it).
///
/// Like `runc create`, create exits once the process is set up, so the
/// process is re-parented to the caller's subreaper, which collects its exit
/// status with waitpid(). Its stdin, stdout and stderr are the ones the
/// runtime was started with.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/common/signals.hpp"

namespace deckhand::process_oci {

/// One `process.rlimits` entry.
struct host_rlimit {
  std::string type;  ///< "RLIMIT_NOFILE"
  int resource = 0;  ///< RLIMIT_NOFILE
  std::uint64_t soft = 0;
  std::uint64_t hard = 0;
};

/// What the process back-end takes from a bundle's config.json.
struct host_process_spec {
  std::vector<std::string> args;  ///< never empty
  std::vector<std::string> env;   ///< KEY=VALUE
  std::string cwd;                ///< process.cwd as written
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  std::optional<mode_t> umask;
  std::vector<host_rlimit> rlimits;
  bool no_new_privileges = false;
  std::optional<int> oom_score_adj;
  /// root.path resolved against the bundle; reported by `state`, never used.
  std::filesystem::path rootfs;
  std::map<std::string, std::string> annotations;
};

/// Parses config.json text of the bundle in directory `bundle`. Errors
/// (`errc::invalid`) name the offending field: not JSON, no process, empty
/// or non-string args, a terminal, an unknown rlimit, a mistyped field.
result<host_process_spec> parse_host_process_spec(const std::string& config_json,
                                                  const std::filesystem::path& bundle);

/// Reads and parses `bundle/config.json`.
result<host_process_spec> load_host_process_spec(const std::filesystem::path& bundle);

/// The directory the process runs in: `spec.cwd` when it is an absolute path
/// of a directory on the host, else the bundle directory.
std::filesystem::path host_working_dir(const host_process_spec& spec,
                                       const std::filesystem::path& bundle);

/// A signal given the way runc's kill accepts it: "KILL", "SIGKILL", "kill",
/// "9". `errc::invalid` otherwise.
using common::parse_signal;

/// Whether `id` can name a container: letters, digits and `_+.-`, not "."
/// or "..", at most 1024 characters (so never a path).
bool valid_container_id(std::string_view id);

/// The state directory used without --root: /run/deckhand-process-oci for
/// root, $XDG_RUNTIME_DIR/deckhand-process-oci or
/// /tmp/deckhand-process-oci-UID otherwise (runc's own rule, other name).
std::filesystem::path default_process_runtime_root();

/// The whole command line of deckhand-process-oci; returns the exit code.
/// Must be called from a single-threaded process (it forks).
int process_runtime_main(int argc, char** argv);

}  // namespace deckhand::process_oci
