#include "deckhand/supervisor/runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <vector>

#include "deckhand/common/log.hpp"

namespace deckhand::supervisor {

namespace fs = std::filesystem;

namespace {

/// A periodic reap, in case SIGCHLD went to a thread that did not block it.
constexpr int reap_interval_ms = 1000;

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  errno = ENOSYS;
  return -1;
#endif
}

bool readable_now(int fd) {
  struct pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

pid_t read_pid_file(const fs::path& p) {
  std::ifstream in(p);
  long pid = 0;
  if (in >> pid && pid > 0)
    return static_cast<pid_t>(pid);
  return 0;
}

} // namespace

void block_sigchld() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

runner::runner(oci::runc rt, fs::path pid_dir, std::string log_fields)
  : rt_(std::move(rt)), pid_dir_(std::move(pid_dir)), log_fields_(std::move(log_fields)) {
}

runner::~runner() {
  stop();
}

void runner::start(runner_events events) {
  events_ = std::move(events);
  wake_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigchld_.reset(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  thread_ = std::thread([this] { loop(); });
}

void runner::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  if (wake_) {
    uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
  }
  if (thread_.joinable())
    thread_.join();
}

void runner::post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
}

void runner::probe(const std::string& name, const std::string& runtime_id) {
  post([this, name, runtime_id] {
    auto st = rt_.state(runtime_id);
    if (st && (st->status == oci::container_status::running
               || st->status == oci::container_status::paused)
        && st->pid > 0) {
      int fd = open_pidfd(st->pid);
      if (fd >= 0) {
        log::get()->info("{} container={} msg=\"adopted running container\" pid={}", log_fields_,
                         name, st->pid);
        adopted_[st->pid] = watched{name, runtime_id, oci::unique_fd(fd)};
        events_.probed(name, true);
        return;
      }
    }
    if (st) {
      log::get()->info("{} container={} msg=\"found container not running\" state={}",
                       log_fields_, name, oci::to_string(st->status));
      if (auto r = rt_.remove(runtime_id, true); !r)
        log::get()->warn("{} container={} msg=\"runc delete failed\" error=\"{}\"", log_fields_,
                         name, r.err().message);
    } else if (st.err().code != errc::not_found) {
      log::get()->warn("{} container={} msg=\"runc state failed\" error=\"{}\"", log_fields_,
                       name, st.err().message);
    }
    events_.probed(name, false);
  });
}

void runner::launch(const std::string& name, const std::string& runtime_id,
                    const fs::path& bundle, const fs::path& log_file) {
  post([this, name, runtime_id, bundle, log_file] {
    std::error_code ec;
    fs::create_directories(log_file.parent_path(), ec);
    // A file, not a pipe: the container must keep writing its log after this
    // process dies.
    auto log_fd = oci::open_fd(log_file, O_WRONLY | O_CREAT | O_APPEND, 0640);
    if (!log_fd) {
      events_.start_failed(name, log_fd.err().message);
      return;
    }
    if (auto r = rt_.remove(runtime_id, true); !r)
      log::get()->warn("{} container={} msg=\"removing stale container failed\" error=\"{}\"",
                       log_fields_, name, r.err().message);
    fs::create_directories(pid_dir_, ec);
    const fs::path pid_file = pid_dir_ / name;
    fs::remove(pid_file, ec);
    oci::stdio_fds stdio{-1, log_fd->get(), log_fd->get()};
    auto r = rt_.run_detached(runtime_id, bundle, stdio, pid_file);
    if (!r) {
      log::get()->warn("{} container={} msg=\"start failed\" error=\"{}\"", log_fields_, name,
                       r.err().message);
      (void)rt_.remove(runtime_id, true);
      events_.start_failed(name, r.err().message);
      return;
    }
    pid_t pid = read_pid_file(pid_file);
    if (pid <= 0) {
      if (auto st = rt_.state(runtime_id); st)
        pid = st->pid;
    }
    log::get()->info("{} container={} msg=\"started\" pid={} log={}", log_fields_, name, pid,
                     log_file.string());
    events_.started(name);
    if (pid > 0)
      children_[pid] = watched{name, runtime_id, {}};
    else
      events_.exited(name, exit_info::unknown());
  });
}

void runner::kill(const std::string& name, const std::string& runtime_id, int signal,
                  bool all) {
  post([this, name, runtime_id, signal, all] {
    log::get()->info("{} container={} msg=\"signalling\" signal={} all={}", log_fields_, name,
                     signal, all);
    if (auto r = rt_.kill(runtime_id, signal, all); !r)
      log::get()->info("{} container={} msg=\"kill failed\" error=\"{}\"", log_fields_, name,
                       r.err().message);
  });
}

void runner::on_exit(pid_t pid, const exit_info& e) {
  auto it = children_.find(pid);
  watched w;
  if (it != children_.end()) {
    w = std::move(it->second);
    children_.erase(it);
  } else {
    auto at = adopted_.find(pid);
    if (at == adopted_.end())
      return;
    w = std::move(at->second);
    adopted_.erase(at);
  }
  log::get()->info("{} container={} msg=\"exited\" pid={} code={} signal={} known={}",
                   log_fields_, w.name, pid, e.code, e.signal, e.known);
  events_.exited(w.name, e);
  if (auto r = rt_.remove(w.runtime_id, true); !r)
    log::get()->warn("{} container={} msg=\"runc delete failed\" error=\"{}\"", log_fields_,
                     w.name, r.err().message);
}

void runner::reap() {
  for (;;) {
    int st = 0;
    pid_t pid = ::waitpid(-1, &st, WNOHANG);
    if (pid <= 0)
      break;
    if (children_.count(pid))
      on_exit(pid, exit_info::from_wait_status(st));
    else
      log::get()->debug("{} msg=\"reaped orphan\" pid={}", log_fields_, pid);
  }
  std::vector<pid_t> gone;
  for (const auto& [pid, w] : adopted_)
    if (readable_now(w.pidfd.get()))
      gone.push_back(pid);
  for (pid_t pid : gone)
    on_exit(pid, exit_info::unknown());
}

void runner::loop() {
  for (;;) {
    std::vector<struct pollfd> fds;
    fds.push_back({wake_.get(), POLLIN, 0});
    if (sigchld_)
      fds.push_back({sigchld_.get(), POLLIN, 0});
    for (const auto& [pid, w] : adopted_)
      fds.push_back({w.pidfd.get(), POLLIN, 0});
    ::poll(fds.data(), fds.size(), reap_interval_ms);

    uint64_t n;
    while (::read(wake_.get(), &n, sizeof n) > 0) {
    }
    if (sigchld_) {
      signalfd_siginfo si;
      while (::read(sigchld_.get(), &si, sizeof si) > 0) {
      }
    }
    for (;;) {
      std::function<void()> task;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_)
          return;
        if (tasks_.empty())
          break;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
      // Between tasks no runc child is outstanding: any zombie is a
      // container init or an orphan.
      reap();
    }
    reap();
  }
}

} // namespace deckhand::supervisor
