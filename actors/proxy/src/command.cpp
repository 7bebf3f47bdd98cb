#include "deckhand/proxy/command.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace deckhand::proxy {

namespace {

struct fd_guard {
  int fd = -1;
  ~fd_guard() { reset(); }
  void reset() {
    if (fd >= 0)
      ::close(fd);
    fd = -1;
  }
};

bool make_pipe(fd_guard& r, fd_guard& w) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0)
    return false;
  r.fd = p[0];
  w.fd = p[1];
  return true;
}

}  // namespace

result<command_output> run_command(const std::vector<std::string>& argv, const std::string& input,
                                   std::chrono::milliseconds deadline) {
  if (argv.empty())
    return error{errc::invalid, "run_command: empty argv"};
  // Everything the child touches is prepared before fork(): it only makes
  // async-signal-safe calls until execvp.
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  fd_guard in_r, in_w, out_r, out_w, err_r, err_w;
  if (!make_pipe(in_r, in_w) || !make_pipe(out_r, out_w) || !make_pipe(err_r, err_w))
    return error::from_errno("pipe2");
  sigset_t none;
  sigemptyset(&none);
  pid_t pid = ::fork();
  if (pid < 0)
    return error::from_errno("fork " + argv[0]);
  if (pid == 0) {
    ::dup2(in_r.fd, 0);
    ::dup2(out_w.fd, 1);
    ::dup2(err_w.fd, 2);
    // Descriptors of the parent (ZeroMQ sockets, eventfds) must not leak
    // into the tool even where they lack O_CLOEXEC.
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    // The proxy blocks signals for its signal thread; the tool must not
    // inherit that (it could not be stopped by SIGTERM).
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvp(args[0], args.data());
    static const char msg[] = "exec failed\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  in_r.reset();
  out_w.reset();
  err_w.reset();
  ::fcntl(in_w.fd, F_SETFL, O_NONBLOCK);
  command_output res;
  size_t written = 0;
  if (input.empty())
    in_w.reset();
  auto end = std::chrono::steady_clock::now() + deadline;
  bool timed_out = false;
  while (out_r.fd >= 0 || err_r.fd >= 0 || in_w.fd >= 0) {
    pollfd fds[3];
    int n = 0;
    int i_in = -1, i_out = -1, i_err = -1;
    if (in_w.fd >= 0) {
      fds[n] = {in_w.fd, POLLOUT, 0};
      i_in = n++;
    }
    if (out_r.fd >= 0) {
      fds[n] = {out_r.fd, POLLIN, 0};
      i_out = n++;
    }
    if (err_r.fd >= 0) {
      fds[n] = {err_r.fd, POLLIN, 0};
      i_err = n++;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    end - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    int rc = ::poll(fds, n, static_cast<int>(left));
    if (rc < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (i_in >= 0 && fds[i_in].revents) {
      if (fds[i_in].revents & (POLLERR | POLLHUP)) {
        in_w.reset();
      } else {
        ssize_t w = ::write(in_w.fd, input.data() + written, input.size() - written);
        if (w > 0)
          written += static_cast<size_t>(w);
        else if (w < 0 && errno != EAGAIN && errno != EINTR)
          in_w.reset();
        if (written >= input.size())
          in_w.reset();
      }
    }
    auto drain = [](fd_guard& fd, std::string& into) {
      char buf[65536];
      ssize_t r = ::read(fd.fd, buf, sizeof buf);
      if (r > 0)
        into.append(buf, static_cast<size_t>(r));
      else if (r == 0 || (errno != EAGAIN && errno != EINTR))
        fd.reset();
    };
    if (i_out >= 0 && fds[i_out].revents)
      drain(out_r, res.out);
    if (i_err >= 0 && fds[i_err].revents)
      drain(err_r, res.err);
  }
  if (timed_out)
    ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out)
    return error{errc::unavailable,
                 argv[0] + " did not finish within " + std::to_string(deadline.count()) + " ms"};
  if (WIFEXITED(status))
    res.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    res.exit_code = 128 + WTERMSIG(status);
  if (res.exit_code == 127 && res.err == "exec failed\n")
    return error{errc::not_found, "cannot run " + argv[0]};
  return res;
}

result<command_output> run_checked(const std::vector<std::string>& argv, const std::string& input,
                                   std::chrono::milliseconds deadline) {
  auto r = run_command(argv, input, deadline);
  if (!r)
    return r;
  if (r->exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv)
      cmd += (cmd.empty() ? "" : " ") + a;
    auto msg = r->err.empty() ? r->out : r->err;
    if (msg.size() > 4000)
      msg = msg.substr(0, 4000) + "...";
    while (!msg.empty() && msg.back() == '\n')
      msg.pop_back();
    return error{errc::io, cmd + " exited " + std::to_string(r->exit_code) + ": " + msg};
  }
  return r;
}

bool have_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    auto end = p.find(':', start);
    if (end == std::string::npos)
      end = p.size();
    auto dir = p.substr(start, end - start);
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0)
      return true;
    start = end + 1;
  }
  return false;
}

}  // namespace deckhand::proxy
