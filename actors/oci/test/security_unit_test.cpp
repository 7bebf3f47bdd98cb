#define BOOST_TEST_MODULE deckhand_oci_security
#include <sys/prctl.h>

#include <algorithm>
#include <linux/capability.h>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "deckhand/oci/bundle.hpp"
#include "deckhand/oci/cgroups.hpp"
#include "deckhand/oci/seccomp.hpp"

using namespace deckhand;
using namespace deckhand::oci;
using json = nlohmann::json;

namespace {

bundle_spec base() {
  bundle_spec s;
  s.args = {"/bin/true"};
  s.rootfs = "/r";
  return s;
}

json render(const bundle_spec& s) {
  auto text = render_config(s);
  BOOST_REQUIRE_MESSAGE(text.ok(), (text ? "" : text.err().message));
  return json::parse(*text);
}

/// The rules of a seccomp object that deny `name` (any args).
std::vector<json> rules_for(const json& seccomp, const std::string& name) {
  std::vector<json> out;
  for (auto& r : seccomp["syscalls"])
    for (auto& n : r["names"])
      if (n == name)
        out.push_back(r);
  return out;
}

bool denies(const json& seccomp, const std::string& name) {
  for (auto& r : rules_for(seccomp, name))
    if (!r.contains("args") && r["action"] == "SCMP_ACT_ERRNO")
      return true;
  return false;
}

int bounding_count() {
  int n = 0;
  for (int c = 0; c <= 40; ++c)
    if (::prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
      ++n;
  return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(security_rendering)

BOOST_AUTO_TEST_CASE(no_new_privileges_is_off_by_default_as_in_kubernetes) {
  BOOST_TEST(render(base())["process"]["noNewPrivileges"] == false);
  auto s = base();
  s.no_new_privileges = true;
  BOOST_TEST(render(s)["process"]["noNewPrivileges"] == true);
}

BOOST_AUTO_TEST_CASE(default_container_has_no_seccomp_and_masked_paths) {
  auto j = render(base());
  BOOST_TEST(!j["linux"].contains("seccomp"));
  BOOST_TEST(j["linux"]["maskedPaths"].size() == 10u);
  BOOST_TEST(j["linux"]["readonlyPaths"].size() == 5u);
  BOOST_TEST(!j["linux"].contains("devices"));
  BOOST_TEST(j["linux"]["resources"]["devices"][0]["allow"] == false);
}

BOOST_AUTO_TEST_CASE(privileged_gets_everything) {
  auto s = base();
  s.privileged = true;
  s.cap_drop = {"ALL"};                       // ignored, as containerd does for privileged
  s.seccomp = seccomp_mode::runtime_default;  // ignored
  auto j = render(s);
  auto caps = j["process"]["capabilities"]["bounding"];
  BOOST_TEST(caps.size() == static_cast<std::size_t>(bounding_count()));
  BOOST_TEST(j["process"]["capabilities"]["effective"] == caps);
  BOOST_TEST(!j["linux"].contains("seccomp"));
  BOOST_TEST(!j["linux"].contains("maskedPaths"));
  BOOST_TEST(!j["linux"].contains("readonlyPaths"));
  BOOST_TEST(j["linux"]["resources"]["devices"][0]["allow"] == true);
  BOOST_REQUIRE(j["linux"]["devices"].is_array());
  bool has_null = false;
  for (auto& d : j["linux"]["devices"]) {
    BOOST_TEST(d["path"].get<std::string>().rfind("/dev/", 0) == 0u);
    BOOST_TEST(d["path"].get<std::string>().find("/dev/pts/") == std::string::npos);
    BOOST_TEST(d["path"] != "/dev/console");
    if (d["path"] == "/dev/null") {
      has_null = true;
      BOOST_TEST(d["type"] == "c");
      BOOST_TEST(d["major"] == 1);
      BOOST_TEST(d["minor"] == 3);
    }
  }
  BOOST_TEST(has_null);
  for (auto& m : j["mounts"])
    if (m["destination"] == "/sys")
      BOOST_TEST((std::find(m["options"].begin(), m["options"].end(), "ro") == m["options"].end()));
}

BOOST_AUTO_TEST_CASE(add_all_means_this_hosts_bounding_set) {
  auto s = base();
  s.cap_add = {"ALL"};
  BOOST_TEST(render(s)["process"]["capabilities"]["bounding"].size() ==
             static_cast<std::size_t>(bounding_count()));
  s.cap_add = {"ALL"};
  s.cap_drop = {"NET_RAW"};
  auto caps = render(s)["process"]["capabilities"]["bounding"];
  BOOST_TEST((std::find(caps.begin(), caps.end(), "CAP_NET_RAW") == caps.end()));
}

BOOST_AUTO_TEST_CASE(runtime_default_seccomp_denies_what_docker_denies) {
  auto s = base();
  s.seccomp = seccomp_mode::runtime_default;
  auto sc = render(s)["linux"]["seccomp"];
  BOOST_TEST(sc["defaultAction"] == "SCMP_ACT_ALLOW");
  BOOST_TEST(!sc["architectures"].empty());
  for (auto name : {"keyctl",
                    "add_key",
                    "request_key",
                    "mount",
                    "umount2",
                    "unshare",
                    "setns",
                    "pivot_root",
                    "kexec_load",
                    "init_module",
                    "finit_module",
                    "delete_module",
                    "bpf",
                    "perf_event_open",
                    "userfaultfd",
                    "open_by_handle_at",
                    "swapon",
                    "swapoff",
                    "reboot",
                    "acct",
                    "clock_settime",
                    "settimeofday",
                    "iopl",
                    "ioperm",
                    "quotactl",
                    "lookup_dcookie",
                    "process_vm_readv",
                    "syslog"})
    BOOST_TEST(denies(sc, name), name);
  for (auto& r : sc["syscalls"])
    if (r["names"][0] != "clone3")
      BOOST_TEST(r["errnoRet"] == 1);                           // EPERM
  BOOST_TEST(rules_for(sc, "clone3").at(0)["errnoRet"] == 38);  // ENOSYS: libc falls back
  // clone with any namespace flag: 7 masked rules.
  BOOST_TEST(rules_for(sc, "clone").size() == 7u);
  auto personality = rules_for(sc, "personality");
  BOOST_REQUIRE(personality.size() == 1u);
  BOOST_TEST(personality[0]["args"].size() == 5u);
  // Allowed things stay allowed.
  for (auto name : {"read", "write", "execve", "chown", "ptrace", "socket", "setuid"})
    BOOST_TEST(rules_for(sc, name).empty(), name);
}

BOOST_AUTO_TEST_CASE(runtime_default_seccomp_follows_capabilities) {
  auto s = base();
  s.seccomp = seccomp_mode::runtime_default;
  s.cap_add = {"SYS_ADMIN", "SYS_TIME"};
  auto sc = render(s)["linux"]["seccomp"];
  for (auto name : {"mount", "unshare", "setns", "umount2", "bpf", "clone3", "settimeofday"})
    BOOST_TEST(rules_for(sc, name).empty(), name);
  BOOST_TEST(rules_for(sc, "clone").empty());
  BOOST_TEST(denies(sc, "keyctl"));  // no capability unlocks it
  BOOST_TEST(denies(sc, "reboot"));
  s.cap_add = {};
  s.cap_drop = {"SYS_CHROOT"};
  BOOST_TEST(denies(render(s)["linux"]["seccomp"], "chroot"));
}

BOOST_AUTO_TEST_CASE(docker_format_profiles_are_converted) {
  auto s = base();
  s.seccomp = seccomp_mode::profile;
  s.cap_add = {"SYS_ADMIN"};
  s.seccomp_profile = R"({
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [
      {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
      {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
    "syscalls": [
      {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
      {"name": "mount", "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
      {"names": ["reboot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_BOOT"]}},
      {"names": ["chmod"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
      {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
      {"names": ["uname"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "2.6"}},
      {"names": ["sync"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}}
    ]})";
  auto sc = render(s)["linux"]["seccomp"];
  BOOST_TEST(sc["defaultAction"] == "SCMP_ACT_ERRNO");
  BOOST_TEST(sc["defaultErrnoRet"] == 1);
#if defined(__x86_64__)
  BOOST_TEST(sc["architectures"] == json({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
#endif
  BOOST_TEST(rules_for(sc, "read").size() == 1u);
  BOOST_TEST(rules_for(sc, "mount").size() == 1u);  // has SYS_ADMIN
  BOOST_TEST(rules_for(sc, "reboot").empty());      // lacks SYS_BOOT
  BOOST_TEST(rules_for(sc, "chmod").empty());       // excluded by SYS_ADMIN
  BOOST_TEST(rules_for(sc, "uname").size() == 1u);
  BOOST_TEST(rules_for(sc, "sync").empty());
  auto p = rules_for(sc, "personality").at(0);
  BOOST_TEST(p["args"][0]["op"] == "SCMP_CMP_EQ");
  BOOST_TEST(p["args"][0]["value"] == 8);
  BOOST_TEST(!p.contains("includes"));
}

BOOST_AUTO_TEST_CASE(bad_profiles_are_invalid) {
  auto s = base();
  s.seccomp = seccomp_mode::profile;
  for (
      std::string bad :
      {"", "not json", "[]", "{}", R"({"defaultAction": "SCMP_ACT_FOO"})",
       R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]})",
       R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "nope"}]})",
       R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 9, "op": "SCMP_CMP_EQ"}]}]})"}) {
    s.seccomp_profile = bad;
    auto r = render_config(s);
    BOOST_TEST_CONTEXT(bad) {
      BOOST_REQUIRE(!r.ok());
      BOOST_TEST(r.err().code == errc::invalid);
    }
  }
}

