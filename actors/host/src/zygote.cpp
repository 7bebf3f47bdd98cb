#include "deckhand/host/zygote.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

extern char** environ;

namespace deckhand::host {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t max_request = 64 * 1024;

bool make_address(const fs::path& path, sockaddr_un& addr) {
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  auto s = path.string();
  if (s.size() >= sizeof addr.sun_path)
    return false;
  std::memcpy(addr.sun_path, s.c_str(), s.size() + 1);
  return true;
}

void reply(int conn, const std::string& text) {
  [[maybe_unused]] auto n = ::send(conn, text.data(), text.size(), MSG_NOSIGNAL);
}

/// The child's side of a spawn: never returns.
[[noreturn]] void become_child(char* area, std::size_t area_len,
                               const std::vector<std::string>& args, int log_fd, int null_fd,
                               int (*entry)(int, char**)) {
  ::setsid();
  for (int s = 1; s < NSIG; ++s)
    ::signal(s, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (::dup2(null_fd, 0) < 0 || ::dup2(log_fd, 1) < 0 || ::dup2(log_fd, 2) < 0)
    ::_exit(127);
  ::syscall(SYS_close_range, 3u, ~0u, 0u);
  // The new argv goes where the zygote's was, so /proc/PID/cmdline shows it.
  std::memset(area, 0, area_len);
  std::vector<char*> argv;
  char* p = area;
  for (const auto& a : args) {
    std::memcpy(p, a.c_str(), a.size() + 1);
    argv.push_back(p);
    p += a.size() + 1;
  }
  argv.push_back(nullptr);
  std::exit(entry(static_cast<int>(args.size()), argv.data()));
}

}  // namespace

bool is_zygote_invocation(int argc, char** argv) {
  return argc >= 2 && std::strcmp(argv[1], "--zygote") == 0;
}

int run_zygote(int argc, char** argv, int (*entry)(int, char**)) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s --zygote SOCKET PADDING\n", argv[0]);
    return 2;
  }
  // The cmdline area: the kernel lays argv out contiguously.
  char* area = argv[0];
  char* end = argv[argc - 1] + std::strlen(argv[argc - 1]) + 1;
  std::size_t area_len = static_cast<std::size_t>(end - area);
  fs::path socket_path = argv[2];
  // LD_BIND_NOW made the loader resolve every symbol here, once; children
  // inherit the result and need not pass it on to what they run.
  ::unsetenv("LD_BIND_NOW");
  // Children are reaped by the kernel; each child resets this first thing.
  ::signal(SIGCHLD, SIG_IGN);
  if (::getppid() == 1)
    return 0;  // the parent died before PR_SET_PDEATHSIG was armed

  sockaddr_un addr;
  if (!make_address(socket_path, addr)) {
    std::fprintf(stderr, "zygote: socket path too long: %s\n", socket_path.c_str());
    return 1;
  }
  int lfd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (lfd < 0)
    return 1;
  ::unlink(socket_path.c_str());
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::chmod(socket_path.c_str(), 0600) != 0 || ::listen(lfd, 128) != 0) {
    std::fprintf(stderr, "zygote: cannot listen on %s: %s\n", socket_path.c_str(),
                 std::strerror(errno));
    return 1;
  }
  std::vector<char> buf(max_request + 1);
  for (;;) {
    int conn = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      return 1;
    }
    ssize_t n = ::recv(conn, buf.data(), buf.size(), MSG_TRUNC);
    if (n <= 0 || static_cast<std::size_t>(n) > max_request) {
      reply(conn, "error request empty or too large");
      ::close(conn);
      continue;
    }
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i)
      if (buf[i] == '\0') {
        parts.emplace_back(buf.data() + start, i - start);
        start = i + 1;
      }
    std::size_t need = 0;
    for (std::size_t i = 1; i < parts.size(); ++i)
      need += parts[i].size() + 1;
    if (parts.size() < 2 || start != static_cast<std::size_t>(n) || need > area_len) {
      reply(conn, "error malformed request or argv too long");
      ::close(conn);
      continue;
    }
    int log_fd = ::open(parts[0].c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log_fd < 0 || null_fd < 0) {
      reply(conn, std::string("error open ") + parts[0] + ": " + std::strerror(errno));
      if (log_fd >= 0)
        ::close(log_fd);
      if (null_fd >= 0)
        ::close(null_fd);
      ::close(conn);
      continue;
    }
    std::vector<std::string> args(parts.begin() + 1, parts.end());
    pid_t pid = ::fork();
    if (pid == 0)
      become_child(area, area_len, args, log_fd, null_fd, entry);
    int e = errno;
    ::close(log_fd);
    ::close(null_fd);
    if (pid < 0)
      reply(conn, std::string("error fork: ") + std::strerror(e));
    else
      reply(conn, "pid " + std::to_string(pid));
    ::close(conn);
  }
}

