/// Starting processes: the plan prepared before fork(), the child's set-up
/// up to exec(), its reports to the parent, and waiting while forwarding
/// signals.

#include "process_runtime_internal.hpp"

namespace deckhand::process_oci {

namespace {

std::string env_value(const std::vector<std::string>& env, const std::string& key) {
  for (auto it = env.rbegin(); it != env.rend(); ++it)
    if (it->size() > key.size() && it->compare(0, key.size(), key) == 0 && (*it)[key.size()] == '=')
      return it->substr(key.size() + 1);
  return {};
}

bool env_has(const std::vector<std::string>& env, const std::string& key) {
  return std::any_of(env.begin(), env.end(), [&](const std::string& e) {
    return e.compare(0, key.size() + 1, key + "=") == 0;
  });
}

/// Resolves argv[0] the way execvp() does, in the child (after the user
/// switch, so that permissions are the process's own).
std::string resolve_program(const std::string& name, const std::vector<std::string>& env,
                            std::string& resolved) {
  auto executable = [](const std::string& p) -> int {
    struct stat sb {};
    if (::stat(p.c_str(), &sb) != 0)
      return errno;
    if (S_ISDIR(sb.st_mode))
      return EISDIR;
    if (::access(p.c_str(), X_OK) != 0)
      return errno;
    return 0;
  };
  if (name.find('/') != std::string::npos) {
    if (int e = executable(name))
      return "exec: \"" + name + "\": " + std::strerror(e);
    resolved = name;
    return {};
  }
  std::string path = env_has(env, "PATH") ? env_value(env, "PATH") : default_path;
  std::size_t start = 0;
  for (;;) {
    auto colon = path.find(':', start);
    std::string dir = path.substr(start, colon == std::string::npos ? colon : colon - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (executable(candidate) == 0) {
      resolved = candidate;
      return {};
    }
    if (colon == std::string::npos)
      break;
    start = colon + 1;
  }
  return "exec: \"" + name + "\": executable file not found in $PATH";
}

volatile sig_atomic_t forward_to = 0;

void forward_signal(int sig) {
  if (forward_to > 0)
    ::kill(static_cast<pid_t>(forward_to), sig);
}

constexpr int forwarded_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

}  // namespace

bool is_root() { return ::geteuid() == 0; }

void merge_env(std::vector<std::string>& env, const std::vector<std::string>& extra) {
  for (const auto& e : extra) {
    std::string key = e.substr(0, e.find('='));
    env.erase(std::remove_if(env.begin(), env.end(),
                             [&](const std::string& x) {
                               return x.compare(0, key.size() + 1, key + "=") == 0 || x == key;
                             }),
              env.end());
    env.push_back(e);
  }
}

launch_plan make_plan(std::vector<std::string> args, const host_process_spec& spec, fs::path cwd) {
  launch_plan plan;
  plan.args = std::move(args);
  plan.env = spec.env;
  plan.cwd = std::move(cwd);
  plan.spec = spec;
  plan.switch_user = is_root();
  if (!plan.switch_user && spec.uid != 0 && spec.uid != ::geteuid())
    log_warning("process.user uid " + std::to_string(spec.uid) +
                " not applied: not running as root, the process keeps uid " +
                std::to_string(::geteuid()));
  if (!env_has(plan.env, "HOME")) {
    // runc's rule: the user's home directory, or "/" for a user without one.
    uid_t uid = plan.switch_user ? spec.uid : ::geteuid();
    std::string home = "/";
    if (auto* pw = ::getpwuid(uid); pw && pw->pw_dir && *pw->pw_dir)
      home = pw->pw_dir;
    plan.env.push_back("HOME=" + home);
  }
  return plan;
}

std::string setup_child(const launch_plan& plan, std::string& warnings, std::string& resolved) {
  // Only stdio and fds the caller asked to preserve reach the process.
  ::close_range(static_cast<unsigned>(3 + plan.preserve_fds), ~0u, CLOSE_RANGE_CLOEXEC);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig)
    ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  const host_process_spec& spec = plan.spec;
  if (spec.oom_score_adj) {
    // Lowering it needs CAP_SYS_RESOURCE; raising it does not.
    std::string v = std::to_string(*spec.oom_score_adj);
    int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, v.data(), v.size()) != static_cast<ssize_t>(v.size()))
      warnings += "oomScoreAdj " + v + " not applied: " + std::strerror(errno) + "\n";
    if (fd >= 0)
      ::close(fd);
  }
  for (const auto& lim : spec.rlimits) {
    struct rlimit want {
      static_cast<rlim_t>(lim.soft), static_cast<rlim_t>(lim.hard)
    };
    if (::setrlimit(lim.resource, &want) == 0)
      continue;
    // Best effort: without privilege a hard limit cannot go up; keep ours.
    struct rlimit have {};
    ::getrlimit(lim.resource, &have);
    struct rlimit lowered {
      std::min(want.rlim_cur, have.rlim_max), std::min(want.rlim_max, have.rlim_max)
    };
    if (::setrlimit(lim.resource, &lowered) == 0)
      warnings += lim.type + " lowered to " + std::to_string(lowered.rlim_cur) + "/" +
                  std::to_string(lowered.rlim_max) + ": no privilege to raise the hard limit\n";
    else
      warnings += lim.type + " not applied: " + std::strerror(errno) + "\n";
  }
  ::umask(spec.umask.value_or(022));
  if (plan.switch_user) {
    if (::setgroups(spec.additional_gids.size(), spec.additional_gids.data()) != 0)
      return std::string("setgroups: ") + std::strerror(errno);
    if (::setresgid(spec.gid, spec.gid, spec.gid) != 0)
      return "setgid " + std::to_string(spec.gid) + ": " + std::strerror(errno);
    if (::setresuid(spec.uid, spec.uid, spec.uid) != 0)
      return "setuid " + std::to_string(spec.uid) + ": " + std::strerror(errno);
  }
  if (::chdir(plan.cwd.c_str()) != 0)
    return "chdir to " + plan.cwd.string() + ": " + std::strerror(errno);
  if (spec.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return std::string("prctl(PR_SET_NO_NEW_PRIVS): ") + std::strerror(errno);
  return resolve_program(plan.args[0], plan.env, resolved);
}

void report(int fd, char tag, const std::string& text) {
  std::string msg(1, tag);
  msg += clip(text);
  msg.push_back('\0');
  write_all(fd, msg);
}

std::optional<std::string> read_report(int fd, std::string& buffer) {
  for (;;) {
    if (auto nul = buffer.find('\0'); nul != std::string::npos) {
      std::string msg = buffer.substr(0, nul);
      buffer.erase(0, nul + 1);
      return msg;
    }
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return std::nullopt;
    buffer.append(buf, static_cast<std::size_t>(n));
  }
}

void log_warnings(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty())
      log_warning(line);
}

exit_status reap(pid_t pid) {
  int raw = 0;
  while (::waitpid(pid, &raw, 0) < 0 && errno == EINTR) {
  }
  return exit_status{raw};
}

sigset_t forwarded_set() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : forwarded_signals)
    sigaddset(&set, s);
  return set;
}

int wait_forwarding(pid_t pid) {
  forward_to = pid;
  struct sigaction sa {};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : forwarded_signals)
    ::sigaction(s, &sa, nullptr);
  sigset_t set = forwarded_set();
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  return reap(pid).code();
}

result<void> write_pid_file(const std::string& pid_file, pid_t pid) {
  if (pid_file.empty())
    return {};
  return fsutil::write_file_atomic(fs::absolute(pid_file), std::to_string(pid));
}

}  // namespace deckhand::process_oci
