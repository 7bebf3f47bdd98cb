#include "deckhand/cli/launcher.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>
#include <utility>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "deckhand/api/time.hpp"
#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/common/paths.hpp"
#include "deckhand/common/process.hpp"

namespace deckhand::cli {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

const std::vector<std::string>& stop_order() {
  static const std::vector<std::string> order = {"kubelet", "proxy", "runtime"};
  return order;
}

fs::path component_binary(const fs::path& bin_dir, const std::string& name) {
  return bin_dir / ("deckhand-" + name);
}

std::vector<std::string> component_argv(const up_options& opts, const component_spec& spec) {
  std::vector<std::string> argv = {component_binary(opts.bin_dir, spec.name).string(), "--data-dir",
                                   opts.data_dir.string()};
  // A local node usually shares its disk with everything else on a
  // workstation or CI machine, where Kubernetes' nodefs.available<10% would
  // put the node under DiskPressure (refusing every pod) with many GB free.
  // `deckhand up` evicts below 1 GiB instead, unless the kubelet's args say
  // otherwise; deckhand-kubelet on its own keeps Kubernetes' defaults.
  if (spec.name == "kubelet") {
    bool given =
        std::any_of(spec.extra_args.begin(), spec.extra_args.end(),
                    [](const std::string& a) { return a.rfind("--eviction-hard", 0) == 0; });
    if (!given)
      argv.push_back("--eviction-hard=" + std::string(local_eviction_hard));
  }
  argv.insert(argv.end(), spec.extra_args.begin(), spec.extra_args.end());
  return argv;
}

std::vector<std::string> cleanup_argv(const up_options& opts) {
  return {component_binary(opts.bin_dir, "runtime").string(), "--data-dir", opts.data_dir.string(),
          "--cleanup-all"};
}

fs::path self_bin_dir() {
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec)
    return fs::current_path(ec);
  return exe.parent_path();
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status))
    return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = ::strsignal(sig);
    return "signal " + std::to_string(sig) + (name ? std::string(" (") + name + ")" : "");
  }
  return "status " + std::to_string(status);
}

result<up_options> load_up_config(const fs::path& file, up_options opts) {
  try {
    auto root = YAML::LoadFile(file.string());
    if (!root || root.IsNull())
      return opts;
    if (!root.IsMap())
      return error{errc::invalid, file.string() + ": expected a mapping"};
    if (auto b = root["restartBackoff"]) {
      if (auto v = b["initialMilliseconds"])
        opts.backoff.initial = milliseconds(v.as<int64_t>());
      if (auto v = b["maxMilliseconds"])
        opts.backoff.max = milliseconds(v.as<int64_t>());
      if (auto v = b["resetAfterSeconds"])
        opts.backoff.reset_after = milliseconds(v.as<int64_t>() * 1000);
    }
    if (auto v = root["stopTimeoutSeconds"])
      opts.stop_timeout = milliseconds(v.as<int64_t>() * 1000);
    if (auto v = root["cleanupTimeoutSeconds"])
      opts.cleanup_timeout = milliseconds(v.as<int64_t>() * 1000);
    if (auto comps = root["components"]) {
      if (!comps.IsMap())
        return error{errc::invalid, file.string() + ": components: expected a mapping"};
      for (const auto& kv : comps) {
        auto name = kv.first.as<std::string>();
        auto it = std::find_if(opts.components.begin(), opts.components.end(),
                               [&](const component_spec& c) { return c.name == name; });
        if (it == opts.components.end())
          return error{errc::invalid, file.string() + ": components: unknown component \"" + name +
                                          "\" (known: apiserver, runtime, kubelet, proxy)"};
        if (auto v = kv.second["enabled"])
          it->enabled = v.as<bool>();
        if (auto v = kv.second["args"])
          it->extra_args = v.as<std::vector<std::string>>();
      }
    }
    // Kubernetes' staticPodPath, handed to the kubelet (after its own args).
    if (auto v = root["staticPodPath"]) {
      auto dir = v.as<std::string>();
      if (!dir.empty()) {
        std::error_code ec;
        auto abs = fs::absolute(dir, ec);
        for (auto& c : opts.components)
          if (c.name == "kubelet")
            c.extra_args.push_back("--static-pod-path=" + (ec ? dir : abs.string()));
      }
    }
  } catch (const YAML::Exception& e) {
    return error{errc::invalid, file.string() + ": " + e.what()};
  }
  if (opts.backoff.initial.count() <= 0 || opts.backoff.max < opts.backoff.initial)
    return error{errc::invalid, file.string() + ": restartBackoff: need 0 < initial <= max"};
  return opts;
}

