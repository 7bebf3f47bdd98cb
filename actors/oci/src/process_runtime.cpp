#include "deckhand/oci/process_runtime.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <system_error>
#include <thread>

#include <nlohmann/json.hpp>

#include "deckhand/oci/process.hpp"

namespace deckhand::oci {

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;
namespace fs = std::filesystem;

constexpr const char* program_name = "deckhand-process-oci";
constexpr const char* program_version = "0.1.0";
constexpr const char* oci_version = "1.0.2";
constexpr const char* default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr std::size_t max_config_bytes = 16u << 20;
constexpr std::size_t max_message = 3000;
/// How long delete waits for a SIGKILLed process to die (runc: 10 s).
constexpr std::chrono::seconds kill_wait{10};

std::string clip(std::string s) {
  if (s.size() > max_message)
    s = s.substr(0, max_message) + "...";
  return s;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// ---------------------------------------------------------------------------
// Logging the way runc does: --log FILE with --log-format json|text, and
// errors also on stderr when the log is elsewhere (runc's fatal()).

struct log_sink {
  int fd = -1;  ///< -1: stderr, text format
  bool json_format = false;
};

log_sink& sink() {
  static log_sink s;
  return s;
}

void write_all(int fd, const std::string& text) {
  std::size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    off += static_cast<std::size_t>(n);
  }
}

std::string rfc3339(std::chrono::system_clock::time_point t, bool nanos) {
  auto since = t.time_since_epoch();
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(since - secs).count();
  std::time_t tt = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string s = buf;
  if (nanos) {
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%09lld", static_cast<long long>(ns));
    s += frac;
  }
  return s + "Z";
}

std::string quote_text(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

void log_line(const char* level, const std::string& msg) {
  const auto now = std::chrono::system_clock::now();
  const log_sink& s = sink();
  std::string line;
  if (s.fd >= 0 && s.json_format) {
    line = dump(json{{"level", level}, {"msg", msg}, {"time", rfc3339(now, false)}});
  } else {
    line = "time=\"" + rfc3339(now, false) + "\" level=" + level + " msg=" + quote_text(msg);
  }
  write_all(s.fd >= 0 ? s.fd : STDERR_FILENO, line + "\n");
}

void log_error(const std::string& msg) {
  log_line("error", msg);
  if (sink().fd >= 0)
    write_all(STDERR_FILENO, msg + "\n");
}

void log_warning(const std::string& msg) { log_line("warning", msg); }

// ---------------------------------------------------------------------------
// Files and /proc.

result<std::string> read_text(const fs::path& p, std::size_t limit) {
  auto fd = open_fd(p, O_RDONLY);
  if (!fd)
    return fd.err();
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd->get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return error::from_errno("read " + p.string());
    if (n == 0)
      break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > limit)
      return error{errc::too_large,
                   p.string() + " is larger than " + std::to_string(limit) + " bytes"};
  }
  return text;
}

/// Temp file, fsync, rename: a reader sees the old content or the new, whole.
result<void> write_atomic(const fs::path& p, const std::string& text, mode_t mode) {
  fs::path tmp = p;
  tmp += ".tmp-" + std::to_string(::getpid());
  auto fd = open_fd(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (!fd)
    return fd.err();
  std::size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd->get(), text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      auto err = error::from_errno("write " + tmp.string());
      ::unlink(tmp.c_str());
      return err;
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd->get()) != 0 || ::rename(tmp.c_str(), p.c_str()) != 0) {
    auto err = error::from_errno("write " + p.string());
    ::unlink(tmp.c_str());
    return err;
  }
  return {};
}

struct proc_stat {
  char state = '?';
  pid_t session = 0;
  std::uint64_t start_time = 0;  ///< clock ticks after boot: tells pid reuse apart
};

std::optional<proc_stat> read_proc_stat(pid_t pid) {
  if (pid <= 0)
    return std::nullopt;
  auto text = read_text("/proc/" + std::to_string(pid) + "/stat", 1u << 16);
  if (!text)
    return std::nullopt;
  // comm (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  auto close = text->rfind(')');
  if (close == std::string::npos)
    return std::nullopt;
  std::istringstream in(text->substr(close + 1));
  std::vector<std::string> f;
  std::string tok;
  while (in >> tok && f.size() < 20)
    f.push_back(tok);
  if (f.size() < 20 || f[0].empty())
    return std::nullopt;
  proc_stat st;
  st.state = f[0][0];
  try {
    st.session = static_cast<pid_t>(std::stol(f[3]));  // field 6
    st.start_time = std::stoull(f[19]);                // field 22
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return st;
}

// ---------------------------------------------------------------------------
// config.json

const std::vector<std::pair<const char*, int>>& rlimit_names() {
  static const std::vector<std::pair<const char*, int>> names{
      {"RLIMIT_CPU", RLIMIT_CPU},           {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_DATA", RLIMIT_DATA},         {"RLIMIT_STACK", RLIMIT_STACK},
      {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},   {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},     {"RLIMIT_RTTIME", RLIMIT_RTTIME},
  };
  return names;
}

error bad_config(const std::string& what) { return error{errc::invalid, "config.json: " + what}; }

/// An unsigned field that must fit `max`; absent leaves `out` alone.
template <class T>
result<void> get_unsigned(const json& obj, const char* key, const std::string& where, T& out,
                          std::uint64_t max) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null())
    return {};
  if (!it->is_number_unsigned() || it->get<std::uint64_t>() > max)
    return bad_config(where + "." + key + " is not a number from 0 to " + std::to_string(max));
  out = static_cast<T>(it->get<std::uint64_t>());
  return {};
}

