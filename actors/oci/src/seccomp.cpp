#include "deckhand/oci/seccomp.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include <nlohmann/json.hpp>

namespace deckhand::oci {

namespace {

using json = nlohmann::json;

constexpr int eperm = 1;
constexpr int enosys = 38;

bool has(const std::vector<std::string>& caps, const std::string& c) {
  return std::find(caps.begin(), caps.end(), c) != caps.end();
}

/// libseccomp's names of this host's architecture and its compat ones.
std::vector<std::string> native_arches() {
#if defined(__x86_64__)
  return {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
#elif defined(__aarch64__)
  return {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
#elif defined(__i386__)
  return {"SCMP_ARCH_X86"};
#elif defined(__arm__)
  return {"SCMP_ARCH_ARM"};
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return {"SCMP_ARCH_PPC64LE"};
#elif defined(__s390x__)
  return {"SCMP_ARCH_S390X", "SCMP_ARCH_S390"};
#elif defined(__riscv) && __riscv_xlen == 64
  return {"SCMP_ARCH_RISCV64"};
#else
  return {};
#endif
}

/// Go's GOARCH name of this host, which Docker profiles use in includes.arches.
std::string go_arch() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__i386__)
  return "386";
#elif defined(__arm__)
  return "arm";
#elif defined(__powerpc64__)
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv)
  return "riscv64";
#else
  return "";
#endif
}

json deny(std::vector<std::string> names, int errno_ret = eperm) {
  return {{"names", std::move(names)}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", errno_ret}};
}

/// "major.minor" of a kernel release ("6.1.0-18-amd64" -> {6, 1}).
std::pair<int, int> kernel_version(const std::string& release) {
  int major = 0, minor = 0;
  std::sscanf(release.c_str(), "%d.%d", &major, &minor);
  return {major, minor};
}

const std::set<std::string>& known_actions() {
  static const std::set<std::string> a{
      "SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
      "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE",        "SCMP_ACT_ALLOW",       "SCMP_ACT_LOG"};
  return a;
}

}  // namespace

std::string runtime_default_seccomp(const std::vector<std::string>& caps) {
  json rules = json::array();
  // Never allowed by Docker's profile, whatever the capabilities.
  rules.push_back(
      deny({"add_key",       "keyctl",          "request_key",  "kexec_load", "kexec_file_load",
            "create_module", "get_kernel_syms", "query_module", "nfsservctl", "pivot_root",
            "swapon",        "swapoff",         "sysfs",        "_sysctl",    "uselib",
            "userfaultfd",   "ustat",           "vm86",         "vm86old",    "afs_syscall",
            "tuxcall",       "vserver",         "getpmsg",      "putpmsg",    "security"}));
  // Allowed by Docker's profile only with a capability.
  struct gated {
    std::vector<std::string> any_of;  // capabilities that unlock the syscalls
    std::vector<std::string> names;
  };
  const std::vector<gated> by_cap{
      {{"CAP_SYS_ADMIN"},
       {"fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie", "mount",
        "mount_setattr", "move_mount", "name_to_handle_at", "open_tree", "quotactl", "quotactl_fd",
        "setdomainname", "sethostname", "setns", "umount", "umount2", "unshare"}},
      {{"CAP_SYS_ADMIN", "CAP_BPF"}, {"bpf"}},
      {{"CAP_SYS_ADMIN", "CAP_PERFMON"}, {"perf_event_open"}},
      {{"CAP_SYS_ADMIN", "CAP_SYSLOG"}, {"syslog"}},
      {{"CAP_SYS_BOOT"}, {"reboot"}},
      {{"CAP_SYS_CHROOT"}, {"chroot"}},
      {{"CAP_SYS_MODULE"}, {"init_module", "finit_module", "delete_module"}},
      {{"CAP_SYS_PACCT"}, {"acct"}},
      {{"CAP_SYS_PTRACE"},
       {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev"}},
      {{"CAP_SYS_RAWIO"}, {"iopl", "ioperm"}},
      {{"CAP_SYS_TIME"},
       {"settimeofday", "stime", "clock_settime", "clock_settime64", "clock_adjtime",
        "clock_adjtime64"}},
      {{"CAP_SYS_TTY_CONFIG"}, {"vhangup"}},
      {{"CAP_SYS_NICE"}, {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}},
      {{"CAP_DAC_READ_SEARCH"}, {"open_by_handle_at"}},
  };
  for (const auto& g : by_cap)
    if (std::none_of(g.any_of.begin(), g.any_of.end(),
                     [&](const std::string& c) { return has(caps, c); }))
      rules.push_back(deny(g.names));

  if (!has(caps, "CAP_SYS_ADMIN")) {
    // Docker allows clone only without namespace flags. Each flag is its own
    // rule (rules for one syscall are OR-ed): arg0 & FLAG == FLAG -> EPERM.
    for (uint64_t flag :
         {0x00020000ull /*NEWNS*/, 0x02000000ull /*NEWCGROUP*/, 0x04000000ull /*NEWUTS*/,
          0x08000000ull /*NEWIPC*/, 0x10000000ull /*NEWUSER*/, 0x20000000ull /*NEWPID*/,
          0x40000000ull /*NEWNET*/}) {
      auto r = deny({"clone"});
#if defined(__s390x__)
      const int flags_arg = 1;  // s390 swaps clone's first two arguments
#else
      const int flags_arg = 0;
#endif
      r["args"] = json::array({{{"index", flags_arg},
                                {"value", flag},
                                {"valueTwo", flag},
                                {"op", "SCMP_CMP_MASKED_EQ"}}});
      rules.push_back(std::move(r));
    }
    // clone3's flags live in memory seccomp cannot read: Docker answers
    // ENOSYS so that libc falls back to clone, which is checked above.
    rules.push_back(deny({"clone3"}, enosys));
  }

  // personality: Docker allows only PER_LINUX (0), PER_LINUX32 (8),
  // UNAME26 (0x20000), UNAME26|PER_LINUX32 and the query 0xffffffff. One rule
  // whose conditions are AND-ed: arg0 differs from all of them -> EPERM.
  {
    auto r = deny({"personality"});
    json args = json::array();
    for (uint64_t v : {0x0ull, 0x8ull, 0x20000ull, 0x20008ull, 0xffffffffull})
      args.push_back({{"index", 0}, {"value", v}, {"op", "SCMP_CMP_NE"}});
    r["args"] = std::move(args);
    rules.push_back(std::move(r));
  }

  json profile{{"defaultAction", "SCMP_ACT_ALLOW"},
               {"architectures", native_arches()},
               {"syscalls", std::move(rules)}};
  return profile.dump();
}

result<std::string> seccomp_from_profile(const std::string& profile_json,
                                         const std::vector<std::string>& caps) {
  auto bad = [](const std::string& why) { return error{errc::invalid, "seccomp profile: " + why}; };
  auto in = json::parse(profile_json, nullptr, false);
  if (in.is_discarded() || !in.is_object())
    return bad("not a JSON object");
  if (!in.contains("defaultAction") || !in["defaultAction"].is_string())
    return bad("defaultAction is missing");
  auto check_action = [&](const json& a) -> bool {
    return a.is_string() && known_actions().count(a.get<std::string>()) > 0;
  };
  if (!check_action(in["defaultAction"]))
    return bad("unknown defaultAction " + in["defaultAction"].dump());

  json out{{"defaultAction", in["defaultAction"]}};
  if (in.contains("defaultErrnoRet")) {
    if (!in["defaultErrnoRet"].is_number_unsigned())
      return bad("defaultErrnoRet must be a non-negative integer");
    out["defaultErrnoRet"] = in["defaultErrnoRet"];
  }

  // Architectures: archMap's entry for this host (with its sub-architectures)
  // wins, as in containerd; else the plain list.
  std::vector<std::string> arches;
  const auto native = native_arches();
  if (in.contains("archMap") && in["archMap"].is_array() && !in["archMap"].empty()) {
    for (const auto& m : in["archMap"]) {
      if (!m.is_object() || !m.contains("architecture") || !m["architecture"].is_string())
        return bad("archMap entries need an architecture");
      if (native.empty() || m["architecture"] != native.front())
        continue;
      arches.push_back(m["architecture"]);
      if (m.contains("subArchitectures") && m["subArchitectures"].is_array())
        for (const auto& s : m["subArchitectures"])
          if (s.is_string())
            arches.push_back(s);
    }
  } else if (in.contains("architectures")) {
    if (!in["architectures"].is_array())
      return bad("architectures must be a list");
    for (const auto& a : in["architectures"]) {
      if (!a.is_string())
        return bad("architectures must be strings");
      arches.push_back(a);
    }
  }
  if (!arches.empty())
    out["architectures"] = arches;
  if (in.contains("flags") && in["flags"].is_array())
    out["flags"] = in["flags"];

  struct utsname uts {};
  ::uname(&uts);
  const auto kernel = kernel_version(uts.release);
  const auto arch = go_arch();

  auto filter_matches = [&](const json& f, bool include) -> result<bool> {
    // include: every listed cap present, arch listed, kernel new enough.
    // exclude: any listed cap present, or arch listed.
    if (!f.is_object())
      return bad("includes/excludes must be objects");
    if (f.contains("caps") && f["caps"].is_array() && !f["caps"].empty()) {
      bool all = true, any = false;
      for (const auto& c : f["caps"]) {
        bool h = c.is_string() && has(caps, c.get<std::string>());
        all = all && h;
        any = any || h;
      }
      if (include ? !all : any)
        return include ? false : true;
    }
    if (f.contains("arches") && f["arches"].is_array() && !f["arches"].empty()) {
      bool listed = std::any_of(f["arches"].begin(), f["arches"].end(),
                                [&](const json& a) { return a == arch; });
      if (include ? !listed : listed)
        return include ? false : true;
    }
    if (include && f.contains("minKernel") && f["minKernel"].is_string() &&
        !f["minKernel"].get<std::string>().empty()) {
      auto want = kernel_version(f["minKernel"].get<std::string>());
      if (kernel < want)
        return false;
    }
    return include;
  };

  json rules = json::array();
  if (in.contains("syscalls")) {
    if (!in["syscalls"].is_array())
      return bad("syscalls must be a list");
    for (const auto& s : in["syscalls"]) {
      if (!s.is_object())
        return bad("syscalls entries must be objects");
      std::vector<std::string> names;
      bool has_name = s.contains("name") && s["name"].is_string() && !s["name"].empty();
      bool has_names = s.contains("names") && s["names"].is_array();
      if (has_name && has_names)
        return bad("a syscalls entry has both name and names");
      if (has_name)
        names.push_back(s["name"]);
      if (has_names)
        for (const auto& n : s["names"]) {
          if (!n.is_string())
            return bad("syscall names must be strings");
          names.push_back(n);
        }
      if (names.empty())
        return bad("a syscalls entry has no names");
      if (!s.contains("action") || !check_action(s["action"]))
        return bad("unknown action for " + names.front());
      if (s.contains("includes")) {
        auto m = filter_matches(s["includes"], true);
        if (!m)
          return m.err();
        if (!*m)
          continue;
      }
      if (s.contains("excludes")) {
        auto m = filter_matches(s["excludes"], false);
        if (!m)
          return m.err();
        if (*m)
          continue;
      }
      json r{{"names", names}, {"action", s["action"]}};
      if (s.contains("errnoRet")) {
        if (!s["errnoRet"].is_number_unsigned())
          return bad("errnoRet must be a non-negative integer");
        r["errnoRet"] = s["errnoRet"];
      }
      if (s.contains("args") && s["args"].is_array() && !s["args"].empty()) {
        json args = json::array();
        for (const auto& a : s["args"]) {
          if (!a.is_object() || !a.contains("index") || !a["index"].is_number_unsigned() ||
              a["index"].get<unsigned>() > 5 || !a.contains("op") || !a["op"].is_string())
            return bad("syscall args need an index 0..5 and an op");
          json arg{{"index", a["index"]}, {"op", a["op"]}};
          arg["value"] = a.value("value", json(0));
          if (a.contains("valueTwo"))
            arg["valueTwo"] = a["valueTwo"];
          args.push_back(std::move(arg));
        }
        r["args"] = std::move(args);
      }
      rules.push_back(std::move(r));
    }
  }
  out["syscalls"] = std::move(rules);
  return out.dump();
}

}  // namespace deckhand::oci