milliseconds restart_delay(common::backoff& b, std::optional<steady::time_point> started,
                           steady::time_point now) {
  if (!started)
    return b.next();
  return b.next_after_run(std::chrono::duration_cast<milliseconds>(now - *started));
}

namespace {

/// The signals the launcher handles through its signalfd.
sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGCHLD);
  return set;
}

/// Starts `argv` in its own process group with default signal handling, an
/// empty signal mask, stdin from /dev/null and the launcher's stdout and
/// stderr; `fd3`, if given, becomes the child's fd 3 (the only inherited
/// copy).
result<pid_t> spawn(const std::vector<std::string>& argv, int fd3 = -1) {
  common::spawn_options so;
  so.new_process_group = true;
  if (fd3 >= 0)
    so.extra_fds.push_back(fd3);
  return common::spawn(argv, common::stdio_fds{-1, STDOUT_FILENO, STDERR_FILENO}, std::nullopt, so);
}

struct component_proc {
  component_spec spec;
  common::backoff backoff;
  /// When the running process started; its uptime decides the back-off.
  std::optional<steady::time_point> running_since;
  pid_t pid = -1;
  int starts = 0;
  int restarts = 0;
  std::string started_at;
  std::string last_exit;
  std::optional<steady::time_point> restart_at;
  bool stopped = false;  ///< stopped on purpose: never restarted
};

class launcher {
 public:
  explicit launcher(up_options opts) : opts_(std::move(opts)) {
    for (const auto& spec : opts_.components)
      if (spec.enabled)
        procs_.push_back(component_proc{spec,
                                        common::backoff{opts_.backoff},
                                        std::nullopt,
                                        -1,
                                        0,
                                        0,
                                        {},
                                        {},
                                        std::nullopt,
                                        false});
  }

  ~launcher() {
    demo_cancel_ = true;
    if (demo_thread_.joinable())
      demo_thread_.join();
  }

  int run() {
    if (auto err = setup()) {
      std::cerr << "error: " << err.message << "\n";
      return 1;
    }
    log_->info("msg=\"node starting\" data_dir={} bin_dir={} pid={}", opts_.data_dir.string(),
               opts_.bin_dir.string(), ::getpid());
    stop_leftovers();
    for (auto& p : procs_)
      start(p);
    if (opts_.demo && opts_.run_demo)
      demo_thread_ = std::thread([this] { opts_.run_demo(opts_.data_dir, demo_cancel_); });
    while (!stop_requested_) {
      auto now = steady::now();
      int timeout_ms = -1;
      for (auto& p : procs_) {
        if (!p.restart_at)
          continue;
        if (*p.restart_at <= now) {
          start(p);
          continue;
        }
        auto left = std::chrono::ceil<milliseconds>(*p.restart_at - now).count();
        timeout_ms =
            timeout_ms < 0 ? static_cast<int>(left) : std::min(timeout_ms, static_cast<int>(left));
      }
      wait_signals(timeout_ms);
    }
    shutdown();
    return 0;
  }