result<std::vector<std::string>> get_strings(const json& obj, const char* key,
                                             const std::string& where) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null())
    return out;
  if (!it->is_array())
    return bad_config(where + "." + key + " is not an array");
  for (std::size_t i = 0; i < it->size(); ++i) {
    const auto& v = (*it)[i];
    if (!v.is_string())
      return bad_config(where + "." + key + "[" + std::to_string(i) + "] is not a string");
    out.push_back(v.get<std::string>());
  }
  return out;
}

result<host_process_spec> spec_from_json(const json& j, const fs::path& bundle) {
  if (!j.is_object())
    return bad_config("not a JSON object");
  auto pit = j.find("process");
  if (pit == j.end() || !pit->is_object())
    return bad_config("process is missing");
  const json& p = *pit;
  host_process_spec spec;

  if (auto t = p.find("terminal"); t != p.end() && !t->is_null()) {
    if (!t->is_boolean())
      return bad_config("process.terminal is not a boolean");
    if (t->get<bool>())
      return error{errc::unsupported,
                   "config.json: process.terminal is true: the process back-end runs "
                   "without a terminal"};
  }
  auto args = get_strings(p, "args", "process");
  if (!args)
    return args.err();
  if (args->empty() || (*args)[0].empty())
    return bad_config("process.args must not be empty");
  spec.args = std::move(*args);
  auto env = get_strings(p, "env", "process");
  if (!env)
    return env.err();
  spec.env = std::move(*env);
  if (auto c = p.find("cwd"); c != p.end() && !c->is_null()) {
    if (!c->is_string())
      return bad_config("process.cwd is not a string");
    spec.cwd = c->get<std::string>();
  }

  if (auto u = p.find("user"); u != p.end() && !u->is_null()) {
    if (!u->is_object())
      return bad_config("process.user is not an object");
    constexpr std::uint64_t id_max = 0xfffffffeu;  // (uid_t)-1 means "unchanged"
    if (auto r = get_unsigned(*u, "uid", "process.user", spec.uid, id_max); !r)
      return r.err();
    if (auto r = get_unsigned(*u, "gid", "process.user", spec.gid, id_max); !r)
      return r.err();
    if (auto g = u->find("additionalGids"); g != u->end() && !g->is_null()) {
      if (!g->is_array())
        return bad_config("process.user.additionalGids is not an array");
      for (const auto& v : *g) {
        if (!v.is_number_unsigned() || v.get<std::uint64_t>() > id_max)
          return bad_config("process.user.additionalGids holds a bad group id");
        spec.additional_gids.push_back(static_cast<gid_t>(v.get<std::uint64_t>()));
      }
    }
    mode_t mask = 0;
    if (auto r = get_unsigned(*u, "umask", "process.user", mask, 0777); !r)
      return r.err();
    if (u->contains("umask") && !(*u)["umask"].is_null())
      spec.umask = mask;
  }

  if (auto rl = p.find("rlimits"); rl != p.end() && !rl->is_null()) {
    if (!rl->is_array())
      return bad_config("process.rlimits is not an array");
    for (const auto& e : *rl) {
      if (!e.is_object() || !e.contains("type") || !e["type"].is_string())
        return bad_config("process.rlimits entry without a type");
      host_rlimit lim;
      lim.type = e["type"].get<std::string>();
      auto known = std::find_if(rlimit_names().begin(), rlimit_names().end(),
                                [&](const auto& n) { return lim.type == n.first; });
      if (known == rlimit_names().end())
        return bad_config("process.rlimits: unknown type " + lim.type);
      lim.resource = known->second;
      const std::string where = "process.rlimits[" + lim.type + "]";
      constexpr std::uint64_t any = ~std::uint64_t{0};
      if (auto r = get_unsigned(e, "soft", where, lim.soft, any); !r)
        return r.err();
      if (auto r = get_unsigned(e, "hard", where, lim.hard, any); !r)
        return r.err();
      if (lim.soft > lim.hard)
        return bad_config(where + ": soft limit above the hard limit");
      spec.rlimits.push_back(lim);
    }
  }
  if (auto n = p.find("noNewPrivileges"); n != p.end() && !n->is_null()) {
    if (!n->is_boolean())
      return bad_config("process.noNewPrivileges is not a boolean");
    spec.no_new_privileges = n->get<bool>();
  }
  if (auto o = p.find("oomScoreAdj"); o != p.end() && !o->is_null()) {
    if (!o->is_number_integer() || o->get<std::int64_t>() < -1000 || o->get<std::int64_t>() > 1000)
      return bad_config("process.oomScoreAdj is not a number from -1000 to 1000");
    spec.oom_score_adj = static_cast<int>(o->get<std::int64_t>());
  }

  if (auto r = j.find("root"); r != j.end() && r->is_object()) {
    if (auto rp = r->find("path"); rp != r->end() && rp->is_string())
      spec.rootfs = (bundle / rp->get<std::string>()).lexically_normal();
  }
  if (auto a = j.find("annotations"); a != j.end() && a->is_object()) {
    for (const auto& [k, v] : a->items())
      if (v.is_string())
        spec.annotations[k] = v.get<std::string>();
  }
  return spec;
}

result<json> parse_json_text(const std::string& text) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    return error{errc::invalid, std::string("config.json is not valid JSON: ") + e.what()};
  }
}

result<std::string> read_config(const fs::path& bundle) {
  auto text = read_text(bundle / "config.json", max_config_bytes);
  if (!text)
    return error{text.err().code == errc::too_large ? errc::too_large : errc::invalid,
                 "bundle " + bundle.string() + ": cannot read config.json: " + text.err().message};
  return text;
}

// ---------------------------------------------------------------------------
// Command-line options: Go's flag package rules, as runc (urfave/cli) has
// them: -x and --x alike, "--x v" or "--x=v", flags end at the first
// positional argument or "--".

struct option_def {
  std::string name;
  std::string alias;  ///< short form, may be empty
  bool takes_value = false;
};

struct parsed_options {
  std::map<std::string, std::vector<std::string>> values;  ///< by long name
  std::vector<std::string> positional;

