/// Real containers under runc: what a process inside sees of its
/// capabilities, no_new_privs, seccomp, user, read-only root and cgroup
/// limits, and an OOM kill counted by cgroup_oom_kills().

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bitset>
#include <chrono>
#include <csignal>
#include <fstream>
#include <map>
#include <thread>

#include <boost/test/unit_test.hpp>

#include "deckhand/oci/cgroups.hpp"
#include "fixture.hpp"

using namespace deckhand;
using namespace deckhand::oci;
using namespace deckhand::oci::test;
using namespace std::chrono_literals;
namespace utf = boost::unit_test;

namespace {

/// Capability numbers, as the kernel defines them.
const std::vector<std::string> cap_names{"CAP_CHOWN",
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

uint64_t mask_of(const std::vector<std::string>& caps) {
  uint64_t m = 0;
  for (auto& c : caps) {
    auto it = std::find(cap_names.begin(), cap_names.end(), c);
    BOOST_REQUIRE_MESSAGE(it != cap_names.end(), c);
    m |= uint64_t{1} << (it - cap_names.begin());
  }
  return m;
}

/// "Key:\tvalue" lines of a /proc/PID/status text.
std::map<std::string, std::string> status_fields(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos)
      continue;
    auto v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    out[line.substr(0, colon)] = v;
  }
  return out;
}

uint64_t hex(const std::string& s) { return std::stoull(s, nullptr, 16); }

