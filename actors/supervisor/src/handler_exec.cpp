// The exec action: the runtime's `exec` run under a keeper process, its
// output collected through a pipe, its exit status through a pidfd.

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <sched.h>

#include "deckhand/common/process.hpp"
#include "handler_executor_impl.hpp"

extern char** environ;

namespace deckhand::supervisor {

namespace handler_detail {

namespace {

struct clone_args_v0 {
  uint64_t flags;
  uint64_t pidfd;
  uint64_t child_tid;
  uint64_t parent_tid;
  uint64_t exit_signal;
  uint64_t stack;
  uint64_t stack_size;
  uint64_t tls;
};

}  // namespace

/// Starts argv with stdout and stderr on `out_w`, under a "keeper": a clone
/// child (exit signal 0) that never execs, starts argv as its own child,
/// waits for it and exits with its code (128 + signal when killed). The
/// keeper's pid and pidfd are returned; its exit status is argv's.
///
/// Why not argv as the clone child itself: execve() resets a child's exit
/// signal to SIGCHLD (de_thread: "we have changed execution domain"), which
/// makes the runtime an ordinary child that the runner's waitpid(-1) (the
/// pod's subreaper, reaping whatever exits) reaps before this executor can:
/// its status was lost and every exec action "timed out". The keeper never
/// execs, so waitpid(-1) without __WALL never sees it; the runtime is the
/// keeper's child, so only the keeper reaps it.
///
/// The keeper puts itself in a new process group that the runtime (and the
/// command it execs) inherits: killing -pid ends them all.
result<std::pair<pid_t, common::unique_fd>> spawn_clone_child(const std::vector<std::string>& argv,
                                                              int out_w) {
  auto path = common::find_program(argv.at(0));
  if (!path)
    return path.err();
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0)
    return error::from_errno("open /dev/null");
  common::unique_fd devnull_fd(devnull);
  int pidfd = -1;
  clone_args_v0 ca{};
  ca.flags = CLONE_PIDFD;
  ca.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  ca.exit_signal = 0;
  long pid = ::syscall(SYS_clone3, &ca, sizeof ca);
  if (pid < 0)
    return error::from_errno("clone3");
  if (pid == 0) {
    // The keeper: a copy of a multi-threaded process, so system calls only
    // (vfork and execve included; no fork(), whose atfork handlers may
    // wait for locks held by threads that do not exist here).
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s)
      ::sigaction(s, &dfl, nullptr);
    ::setpgid(0, 0);
    if (::dup2(devnull, 0) < 0 || ::dup2(out_w, 1) < 0 || ::dup2(out_w, 2) < 0)
      ::_exit(127);
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    pid_t runtime = ::vfork();
    if (runtime < 0)
      ::_exit(127);
    if (runtime == 0) {
      ::execve(path->c_str(), args.data(), environ);
      ::_exit(127);
    }
    int st = 0;
    while (::waitpid(runtime, &st, 0) < 0) {
      if (errno != EINTR)
        ::_exit(127);
    }
    ::_exit(WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? (128 + WTERMSIG(st)) & 0xff : 127);
  }
  return std::make_pair(static_cast<pid_t>(pid), common::unique_fd(pidfd));
}

}  // namespace handler_detail

using namespace handler_detail;

void handler_executor::impl::begin_exec(op& o) {
  const auto& cmd = o.what.exec->command;
  if (cmd.empty())
    return;
  std::vector<std::string> argv{opts.runtime_binary, "--root", opts.runtime_root.string(), "exec",
                                o.target.runtime_id};
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  auto pipe = common::make_pipe();
  if (!pipe) {
    o.output = pipe.err().message;
    return;
  }
  auto child = spawn_clone_child(argv, pipe->second.get());
  if (!child) {
    o.output = child.err().message;
    return;
  }
  o.pid = child->first;
  o.pidfd = std::move(child->second);
  o.out = std::move(pipe->first);
  set_nonblocking(o.out.get());
  o.at = step::exec_running;
}

void handler_executor::impl::drain_output(op& o) {
  char buf[4096];
  while (o.out) {
    ssize_t n = ::read(o.out.get(), buf, sizeof buf);
    if (n > 0) {
      o.output.append(buf,
                      std::min<std::size_t>(static_cast<std::size_t>(n),
                                            max_output - std::min(max_output, o.output.size())));
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n == 0)
      o.out.reset();
    return;
  }
}

bool handler_executor::impl::advance_exec(op& o, handler_result& r) {
  drain_output(o);
  int st = 0;
  pid_t got = ::waitpid(o.pid, &st, __WALL | WNOHANG);
  if (got < 0 && errno != EINTR) {
    // Reaped by someone else (cannot happen to a keeper; see
    // spawn_clone_child): no verdict, and no spinning on a pidfd that stays
    // readable until the deadline.
    o.pid = -1;
    drain_output(o);
    r = unknown("exec: exit status lost: " + go_errno(errno));
    r.output = o.output;
    return true;
  }
  if (got != o.pid)
    return false;
  o.pid = -1;
  // What the command wrote before it ended; a background process that keeps
  // the pipe open does not hold the result back.
  drain_output(o);
  common::exit_status es{st};
  r.exit_code = es.code();
  r.output = o.output;
  r.message = o.output;
  r.outcome = r.exit_code == 0 ? handler_outcome::success : handler_outcome::failure;
  return true;
}

}  // namespace deckhand::supervisor
