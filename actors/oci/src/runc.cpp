#include "deckhand/oci/runc.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <sstream>
#include <system_error>

#include <nlohmann/json.hpp>

namespace deckhand::oci {

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
  if (s == "creating") return container_status::creating;
  if (s == "created") return container_status::created;
  if (s == "running") return container_status::running;
  if (s == "paused") return container_status::paused;
  if (s == "stopped") return container_status::stopped;
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

} // namespace

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

result<void> runc::launch(const std::string& verb, const std::string& id,
                          const fs::path& bundle, const stdio_fds& stdio,
                          const fs::path& pid_file) {
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

  std::vector<std::string> argv{binary_,     "--root",  root_.string(), "--log",
                                log_path,    "--log-format", "json"};
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

result<void> runc::create(const std::string& id, const fs::path& bundle,
                          const stdio_fds& stdio, const fs::path& pid_file) {
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

} // namespace deckhand::oci
