#include "deckhand/oci/bundle.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <system_error>

#include <nlohmann/json.hpp>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/oci/seccomp.hpp"

namespace deckhand::oci {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

const std::vector<std::string>& all_capabilities() {
  static const std::vector<std::string> caps{"CAP_CHOWN",
                                             "CAP_DAC_OVERRIDE",
                                             "CAP_DAC_READ_SEARCH",
                                             "CAP_FOWNER",
                                             "CAP_FSETID",
                                             "CAP_KILL",
                                             "CAP_SETGID",
                                             "CAP_SETUID",
                                             "CAP_SETPCAP",
                                             "CAP_LINUX_IMMUTABLE",
                                             "CAP_NET_BIND_SERVICE",
                                             "CAP_NET_BROADCAST",
                                             "CAP_NET_ADMIN",
                                             "CAP_NET_RAW",
                                             "CAP_IPC_LOCK",
                                             "CAP_IPC_OWNER",
                                             "CAP_SYS_MODULE",
                                             "CAP_SYS_RAWIO",
                                             "CAP_SYS_CHROOT",
                                             "CAP_SYS_PTRACE",
                                             "CAP_SYS_PACCT",
                                             "CAP_SYS_ADMIN",
                                             "CAP_SYS_BOOT",
                                             "CAP_SYS_NICE",
                                             "CAP_SYS_RESOURCE",
                                             "CAP_SYS_TIME",
                                             "CAP_SYS_TTY_CONFIG",
                                             "CAP_MKNOD",
                                             "CAP_LEASE",
                                             "CAP_AUDIT_WRITE",
                                             "CAP_AUDIT_CONTROL",
                                             "CAP_SETFCAP",
                                             "CAP_MAC_OVERRIDE",
                                             "CAP_MAC_ADMIN",
                                             "CAP_SYSLOG",
                                             "CAP_WAKE_ALARM",
                                             "CAP_BLOCK_SUSPEND",
                                             "CAP_AUDIT_READ",
                                             "CAP_PERFMON",
                                             "CAP_BPF",
                                             "CAP_CHECKPOINT_RESTORE"};
  return caps;
}

/// "net_admin" / "NET_ADMIN" / "CAP_NET_ADMIN" -> "CAP_NET_ADMIN".
std::string normalize_cap(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (name != "ALL" && name.rfind("CAP_", 0) != 0)
    name = "CAP_" + name;
  return name;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

bool in_bounding_set(const std::string& cap) {
  const auto& all = all_capabilities();
  auto it = std::find(all.begin(), all.end(), cap);
  // all_capabilities() is in kernel number order: the index is the number.
  return it != all.end() &&
         ::prctl(PR_CAPBSET_READ, static_cast<unsigned long>(it - all.begin()), 0, 0, 0) == 1;
}

/// Every capability of this process's bounding set: what "all" can mean here
/// (runc fails to start a container asked for one outside it, as on VMs that
/// withhold CAP_SYS_RESOURCE).
std::vector<std::string> bounding_capabilities() {
  std::vector<std::string> out;
  for (const auto& c : all_capabilities())
    if (in_bounding_set(c))
      out.push_back(c);
  return out;
}

/// The device nodes of the host's /dev, as runc's HostDevices finds them.
json host_devices() {
  json out = json::array();
  std::error_code ec;
  auto it =
      fs::recursive_directory_iterator("/dev", fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const auto& p = it->path();
    auto name = p.filename().string();
    std::error_code ec2;
    if (it->is_symlink(ec2))
      continue;
    if (it->is_directory(ec2)) {
      if (name == "pts" || name == "shm" || name == "fd" || name == "mqueue" || name == ".lxc" ||
          name == ".lxd-mounts" || name == ".udev")
        it.disable_recursion_pending();
      continue;
    }
    if (name == "console")
      continue;
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0)
      continue;
    const char* type = S_ISCHR(st.st_mode) ? "c" : S_ISBLK(st.st_mode) ? "b" : nullptr;
    if (!type)
      continue;
    out.push_back({{"path", p.string()},
                   {"type", type},
                   {"major", major(st.st_rdev)},
                   {"minor", minor(st.st_rdev)},
                   {"fileMode", st.st_mode & 07777},
                   {"uid", st.st_uid},
                   {"gid", st.st_gid}});
  }
  return out;
}

}  // namespace