BOOST_AUTO_TEST_CASE(memory_swap_is_rendered) {
  auto s = base();
  s.resources.memory_limit_bytes = 16 << 20;
  s.resources.memory_swap_bytes = 16 << 20;
  auto mem = render(s)["linux"]["resources"]["memory"];
  BOOST_TEST(mem["limit"] == 16 << 20);
  BOOST_TEST(mem["swap"] == 16 << 20);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cgroup_paths)

BOOST_AUTO_TEST_CASE(paths_are_per_pod_and_container) {
  BOOST_TEST(pod_cgroup_path("abc-123") == "/deckhand/podabc-123");
  BOOST_TEST(container_cgroup_path("abc-123", "web") == "/deckhand/podabc-123/web");
}

BOOST_AUTO_TEST_CASE(unsafe_paths_and_uids_are_refused) {
  BOOST_TEST(!read_cgroup_stats("../../etc").ok());
  BOOST_TEST(!read_cgroup_stats("/deckhand/../..").ok());
  BOOST_TEST(cgroup_oom_kills("/../x") == 0u);
  BOOST_TEST(remove_pod_cgroups("../x").code == errc::invalid);
  BOOST_TEST(remove_pod_cgroups("").code == errc::invalid);
  BOOST_TEST(apply_pod_cgroup_limits("a/b", {}).code == errc::invalid);
}

