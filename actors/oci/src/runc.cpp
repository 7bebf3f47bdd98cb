#include "deckhand/oci/runc.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <sstream>
#include <system_error>

#include <nlohmann/json.hpp>

namespace deckhand::oci {

using common::exit_status;
using common::kill_and_reap;
using common::make_pipe;
using common::run_captured;
using common::run_options;
using common::run_output;
using common::spawn;
using common::spawn_options;
using common::stdio_fds;
using common::unique_fd;
using common::wait_with_deadline;

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr std::size_t max_error_text = 4096;

std::string trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

std::string clip(std::string s) {
  if (s.size() > max_error_text)
    s = s.substr(0, max_error_text) + "...";
  return s;
}

/// Picks runc's error lines out of its --log-format json output; falls back to
/// the raw text when it is not JSON (crun, or a runc that died early).
std::string errors_from_log(const std::string& log) {
  std::string msgs, raw;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty())
      continue;
    auto j = json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("msg") && j["msg"].is_string()) {
      std::string level = j.value("level", "");
      if (level == "error" || level == "fatal" || level == "panic") {
        if (!msgs.empty())
          msgs += "; ";
        msgs += j["msg"].get<std::string>();
      }
      continue;
    }
    if (!raw.empty())
      raw += "\n";
    raw += line;
  }
  return clip(trim(msgs.empty() ? raw : msgs));
}

errc classify(const std::string& text) {
  if (text.find("does not exist") != std::string::npos ||
      text.find("not found") != std::string::npos)
    return errc::not_found;
  if (text.find("already exists") != std::string::npos)
    return errc::already_exists;
  if (text.find("not running") != std::string::npos ||
      text.find("is not stopped") != std::string::npos ||
      text.find("cannot delete") != std::string::npos)
    return errc::conflict;
  return errc::internal;
}

container_status parse_status(const std::string& s) {
  if (s == "creating")
    return container_status::creating;
  if (s == "created")
    return container_status::created;
  if (s == "running")
    return container_status::running;
  if (s == "paused")
    return container_status::paused;
  if (s == "stopped")
    return container_status::stopped;
  return container_status::unknown;
}

result<container_state> parse_state(const json& j) {
  if (!j.is_object() || !j.contains("id") || !j["id"].is_string())
    return error{errc::internal, "runtime state without an id: " + clip(j.dump())};
  container_state st;
  st.id = j["id"].get<std::string>();
  if (auto it = j.find("status"); it != j.end() && it->is_string())
    st.status = parse_status(it->get<std::string>());
  if (auto it = j.find("pid"); it != j.end() && it->is_number_integer())
    st.pid = it->get<pid_t>();
  if (auto it = j.find("bundle"); it != j.end() && it->is_string())
    st.bundle = it->get<std::string>();
  return st;
}

}  // namespace

const char* to_string(container_status s) {
  switch (s) {
  case container_status::creating: return "creating";
  case container_status::created: return "created";
  case container_status::running: return "running";
  case container_status::paused: return "paused";
  case container_status::stopped: return "stopped";
  case container_status::unknown: return "unknown";
  }
  return "unknown";
}

runc::runc(fs::path root, std::string binary, std::chrono::milliseconds timeout)
    : root_(std::move(root)), binary_(std::move(binary)), timeout_(timeout) {}

result<void> runc::ensure_root() {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec)
    return error{errc::io, "create runtime root " + root_.string() + ": " + ec.message()};
  return {};
}