/// Docker's TweakCapabilities: ALL in add wins over defaults; ALL in drop
/// empties the base set before adds.
result<std::vector<std::string>> effective_capabilities(const bundle_spec& spec) {
  if (spec.privileged)
    return bounding_capabilities();
  std::vector<std::string> add, drop;
  for (auto& c : spec.cap_add)
    add.push_back(normalize_cap(c));
  for (auto& c : spec.cap_drop)
    drop.push_back(normalize_cap(c));
  for (auto* list : {&add, &drop})
    for (auto& c : *list)
      if (c != "ALL" && !contains(all_capabilities(), c))
        return error{errc::invalid, "unknown capability: " + c};
  for (auto& c : add)
    if (c != "ALL" && !in_bounding_set(c))
      return error{errc::unsupported, "capability " + c +
                                          " is not in this host's bounding set; no "
                                          "container here can have it"};

  std::vector<std::string> base;
  if (contains(add, "ALL"))
    base = bounding_capabilities();
  else if (!contains(drop, "ALL"))
    base = default_capabilities();
  std::vector<std::string> caps;
  for (auto& c : base)
    if (!contains(drop, c) || contains(add, c))
      caps.push_back(c);
  for (auto& c : add)
    if (c != "ALL" && !contains(caps, c))
      caps.push_back(c);
  return caps;
}

namespace {

std::uint64_t default_nofile_limit() {
  constexpr std::uint64_t wanted = 1048576;
  if (::prctl(PR_CAPBSET_READ, CAP_SYS_RESOURCE, 0, 0, 0) == 1)
    return wanted;
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max == RLIM_INFINITY)
    return wanted;
  return std::min<std::uint64_t>(wanted, rl.rlim_max);
}

json mount_entry(const std::string& dest, const std::string& type, const std::string& source,
                 std::vector<std::string> options) {
  json m{{"destination", dest}, {"type", type}, {"source", source}};
  if (!options.empty())
    m["options"] = std::move(options);
  return m;
}

json namespace_entry(const std::string& type, const fs::path& path) {
  json ns{{"type", type}};
  if (!path.empty())
    ns["path"] = path.string();
  return ns;
}

}  // namespace

