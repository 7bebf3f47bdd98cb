#include "deckhand/common/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <optional>

extern char** environ;

namespace deckhand::common {

namespace {

using clock = std::chrono::steady_clock;

/// A pidfd becomes readable when the process exits, which lets a bounded wait
/// sleep in poll() instead of spinning on waitpid(WNOHANG).
unique_fd open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0)
    return unique_fd(static_cast<int>(fd));
#else
  (void)pid;
#endif
  return {};
}

int ms_until(clock::time_point deadline) {
  auto left = deadline - clock::now();
  if (left <= clock::duration::zero())
    return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<long long>(ms, 60'000));
}

/// Closes every descriptor >= `from` except `keep`. Called in the child.
void close_from(int from, int keep) {
  auto close_range_sys = [](unsigned lo, unsigned hi) -> int {
#ifdef SYS_close_range
    return static_cast<int>(::syscall(SYS_close_range, lo, hi, 0));
#else
    (void)lo;
    (void)hi;
    errno = ENOSYS;
    return -1;
#endif
  };
  bool ok = true;
  if (keep > from)
    ok = close_range_sys(from, keep - 1) == 0;
  if (ok)
    ok = close_range_sys(keep + 1, ~0u) == 0;
  if (ok)
    return;
  struct rlimit rl {};
  int max = 65536;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    max = static_cast<int>(std::min<rlim_t>(rl.rlim_cur, 1u << 20));
  for (int fd = from; fd < max; ++fd)
    if (fd != keep)
      ::close(fd);
}

/// What the child reports through the exec-error pipe when execve fails.
struct child_failure {
  int stage;
  int err;
};

enum child_stage : int { stage_dup = 1, stage_chdir = 2, stage_exec = 3, stage_pgid = 4 };

const char* stage_name(int stage) {
  switch (stage) {
  case stage_dup: return "dup2";
  case stage_chdir: return "chdir";
  case stage_exec: return "execve";
  case stage_pgid: return "setpgid";
  }
  return "child setup";
}

[[noreturn]] void child_fail(int report_fd, int stage) {
  child_failure f{stage, errno};
  ssize_t n;
  do {
    n = ::write(report_fd, &f, sizeof f);
  } while (n < 0 && errno == EINTR);
  ::_exit(127);
}

/// Blocks SIGPIPE in the calling thread while a command's stdin is fed: a
/// command that exits without reading it must not kill the caller (write()
/// fails with EPIPE instead). A SIGPIPE that became pending meanwhile is
/// consumed before the old mask returns.
class sigpipe_blocker {
 public:
  sigpipe_blocker() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~sigpipe_blocker() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    struct timespec zero {
      0, 0
    };
    while (::sigtimedwait(&set, nullptr, &zero) == SIGPIPE) {
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  sigpipe_blocker(const sigpipe_blocker&) = delete;
  sigpipe_blocker& operator=(const sigpipe_blocker&) = delete;

 private:
  sigset_t old_{};
};

}  // namespace

result<std::pair<unique_fd, unique_fd>> make_pipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0)
    return error::from_errno("pipe2");
  return std::pair<unique_fd, unique_fd>(unique_fd(p[0]), unique_fd(p[1]));
}

result<unique_fd> open_fd(const std::filesystem::path& path, int flags, unsigned mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0)
    return error::from_errno("open " + path.string());
  return unique_fd(fd);
}

bool exit_status::exited() const { return WIFEXITED(raw); }
bool exit_status::signaled() const { return WIFSIGNALED(raw); }
int exit_status::term_signal() const { return WIFSIGNALED(raw) ? WTERMSIG(raw) : 0; }
int exit_status::code() const {
  if (WIFEXITED(raw))
    return WEXITSTATUS(raw);
  if (WIFSIGNALED(raw))
    return 128 + WTERMSIG(raw);
  return -1;
}
std::string exit_status::describe() const {
  if (exited())
    return "exited with " + std::to_string(code());
  if (signaled())
    return "killed by signal " + std::to_string(term_signal());
  return "wait status " + std::to_string(raw);
}

result<std::string> find_program(const std::string& name) {
  if (name.empty())
    return error{errc::invalid, "empty program name"};
  if (name.find('/') != std::string::npos)
    return name;
  std::string dirs;
  if (const char* p = std::getenv("PATH"); p && *p)
    dirs = p;
  // Root's tools (runc, ip) live in sbin, which a non-login PATH may lack.
  dirs += ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    auto end = dirs.find(':', start);
    if (end == std::string::npos)
      end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    start = end + 1;
    if (dir.empty())
      continue;
    std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return error{errc::not_found, "program not found in PATH: " + name};
}