result<run_output> runc::invoke(const std::vector<std::string>& args) {
  if (auto r = ensure_root(); !r)
    return r.err();
  std::vector<std::string> argv{binary_, "--root", root_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  run_options opts;
  opts.timeout = timeout_;
  return run_captured(argv, opts);
}

error runc::failure(const std::string& what, const run_output& out) const {
  std::string text = trim(out.err);
  if (text.empty())
    text = trim(out.out);
  // runc prints logrus lines (time="..." level=error msg="...") on stderr;
  // keep them whole, they are what an operator needs.
  text = clip(text);
  std::string msg = binary_ + " " + what + ": " + out.status.describe();
  if (!text.empty())
    msg += ": " + text;
  return error{classify(text), msg};
}

result<void> runc::launch(const std::string& verb, const std::string& id, const fs::path& bundle,
                          const stdio_fds& stdio, const fs::path& pid_file) {
  if (auto r = ensure_root(); !r)
    return r;
  // An anonymous in-memory file that runc opens by its /proc path: nothing to
  // clean up and nothing for the container to inherit (it is close-on-exec).
  int mfd = ::memfd_create("runc-log", MFD_CLOEXEC);
  if (mfd < 0)
    return error::from_errno("memfd_create");
  unique_fd log_fd(mfd);
  const std::string log_path =
      "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(log_fd.get());

  std::vector<std::string> argv{binary_,  "--root",       root_.string(), "--log",
                                log_path, "--log-format", "json"};
  if (verb == "run") {
    argv.insert(argv.end(), {"run", "--detach"});
  } else {
    argv.push_back(verb);
  }
  argv.insert(argv.end(), {"--bundle", bundle.string()});
  if (!pid_file.empty())
    argv.insert(argv.end(), {"--pid-file", pid_file.string()});
  argv.push_back(id);

  spawn_options so;
  so.new_process_group = true;
  auto pid = spawn(argv, stdio, std::nullopt, so);
  if (!pid)
    return pid.err();
  auto st = wait_with_deadline(*pid, timeout_);
  if (!st) {
    kill_and_reap(*pid, true);
    return error{errc::unavailable, binary_ + " " + verb + " " + id + ": no answer within " +
                                        std::to_string(timeout_.count()) +
                                        " ms; killed (the container may be half-created)"};
  }
  if (st->exited() && st->code() == 0)
    return {};

  std::string log;
  char buf[8192];
  off_t off = 0;
  for (;;) {
    ssize_t n = ::pread(log_fd.get(), buf, sizeof buf, off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0 || log.size() > 1u << 20)
      break;
    log.append(buf, static_cast<std::size_t>(n));
    off += n;
  }
  std::string text = errors_from_log(log);
  std::string msg = binary_ + " " + verb + " " + id + ": " + st->describe();
  if (!text.empty())
    msg += ": " + text;
  return error{classify(text), msg};
}

result<void> runc::create(const std::string& id, const fs::path& bundle, const stdio_fds& stdio,
                          const fs::path& pid_file) {
  return launch("create", id, bundle, stdio, pid_file);
}

result<void> runc::run_detached(const std::string& id, const fs::path& bundle,
                                const stdio_fds& stdio, const fs::path& pid_file) {
  return launch("run", id, bundle, stdio, pid_file);
}

result<void> runc::start(const std::string& id) {
  auto out = invoke({"start", id});
  if (!out)
    return out.err();
  if (out->status.code() != 0)
    return failure("start " + id, *out);
  return {};
}

result<container_state> runc::state(const std::string& id) {
  auto out = invoke({"state", id});
  if (!out)
    return out.err();
  if (out->status.code() != 0)
    return failure("state " + id, *out);
  auto j = json::parse(out->out, nullptr, false);
  if (j.is_discarded())
    return error{errc::internal, binary_ + " state " + id + ": not JSON: " + clip(out->out)};
  return parse_state(j);
}

result<void> runc::kill(const std::string& id, int signal, bool all) {
  std::vector<std::string> args{"kill"};
  if (all)
    args.push_back("--all");
  args.push_back(id);
  args.push_back(std::to_string(signal));
  auto out = invoke(args);
  if (!out)
    return out.err();
  if (out->status.code() != 0)
    return failure("kill " + id, *out);
  return {};
}

result<void> runc::remove(const std::string& id, bool force) {
  std::vector<std::string> args{"delete"};
  if (force)
    args.push_back("--force");
  args.push_back(id);
  auto out = invoke(args);
  if (!out)
    return out.err();
  if (out->status.code() == 0)
    return {};
  auto err = failure("delete " + id, *out);
  if (err.code == errc::not_found)
    return {};
  return err;
}

result<std::vector<container_state>> runc::list() {
  auto out = invoke({"list", "--format", "json"});
  if (!out)
    return out.err();
  if (out->status.code() != 0)
    return failure("list", *out);
  auto j = json::parse(out->out, nullptr, false);
  std::vector<container_state> states;
  if (j.is_null())  // runc prints "null" for an empty root
    return states;
  if (!j.is_array())
    return error{errc::internal, binary_ + " list: not a JSON array: " + clip(out->out)};
  for (auto& item : j) {
    auto st = parse_state(item);
    if (!st)
      return st.err();
    states.push_back(std::move(*st));
  }
  return states;
}

namespace {

int pidfd_of(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

std::string read_memfd(int fd) {
  std::string text;
  char buf[8192];
  off_t off = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0 || text.size() > 1u << 20)
      break;
    text.append(buf, static_cast<std::size_t>(n));
    off += n;
  }
  return text;
}

}  // namespace