  bool has(const std::string& name) const {
    auto it = values.find(name);
    return it != values.end() && !it->second.empty() && it->second.back() != "false";
  }
  std::string get(const std::string& name, std::string fallback = {}) const {
    auto it = values.find(name);
    return it == values.end() || it->second.empty() ? fallback : it->second.back();
  }
  std::vector<std::string> all(const std::string& name) const {
    auto it = values.find(name);
    return it == values.end() ? std::vector<std::string>{} : it->second;
  }
};

result<parsed_options> parse_options(const std::vector<std::string>& args,
                                     const std::vector<option_def>& defs) {
  parsed_options out;
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.size() < 2 || a[0] != '-')
      break;
    std::string body = a.substr(a[1] == '-' ? 2 : 1);
    std::optional<std::string> inline_value;
    if (auto eq = body.find('='); eq != std::string::npos) {
      inline_value = body.substr(eq + 1);
      body = body.substr(0, eq);
    }
    auto def = std::find_if(defs.begin(), defs.end(), [&](const option_def& d) {
      return body == d.name || (!d.alias.empty() && body == d.alias);
    });
    if (def == defs.end())
      return error{errc::invalid, "flag provided but not defined: -" + body};
    if (def->takes_value) {
      if (inline_value) {
        out.values[def->name].push_back(*inline_value);
      } else if (i + 1 < args.size()) {
        out.values[def->name].push_back(args[++i]);
      } else {
        return error{errc::invalid, "flag needs an argument: -" + body};
      }
    } else {
      std::string v = inline_value.value_or("true");
      if (v == "1" || v == "t" || v == "T" || v == "TRUE" || v == "True")
        v = "true";
      if (v == "0" || v == "f" || v == "F" || v == "FALSE" || v == "False")
        v = "false";
      if (v != "true" && v != "false")
        return error{errc::invalid, "invalid boolean value " + quote_text(v) + " for -" + body};
      out.values[def->name].push_back(v);
    }
  }
  out.positional.assign(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
  return out;
}

// ---------------------------------------------------------------------------
// Containers on disk: ROOT/ID/state.json (+ exec.fifo while created).

enum class status { creating, created, running, stopped };

const char* status_name(status s) {
  switch (s) {
  case status::creating: return "creating";
  case status::created: return "created";
  case status::running: return "running";
  case status::stopped: return "stopped";
  }
  return "stopped";
}

struct container_record {
  std::string id;
  fs::path dir;
  pid_t pid = 0;
  std::uint64_t start_time = 0;
  bool ready = false;  ///< false while create is still setting the process up
  fs::path bundle;
  fs::path rootfs;
  fs::path host_cwd;
  std::string created;
  json annotations = json::object();
  json config = json::object();  ///< config.json's process and root, for exec
};

fs::path fifo_path(const fs::path& dir) { return dir / "exec.fifo"; }

error no_such_container(const std::string& id) {
  return error{errc::not_found, "container " + id + " does not exist"};
}

result<void> save_record(const container_record& rec) {
  json j{{"id", rec.id},
         {"pid", rec.pid},
         {"pid_start_time", rec.start_time},
         {"ready", rec.ready},
         {"bundle", rec.bundle.string()},
         {"rootfs", rec.rootfs.string()},
         {"host_cwd", rec.host_cwd.string()},
         {"created", rec.created},
         {"annotations", rec.annotations},
         {"config", rec.config}};
  return write_atomic(rec.dir / "state.json", dump(j), 0600);
}

result<container_record> load_record(const fs::path& root, const std::string& id) {
  if (!valid_container_id(id))
    return error{errc::invalid, "invalid container id format: " + id};
  container_record rec;
  rec.id = id;
  rec.dir = root / id;
  auto text = read_text(rec.dir / "state.json", max_config_bytes);
  if (!text)
    return no_such_container(id);
  auto j = json::parse(*text, nullptr, false);
  if (!j.is_object() || !j.contains("pid") || !j["pid"].is_number_integer())
    return error{errc::internal, "container " + id + ": corrupt state.json"};
  rec.pid = j["pid"].get<pid_t>();
  rec.start_time = j.value("pid_start_time", std::uint64_t{0});
  rec.ready = j.value("ready", false);
  rec.bundle = j.value("bundle", std::string());
  rec.rootfs = j.value("rootfs", std::string());
  rec.host_cwd = j.value("host_cwd", std::string());
  rec.created = j.value("created", std::string());
  if (auto a = j.find("annotations"); a != j.end() && a->is_object())
    rec.annotations = *a;
  if (auto c = j.find("config"); c != j.end() && c->is_object())
    rec.config = *c;
  return rec;
}

/// runc's rule: the process is gone, a zombie, or another process that got
/// its pid (start time differs): stopped. Otherwise created while the exec
/// fifo exists, running after.
status status_of(const container_record& rec) {
  auto st = read_proc_stat(rec.pid);
  if (!st || st->start_time != rec.start_time || st->state == 'Z' || st->state == 'X')
    return status::stopped;
  if (!rec.ready)
    return status::creating;
  struct stat sb {};
  if (::lstat(fifo_path(rec.dir).c_str(), &sb) == 0)
    return status::created;
  return status::running;
}

std::string owner_of(const fs::path& p) {
  struct stat sb {};
  if (::stat(p.c_str(), &sb) != 0)
    return "";
  if (auto* pw = ::getpwuid(sb.st_uid))
    return pw->pw_name;
  return std::to_string(sb.st_uid);
}

ordered_json state_json(const container_record& rec, status s) {
  ordered_json j{{"ociVersion", oci_version},
                 {"id", rec.id},
                 {"pid", s == status::stopped ? 0 : rec.pid},
                 {"status", status_name(s)},
                 {"bundle", rec.bundle.string()},
                 {"rootfs", rec.rootfs.string()},
                 {"created", rec.created},
                 {"owner", owner_of(rec.dir)}};
  if (!rec.annotations.empty())
    j["annotations"] = rec.annotations;
  return j;
}