 private:
  error setup() {
    std::error_code ec;
    fs::create_directories(paths::run_dir(opts_.data_dir), ec);
    if (ec)
      return {errc::io, "create " + paths::run_dir(opts_.data_dir).string() + ": " + ec.message()};
    auto lock_path = paths::run_dir(opts_.data_dir) / "up.lock";
    lock_fd_ = common::unique_fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!lock_fd_)
      return error::from_errno("open " + lock_path.string());
    if (::flock(lock_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK)
        return error::from_errno("lock " + lock_path.string());
      std::string holder;
      std::ifstream in(lock_path);
      std::getline(in, holder);
      return {errc::conflict, "another 'deckhand up'" +
                                  (holder.empty() ? std::string{} : " (pid " + holder + ")") +
                                  " is already running on " + opts_.data_dir.string()};
    }
    auto pid_text = std::to_string(::getpid()) + "\n";
    if (::ftruncate(lock_fd_.get(), 0) != 0 ||
        ::pwrite(lock_fd_.get(), pid_text.data(), pid_text.size(), 0) < 0)
      return error::from_errno("write " + lock_path.string());

    // Orphaned pod supervisors and containers are re-parented to us, not to
    // init, so nothing of the node escapes our reaping.
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
      return error::from_errno("prctl(PR_SET_CHILD_SUBREAPER)");