const std::vector<std::string>& default_capabilities() {
  static const std::vector<std::string> caps{
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE"};
  return caps;
}

result<std::string> render_config(const bundle_spec& spec) {
  if (spec.args.empty())
    return error{errc::invalid, "bundle: process args are empty"};
  if (!spec.rootfs.is_absolute())
    return error{errc::invalid, "bundle: rootfs path must be absolute: " + spec.rootfs.string()};
  if (!spec.cwd.empty() && spec.cwd.front() != '/')
    return error{errc::invalid, "bundle: cwd must be absolute: " + spec.cwd};
  if (spec.host_network && !spec.netns_path.empty())
    return error{errc::invalid, "bundle: host_network and netns_path are exclusive"};
  for (auto& m : spec.mounts)
    if (!m.destination.is_absolute() || m.source.empty())
      return error{errc::invalid, "bundle: bind mount needs a source and an absolute "
                                  "destination: " +
                                      m.source.string() + " -> " + m.destination.string()};
  auto caps = effective_capabilities(spec);
  if (!caps)
    return caps.err();
  json seccomp;
  if (!spec.privileged && spec.seccomp == seccomp_mode::runtime_default) {
    seccomp = json::parse(runtime_default_seccomp(*caps));
  } else if (!spec.privileged && spec.seccomp == seccomp_mode::profile) {
    auto text = seccomp_from_profile(spec.seccomp_profile, *caps);
    if (!text)
      return text.err();
    seccomp = json::parse(*text);
  }

  std::vector<std::string> env = spec.env;
  if (std::none_of(env.begin(), env.end(),
                   [](const std::string& e) { return e.rfind("PATH=", 0) == 0; }))
    env.insert(env.begin(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");

  const std::uint64_t nofile = spec.nofile_limit.value_or(default_nofile_limit());

  json user{{"uid", spec.uid}, {"gid", spec.gid}};
  if (!spec.additional_gids.empty())
    user["additionalGids"] = spec.additional_gids;

  json process{
      {"terminal", false},
      {"user", std::move(user)},
      {"args", spec.args},
      {"env", std::move(env)},
      {"cwd", spec.cwd.empty() ? std::string("/") : spec.cwd},
      {"capabilities", {{"bounding", *caps}, {"effective", *caps}, {"permitted", *caps}}},
      {"rlimits", json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", nofile}, {"soft", nofile}}})},
      {"noNewPrivileges", spec.no_new_privileges},
  };
  if (spec.oom_score_adj)
    process["oomScoreAdj"] = *spec.oom_score_adj;

  json mounts = json::array({
      mount_entry("/proc", "proc", "proc", {}),
      mount_entry("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      mount_entry("/dev/pts", "devpts", "devpts",
                  {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
      mount_entry("/dev/shm", "tmpfs", "shm",
                  {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      mount_entry("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      mount_entry("/sys", "sysfs", "sysfs",
                  spec.privileged ? std::vector<std::string>{"nosuid", "noexec", "nodev", "rw"}
                                  : std::vector<std::string>{"nosuid", "noexec", "nodev", "ro"}),
      // The container's own cgroup at /sys/fs/cgroup, as containerd's default
      // spec gives it (read-only unless privileged): programs read their
      // limits there.
      mount_entry("/sys/fs/cgroup", "cgroup", "cgroup",
                  {"nosuid", "noexec", "nodev", "relatime", spec.privileged ? "rw" : "ro"}),
  });
  for (auto& m : spec.mounts)
    mounts.push_back(mount_entry(m.destination.string(), "bind", m.source.string(),
                                 {"rbind", "rprivate", m.readonly ? "ro" : "rw"}));

  json namespaces = json::array({
      namespace_entry("pid", {}),
      namespace_entry("ipc", spec.ipc_ns_path),
      namespace_entry("uts", spec.uts_ns_path),
      namespace_entry("mount", {}),
  });
  if (!spec.host_network)
    namespaces.push_back(namespace_entry("network", spec.netns_path));

  // Privileged: every device node, and the device cgroup lets all through.
  json resources{{"devices", json::array({{{"allow", spec.privileged}, {"access", "rwm"}}})}};
  const auto& r = spec.resources;
  if (r.memory_limit_bytes || r.memory_swap_bytes) {
    json mem = json::object();
    if (r.memory_limit_bytes)
      mem["limit"] = *r.memory_limit_bytes;
    if (r.memory_swap_bytes)
      mem["swap"] = *r.memory_swap_bytes;
    resources["memory"] = std::move(mem);
  }
  if (r.cpu_shares || r.cpu_quota_us || r.cpu_period_us) {
    json cpu = json::object();
    if (r.cpu_shares)
      cpu["shares"] = *r.cpu_shares;
    if (r.cpu_quota_us)
      cpu["quota"] = *r.cpu_quota_us;
    if (r.cpu_period_us)
      cpu["period"] = *r.cpu_period_us;
    resources["cpu"] = std::move(cpu);
  }
  if (r.pids_limit)
    resources["pids"] = {{"limit", *r.pids_limit}};

  json linux_section{
      {"namespaces", std::move(namespaces)},
      {"resources", std::move(resources)},
  };
  if (spec.privileged) {
    linux_section["devices"] = host_devices();
  } else {
    linux_section["maskedPaths"] = {"/proc/acpi",        "/proc/asound",        "/proc/kcore",
                                    "/proc/keys",        "/proc/latency_stats", "/proc/timer_list",
                                    "/proc/timer_stats", "/proc/sched_debug",   "/sys/firmware",
                                    "/proc/scsi"};
    linux_section["readonlyPaths"] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                      "/proc/sysrq-trigger"};
  }
  if (!seccomp.is_null())
    linux_section["seccomp"] = std::move(seccomp);
  if (spec.cgroups_path)
    linux_section["cgroupsPath"] = *spec.cgroups_path;

  json config{
      {"ociVersion", "1.0.2"},
      {"process", std::move(process)},
      {"root", {{"path", spec.rootfs.string()}, {"readonly", spec.readonly_rootfs}}},
      {"mounts", std::move(mounts)},
      {"linux", std::move(linux_section)},
  };
  if (!spec.hostname.empty())
    config["hostname"] = spec.hostname;
  if (!spec.annotations.empty())
    config["annotations"] = spec.annotations;
  return config.dump(2);
}

result<void> write_bundle(const fs::path& dir, const bundle_spec& spec) {
  auto text = render_config(spec);
  if (!text)
    return text.err();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return error{errc::io, "create bundle dir " + dir.string() + ": " + ec.message()};
  // A machine crash takes the containers this config describes with it; a
  // killed writer must only never leave a torn file behind.
  return fsutil::write_file_atomic(dir / "config.json", *text, fsutil::durability::process_crash,
                                   0600);
}

}  // namespace deckhand::oci
