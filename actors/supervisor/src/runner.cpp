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

#include <nlohmann/json.hpp>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/oci/cgroups.hpp"

namespace deckhand::supervisor {

namespace fs = std::filesystem;

namespace {

/// A periodic reap, in case SIGCHLD went to a thread that did not block it.
constexpr int reap_interval_ms = 1000;
/// How long an exit report waits for the log pump to drain the pipes (when
/// the pump has a thread of its own; on this thread the drain runs inline).
constexpr auto log_drain_timeout = std::chrono::seconds(5);
/// Kubernetes' reason for a container the kernel's OOM killer ended.
constexpr const char* oom_killed_reason = "OOMKilled";

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  errno = ENOSYS;
  return -1;
#endif
}

bool readable_now(int fd) {
  struct pollfd p {
    fd, POLLIN, 0
  };
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

pid_t read_pid_file(const fs::path& p) {
  std::ifstream in(p);
  long pid = 0;
  if (in >> pid && pid > 0)
    return static_cast<pid_t>(pid);
  return 0;
}

}  // namespace

void block_sigchld() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

runner::runner(oci::runc rt, fs::path pid_dir, std::string log_fields, std::string pod_uid,
               log_pump* logs)
    : rt_(std::move(rt)),
      pid_dir_(std::move(pid_dir)),
      log_fields_(std::move(log_fields)),
      pod_uid_(std::move(pod_uid)),
      logs_(logs) {
  // Opened here, not in start(): work posted before the loop runs must wake it.
  open_fds();
}

std::string runner::cgroup_of(const fs::path& bundle, const std::string& name) const {
  if (auto text = fsutil::read_file(bundle / "config.json")) {
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_object() && j.contains("linux") && j["linux"].is_object()) {
      const auto& l = j["linux"];
      if (auto it = l.find("cgroupsPath");
          it != l.end() && it->is_string() && !it->get<std::string>().empty())
        return it->get<std::string>();
    }
  }
  return pod_uid_.empty() ? std::string{} : oci::container_cgroup_path(pod_uid_, name);
}

void runner::finish_log(const std::string& name) {
  if (!logs_)
    return;
  if (logs_->finish(name).wait_for(log_drain_timeout) != std::future_status::ready)
    log::get()->warn("{} container={} msg=\"log pump did not drain in time\"", log_fields_, name);
}

runner::~runner() { stop(); }

