#include "deckhand/oci/cgroups.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

namespace deckhand::oci {

namespace {

namespace fs = std::filesystem;

/// One mounted cgroup hierarchy.
struct hierarchy {
  fs::path mount_point;
  bool v2 = false;
  std::vector<std::string> controllers;  ///< v1 only: "memory", "cpu", "name=systemd", ...
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : s) {
    if (ch == sep) {
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(ch);
    }
  }
  out.push_back(std::move(cur));
  return out;
}

/// Every cgroup and cgroup2 mount of this mount namespace, from mountinfo.
/// Mount points with escaped characters (spaces) are not expected for
/// cgroups and are skipped.
std::vector<hierarchy> hierarchies() {
  std::vector<hierarchy> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos)
      continue;
    std::istringstream pre(line.substr(0, dash));
    std::string id, parent, devno, root, point;
    if (!(pre >> id >> parent >> devno >> root >> point) || point.find('\\') != std::string::npos)
      continue;
    std::istringstream post(line.substr(dash + 3));
    std::string fstype, source, superopts;
    if (!(post >> fstype >> source >> superopts))
      continue;
    if (fstype == "cgroup2") {
      out.push_back({point, true, {}});
    } else if (fstype == "cgroup") {
      hierarchy h{point, false, {}};
      for (auto& opt : split(superopts, ','))
        if (opt != "rw" && opt != "ro" && opt.find("release_agent") != 0 &&
            opt != "clone_children" && opt != "noprefix" && opt != "xattr")
          h.controllers.push_back(opt);
      out.push_back(std::move(h));
    }
  }
  return out;
}

/// A cgroups path must be absolute and must not climb out of the hierarchy.
bool safe_cgroup_path(const std::string& p) {
  if (p.empty() || p.front() != '/')
    return false;
  for (auto& part : split(p, '/'))
    if (part == "." || part == "..")
      return false;
  return true;
}

/// The directory of `cgroup_path` in the v1 hierarchy that carries
/// `controller`, or in the unified hierarchy when `controller` is empty.
std::optional<fs::path> dir_of(const std::vector<hierarchy>& hs, const std::string& controller,
                               const std::string& cgroup_path) {
  for (const auto& h : hs) {
    bool match = controller.empty() ? h.v2
                                    : !h.v2 && std::find(h.controllers.begin(), h.controllers.end(),
                                                         controller) != h.controllers.end();
    if (match)
      return h.mount_point / cgroup_path.substr(1);
  }
  return std::nullopt;
}

std::optional<std::string> read_small(const fs::path& file) {
  std::ifstream in(file);
  if (!in)
    return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<uint64_t> parse_u64(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size())
    return std::nullopt;
  return v;
}

std::optional<uint64_t> read_u64(const fs::path& file) {
  auto text = read_small(file);
  if (!text)
    return std::nullopt;
  return parse_u64(*text);
}

/// The value of `key` in a flat-keyed file ("key value" per line), as in
/// memory.stat, memory.events, memory.oom_control and cpu.stat.
std::optional<uint64_t> read_key(const fs::path& file, const std::string& key) {
  std::ifstream in(file);
  std::string k;
  std::string v;
  while (in >> k >> v)
    if (k == key)
      return parse_u64(v);
  return std::nullopt;
}

error write_value(const fs::path& file, const std::string& value) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return error::from_errno("open " + file.string());
  ssize_t n = ::write(fd, value.data(), value.size());
  int saved = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size()))
    return error::from_errno("write " + value + " to " + file.string(), n < 0 ? saved : EIO);
  return {};
}

error make_dirs(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return error::from_errno("mkdir " + dir.string(), ec.value());
  return {};
}

bool valid_uid(const std::string& uid) {
  return !uid.empty() && uid != "." && uid != ".." && uid.find('/') == std::string::npos &&
         uid.find('\0') == std::string::npos;
}

/// SIGKILLs every process still in the cgroup `dir` (not below it).
void kill_cgroup_procs(const fs::path& dir) {
  std::ifstream in(dir / "cgroup.procs");
  for (long pid; in >> pid;)
    if (pid > 1)
      ::kill(static_cast<pid_t>(pid), SIGKILL);
}