result<pid_t> spawn(const std::vector<std::string>& argv, const stdio_fds& fds,
                    const std::optional<std::vector<std::string>>& env, const spawn_options& opts) {
  if (argv.empty())
    return error{errc::invalid, "spawn: empty argv"};
  auto path = find_program(argv[0]);
  if (!path)
    return path.err();

  // Everything the child touches is built here, before fork().
  std::vector<char*> c_argv;
  c_argv.reserve(argv.size() + 1);
  for (auto& a : argv)
    c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  std::vector<char*> c_env;
  char** envp = environ;
  if (env) {
    c_env.reserve(env->size() + 1);
    for (auto& e : *env)
      c_env.push_back(const_cast<char*>(e.c_str()));
    c_env.push_back(nullptr);
    envp = c_env.data();
  }
  unique_fd dev_null;
  if (fds.in < 0 || fds.out < 0 || fds.err < 0) {
    auto dn = open_fd("/dev/null", O_RDWR);
    if (!dn)
      return dn.err();
    dev_null = std::move(*dn);
  }
  std::vector<int> src{fds.in >= 0 ? fds.in : dev_null.get(),
                       fds.out >= 0 ? fds.out : dev_null.get(),
                       fds.err >= 0 ? fds.err : dev_null.get()};
  src.insert(src.end(), opts.extra_fds.begin(), opts.extra_fds.end());
  // Where the sources are moved first, above every target slot, before any
  // dup2: a source that is itself a target is then not clobbered.
  std::vector<int> high(src.size(), -1);
  const int first_free = static_cast<int>(src.size());
  auto report = make_pipe();
  if (!report)
    return report.err();
  const int report_w = report->second.get();
  const std::string cwd = opts.cwd.string();
  const bool new_group = opts.new_process_group;
  const std::string& exe = *path;
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigset_t empty_mask;
  sigemptyset(&empty_mask);

  pid_t pid = ::fork();
  if (pid < 0)
    return error::from_errno("fork");
  if (pid == 0) {
    // Child: async-signal-safe calls only from here to execve.
    int rep = ::fcntl(report_w, F_DUPFD_CLOEXEC, first_free);
    if (rep < 0)
      ::_exit(127);
    if (new_group && ::setpgid(0, 0) != 0)
      child_fail(rep, stage_pgid);
    for (int sig = 1; sig < NSIG; ++sig)
      if (sig != SIGKILL && sig != SIGSTOP)
        ::sigaction(sig, &dfl, nullptr);
    ::sigprocmask(SIG_SETMASK, &empty_mask, nullptr);
    for (std::size_t i = 0; i < src.size(); ++i) {
      high[i] = ::fcntl(src[i], F_DUPFD_CLOEXEC, first_free);
      if (high[i] < 0)
        child_fail(rep, stage_dup);
    }
    for (std::size_t i = 0; i < src.size(); ++i)
      if (::dup2(high[i], static_cast<int>(i)) < 0)
        child_fail(rep, stage_dup);
    close_from(first_free, rep);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0)
      child_fail(rep, stage_chdir);
    ::execve(exe.c_str(), c_argv.data(), envp);
    child_fail(rep, stage_exec);
  }

  report->second.reset();
  child_failure f{};
  ssize_t n;
  do {
    n = ::read(report->first.get(), &f, sizeof f);
  } while (n < 0 && errno == EINTR);
  if (n == 0)
    return pid;  // exec succeeded: the close-on-exec pipe closed
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (n == static_cast<ssize_t>(sizeof f))
    return error::from_errno(std::string("spawn ") + exe + ": " + stage_name(f.stage), f.err);
  return error{errc::io, "spawn " + exe + ": child setup failed"};
}

result<exit_status> wait_with_deadline(pid_t pid, clock::time_point deadline) {
  unique_fd pidfd = open_pidfd(pid);
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid)
      return exit_status{st};
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return error::from_errno("waitpid " + std::to_string(pid));
    }
    int wait_ms = ms_until(deadline);
    if (wait_ms == 0)
      return error{errc::unavailable, "deadline exceeded waiting for pid " + std::to_string(pid)};
    if (pidfd) {
      struct pollfd p {
        pidfd.get(), POLLIN, 0
      };
      ::poll(&p, 1, wait_ms);
    } else {
      ::poll(nullptr, 0, std::min(wait_ms, 10));
    }
  }
}

result<exit_status> wait_with_deadline(pid_t pid, std::chrono::milliseconds timeout) {
  return wait_with_deadline(pid, clock::now() + timeout);
}

void kill_and_reap(pid_t pid, bool group) {
  if (pid <= 0)
    return;
  if (group)
    ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
}