result<exec_result> runc::exec(const std::string& id, const exec_options& opts) {
  if (opts.args.empty())
    return error{errc::invalid, "exec needs a command"};
  // Ask first: runc's own words for a stopped container are an exit code 1
  // that looks like the command's.
  auto st = state(id);
  if (!st)
    return st.err();
  if (st->status != container_status::running)
    return error{errc::conflict,
                 "container " + id + " is not running (" + to_string(st->status) + ")"};

  int mfd = ::memfd_create("runc-exec-log", MFD_CLOEXEC);
  if (mfd < 0)
    return error::from_errno("memfd_create");
  unique_fd log_fd(mfd);
  const std::string log_path =
      "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(log_fd.get());
  // runc writes the pid file by rename, so it needs a real directory.
  static std::atomic<uint64_t> counter{0};
  const fs::path pid_file =
      root_ / (".exec-" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + ".pid");
  struct remove_on_exit {
    fs::path p;
    ~remove_on_exit() {
      std::error_code ec;
      fs::remove(p, ec);
    }
  } cleanup{pid_file};

  std::vector<std::string> argv{binary_,      "--root",         root_.string(), "--log",
                                log_path,     "--log-format",   "json",         "exec",
                                "--pid-file", pid_file.string()};
  if (!opts.cwd.empty())
    argv.insert(argv.end(), {"--cwd", opts.cwd});
  for (const auto& e : opts.env)
    argv.insert(argv.end(), {"--env", e});
  argv.push_back(id);
  argv.insert(argv.end(), opts.args.begin(), opts.args.end());

  auto in_pipe = make_pipe();
  if (!in_pipe)
    return in_pipe.err();
  auto out_pipe = make_pipe();
  if (!out_pipe)
    return out_pipe.err();
  auto err_pipe = make_pipe();
  if (!err_pipe)
    return err_pipe.err();
  spawn_options so;
  so.new_process_group = true;
  auto pid =
      spawn(argv, stdio_fds{in_pipe->first.get(), out_pipe->second.get(), err_pipe->second.get()},
            std::nullopt, so);
  if (!pid)
    return pid.err();
  in_pipe->first.reset();
  out_pipe->second.reset();
  err_pipe->second.reset();
  unique_fd& in_w = in_pipe->second;
  for (int fd : {in_w.get(), out_pipe->first.get(), err_pipe->first.get()})
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  // A command that exits without reading its stdin must not kill us: SIGPIPE
  // is blocked in this thread (write() then fails with EPIPE) and any that
  // became pending is consumed before the old mask returns.
  struct sigpipe_guard {
    sigset_t old{};
    sigpipe_guard() {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &set, &old);
    }
    ~sigpipe_guard() {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGPIPE);
      struct timespec zero {
        0, 0
      };
      while (sigtimedwait(&set, nullptr, &zero) == SIGPIPE) {
      }
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
  } pipe_guard;

  exec_result res;
  std::size_t stdin_off = 0;
  if (opts.stdin_data.empty())
    in_w.reset();
  std::array<unique_fd*, 2> readers{&out_pipe->first, &err_pipe->first};
  std::array<std::string*, 2> sinks{&res.out, &res.err};
  auto drain = [&](std::size_t i) {
    char buf[8192];
    for (;;) {
      ssize_t n = ::read(readers[i]->get(), buf, sizeof buf);
      if (n > 0) {
        std::size_t room = opts.output_limit - std::min(opts.output_limit, sinks[i]->size());
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
  auto feed = [&] {
    while (in_w && stdin_off < opts.stdin_data.size()) {
      ssize_t n = ::write(in_w.get(), opts.stdin_data.data() + stdin_off,
                          opts.stdin_data.size() - stdin_off);
      if (n > 0) {
        stdin_off += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        if (n < 0 && errno != EAGAIN)
          in_w.reset();  // EPIPE: the command does not read its stdin
        return;
      }
    }
    if (stdin_off >= opts.stdin_data.size())
      in_w.reset();
  };

  using clock = std::chrono::steady_clock;
  const bool bounded = opts.timeout.count() > 0;
  const auto deadline = clock::now() + opts.timeout;
  unique_fd pidfd(pidfd_of(*pid));
  int raw = 0;
  for (;;) {
    pid_t r = ::waitpid(*pid, &raw, WNOHANG);
    if (r == *pid) {
      // runc is gone and so is the command; what it wrote is in the pipes.
      // Something it left running in the background must not keep us here.
      for (std::size_t i = 0; i < readers.size(); ++i)
        if (*readers[i])
          drain(i);
      break;
    }
    if (r < 0 && errno != EINTR)
      return error::from_errno("waitpid " + std::to_string(*pid));
    int wait_ms = -1;
    if (bounded) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
      if (left.count() <= 0) {
        // The command is runc's child in the container, not in runc's
        // process group: kill it by the pid runc recorded.
        std::ifstream pf(pid_file);
        long cpid = 0;
        if (pf >> cpid && cpid > 0)
          ::kill(static_cast<pid_t>(cpid), SIGKILL);
        auto exited = wait_with_deadline(*pid, std::chrono::seconds(5));
        if (!exited)
          kill_and_reap(*pid, true);
        for (std::size_t i = 0; i < readers.size(); ++i)
          if (*readers[i])
            drain(i);
        res.timed_out = true;
        res.exit_code = 128 + SIGKILL;
        return res;
      }
      wait_ms = static_cast<int>(std::min<int64_t>(left.count(), 1000));
    }
    std::array<struct pollfd, 4> pfds{};
    std::array<int, 4> which{};
    nfds_t n = 0;
    for (std::size_t i = 0; i < readers.size(); ++i)
      if (*readers[i]) {
        pfds[n] = {readers[i]->get(), POLLIN, 0};
        which[n++] = static_cast<int>(i);
      }
    if (in_w) {
      pfds[n] = {in_w.get(), POLLOUT, 0};
      which[n++] = 2;
    }
    if (pidfd) {
      pfds[n] = {pidfd.get(), POLLIN, 0};
      which[n++] = 3;
    } else {
      wait_ms = wait_ms < 0 ? 10 : std::min(wait_ms, 10);
    }
    if (::poll(pfds.data(), n, wait_ms) > 0) {
      for (nfds_t k = 0; k < n; ++k) {
        if (pfds[k].revents == 0)
          continue;
        if (which[k] < 2)
          drain(static_cast<std::size_t>(which[k]));
        else if (which[k] == 2)
          feed();
      }
    }
  }

  exit_status status{raw};
  res.exit_code = status.code();
  if (res.exit_code != 0) {
    // runc's own failures (no such binary in the image, ...) are logged as
    // errors; the command's exit code is not.
    std::string text = errors_from_log(read_memfd(log_fd.get()));
    if (!text.empty())
      return error{classify(text), binary_ + " exec " + id + ": " + text};
  }
  return res;
}

}  // namespace deckhand::oci