/// Removes `dir` and the cgroups below it, children first: cgroup
/// directories go with rmdir (their control files cannot be unlinked).
/// The pod is going, so whatever still runs in it is killed: typically a
/// `runc init` left waiting on its exec FIFO by a `runc run` that was
/// interrupted (its supervisor killed mid-start), which no `runc delete`
/// knows about. A cgroup whose last process has just been killed stays busy
/// until the kernel has finished its exit, so EBUSY is retried for a
/// bounded time.
error remove_cgroup_tree(const fs::path& dir) {
  std::vector<fs::path> children;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (auto* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..")
        continue;
      if (e->d_type == DT_DIR)
        children.push_back(dir / name);
    }
    ::closedir(d);
  } else {
    if (errno == ENOENT)
      return {};
    return error::from_errno("opendir " + dir.string());
  }
  for (const auto& c : children)
    if (auto err = remove_cgroup_tree(c))
      return err;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (;;) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT)
      return {};
    if (errno != EBUSY || std::chrono::steady_clock::now() >= deadline)
      return error::from_errno("rmdir " + dir.string());
    kill_cgroup_procs(dir);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

/// cgroup v1 cpu.shares to v2 cpu.weight, as runc converts them.
uint64_t shares_to_weight(uint64_t shares) {
  if (shares == 0)
    return 0;
  shares = std::clamp<uint64_t>(shares, 2, 262144);
  return 1 + ((shares - 2) * 9999) / 262142;
}

}  // namespace

std::string pod_cgroup_path(const std::string& pod_uid) { return "/deckhand/pod" + pod_uid; }

std::string container_cgroup_path(const std::string& pod_uid, const std::string& container) {
  return pod_cgroup_path(pod_uid) + "/" + container;
}