/// Sends `sig` to every live process of the container's session (the
/// process and whatever it started that did not leave the session). A pid
/// number stays allocated while any process still has it as session id, so
/// members found here are the container's, unless the whole session died and
/// its leader's pid was reused by a new session leader: that case is
/// recognised (the pid is alive, another process, leading its own session)
/// and left alone.
/// Returns how many processes were signalled.
int signal_session(const container_record& rec, int sig) {
  auto leader = read_proc_stat(rec.pid);
  if (leader && leader->start_time != rec.start_time && leader->session == rec.pid)
    return 0;
  int count = 0;
  DIR* d = ::opendir("/proc");
  if (!d)
    return 0;
  while (auto* e = ::readdir(d)) {
    char* end = nullptr;
    long p = std::strtol(e->d_name, &end, 10);
    if (p <= 0 || *end != '\0')
      continue;
    auto st = read_proc_stat(static_cast<pid_t>(p));
    if (!st || st->session != rec.pid || st->state == 'Z' || st->state == 'X')
      continue;
    if (::kill(static_cast<pid_t>(p), sig) == 0)
      ++count;
  }
  ::closedir(d);
  return count;
}

/// SIGKILL to the whole session, repeated while processes keep appearing
/// (something may fork between the scan and its death).
void kill_session(const container_record& rec) {
  for (int round = 0; round < 100; ++round) {
    if (signal_session(rec, SIGKILL) == 0)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

int pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

/// Waits until the container's process is stopped (dead or a zombie).
/// It is not our child: a pidfd tells when it exits, a bounded poll of /proc
/// where pidfds are missing.
bool wait_stopped(const container_record& rec, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  unique_fd pidfd(pidfd_open(rec.pid));
  for (;;) {
    if (status_of(rec) == status::stopped)
      return true;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return false;
    if (pidfd) {
      struct pollfd pfd {
        pidfd.get(), POLLIN, 0
      };
      ::poll(&pfd, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 1000)));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

/// Stops whatever is left of a container and removes its state.
result<void> destroy(const container_record& rec) {
  kill_session(rec);
  std::error_code ec;
  fs::remove_all(rec.dir, ec);
  if (ec)
    return error{errc::io, "remove " + rec.dir.string() + ": " + ec.message()};
  return {};
}

// ---------------------------------------------------------------------------
// Starting processes.

/// Everything a child needs, prepared before fork() so the child only
/// performs system calls.
struct launch_plan {
  std::vector<std::string> args;
  std::vector<std::string> env;
  fs::path cwd;
  host_process_spec spec;  ///< user, umask, rlimits, no_new_privileges, oom
  bool switch_user = false;
  int preserve_fds = 0;

  std::vector<char*> argv() {
    std::vector<char*> v;
    for (auto& a : args)
      v.push_back(a.data());
    v.push_back(nullptr);
    return v;
  }
  std::vector<char*> envp() {
    std::vector<char*> v;
    for (auto& e : env)
      v.push_back(e.data());
    v.push_back(nullptr);
    return v;
  }
};

bool is_root() { return ::geteuid() == 0; }

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

/// KEY=VALUE entries of `extra` replace same-key entries of `env` (runc exec
/// --env).
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

/// In the forked child: everything up to exec(). Returns an error text, or
/// "" with `warnings` filled in and `resolved` set.
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

/// Child-to-parent reports over a close-on-exec pipe: 'W' + warnings (set
/// up, about to wait or exec) or 'E' + error, each ended by a NUL.
void report(int fd, char tag, const std::string& text) {
  std::string msg(1, tag);
  msg += clip(text);
  msg.push_back('\0');
  write_all(fd, msg);
}

/// Reads one report; nullopt when the pipe closed first.
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

// Signals the runtime forwards to a process it waits for (run, exec), as runc does.
volatile sig_atomic_t forward_to = 0;

void forward_signal(int sig) {
  if (forward_to > 0)
    ::kill(static_cast<pid_t>(forward_to), sig);
}

constexpr int forwarded_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

sigset_t forwarded_set() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : forwarded_signals)
    sigaddset(&set, s);
  return set;
}

/// Waits for our child `pid`, passing on signals; returns its exit code
/// (128 + signal when killed), runc's convention.
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
  return write_atomic(fs::absolute(pid_file), std::to_string(pid), 0644);
}

// ---------------------------------------------------------------------------
// Commands.

struct context {
  fs::path root;
};

result<std::string> require_id(const parsed_options& o, const char* command,
                               std::size_t max_args = 1) {
  if (o.positional.empty())
    return error{errc::invalid, std::string(command) + ": a container id is required"};
  if (o.positional.size() > max_args)
    return error{errc::invalid, std::string(command) + ": too many arguments"};
  if (!valid_container_id(o.positional[0]))
    return error{errc::invalid, "invalid container id format: " + o.positional[0]};
  return o.positional[0];
}

result<void> ensure_root(const fs::path& root) {
  std::error_code ec;
  if (fs::is_directory(root, ec))
    return {};
  fs::create_directories(root, ec);
  if (ec)
    return error{errc::io, "create root " + root.string() + ": " + ec.message()};
  ::chmod(root.c_str(), 0700);
  return {};
}

/// A created container whose process waits on the exec fifo; the caller is
/// still its parent.
struct created_container {
  container_record rec;
  pid_t pid = 0;
};

