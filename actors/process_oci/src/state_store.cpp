/// Containers on disk: ROOT/ID/state.json (+ exec.fifo while created), their
/// status from /proc, and signalling, waiting for and destroying them.

#include "process_runtime_internal.hpp"

namespace deckhand::process_oci {

namespace {

error no_such_container(const std::string& id) {
  return error{errc::not_found, "container " + id + " does not exist"};
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

}  // namespace

std::optional<proc_stat> read_proc_stat(pid_t pid) {
  if (pid <= 0)
    return std::nullopt;
  auto text = fsutil::read_file("/proc/" + std::to_string(pid) + "/stat", 1u << 16);
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

const char* status_name(status s) {
  switch (s) {
  case status::creating: return "creating";
  case status::created: return "created";
  case status::running: return "running";
  case status::stopped: return "stopped";
  }
  return "stopped";
}

fs::path fifo_path(const fs::path& dir) { return dir / "exec.fifo"; }

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
  return fsutil::write_file_atomic(rec.dir / "state.json", dump(j),
                                   fsutil::durability::machine_crash, 0600);
}

result<container_record> load_record(const fs::path& root, const std::string& id) {
  if (!valid_container_id(id))
    return error{errc::invalid, "invalid container id format: " + id};
  container_record rec;
  rec.id = id;
  rec.dir = root / id;
  auto text = fsutil::read_file(rec.dir / "state.json", max_config_bytes);
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

void kill_session(const container_record& rec) {
  for (int round = 0; round < 100; ++round) {
    if (signal_session(rec, SIGKILL) == 0)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

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

result<void> destroy(const container_record& rec) {
  kill_session(rec);
  std::error_code ec;
  fs::remove_all(rec.dir, ec);
  if (ec)
    return error{errc::io, "remove " + rec.dir.string() + ": " + ec.message()};
  return {};
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

}  // namespace deckhand::process_oci
