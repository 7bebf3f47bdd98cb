#include "deckhand/runtime/supervisor_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <thread>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/host/zygote.hpp"

extern char** environ;

namespace deckhand::runtime {

namespace fs = std::filesystem;

fs::path supervisor_binary(const runtime_options& opts) {
  if (!opts.supervisor_bin.empty())
    return opts.supervisor_bin;
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  if (ec)
    return "deckhand-pod-supervisor";
  return self.parent_path() / "deckhand-pod-supervisor";
}

result<pid_t> start_supervisor(const runtime_options& opts, const std::string& uid) {
  auto dir = pod_dir::root(opts.data_dir, uid);
  auto bin = supervisor_binary(opts);

  std::vector<std::string> args{bin.string(), "--data-dir",    opts.data_dir.string(), "--pod-uid",
                                uid,          "--oci-runtime", opts.oci_runtime};
  args.insert(args.end(), opts.supervisor_args.begin(), opts.supervisor_args.end());
  if (!opts.supervisor_zygote.empty()) {
    auto pid = host::zygote_spawn(opts.supervisor_zygote, pod_dir::supervisor_log(dir), args);
    if (pid) {
      if (auto err =
              fsutil::write_file_atomic(pod_dir::supervisor_pid(dir), std::to_string(*pid) + "\n",
                                        fsutil::durability::process_crash))
        log::get()->warn("msg=\"cannot record supervisor pid\" uid={} error=\"{}\"", uid,
                         err.message);
      return *pid;
    }
    if (pid.err().code != errc::unavailable)
      return std::move(pid).err();
    log::get()->warn("msg=\"supervisor zygote unavailable, exec'ing\" uid={} error=\"{}\"", uid,
                     pid.err().message);
  }
  // Everything the child touches is prepared before fork(): after it, only
  // async-signal-safe calls until execve().
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);

  int log_fd =
      ::open(pod_dir::supervisor_log(dir).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0)
    return error::from_errno("open " + pod_dir::supervisor_log(dir).string());
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    int e = errno;
    ::close(log_fd);
    return error::from_errno("open /dev/null", e);
  }
  // exec failure is reported through a close-on-exec pipe: EOF means execve
  // succeeded.
  int pfd[2];
  if (::pipe2(pfd, O_CLOEXEC) != 0) {
    int e = errno;
    ::close(log_fd);
    ::close(null_fd);
    return error::from_errno("pipe2", e);
  }

  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(log_fd);
    ::close(null_fd);
    ::close(pfd[0]);
    ::close(pfd[1]);
    return error::from_errno("fork", e);
  }
  if (pid == 0) {
    ::setsid();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s = 1; s < NSIG; ++s)
      signal(s, SIG_DFL);
    // Move the write end out of the way of 0..2 before the dup2s.
    int report = ::fcntl(pfd[1], F_DUPFD_CLOEXEC, 3);
    if (::dup2(null_fd, 0) < 0 || ::dup2(log_fd, 1) < 0 || ::dup2(log_fd, 2) < 0 || report < 0)
      _exit(127);
    ::syscall(SYS_close_range, 3u, static_cast<unsigned>(report) - 1, 0u);
    ::syscall(SYS_close_range, static_cast<unsigned>(report) + 1, ~0u, 0u);
    ::execve(argv[0], argv.data(), environ);
    int e = errno;
    [[maybe_unused]] auto n = ::write(report, &e, sizeof e);
    _exit(127);
  }
  ::close(pfd[1]);
  ::close(log_fd);
  ::close(null_fd);
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(pfd[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  ::close(pfd[0]);
  if (n > 0) {
    int st;
    ::waitpid(pid, &st, 0);
    return error::from_errno("exec " + bin.string(), child_errno);
  }
  if (auto err = fsutil::write_file_atomic(pod_dir::supervisor_pid(dir), std::to_string(pid) + "\n",
                                           fsutil::durability::process_crash))
    log::get()->warn("msg=\"cannot record supervisor pid\" uid={} error=\"{}\"", uid, err.message);
  return pid;
}

std::optional<pid_t> read_supervisor_pid(const fs::path& dir) {
  auto text = fsutil::read_file(pod_dir::supervisor_pid(dir), 64);
  if (!text)
    return std::nullopt;
  try {
    long v = std::stol(*text);
    if (v > 1 && v <= (1L << 22))
      return static_cast<pid_t>(v);
  } catch (...) {
  }
  return std::nullopt;
}

bool process_alive(pid_t pid) {
  if (pid <= 0 || (::kill(pid, 0) != 0 && errno == ESRCH))
    return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat))
    return false;
  // The state follows the command name in parentheses, which may itself
  // contain ") ".
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size())
    return false;
  char state = stat[close + 2];
  return state != 'Z' && state != 'X';
}

bool is_supervisor_of(pid_t pid, const std::string& uid) {
  if (!process_alive(pid))
    return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string needle = std::string("--pod-uid") + '\0' + uid + '\0';
  return cmdline.find(needle) != std::string::npos;
}

bool reap_if_exited(pid_t pid) {
  if (pid <= 0)
    return true;
  int st;
  pid_t r = ::waitpid(pid, &st, WNOHANG);
  if (r == pid)
    return true;
  if (r == 0)
    return false;
  return !process_alive(pid);
}

void terminate_supervisor(pid_t pid, const std::string& uid, std::chrono::milliseconds grace) {
  if (pid <= 0)
    return;
  if (!is_supervisor_of(pid, uid)) {
    reap_if_exited(pid);
    return;
  }
  auto wait_gone = [&](std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!reap_if_exited(pid)) {
      if (std::chrono::steady_clock::now() >= deadline)
        return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  };
  ::kill(pid, SIGTERM);
  if (wait_gone(grace))
    return;
  if (is_supervisor_of(pid, uid)) {
    log::get()->warn("msg=\"supervisor ignored SIGTERM, killing it\" uid={} pid={}", uid, pid);
    ::kill(pid, SIGKILL);
  }
  wait_gone(std::chrono::seconds(5));
}

}  // namespace deckhand::runtime