    auto set = handled_signals();
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0)
      return error::from_errno("sigprocmask");
    sig_fd_ = common::unique_fd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!sig_fd_)
      return error::from_errno("signalfd");
    ::signal(SIGPIPE, SIG_IGN);
    started_at_ = api::now_rfc3339();
    log_ = log::get();
    return {};
  }

  /// A launcher that was killed leaves its components running (they are in
  /// their own process groups). Stop those still listed in its up.json before
  /// starting new ones, so that no component runs twice.
  void stop_leftovers() {
    std::ifstream in(paths::launcher_status_file(opts_.data_dir));
    if (!in)
      return;
    auto old = nlohmann::json::parse(in, nullptr, false);
    if (!old.is_object() || !old.contains("components") || !old["components"].is_object())
      return;
    for (auto& [name, c] : old["components"].items()) {
      if (!c.is_object() || !c.contains("pid") || !c["pid"].is_number_integer())
        continue;
      auto pid = c["pid"].get<pid_t>();
      if (pid <= 0 || !is_component_process(pid, name))
        continue;
      log_->warn("msg=\"stopping component left by a previous launcher\" component={} "
                 "pid={}",
                 name, pid);
      ::kill(pid, SIGTERM);
      if (!wait_gone(pid, opts_.stop_timeout)) {
        ::kill(pid, SIGKILL);
        wait_gone(pid, milliseconds(5000));
      }
    }
  }

  /// True when `pid` runs `deckhand-NAME --data-dir DATA`.
  bool is_component_process(pid_t pid, const std::string& name) const {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
    std::vector<std::string> argv;
    for (std::string arg; std::getline(in, arg, '\0');)
      argv.push_back(arg);
    // argv[1] when a script runs through its interpreter (`/bin/sh deckhand-x`).
    auto named = [&](std::size_t i) {
      return i < argv.size() && fs::path(argv[i]).filename() == "deckhand-" + name;
    };
    if (!named(0) && !named(1))
      return false;
    for (std::size_t i = 1; i + 1 < argv.size(); ++i)
      if (argv[i] == "--data-dir" && fs::path(argv[i + 1]) == opts_.data_dir)
        return true;
    return false;
  }

  /// Polls until a process that is not our child is gone (its new parent
  /// reaps it).
  static bool wait_gone(pid_t pid, milliseconds timeout) {
    auto deadline = steady::now() + timeout;
    while (steady::now() < deadline) {
      if (::kill(pid, 0) != 0 && errno == ESRCH)
        return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return false;
  }

  void start(component_proc& p) {
    auto now = steady::now();
    p.restart_at.reset();
    auto pid = spawn(component_argv(opts_, p.spec));
    if (!pid) {
      p.last_exit = pid.err().message;
      auto delay = restart_delay(p.backoff, std::exchange(p.running_since, std::nullopt), now);
      p.restart_at = now + delay;
      log_->error("msg=\"cannot start component\" component={} error=\"{}\" "
                  "retry_in_ms={}",
                  p.spec.name, pid.err().message, delay.count());
      write_status();
      return;
    }
    p.pid = *pid;
    p.running_since = now;
    p.started_at = api::now_rfc3339();
    if (p.starts++ > 0)
      ++p.restarts;
    log_->info("msg=\"component started\" component={} pid={} restarts={}", p.spec.name, p.pid,
               p.restarts);
    write_status();
  }

  /// Waits up to `timeout_ms` (-1: forever) for a signal and handles every
  /// pending one: SIGCHLD reaps, SIGINT/SIGTERM/SIGHUP request the stop (a
  /// repeated one while stopping skips the remaining grace periods).
  void wait_signals(int timeout_ms) {
    pollfd pfd{sig_fd_.get(), POLLIN, 0};
    int n = ::poll(&pfd, 1, timeout_ms);
    if (n < 0 && errno != EINTR)
      log_->error("msg=\"poll failed\" error=\"{}\"", std::strerror(errno));
    signalfd_siginfo info{};
    while (::read(sig_fd_.get(), &info, sizeof(info)) == sizeof(info)) {
      if (info.ssi_signo == SIGCHLD) {
        continue;
      } else if (!stop_requested_) {
        stop_requested_ = true;
        log_->info("msg=\"stopping node\" signal={}",
                   ::strsignal(static_cast<int>(info.ssi_signo)));
      } else if (!hurry_) {
        hurry_ = true;
        log_->warn("msg=\"second signal: killing remaining components\"");
      }
    }
    // SIGCHLD coalesces, and a child may exit between the read and here:
    // always reap until nothing is left.
    reap();
  }

  void reap() {
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid == cleanup_pid_) {
        cleanup_status_ = status;
        cleanup_pid_ = -1;
        continue;
      }
      auto it = std::find_if(procs_.begin(), procs_.end(),
                             [&](const component_proc& p) { return p.pid == pid; });
      if (it == procs_.end())
        continue;  // an orphan re-parented to us: reaping it is all we owe it
      auto& p = *it;
      auto now = steady::now();
      p.pid = -1;
      p.last_exit = describe_wait_status(status);
      auto delay = restart_delay(p.backoff, std::exchange(p.running_since, std::nullopt), now);
      if (stop_requested_ || p.stopped) {
        log_->info("msg=\"component stopped\" component={} pid={} status=\"{}\"", p.spec.name, pid,
                   p.last_exit);
      } else {
        p.restart_at = now + delay;
        log_->warn("msg=\"component exited\" component={} pid={} status=\"{}\" "
                   "restart_in_ms={}",
                   p.spec.name, pid, p.last_exit, delay.count());
      }
      write_status();
    }
  }

  /// Waits until `done()` or the deadline, reaping meanwhile. False on
  /// timeout or when a repeated signal asks to hurry.
  template <class Pred>
  bool wait_until(Pred done, steady::time_point deadline) {
    while (!done()) {
      auto now = steady::now();
      if (now >= deadline || hurry_)
        return done();
      wait_signals(static_cast<int>(std::chrono::ceil<milliseconds>(deadline - now).count()));
    }
    return true;
  }

  void stop_component(component_proc& p) {
    p.stopped = true;
    p.restart_at.reset();
    if (p.pid <= 0)
      return;
    pid_t pid = p.pid;
    log_->info("msg=\"stopping component\" component={} pid={}", p.spec.name, pid);
    ::kill(pid, SIGTERM);
    auto gone = [&] { return p.pid != pid; };
    if (wait_until(gone, steady::now() + opts_.stop_timeout))
      return;
    log_->warn("msg=\"component did not stop in time, killing it\" component={} pid={}",
               p.spec.name, pid);
    ::kill(pid, SIGKILL);
    bool was_hurrying = hurry_;
    hurry_ = false;
    if (!wait_until(gone, steady::now() + milliseconds(5000)))
      log_->error("msg=\"component survived SIGKILL\" component={} pid={}", p.spec.name, pid);
    hurry_ = was_hurrying;
  }

  /// With the pods gone, the Service rules the proxy left in the kernel
  /// (they outlive it on purpose) point nowhere: remove them too.
  void run_proxy_cleanup() {
    auto* p = find("proxy");
    if (!p || !p->spec.enabled)
      return;
    auto bin = component_binary(opts_.bin_dir, "proxy");
    auto pid = spawn({bin.string(), "--data-dir", opts_.data_dir.string(), "--cleanup"});
    if (!pid) {
      log_->error("msg=\"cannot run proxy cleanup\" error=\"{}\"", pid.err().message);
      return;
    }
    cleanup_pid_ = *pid;
    hurry_ = false;
    auto done = [&] { return cleanup_pid_ < 0; };
    if (!wait_until(done, steady::now() + milliseconds(30000))) {
      log_->error("msg=\"proxy cleanup did not finish, killing it\" pid={}", *pid);
      ::kill(*pid, SIGKILL);
      wait_until(done, steady::now() + milliseconds(5000));
      return;
    }
    if (cleanup_status_ != 0)
      log_->error("msg=\"proxy cleanup failed\" status=\"{}\"",
                  describe_wait_status(cleanup_status_));
    else
      log_->info("msg=\"service rules removed\"");
  }

  void run_cleanup() {
    auto argv = cleanup_argv(opts_);
    auto pid = spawn(argv);
    if (!pid) {
      log_->error("msg=\"cannot run pod cleanup\" error=\"{}\"", pid.err().message);
      return;
    }
    log_->info("msg=\"removing pods\" pid={}", *pid);
    cleanup_pid_ = *pid;
    // Cutting the cleanup short leaks mounts and network namespaces: only a
    // signal that arrives while it runs does that, not an earlier one.
    hurry_ = false;
    auto done = [&] { return cleanup_pid_ < 0; };
    if (!wait_until(done, steady::now() + opts_.cleanup_timeout)) {
      log_->error("msg=\"pod cleanup did not finish, killing it\" pid={}", *pid);
      ::kill(*pid, SIGKILL);
      hurry_ = false;
      wait_until(done, steady::now() + milliseconds(5000));
      return;
    }
    if (cleanup_status_ != 0)
      log_->error("msg=\"pod cleanup failed\" status=\"{}\"",
                  describe_wait_status(cleanup_status_));
    else
      log_->info("msg=\"pods removed\"");
  }

  component_proc* find(const std::string& name) {
    for (auto& p : procs_)
      if (p.spec.name == name)
        return &p;
    return nullptr;
  }

  void shutdown() {
    demo_cancel_ = true;
    for (auto& p : procs_)
      p.restart_at.reset();
    for (const auto& name : stop_order())
      if (auto* p = find(name))
        stop_component(*p);
    if (!opts_.keep_pods) {
      run_cleanup();
      run_proxy_cleanup();
    }
    if (auto* p = find("apiserver")) {
      stop_component(*p);
      // A killed API server cannot remove its URL file; without it the CLI
      // says that no node runs instead of failing to connect.
      std::error_code ec;
      fs::remove(paths::apiserver_url_file(opts_.data_dir), ec);
    }
    for (auto& p : procs_)
      stop_component(p);
    if (demo_thread_.joinable())
      demo_thread_.join();
    std::error_code ec;
    fs::remove(paths::launcher_status_file(opts_.data_dir), ec);
    log_->info("msg=\"node stopped\"");
  }

  void write_status() {
    nlohmann::json comps = nlohmann::json::object();
    for (const auto& p : procs_) {
      nlohmann::json c;
      c["pid"] = p.pid > 0 ? p.pid : 0;
      c["state"] = p.pid > 0 ? "running" : p.stopped ? "stopped" : "waiting";
      c["restarts"] = p.restarts;
      c["startedAt"] = p.started_at;
      c["lastExit"] = p.last_exit;
      comps[p.spec.name] = c;
    }
    nlohmann::json doc;
    doc["pid"] = ::getpid();
    doc["dataDir"] = opts_.data_dir.string();
    doc["binDir"] = opts_.bin_dir.string();
    doc["startedAt"] = started_at_;
    doc["stopping"] = stop_requested_;
    doc["components"] = comps;
    auto file = paths::launcher_status_file(opts_.data_dir);
    // Readers see the old or the new file, never a torn one; after a machine
    // crash the components it describes are gone too.
    if (auto err =
            fsutil::write_file_atomic(file, doc.dump(2) + "\n", fsutil::durability::process_crash))
      log_->error("msg=\"cannot write status file\" path={} error=\"{}\"", file.string(),
                  err.message);
  }

  up_options opts_;
  std::vector<component_proc> procs_;
  std::shared_ptr<spdlog::logger> log_ = log::get();
  common::unique_fd lock_fd_;
  common::unique_fd sig_fd_;
  std::string started_at_;
  bool stop_requested_ = false;
  bool hurry_ = false;
  pid_t cleanup_pid_ = -1;
  int cleanup_status_ = 0;
  std::atomic<bool> demo_cancel_{false};
  std::thread demo_thread_;
};

}  // namespace