result<created_container> create_container(const context& ctx, const std::string& id,
                                           const fs::path& bundle_arg, const std::string& pid_file,
                                           int preserve_fds) {
  std::error_code ec;
  const fs::path bundle =
      fs::absolute(bundle_arg.empty() ? fs::current_path(ec) : bundle_arg, ec).lexically_normal();
  auto text = read_config(bundle);
  if (!text)
    return text.err();
  auto j = parse_json_text(*text);
  if (!j)
    return error{errc::invalid, "bundle " + bundle.string() + ": " + j.err().message};
  auto spec = spec_from_json(*j, bundle);
  if (!spec)
    return error{spec.err().code, "bundle " + bundle.string() + ": " + spec.err().message};
  if (auto r = ensure_root(ctx.root); !r)
    return r.err();

  container_record rec;
  rec.id = id;
  rec.dir = ctx.root / id;
  rec.bundle = bundle;
  rec.rootfs = spec->rootfs;
  rec.host_cwd = host_working_dir(*spec, bundle);
  rec.created = rfc3339(std::chrono::system_clock::now(), true);
  rec.annotations = json(spec->annotations);
  rec.config = json{{"process", (*j)["process"]}};
  if (j->contains("root"))
    rec.config["root"] = (*j)["root"];

  if (::mkdir(rec.dir.c_str(), 0700) != 0) {
    if (errno == EEXIST)
      return error{errc::already_exists, "container with id " + id + " already exists"};
    return error::from_errno("mkdir " + rec.dir.string());
  }
  auto fail = [&](error e) -> error {
    fs::remove_all(rec.dir, ec);
    return e;
  };
  const fs::path fifo = fifo_path(rec.dir);
  if (::mkfifo(fifo.c_str(), 0600) != 0)
    return fail(error::from_errno("mkfifo " + fifo.string()));

  launch_plan plan = make_plan(spec->args, *spec, rec.host_cwd);
  plan.preserve_fds = preserve_fds;
  auto argv = plan.argv();
  auto envp = plan.envp();
  auto sync = make_pipe();
  if (!sync)
    return fail(sync.err());

  pid_t pid = ::fork();
  if (pid < 0)
    return fail(error::from_errno("fork"));
  if (pid == 0) {
    sync->first.reset();
    const int report_fd = sync->second.get();
    // A session of its own: the container's processes are its members
    // (kill --all, delete), and it leaves the caller's terminal and group.
    ::setsid();
    // O_RDWR never blocks and keeps a writer open, so start's non-blocking
    // open for writing succeeds exactly while this process is alive, and the
    // read below waits for start's byte. Opened before any user switch: the
    // fifo is ours.
    int fifo_fd = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);
    if (fifo_fd < 0) {
      report(report_fd, 'E', "open " + fifo.string() + ": " + std::strerror(errno));
      ::_exit(1);
    }
    std::string warnings, resolved;
    std::string err = setup_child(plan, warnings, resolved);
    if (!err.empty()) {
      report(report_fd, 'E', err);
      ::_exit(1);
    }
    report(report_fd, 'W', warnings);
    ::close(report_fd);
    char go = 0;
    for (;;) {
      ssize_t n = ::read(fifo_fd, &go, 1);
      if (n == 1)
        break;
      if (n < 0 && errno == EINTR)
        continue;
      ::_exit(1);
    }
    ::execve(resolved.c_str(), argv.data(), envp.data());
    std::string msg =
        std::string(program_name) + ": exec " + resolved + ": " + std::strerror(errno) + "\n";
    write_all(STDERR_FILENO, msg);
    ::_exit(127);
  }

  sync->second.reset();
  auto kill_child = [&] {
    ::kill(pid, SIGKILL);
    reap(pid);
  };
  // Recorded at once (not ready yet: status "creating"), so that a create
  // killed half-way leaves a process that delete can find.
  rec.pid = pid;
  if (auto st = read_proc_stat(pid))
    rec.start_time = st->start_time;
  if (auto r = save_record(rec); !r) {
    kill_child();
    return fail(r.err());
  }
  std::string buffer;
  auto msg = read_report(sync->first.get(), buffer);
  if (!msg || msg->empty() || (*msg)[0] != 'W') {
    if (msg && !msg->empty() && (*msg)[0] == 'E') {
      reap(pid);
      return fail(error{errc::internal, msg->substr(1)});
    }
    kill_child();
    return fail(error{errc::internal, "container process died while being set up"});
  }
  log_warnings(msg->substr(1));
  rec.ready = true;
  if (auto r = save_record(rec); !r) {
    kill_child();
    return fail(r.err());
  }
  if (auto r = write_pid_file(pid_file, pid); !r) {
    kill_child();
    return fail(r.err());
  }
  return created_container{std::move(rec), pid};
}