cgroup_mode detect_cgroup_mode() {
  struct statfs st {};
  if (::statfs("/sys/fs/cgroup", &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC)
    return cgroup_mode::v2;
  if (::statfs("/sys/fs/cgroup/unified", &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC)
    return cgroup_mode::hybrid;
  return cgroup_mode::v1;
}

uint64_t cgroup_oom_kills(const std::string& cgroup_path) {
  if (!safe_cgroup_path(cgroup_path))
    return 0;
  auto hs = hierarchies();
  if (detect_cgroup_mode() == cgroup_mode::v2) {
    auto dir = dir_of(hs, "", cgroup_path);
    return dir ? read_key(*dir / "memory.events", "oom_kill").value_or(0) : 0;
  }
  auto dir = dir_of(hs, "memory", cgroup_path);
  return dir ? read_key(*dir / "memory.oom_control", "oom_kill").value_or(0) : 0;
}

result<cgroup_stats> read_cgroup_stats(const std::string& cgroup_path) {
  if (!safe_cgroup_path(cgroup_path))
    return error{errc::invalid, "cgroup path \"" + cgroup_path +
                                    "\" is not absolute or "
                                    "contains . or .."};
  auto hs = hierarchies();
  cgroup_stats s;
  std::error_code ec;
  if (detect_cgroup_mode() == cgroup_mode::v2) {
    auto dir = dir_of(hs, "", cgroup_path);
    if (!dir || !fs::is_directory(*dir, ec))
      return error{errc::not_found, "no cgroup " + cgroup_path};
    s.cpu_usage_ns = read_key(*dir / "cpu.stat", "usage_usec").value_or(0) * 1000;
    s.memory_usage_bytes = read_u64(*dir / "memory.current").value_or(0);
    auto inactive = read_key(*dir / "memory.stat", "inactive_file").value_or(0);
    s.memory_working_set_bytes =
        s.memory_usage_bytes > inactive ? s.memory_usage_bytes - inactive : 0;
    s.memory_limit_bytes = read_u64(*dir / "memory.max").value_or(0);  // "max" -> 0
    s.pids = read_u64(*dir / "pids.current").value_or(0);
    return s;
  }
  auto mem = dir_of(hs, "memory", cgroup_path);
  if (!mem || !fs::is_directory(*mem, ec))
    return error{errc::not_found, "no cgroup " + cgroup_path};
  s.memory_usage_bytes = read_u64(*mem / "memory.usage_in_bytes").value_or(0);
  // cAdvisor on v1 subtracts total_inactive_file (hierarchical).
  auto inactive = read_key(*mem / "memory.stat", "total_inactive_file").value_or(0);
  s.memory_working_set_bytes =
      s.memory_usage_bytes > inactive ? s.memory_usage_bytes - inactive : 0;
  auto limit = read_u64(*mem / "memory.limit_in_bytes").value_or(0);
  // v1 reports "unlimited" as PAGE_COUNTER_MAX pages (~2^63 rounded down).
  s.memory_limit_bytes = limit >= (uint64_t{1} << 62) ? 0 : limit;
  if (auto acct = dir_of(hs, "cpuacct", cgroup_path))
    s.cpu_usage_ns = read_u64(*acct / "cpuacct.usage").value_or(0);
  if (auto pids = dir_of(hs, "pids", cgroup_path))
    s.pids = read_u64(*pids / "pids.current").value_or(0);
  return s;
}

std::vector<cgroup_file_value> cgroup_limit_files(const resource_limits& l, cgroup_mode mode) {
  std::vector<cgroup_file_value> out;
  const std::string period = std::to_string(l.cpu_period_us.value_or(100000));
  if (mode == cgroup_mode::v2) {
    if (l.memory_limit_bytes)
      out.push_back({"memory", "memory.max", std::to_string(*l.memory_limit_bytes)});
    if (l.cpu_shares)
      out.push_back({"cpu", "cpu.weight", std::to_string(shares_to_weight(*l.cpu_shares))});
    if (l.cpu_quota_us)
      out.push_back({"cpu", "cpu.max", std::to_string(*l.cpu_quota_us) + " " + period});
    if (l.pids_limit)
      out.push_back({"pids", "pids.max", std::to_string(*l.pids_limit)});
    return out;
  }
  if (l.memory_limit_bytes)
    out.push_back({"memory", "memory.limit_in_bytes", std::to_string(*l.memory_limit_bytes)});
  if (l.cpu_shares)
    out.push_back({"cpu", "cpu.shares", std::to_string(*l.cpu_shares)});
  if (l.cpu_quota_us) {
    // The period first: a quota is checked against the current period.
    out.push_back({"cpu", "cpu.cfs_period_us", period});
    out.push_back({"cpu", "cpu.cfs_quota_us", std::to_string(*l.cpu_quota_us)});
  }
  if (l.pids_limit)
    out.push_back({"pids", "pids.max", std::to_string(*l.pids_limit)});
  return out;
}

error apply_pod_cgroup_limits(const std::string& pod_uid, const resource_limits& limits) {
  if (!valid_uid(pod_uid))
    return {errc::invalid, "invalid pod uid \"" + pod_uid + "\""};
  const auto path = pod_cgroup_path(pod_uid);
  const auto mode = detect_cgroup_mode();
  const auto files = cgroup_limit_files(limits, mode);
  if (files.empty())
    return {};
  auto hs = hierarchies();

  if (mode == cgroup_mode::v2) {
    auto root = dir_of(hs, "", "/");
    if (!root)
      return {errc::unsupported, "no cgroup2 hierarchy mounted"};
    auto dir = *root / path.substr(1);
    if (auto err = make_dirs(dir))
      return err;
    // Controllers must be enabled in the subtree_control of every ancestor
    // (and of the pod's cgroup, for the containers below it) for the files
    // to exist.
    std::vector<std::string> controllers;
    for (const auto& f : files)
      if (std::find(controllers.begin(), controllers.end(), f.controller) == controllers.end())
        controllers.push_back(f.controller);
    for (fs::path p = *root;;) {
      for (const auto& c : controllers)
        if (auto err = write_value(p / "cgroup.subtree_control", "+" + c))
          return err;
      if (p == dir)
        break;
      p /= *dir.lexically_relative(p).begin();
    }
    for (const auto& f : files)
      if (auto err = write_value(dir / f.file, f.value))
        return err;
    return {};
  }

  for (const auto& f : files) {
    auto d = dir_of(hs, f.controller, path);
    if (!d)
      return {errc::unsupported, "no cgroup v1 hierarchy for " + f.controller};
    if (auto err = make_dirs(*d))
      return err;
    if (auto err = write_value(*d / f.file, f.value))
      return err;
  }
  return {};
}

error remove_pod_cgroups(const std::string& pod_uid) {
  if (!valid_uid(pod_uid))
    return {errc::invalid, "invalid pod uid \"" + pod_uid + "\""};
  const auto rel = pod_cgroup_path(pod_uid).substr(1);
  error first;
  for (const auto& h : hierarchies())
    if (auto err = remove_cgroup_tree(h.mount_point / rel); err && !first)
      first = std::move(err);
  return first;
}

}  // namespace deckhand::oci