int run_up(const up_options& opts) {
  if (opts.demo && !opts.run_demo) {
    std::cerr << "error: --demo: no way to run the demo was configured\n";
    return 1;
  }
  launcher l(opts);
  return l.run();
}

void add_up_options(CLI::App& app, up_options& up, up_flags& flags) {
  app.add_option("--data-dir", up.data_dir, "The node's data directory")->capture_default_str();
  app.add_flag("--demo", up.demo, "Import the demo image and apply the demo pod");
  app.add_flag("--keep-pods", up.keep_pods, "Leave pods running on exit");
  app.add_option("--bin-dir", flags.bin_dir,
                 "Directory of the component executables (default: deckhand's own)");
  app.add_option("--config", flags.config_file, "Launcher configuration (YAML)");
}

result<up_options> finish_up_options(up_options up, const up_flags& flags,
                                     const fs::path& default_bin_dir) {
  up.bin_dir = flags.bin_dir.empty() ? default_bin_dir : fs::path(flags.bin_dir);
  up.data_dir = fs::absolute(up.data_dir);
  up.bin_dir = fs::absolute(up.bin_dir);
  if (flags.config_file.empty())
    return up;
  return load_up_config(flags.config_file, std::move(up));
}

demo_runner demo_by_subprocess(fs::path deckhand_binary) {
  return [bin = std::move(deckhand_binary)](const fs::path& data_dir,
                                            const std::atomic<bool>& cancel) {
    auto lg = log::get();
    // The launcher's main loop reaps every child (waitpid(-1)), so the end
    // of the demo process is seen through a pipe instead: the child holds
    // the write end (as fd 3, the only copy that survives exec) until it
    // exits.
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      lg->error("msg=\"demo not run\" error=\"pipe: {}\"", std::strerror(errno));
      return;
    }
    common::unique_fd rd(fds[0]), wr(fds[1]);
    auto pid = spawn({bin.string(), "demo", "--data-dir", data_dir.string()}, wr.get());
    wr.reset();
    if (!pid) {
      lg->error("msg=\"demo not run\" error=\"{}\"", pid.err().message);
      return;
    }
    for (;;) {
      struct pollfd p {
        rd.get(), POLLIN, 0
      };
      int n = ::poll(&p, 1, 100);
      if (n > 0) {
        char c;
        if (::read(rd.get(), &c, 1) <= 0)
          return;  // EOF: the demo process is gone
      }
      if (cancel) {
        ::kill(*pid, SIGTERM);
        return;
      }
    }
  };
}

}  // namespace deckhand::cli