result<pid_t> start_zygote(const fs::path& program, const fs::path& socket_path,
                           std::chrono::milliseconds timeout) {
  sockaddr_un addr;
  if (!make_address(socket_path, addr))
    return error{errc::invalid, "zygote socket path too long: " + socket_path.string()};
  ::unlink(socket_path.c_str());
  std::string prog = program.string();
  std::string pad(zygote_cmdline_capacity, '-');
  std::vector<std::string> args{prog, "--zygote", socket_path.string(), pad};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_store{"LD_BIND_NOW=1"};
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "LD_BIND_NOW=", 12) != 0)
      env_store.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& e : env_store)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0)
    return error::from_errno("open /dev/null");
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(null_fd);
    return error::from_errno("fork", e);
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent)
      ::_exit(0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(null_fd, 0);
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(null_fd);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
      bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
      ::close(fd);  // the zygote sees an empty request and goes on
      if (ok)
        return pid;
    }
    int st;
    if (::waitpid(pid, &st, WNOHANG) == pid)
      return error{errc::unavailable, "the zygote " + prog + " exited at start"};
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      return error{errc::unavailable, "the zygote did not listen within the timeout"};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

result<pid_t> zygote_spawn(const fs::path& socket_path, const fs::path& log_path,
                           const std::vector<std::string>& argv) {
  std::size_t need = 0;
  std::string req = log_path.string();
  req.push_back('\0');
  for (const auto& a : argv) {
    if (a.find('\0') != std::string::npos)
      return error{errc::invalid, "argument with a NUL byte"};
    need += a.size() + 1;
    req += a;
    req.push_back('\0');
  }
  if (argv.empty() || need > zygote_cmdline_capacity || req.size() > max_request)
    return error{errc::unavailable, "argv does not fit the zygote's command line"};
  sockaddr_un addr;
  if (!make_address(socket_path, addr))
    return error{errc::unavailable, "zygote socket path too long"};
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return error::from_errno("socket");
  auto fail = [&](errc code, std::string msg) -> result<pid_t> {
    ::close(fd);
    return error{code, std::move(msg)};
  };
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return fail(errc::unavailable, std::string("no zygote: ") + std::strerror(errno));
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    return fail(errc::unavailable, std::string("zygote send: ") + std::strerror(errno));
  char buf[512];
  ssize_t n = ::recv(fd, buf, sizeof buf - 1, 0);
  if (n <= 0)
    return fail(errc::unavailable, "the zygote did not answer");
  ::close(fd);
  std::string rep(buf, static_cast<std::size_t>(n));
  if (rep.rfind("pid ", 0) == 0) {
    long v = std::strtol(rep.c_str() + 4, nullptr, 10);
    if (v > 1)
      return static_cast<pid_t>(v);
  }
  if (rep.rfind("error argv too long", 0) == 0 || rep.find("argv too long") != std::string::npos)
    return error{errc::unavailable, rep.substr(6)};
  return error{errc::io, "zygote: " + (rep.size() > 6 ? rep.substr(6) : rep)};
}

}  // namespace deckhand::host