void runner::open_fds() {
  wake_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigchld_.reset(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
}

void runner::start(runner_events events) {
  events_ = std::move(events);
  thread_ = std::thread([this] { loop(); });
}

void runner::run_here(runner_events events, int stop_fd) {
  events_ = std::move(events);
  loop(stop_fd);
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

void runner::probe(const std::string& name, const std::string& runtime_id,
                   const action::log_target& target) {
  post([this, name, runtime_id, target] {
    if (logs_)
      logs_->attach(name, target.stdout_fifo, target.stderr_fifo, target.log_file, target.instance);
    // runc, crun and deckhand-process-oci keep a container's state in
    // ROOT/ID: without it there is nothing to ask about, and asking costs a
    // runtime invocation (~15 ms) on every pod start.
    std::error_code ec;
    auto st = fs::exists(rt_.root() / runtime_id, ec)
                  ? rt_.state(runtime_id)
                  : result<oci::container_state>(error{errc::not_found, "no state"});
    if (st &&
        (st->status == oci::container_status::running ||
         st->status == oci::container_status::paused) &&
        st->pid > 0) {
      int fd = open_pidfd(st->pid);
      if (fd >= 0) {
        log::get()->info("{} container={} msg=\"adopted running container\" pid={}", log_fields_,
                         name, st->pid);
        adopted_[st->pid] = watched{name, runtime_id, common::unique_fd(fd), {}, 0};
        events_.probed(name, true);
        return;
      }
    }
    if (st) {
      log::get()->info("{} container={} msg=\"found container not running\" state={}", log_fields_,
                       name, oci::to_string(st->status));
      if (auto r = rt_.remove(runtime_id, true); !r)
        log::get()->warn("{} container={} msg=\"runc delete failed\" error=\"{}\"", log_fields_,
                         name, r.err().message);
    } else if (st.err().code != errc::not_found) {
      log::get()->warn("{} container={} msg=\"runc state failed\" error=\"{}\"", log_fields_, name,
                       st.err().message);
    }
    // What a dead instance left in its pipes belongs to its own file.
    finish_log(name);
    events_.probed(name, false);
  });
}

void runner::launch(const std::string& name, const std::string& runtime_id, const fs::path& bundle,
                    const action::log_target& target) {
  post([this, name, runtime_id, bundle, target] {
    // Container output goes through FIFOs that outlive this process (see
    // pod_dir.hpp), never through pipes that die with it.
    auto out = open_container_stream(target.stdout_fifo);
    auto err =
        out ? open_container_stream(target.stderr_fifo) : result<common::unique_fd>(out.err());
    if (!err) {
      events_.start_failed(name, err.err().message);
      return;
    }
    if (logs_)
      logs_->attach(name, target.stdout_fifo, target.stderr_fifo, target.log_file, target.instance);
    std::error_code ec;
    if (fs::exists(rt_.root() / runtime_id, ec))
      if (auto r = rt_.remove(runtime_id, true); !r)
        log::get()->warn("{} container={} msg=\"removing stale container failed\" error=\"{}\"",
                         log_fields_, name, r.err().message);
    fs::create_directories(pid_dir_, ec);
    const fs::path pid_file = pid_dir_ / name;
    fs::remove(pid_file, ec);
    // The counter of a cgroup that does not exist yet reads 0; read it before
    // the start anyway, in case a stale cgroup survived.
    const std::string cgroup = cgroup_of(bundle, name);
    const uint64_t oom_before = cgroup.empty() ? 0 : oci::cgroup_oom_kills(cgroup);
    common::stdio_fds stdio{-1, out->get(), err->get()};
    auto r = rt_.run_detached(runtime_id, bundle, stdio, pid_file);
    out->reset();
    err->reset();
    if (!r) {
      log::get()->warn("{} container={} msg=\"start failed\" error=\"{}\"", log_fields_, name,
                       r.err().message);
      (void)rt_.remove(runtime_id, true);
      finish_log(name);
      events_.start_failed(name, r.err().message);
      return;
    }
    pid_t pid = read_pid_file(pid_file);
    if (pid <= 0) {
      if (auto st = rt_.state(runtime_id); st)
        pid = st->pid;
    }
    log::get()->info("{} container={} msg=\"started\" pid={} log={}", log_fields_, name, pid,
                     target.log_file.string());
    events_.started(name);
    if (pid > 0) {
      children_[pid] = watched{name, runtime_id, {}, cgroup, oom_before};
    } else {
      finish_log(name);
      events_.exited(name, exit_info::unknown());
    }
  });
}

void runner::kill(const std::string& name, const std::string& runtime_id, int signal, bool all) {
  post([this, name, runtime_id, signal, all] {
    log::get()->info("{} container={} msg=\"signalling\" signal={} all={}", log_fields_, name,
                     signal, all);
    if (auto r = rt_.kill(runtime_id, signal, all); !r)
      log::get()->info("{} container={} msg=\"kill failed\" error=\"{}\"", log_fields_, name,
                       r.err().message);
  });
}

void runner::on_exit(pid_t pid, exit_info e) {
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
  // The cgroup is still there: `runc delete` comes last.
  if (e.known && e.code == 128 + SIGKILL && !w.cgroup.empty()) {
    uint64_t after = oci::cgroup_oom_kills(w.cgroup);
    if (after > w.oom_kills_before)
      e.reason = oom_killed_reason;
  }
  log::get()->info("{} container={} msg=\"exited\" pid={} code={} signal={} known={} reason={}",
                   log_fields_, w.name, pid, e.code, e.signal, e.known,
                   e.reason.empty() ? "-" : e.reason);
  finish_log(w.name);
  events_.exited(w.name, e);
  if (auto r = rt_.remove(w.runtime_id, true); !r)
    log::get()->warn("{} container={} msg=\"runc delete failed\" error=\"{}\"", log_fields_, w.name,
                     r.err().message);
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

void runner::loop(int stop_fd) {
  // The log pump runs on this thread too, rather than on one of its own:
  // density. A thread costs every pod 12-16 kB of dirty stack plus TLS, and
  // a node runs hundreds of supervisors. Its pipes are polled with ours; a
  // turn copies at most the pump's turn budget per pipe, so a chatty
  // container cannot starve the tasks, and output is copied between tasks
  // too, so a queue of runc calls holds it up for one call at most. The
  // drain after an exit (finish_log) then runs inline, on this thread.
  const bool drive_logs = logs_ && logs_->share_thread();
  // Each source runs once before the first poll (work queued before the
  // loop started), then after every turn.
  auto run_sources = [this] {
    int t = -1;
    for (auto& src : sources_) {
      int v = src.run();
      if (v >= 0 && (t < 0 || v < t))
        t = v;
    }
    return t;
  };
  int source_timeout = run_sources();
  std::vector<struct pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({wake_.get(), POLLIN, 0});
    if (stop_fd >= 0)
      fds.push_back({stop_fd, POLLIN, 0});
    if (sigchld_)
      fds.push_back({sigchld_.get(), POLLIN, 0});
    for (const auto& [pid, w] : adopted_)
      fds.push_back({w.pidfd.get(), POLLIN, 0});
    for (auto& src : sources_)
      src.fill(fds);
    const std::size_t own_fds = fds.size();
    if (drive_logs)
      logs_->fill_pollfds(fds);
    int timeout = reap_interval_ms;
    if (source_timeout >= 0 && source_timeout < timeout)
      timeout = source_timeout;
    ::poll(fds.data(), fds.size(), timeout);
    if (stop_fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
      return;
    if (drive_logs)
      logs_->on_ready(fds.data() + own_fds, fds.data() + fds.size());

    uint64_t n;
    while (::read(wake_.get(), &n, sizeof n) > 0) {
    }
    if (sigchld_) {
      signalfd_siginfo si;
      while (::read(sigchld_.get(), &si, sizeof si) > 0) {
      }
    }
    for (bool first = true;; first = false) {
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
      if (drive_logs && !first)
        logs_->pump_ready_now();
      task();
      // Between tasks no runc child is outstanding: any zombie is a
      // container init or an orphan.
      reap();
    }
    reap();
    source_timeout = run_sources();
  }
}

void runner::add_source(int fd, std::function<int()> run) {
  add_source(
      [fd](std::vector<struct pollfd>& fds) {
        fds.push_back({fd, POLLIN, 0});
      },
      std::move(run));
}

void runner::add_source(std::function<void(std::vector<struct pollfd>&)> fill,
                        std::function<int()> run) {
  sources_.push_back({std::move(fill), std::move(run)});
}

}  // namespace deckhand::supervisor