result<run_output> run_captured(const std::vector<std::string>& argv, const run_options& opts) {
  std::optional<std::pair<unique_fd, unique_fd>> in_pipe;
  if (!opts.input.empty()) {
    auto p = make_pipe();
    if (!p)
      return p.err();
    in_pipe = std::move(*p);
  }
  auto out_pipe = make_pipe();
  if (!out_pipe)
    return out_pipe.err();
  auto err_pipe = make_pipe();
  if (!err_pipe)
    return err_pipe.err();
  const auto deadline = clock::now() + opts.timeout;
  spawn_options so;
  so.new_process_group = true;
  auto pid = spawn(argv,
                   stdio_fds{in_pipe ? in_pipe->first.get() : -1, out_pipe->second.get(),
                             err_pipe->second.get()},
                   opts.env, so);
  if (!pid)
    return pid.err();
  unique_fd in_w;
  if (in_pipe) {
    in_pipe->first.reset();
    in_w = std::move(in_pipe->second);
  }
  out_pipe->second.reset();
  err_pipe->second.reset();
  for (auto* fd : {&in_w, &out_pipe->first, &err_pipe->first})
    if (*fd)
      ::fcntl(fd->get(), F_SETFL, ::fcntl(fd->get(), F_GETFL) | O_NONBLOCK);
  std::optional<sigpipe_blocker> no_sigpipe;
  if (in_w)
    no_sigpipe.emplace();

  run_output res;
  std::array<unique_fd*, 2> readers{&out_pipe->first, &err_pipe->first};
  std::array<std::string*, 2> sinks{&res.out, &res.err};
  // Reads what is available; closes the reader at EOF.
  auto drain = [&](std::size_t i) {
    char buf[8192];
    for (;;) {
      ssize_t n = ::read(readers[i]->get(), buf, sizeof buf);
      if (n > 0) {
        std::size_t room = opts.max_output - std::min(opts.max_output, sinks[i]->size());
        if (static_cast<std::size_t>(n) > room)
          res.truncated = true;
        sinks[i]->append(buf, std::min<std::size_t>(room, static_cast<std::size_t>(n)));
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n == 0)
        readers[i]->reset();
      return;
    }
  };
  // Writes what the pipe takes; closes stdin once all is written or the
  // command stopped reading.
  std::size_t fed = 0;
  auto feed = [&] {
    while (in_w && fed < opts.input.size()) {
      ssize_t n = ::write(in_w.get(), opts.input.data() + fed, opts.input.size() - fed);
      if (n > 0) {
        fed += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        if (n < 0 && errno != EAGAIN)
          in_w.reset();
        return;
      }
    }
    in_w.reset();
  };

  unique_fd pidfd = open_pidfd(*pid);
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(*pid, &st, WNOHANG);
    if (r == *pid) {
      res.status = exit_status{st};
      // The child is gone; whatever it wrote is in the pipes already. A
      // grandchild holding the write end must not keep us here.
      for (std::size_t i = 0; i < readers.size(); ++i)
        if (*readers[i])
          drain(i);
      return res;
    }
    if (r < 0 && errno != EINTR)
      return error::from_errno("waitpid " + std::to_string(*pid));
    int wait_ms = ms_until(deadline);
    if (wait_ms == 0) {
      kill_and_reap(*pid, true);
      std::string msg = argv[0] + " did not finish within " + std::to_string(opts.timeout.count()) +
                        " ms; killed";
      return error{errc::unavailable, msg};
    }
    std::array<struct pollfd, 4> pfds{};
    std::array<std::size_t, 4> which{};
    nfds_t n = 0;
    for (std::size_t i = 0; i < readers.size(); ++i)
      if (*readers[i]) {
        pfds[n] = {readers[i]->get(), POLLIN, 0};
        which[n++] = i;
      }
    if (in_w) {
      pfds[n] = {in_w.get(), POLLOUT, 0};
      which[n++] = readers.size();
    }
    nfds_t n_fds = n;
    if (pidfd)
      pfds[n++] = {pidfd.get(), POLLIN, 0};
    else
      wait_ms = std::min(wait_ms, 10);
    if (::poll(pfds.data(), n, wait_ms) > 0)
      for (nfds_t k = 0; k < n_fds; ++k) {
        if (pfds[k].revents == 0)
          continue;
        if (which[k] < readers.size())
          drain(which[k]);
        else
          feed();
      }
  }
}

result<void> set_child_subreaper() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
    return error::from_errno("prctl(PR_SET_CHILD_SUBREAPER)");
  return {};
}

}  // namespace deckhand::common