BOOST_AUTO_TEST_CASE(missing_cgroups_are_not_found_and_removal_is_idempotent) {
  auto r = read_cgroup_stats("/deckhand/pod-no-such-pod-xyz/c");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::not_found);
  BOOST_TEST(cgroup_oom_kills("/deckhand/pod-no-such-pod-xyz/c") == 0u);
  BOOST_TEST(!remove_pod_cgroups("no-such-pod-xyz"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cgroup_files)

BOOST_AUTO_TEST_CASE(limits_map_to_v1_and_v2_files) {
  resource_limits l;
  l.memory_limit_bytes = 64ll << 20;
  l.cpu_shares = 1024;
  l.cpu_quota_us = 50000;
  l.cpu_period_us = 100000;
  l.pids_limit = 100;
  using v = std::vector<cgroup_file_value>;
  BOOST_TEST(
      (cgroup_limit_files(l, cgroup_mode::v1) == v{{"memory", "memory.limit_in_bytes", "67108864"},
                                                   {"cpu", "cpu.shares", "1024"},
                                                   {"cpu", "cpu.cfs_period_us", "100000"},
                                                   {"cpu", "cpu.cfs_quota_us", "50000"},
                                                   {"pids", "pids.max", "100"}}));
  BOOST_TEST(
      (cgroup_limit_files(l, cgroup_mode::hybrid) == cgroup_limit_files(l, cgroup_mode::v1)));
  // runc's conversion: 1024 shares -> weight 39; 2 -> 1; 262144 -> 10000.
  BOOST_TEST((cgroup_limit_files(l, cgroup_mode::v2) == v{{"memory", "memory.max", "67108864"},
                                                          {"cpu", "cpu.weight", "39"},
                                                          {"cpu", "cpu.max", "50000 100000"},
                                                          {"pids", "pids.max", "100"}}));
  resource_limits shares;
  shares.cpu_shares = 2;
  BOOST_TEST(cgroup_limit_files(shares, cgroup_mode::v2).at(0).value == "1");
  shares.cpu_shares = 262144;
  BOOST_TEST(cgroup_limit_files(shares, cgroup_mode::v2).at(0).value == "10000");
  BOOST_TEST(cgroup_limit_files(resource_limits{}, cgroup_mode::v2).empty());
}

BOOST_AUTO_TEST_SUITE_END()