result<void> start_container(const container_record& rec) {
  switch (status_of(rec)) {
  case status::created: break;
  case status::creating:
    return error{errc::conflict, "container " + rec.id + " is still being created"};
  case status::running: return error{errc::conflict, "cannot start an already running container"};
  case status::stopped: return error{errc::conflict, "cannot start a container that has stopped"};
  }
  const fs::path fifo = fifo_path(rec.dir);
  unique_fd fd(::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    if (errno == ENXIO)  // no reader: the process is gone
      return error{errc::conflict, "cannot start a container that has stopped"};
    if (errno == ENOENT)
      return error{errc::conflict, "cannot start an already running container"};
    return error::from_errno("open " + fifo.string());
  }
  const char go = '0';
  ssize_t n;
  do {
    n = ::write(fd.get(), &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1)
    return error::from_errno("write " + fifo.string());
  ::unlink(fifo.c_str());
  return {};
}

const std::vector<option_def> create_options{
    {"bundle", "b", true},      {"pid-file", "", true},  {"console-socket", "", true},
    {"preserve-fds", "", true}, {"no-pivot", "", false}, {"no-new-keyring", "", false},
    {"detach", "d", false},     {"keep", "", false}};

result<int> preserve_fds_of(const parsed_options& o) {
  if (!o.has("preserve-fds"))
    return 0;
  try {
    int n = std::stoi(o.get("preserve-fds"));
    if (n >= 0 && n < 1024)
      return n;
  } catch (const std::exception&) {
  }
  return error{errc::invalid, "--preserve-fds: not a count of descriptors"};
}

result<int> cmd_create(const context& ctx, const std::vector<std::string>& args, bool run) {
  auto o = parse_options(args, create_options);
  if (!o)
    return o.err();
  auto id = require_id(*o, run ? "run" : "create");
  if (!id)
    return id.err();
  if (!run && o->has("detach"))
    return error{errc::invalid, "flag provided but not defined: -detach"};
  auto preserve = preserve_fds_of(*o);
  if (!preserve)
    return preserve.err();
  auto c = create_container(ctx, *id, o->get("bundle"), o->get("pid-file"), *preserve);
  if (!c)
    return c.err();
  if (!run)
    return 0;
  if (auto r = start_container(c->rec); !r) {
    (void)destroy(c->rec);
    reap(c->pid);
    return r.err();
  }
  if (o->has("detach"))
    return 0;
  // Foreground: runc waits, passes signals on, and deletes the container.
  sigset_t set = forwarded_set();
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  int code = wait_forwarding(c->pid);
  (void)destroy(c->rec);
  return code;
}

result<int> cmd_start(const context& ctx, const std::vector<std::string>& args) {
  auto o = parse_options(args, {});
  if (!o)
    return o.err();
  auto id = require_id(*o, "start");
  if (!id)
    return id.err();
  auto rec = load_record(ctx.root, *id);
  if (!rec)
    return rec.err();
  if (auto r = start_container(*rec); !r)
    return r.err();
  return 0;
}

result<int> cmd_state(const context& ctx, const std::vector<std::string>& args) {
  auto o = parse_options(args, {});
  if (!o)
    return o.err();
  auto id = require_id(*o, "state");
  if (!id)
    return id.err();
  auto rec = load_record(ctx.root, *id);
  if (!rec)
    return rec.err();
  std::cout << state_json(*rec, status_of(*rec))
                   .dump(2, ' ', false, ordered_json::error_handler_t::replace)
            << "\n";
  return 0;
}

result<int> cmd_kill(const context& ctx, const std::vector<std::string>& args) {
  auto o = parse_options(args, {{"all", "a", false}});
  if (!o)
    return o.err();
  auto id = require_id(*o, "kill", 2);
  if (!id)
    return id.err();
  auto sig = parse_signal(o->positional.size() > 1 ? o->positional[1] : "SIGTERM");
  if (!sig)
    return sig.err();
  auto rec = load_record(ctx.root, *id);
  if (!rec)
    return rec.err();
  const status s = status_of(*rec);
  if (o->has("all")) {
    // runc signals whatever is left in the cgroup, even once init is gone;
    // here that is the session, which init leads (it cannot leave it).
    signal_session(*rec, *sig);
    return 0;
  }
  if (s == status::stopped)
    return error{errc::conflict, "container not running"};
  if (::kill(rec->pid, *sig) != 0) {
    if (errno == ESRCH)
      return error{errc::conflict, "container not running"};
    return error::from_errno("kill " + std::to_string(rec->pid));
  }
  return 0;
}

result<int> cmd_delete(const context& ctx, const std::vector<std::string>& args) {
  auto o = parse_options(args, {{"force", "f", false}});
  if (!o)
    return o.err();
  auto id = require_id(*o, "delete");
  if (!id)
    return id.err();
  const bool force = o->has("force");
  auto rec = load_record(ctx.root, *id);
  if (!rec) {
    if (rec.err().code != errc::not_found)
      return rec.err();
    // As runc: a directory without state (an aborted create) is removed;
    // a missing container is an error unless forced.
    std::error_code ec;
    fs::remove_all(ctx.root / *id, ec);
    if (force)
      return 0;
    return rec.err();
  }
  const status s = status_of(*rec);
  if (s == status::running && !force)
    return error{errc::conflict,
                 "cannot delete container " + *id + " that is not stopped: running"};
  if (s != status::stopped) {
    // Created (or creating) containers are killed even without --force, as
    // runc does: they never ran anything.
    ::kill(rec->pid, SIGKILL);
    kill_session(*rec);
    if (!wait_stopped(*rec, kill_wait))
      return error{errc::unavailable, "container " + *id + ": process " + std::to_string(rec->pid) +
                                          " still running after SIGKILL"};
  }
  if (auto r = destroy(*rec); !r)
    return r.err();
  return 0;
}

result<int> cmd_list(const context& ctx, const std::vector<std::string>& args) {
  auto o = parse_options(args, {{"format", "f", true}, {"quiet", "q", false}});
  if (!o)
    return o.err();
  if (!o->positional.empty())
    return error{errc::invalid, "list: too many arguments"};
  const std::string format = o->get("format", "table");
  if (format != "table" && format != "json")
    return error{errc::invalid, "invalid format option"};
  std::vector<std::pair<container_record, status>> found;
  std::error_code ec;
  std::vector<std::string> ids;
  for (fs::directory_iterator it(ctx.root, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code dec;
    if (it->is_directory(dec) && valid_container_id(it->path().filename().string()))
      ids.push_back(it->path().filename().string());
  }
  std::sort(ids.begin(), ids.end());
  for (const auto& id : ids)
    if (auto rec = load_record(ctx.root, id))
      found.emplace_back(std::move(*rec), status::stopped);
  for (auto& [rec, s] : found)
    s = status_of(rec);

  if (o->has("quiet")) {
    for (const auto& [rec, s] : found)
      std::cout << rec.id << "\n";
    return 0;
  }
  if (format == "json") {
    if (found.empty()) {
      std::cout << "null\n";  // runc's output for an empty list
      return 0;
    }
    ordered_json arr = ordered_json::array();
    for (const auto& [rec, s] : found)
      arr.push_back(state_json(rec, s));
    std::cout << arr.dump(-1, ' ', false, ordered_json::error_handler_t::replace) << "\n";
    return 0;
  }
  std::printf("%-24s %-8s %-10s %-40s %-32s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED",
              "OWNER");
  for (const auto& [rec, s] : found)
    std::printf("%-24s %-8d %-10s %-40s %-32s %s\n", rec.id.c_str(),
                s == status::stopped ? 0 : rec.pid, status_name(s), rec.bundle.c_str(),
                rec.created.c_str(), owner_of(rec.dir).c_str());
  return 0;
}

/// exec failures of the runtime itself exit 255, as runc's do, so that they
/// differ from most commands' own codes.
constexpr int exec_failure = 255;

result<int> cmd_exec(const context& ctx, const std::vector<std::string>& args) {
  auto o = parse_options(args, {{"cwd", "", true},
                                {"env", "e", true},
                                {"pid-file", "", true},
                                {"detach", "d", false},
                                {"user", "u", true},
                                {"additional-gids", "g", true},
                                {"no-new-privs", "", false},
                                {"tty", "t", false},
                                {"console-socket", "", true},
                                {"process", "p", true},
                                {"cap", "c", true},
                                {"apparmor", "", true},
                                {"process-label", "", true},
                                {"preserve-fds", "", true},
                                {"ignore-paused", "", false},
                                {"cgroup", "", true}});
  if (!o)
    return o.err();
  if (o->has("tty"))
    return error{errc::unsupported, "exec --tty: the process back-end has no terminals"};
  if (o->has("process"))
    return error{errc::unsupported,
                 "exec --process is not supported by " + std::string(program_name)};
  if (o->positional.empty())
    return error{errc::invalid, "exec: a container id is required"};
  const std::string id = o->positional[0];
  std::vector<std::string> command(o->positional.begin() + 1, o->positional.end());
  if (command.empty() || command[0].empty())
    return error{errc::invalid, "exec: the command must not be empty"};
  auto preserve = preserve_fds_of(*o);
  if (!preserve)
    return preserve.err();
  auto rec = load_record(ctx.root, id);
  if (!rec)
    return rec.err();
  const status s = status_of(*rec);
  if (s == status::stopped)
    return error{errc::conflict, "cannot exec in a stopped container (container not running)"};
  if (s == status::creating)
    return error{errc::conflict, "container " + id + " is still being created"};
  auto spec = spec_from_json(rec->config, rec->bundle);
  if (!spec)
    return error{errc::internal, "container " + id + ": stored " + spec.err().message};

  merge_env(spec->env, o->all("env"));
  if (o->has("no-new-privs"))
    spec->no_new_privileges = true;
  if (o->has("user")) {
    const std::string u = o->get("user");
    try {
      std::size_t used = 0;
      auto colon = u.find(':');
      spec->uid = static_cast<uid_t>(std::stoul(u.substr(0, colon), &used));
      if (used != (colon == std::string::npos ? u.size() : colon))
        throw std::invalid_argument(u);
      if (colon != std::string::npos) {
        spec->gid = static_cast<gid_t>(std::stoul(u.substr(colon + 1), &used));
        if (used != u.size() - colon - 1)
          throw std::invalid_argument(u);
      }
    } catch (const std::exception&) {
      return error{errc::invalid, "exec --user " + u + ": expected UID[:GID] in numbers"};
    }
  }
  for (const auto& g : o->all("additional-gids")) {
    try {
      spec->additional_gids.push_back(static_cast<gid_t>(std::stoul(g)));
    } catch (const std::exception&) {
      return error{errc::invalid, "exec --additional-gids " + g + ": not a number"};
    }
  }
  fs::path cwd = o->has("cwd") ? fs::path(o->get("cwd")) : rec->host_cwd;
  if (cwd.empty())
    cwd = rec->bundle;
  launch_plan plan = make_plan(command, *spec, cwd);
  plan.preserve_fds = *preserve;
  auto argv = plan.argv();
  auto envp = plan.envp();
  auto sync = make_pipe();
  if (!sync)
    return sync.err();

  // Blocked until the child's pid is known to the forwarding handler.
  sigset_t set = forwarded_set();
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  pid_t pid = ::fork();
  if (pid < 0)
    return error::from_errno("fork");
  if (pid == 0) {
    sync->first.reset();
    const int report_fd = sync->second.get();
    std::string warnings, resolved;
    std::string err = setup_child(plan, warnings, resolved);
    if (!err.empty()) {
      report(report_fd, 'E', err);
      ::_exit(exec_failure);
    }
    report(report_fd, 'W', warnings);
    ::execve(resolved.c_str(), argv.data(), envp.data());
    report(report_fd, 'E', "exec " + resolved + ": " + std::strerror(errno));
    ::_exit(exec_failure);
  }
  sync->second.reset();
  // The pipe closes when the command execs (close-on-exec) or the child dies.
  std::string buffer;
  while (auto msg = read_report(sync->first.get(), buffer)) {
    if (msg->empty())
      continue;
    if ((*msg)[0] == 'E') {
      reap(pid);
      return error{errc::internal, msg->substr(1)};
    }
    log_warnings(msg->substr(1));
  }
  if (auto r = write_pid_file(o->get("pid-file"), pid); !r)
    log_warning(r.err().message);
  if (o->has("detach"))
    return 0;
  return wait_forwarding(pid);
}

void print_usage() {
  std::cout << program_name
            << ": runs OCI bundles as plain host processes (deckhand's process back-end)\n"
               "\nusage: "
            << program_name
            << " [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...\n"
               "\ncommands (runc's syntax):\n"
               "  create [--bundle DIR] [--pid-file FILE] ID\n"
               "  start ID\n"
               "  run [--detach] [--bundle DIR] [--pid-file FILE] ID\n"
               "  state ID\n"
               "  kill [--all] ID [SIGNAL]\n"
               "  delete [--force] ID\n"
               "  list [--format table|json] [--quiet]\n"
               "  exec [--cwd DIR] [--env K=V]... [--pid-file FILE] [--detach]\n"
               "       [--user UID[:GID]] ID CMD [ARG...]\n"
               "\nThe process runs on the host's filesystem (root.path is ignored), in\n"
               "process.cwd if that directory exists on the host, else in the bundle\n"
               "directory. No namespaces, mounts, cgroups or capabilities: no privileges\n"
               "needed. process.user applies only when run as root.\n";
}

}  // namespace

// ---------------------------------------------------------------------------
// Public helpers.

result<host_process_spec> parse_host_process_spec(const std::string& config_json,
                                                  const fs::path& bundle) {
  auto j = parse_json_text(config_json);
  if (!j)
    return j.err();
  return spec_from_json(*j, bundle);
}

result<host_process_spec> load_host_process_spec(const fs::path& bundle) {
  auto text = read_config(bundle);
  if (!text)
    return text.err();
  auto spec = parse_host_process_spec(*text, bundle);
  if (!spec)
    return error{spec.err().code, "bundle " + bundle.string() + ": " + spec.err().message};
  return spec;
}

fs::path host_working_dir(const host_process_spec& spec, const fs::path& bundle) {
  std::error_code ec;
  if (!spec.cwd.empty() && spec.cwd[0] == '/' && fs::is_directory(spec.cwd, ec))
    return spec.cwd;
  return bundle;
}

result<int> parse_signal(std::string_view text) {
  std::string s(text);
  if (s.empty())
    return error{errc::invalid, "empty signal"};
  if (std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); })) {
    if (s.size() <= 3) {
      int n = std::stoi(s);
      if (n >= 1 && n < NSIG)
        return n;
    }
    return error{errc::invalid, "invalid signal: " + s};
  }
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (s.rfind("SIG", 0) == 0)
    s = s.substr(3);
  static const std::pair<const char*, int> names[] = {
      {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},     {"ILL", SIGILL},
      {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"IOT", SIGIOT},       {"BUS", SIGBUS},
      {"FPE", SIGFPE},       {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},
      {"USR2", SIGUSR2},     {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM},
      {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP},
      {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
      {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
      {"WINCH", SIGWINCH},   {"IO", SIGIO},     {"POLL", SIGPOLL},     {"PWR", SIGPWR},
      {"SYS", SIGSYS},
  };
  for (const auto& [name, num] : names)
    if (s == name)
      return num;
  return error{errc::invalid, "unknown signal " + std::string(text)};
}

bool valid_container_id(std::string_view id) {
  if (id.empty() || id.size() > 1024 || id == "." || id == "..")
    return false;
  return std::all_of(id.begin(), id.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '+' || c == '-' || c == '.';
  });
}