#define REQUIRE_OK(expr)                                                                           \
  do {                                                                                             \
    auto&& r_ = (expr);                                                                            \
    BOOST_REQUIRE_MESSAGE(r_.ok(), #expr << ": " << (r_ ? std::string() : r_.err().message));      \
  } while (0)

/// Removes a test pod's cgroups however the test ends. Declared before the
/// sandbox, so it runs after the sandbox has deleted the containers.
struct pod_cgroups_guard {
  std::string uid;
  explicit pod_cgroups_guard(std::string u) : uid(std::move(u)) {}
  ~pod_cgroups_guard() {
    if (auto err = remove_pod_cgroups(uid))
      BOOST_TEST_MESSAGE("cleanup: " << err.message);
  }
};

std::string test_pod_uid(const char* what) {
  static int n = 0;
  return std::string("dhtest-") + what + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(++n);
}

struct outcome {
  int code = -1;
  bool signaled = false;
  int signal = 0;
  std::string output;
};

/// Runs `spec` to completion in a container and returns its exit and output.
/// `before_delete` sees the container's cgroup while it still exists.
template <class Fn>
outcome run_container(sandbox& sb, bundle_spec spec, const std::string& name, Fn before_delete) {
  auto bundle = sb.dir / ("bundle-" + name);
  REQUIRE_OK(write_bundle(bundle, spec));
  auto out_file = sb.dir / ("out-" + name);
  auto out = sb.open_output(out_file);
  auto id = sb.new_id();
  REQUIRE_OK(sb.rt.run_detached(id, bundle, common::stdio_fds{-1, out.get(), out.get()},
                                sb.dir / ("pid-" + name)));
  pid_t pid = read_pid(sb.dir / ("pid-" + name));
  auto st = common::wait_with_deadline(pid, 30s);
  REQUIRE_OK(st);
  outcome o;
  o.code = st->code();
  o.signaled = !st->exited();
  o.output = read_file(out_file);
  before_delete();
  REQUIRE_OK(sb.rt.remove(id));
  return o;
}

outcome run_container(sandbox& sb, bundle_spec spec, const std::string& name) {
  return run_container(sb, std::move(spec), name, [] {});
}

struct container_fixture {
  sandbox sb;
  fs::path rootfs;
  container_fixture() {
    auto r = common::set_child_subreaper();
    BOOST_REQUIRE(r.ok());
    rootfs = sb.make_rootfs(sb.dir / "rootfs");
    for (auto applet : {"unshare", "dd", "id", "grep"})
      fs::create_symlink("busybox", rootfs / "bin" / applet);
  }
  bundle_spec spec(std::string script) {
    return sb.spec_for(rootfs, {"/bin/sh", "-c", std::move(script)});
  }
  std::map<std::string, std::string> status_of(bundle_spec s, const std::string& name) {
    s.args = {"/bin/cat", "/proc/self/status"};
    auto o = run_container(sb, std::move(s), name);
    BOOST_TEST_REQUIRE(o.code == 0, o.output);
    return status_fields(o.output);
  }
};

/// The directory of a cgroup path for `controller` (v1) or the unified one.
fs::path cgroup_dir(const std::string& controller, const std::string& path) {
  if (detect_cgroup_mode() == cgroup_mode::v2)
    return fs::path("/sys/fs/cgroup") / path.substr(1);
  return fs::path("/sys/fs/cgroup") / controller / path.substr(1);
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(container_security,
                      *deckhand::testing::skip_unless(deckhand::testing::containers()))

BOOST_AUTO_TEST_CASE(capabilities_inside_the_container) {
  container_fixture f;
  auto host = status_fields(read_file("/proc/self/status"));

  auto st = f.status_of(f.spec(""), "default");
  BOOST_TEST(hex(st["CapEff"]) == mask_of(default_capabilities()));
  BOOST_TEST(hex(st["CapBnd"]) == mask_of(default_capabilities()));

  auto s = f.spec("");
  s.cap_add = {"NET_ADMIN"};
  s.cap_drop = {"NET_RAW", "CHOWN"};
  st = f.status_of(s, "adddrop");
  auto want = mask_of(default_capabilities());
  want |= mask_of({"CAP_NET_ADMIN"});
  want &= ~mask_of({"CAP_NET_RAW", "CAP_CHOWN"});
  BOOST_TEST(hex(st["CapEff"]) == want);

  s = f.spec("");
  s.cap_drop = {"ALL"};
  st = f.status_of(s, "none");
  BOOST_TEST(hex(st["CapEff"]) == 0u);

  s = f.spec("");
  s.privileged = true;
  st = f.status_of(s, "privileged");
  BOOST_TEST(hex(st["CapEff"]) == hex(host["CapBnd"]));
  BOOST_TEST(st["Seccomp"] == "0");
}

BOOST_AUTO_TEST_CASE(no_new_privs_and_seccomp) {
  container_fixture f;
  auto st = f.status_of(f.spec(""), "plain");
  BOOST_TEST(st["NoNewPrivs"] == "0");
  BOOST_TEST(st["Seccomp"] == "0");

  auto s = f.spec("");
  s.no_new_privileges = true;
  st = f.status_of(s, "nnp");
  BOOST_TEST(st["NoNewPrivs"] == "1");

  s = f.spec("");
  s.seccomp = seccomp_mode::runtime_default;
  st = f.status_of(s, "seccomp");
  BOOST_TEST(st["Seccomp"] == "2");

  // unshare(CLONE_NEWUSER) needs no capability, so only the filter stops it.
  s = f.spec("unshare -U true; echo rc=$?");
  s.seccomp = seccomp_mode::runtime_default;
  auto o = run_container(f.sb, s, "unshare-denied");
  BOOST_TEST(o.output.find("Operation not permitted") != std::string::npos, o.output);
  BOOST_TEST(o.output.find("rc=1") != std::string::npos, o.output);

  auto control = run_container(f.sb, f.spec("unshare -U true; echo rc=$?"), "unshare-open");
  BOOST_TEST_MESSAGE("without seccomp, unshare -U gives: " << control.output);

  // Ordinary work still runs under the filter (fork, exec, pipes, files).
  s = f.spec("echo hello | cat > /tmp/x && cat /tmp/x");
  s.seccomp = seccomp_mode::runtime_default;
  o = run_container(f.sb, s, "seccomp-ok");
  BOOST_TEST(o.code == 0);
  BOOST_TEST(o.output == "hello\n");
}

BOOST_AUTO_TEST_CASE(user_groups_and_read_only_root) {
  container_fixture f;
  auto s = f.spec("");
  s.uid = 1234;
  s.gid = 2345;
  s.additional_gids = {3000, 4000};
  auto st = f.status_of(s, "user");
  BOOST_TEST(st["Uid"].substr(0, 4) == "1234");
  BOOST_TEST(st["Gid"].substr(0, 4) == "2345");
  BOOST_TEST(trimmed(st["Groups"]) == "3000 4000");
  BOOST_TEST(hex(st["CapEff"]) == 0u);  // non-root: no effective capabilities

  s = f.spec("echo x > /written; echo rc=$?");
  s.readonly_rootfs = true;
  auto o = run_container(f.sb, s, "ro");
  BOOST_TEST(o.output.find("Read-only file system") != std::string::npos, o.output);
  BOOST_TEST(o.output.find("rc=1") != std::string::npos, o.output);
  BOOST_TEST(!fs::exists(f.rootfs / "written"));
}

BOOST_AUTO_TEST_CASE(cgroup_limits_are_applied) {
  auto uid = test_pod_uid("limits");
  pod_cgroups_guard guard(uid);
  container_fixture f;
  const auto path = container_cgroup_path(uid, "c");
  const bool v2 = detect_cgroup_mode() == cgroup_mode::v2;
  auto s = f.spec(v2 ? "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max"
                     : "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                       "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us "
                       "/sys/fs/cgroup/cpu/cpu.shares");
  s.cgroups_path = path;
  s.resources.memory_limit_bytes = 64ll << 20;
  s.resources.memory_swap_bytes = 64ll << 20;
  s.resources.cpu_shares = 512;
  s.resources.cpu_quota_us = 50000;
  s.resources.cpu_period_us = 100000;
  s.resources.pids_limit = 64;
  result<cgroup_stats> stats = error{errc::internal, "not read"};
  std::string host_pids_max;
  auto o = run_container(f.sb, s, "limits", [&] {
    stats = read_cgroup_stats(path);
    host_pids_max = trimmed(read_file(cgroup_dir("pids", path) / "pids.max"));
  });
  BOOST_TEST_REQUIRE(o.code == 0, o.output);
  // Seen from inside the container, through its /sys/fs/cgroup.
  if (v2)
    BOOST_TEST(o.output == "67108864\n50000 100000\n");
  else
    BOOST_TEST(o.output == "67108864\n50000\n100000\n512\n");
  BOOST_TEST(host_pids_max == "64");
  REQUIRE_OK(stats);
  BOOST_TEST(stats->memory_limit_bytes == 64u << 20);
  BOOST_TEST(stats->cpu_usage_ns > 0u);
  BOOST_TEST(stats->memory_working_set_bytes <= stats->memory_usage_bytes);
}

BOOST_AUTO_TEST_CASE(memory_hog_is_oom_killed_and_counted) {
  auto uid = test_pod_uid("oom");
  pod_cgroups_guard guard(uid);
  container_fixture f;
  const auto path = container_cgroup_path(uid, "hog");
  // dd fills a 64 MiB buffer from /dev/zero: every page is touched.
  auto s = f.spec("dd if=/dev/zero of=/dev/null bs=64M count=1; echo survived");
  s.cgroups_path = path;
  s.resources.memory_limit_bytes = 16ll << 20;
  s.resources.memory_swap_bytes = 16ll << 20;
  uint64_t kills = 0;
  auto o = run_container(f.sb, s, "hog", [&] { kills = cgroup_oom_kills(path); });
  BOOST_TEST(kills >= 1u, o.output);
  BOOST_TEST(o.output.find("survived") != std::string::npos);  // dd died, not sh

  // The shell itself as the victim: the container's init dies of SIGKILL.
  s = f.spec("x=$(dd if=/dev/zero bs=1M count=64 2>/dev/null | tr '\\0' a); echo survived");
  fs::create_symlink("busybox", f.rootfs / "bin" / "tr");
  const auto path2 = container_cgroup_path(uid, "hog2");
  s.cgroups_path = path2;
  s.resources.memory_limit_bytes = 16ll << 20;
  s.resources.memory_swap_bytes = 16ll << 20;
  kills = 0;
  o = run_container(f.sb, s, "hog2", [&] { kills = cgroup_oom_kills(path2); });
  BOOST_TEST(kills >= 1u);
  BOOST_TEST(o.code == 128 + SIGKILL);
  BOOST_TEST(o.output.find("survived") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(pod_cgroup_bounds_its_containers_and_is_removed) {
  auto uid = test_pod_uid("pod");
  pod_cgroups_guard guard(uid);
  container_fixture f;
  resource_limits pod;
  pod.memory_limit_bytes = 48ll << 20;
  pod.cpu_shares = 1024;
  pod.cpu_quota_us = 150000;
  pod.cpu_period_us = 100000;
  pod.pids_limit = 100;
  BOOST_TEST_REQUIRE(!apply_pod_cgroup_limits(uid, pod));
  BOOST_TEST(!apply_pod_cgroup_limits(uid, pod));  // idempotent
  const auto pod_path = pod_cgroup_path(uid);
  const bool v2 = detect_cgroup_mode() == cgroup_mode::v2;
  if (v2) {
    BOOST_TEST(trimmed(read_file(cgroup_dir("", pod_path) / "memory.max")) == "50331648");
    BOOST_TEST(trimmed(read_file(cgroup_dir("", pod_path) / "cpu.max")) == "150000 100000");
  } else {
    BOOST_TEST(trimmed(read_file(cgroup_dir("memory", pod_path) / "memory.limit_in_bytes")) ==
               "50331648");
    BOOST_TEST(trimmed(read_file(cgroup_dir("cpu", pod_path) / "cpu.cfs_quota_us")) == "150000");
    BOOST_TEST(trimmed(read_file(cgroup_dir("cpu", pod_path) / "cpu.shares")) == "1024");
    BOOST_TEST(trimmed(read_file(cgroup_dir("pids", pod_path) / "pids.max")) == "100");
  }
  // A container without limits of its own lives below the pod's cgroup.
  auto s = f.spec("cat /proc/self/cgroup");
  s.cgroups_path = container_cgroup_path(uid, "c");
  auto o = run_container(f.sb, s, "inpod");
  BOOST_TEST(o.code == 0);
  BOOST_TEST(o.output.find("/deckhand/pod" + uid + "/c") != std::string::npos, o.output);

  BOOST_TEST_REQUIRE(!remove_pod_cgroups(uid));
  BOOST_TEST(!remove_pod_cgroups(uid));  // idempotent
  for (auto h : {"memory", "cpu", "cpuacct", "pids", "cpuset", "devices", "freezer", "blkio",
                 "systemd", "unified", ""}) {
    auto dir = fs::path("/sys/fs/cgroup") / h / pod_path.substr(1);
    BOOST_TEST(!fs::exists(dir), dir);
  }
}

// A process left in a pod's cgroup (as a `runc init` orphaned by an
// interrupted `runc run` is) does not keep the cgroup alive: removing the
// pod's cgroups kills it and removes them all.
BOOST_AUTO_TEST_CASE(pod_cgroups_are_removed_with_a_process_left_inside) {
  auto uid = test_pod_uid("leak");
  const auto path = container_cgroup_path(uid, "c");
  resource_limits pod;
  BOOST_TEST_REQUIRE(!apply_pod_cgroup_limits(uid, pod));
  auto dir = cgroup_dir("pids", path);
  fs::create_directories(dir);
  pid_t child = ::fork();
  BOOST_TEST_REQUIRE(child >= 0);
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  {
    std::ofstream procs(dir / "cgroup.procs");
    procs << child << "\n";
  }
  BOOST_TEST(trimmed(read_file(dir / "cgroup.procs")) == std::to_string(child));
  auto err = remove_pod_cgroups(uid);
  BOOST_TEST(!err, err.message);
  int st = 0;
  pid_t got = 0;
  for (int i = 0; i < 200 && got == 0; ++i) {
    got = ::waitpid(child, &st, WNOHANG);
    if (got == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  BOOST_TEST(got == child);
  if (got != child) {  // the feature is broken: do not leak the child
    ::kill(child, SIGKILL);
    ::waitpid(child, &st, 0);
    (void)remove_pod_cgroups(uid);
  }
  BOOST_TEST((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL));
  BOOST_TEST(!fs::exists(cgroup_dir("pids", pod_cgroup_path(uid))));
}

BOOST_AUTO_TEST_SUITE_END()