fs::path default_process_runtime_root() {
  if (is_root())
    return "/run/deckhand-process-oci";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg == '/')
    return fs::path(xdg) / "deckhand-process-oci";
  return fs::temp_directory_path() / ("deckhand-process-oci-" + std::to_string(::geteuid()));
}

int process_runtime_main(int argc, char** argv) {
  // A reader that went away must not kill us half-way through a state change.
  ::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  const std::vector<option_def> globals{{"root", "", true},
                                        {"log", "", true},
                                        {"log-format", "", true},
                                        {"debug", "", false},
                                        {"systemd-cgroup", "", false},
                                        {"rootless", "", true},
                                        {"criu", "", true},
                                        {"version", "v", false},
                                        {"help", "h", false}};
  auto g = parse_options(args, globals);
  if (!g) {
    log_error(g.err().message);
    return 1;
  }
  if (g->has("version")) {
    std::cout << program_name << " version " << program_version << "\nspec: " << oci_version
              << "\n";
    return 0;
  }
  if (g->has("help") || g->positional.empty()) {
    print_usage();
    return g->positional.empty() && !g->has("help") ? 1 : 0;
  }
  unique_fd log_fd;
  if (g->has("log")) {
    auto fd = open_fd(g->get("log"), O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (!fd) {
      log_error("open log file: " + fd.err().message);
      return 1;
    }
    log_fd = std::move(*fd);
    sink().fd = log_fd.get();
    sink().json_format = g->get("log-format", "text") == "json";
  }
  context ctx;
  ctx.root = g->has("root") ? fs::path(g->get("root")) : default_process_runtime_root();
  {
    std::error_code ec;
    ctx.root = fs::absolute(ctx.root, ec);
  }

  const std::string command = g->positional[0];
  const std::vector<std::string> rest(g->positional.begin() + 1, g->positional.end());
  result<int> code = 0;
  try {
    if (command == "create")
      code = cmd_create(ctx, rest, false);
    else if (command == "run")
      code = cmd_create(ctx, rest, true);
    else if (command == "start")
      code = cmd_start(ctx, rest);
    else if (command == "state")
      code = cmd_state(ctx, rest);
    else if (command == "kill")
      code = cmd_kill(ctx, rest);
    else if (command == "delete")
      code = cmd_delete(ctx, rest);
    else if (command == "list")
      code = cmd_list(ctx, rest);
    else if (command == "exec")
      code = cmd_exec(ctx, rest);
    else if (command == "pause" || command == "resume" || command == "ps" || command == "events" ||
             command == "update" || command == "checkpoint" || command == "restore" ||
             command == "spec" || command == "features")
      code =
          error{errc::unsupported, command + " is not supported by " + std::string(program_name)};
    else
      code = error{errc::invalid, "unknown command " + quote_text(command)};
  } catch (const std::exception& e) {
    code = error{errc::internal, e.what()};
  }
  std::cout.flush();
  if (!code) {
    log_error(code.err().message);
    return command == "exec" ? exec_failure : 1;
  }
  return *code;
}

}  // namespace deckhand::oci
