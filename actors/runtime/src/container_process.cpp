#include "deckhand/runtime/container_process.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>

#include "deckhand/api/quantity.hpp"
#include "deckhand/common/fsutil.hpp"
#include "deckhand/oci/cgroups.hpp"
#include "deckhand/runtime/options.hpp"
#include "deckhand/runtime/sandbox_ops.hpp"

namespace deckhand::runtime {

namespace {

std::optional<uint32_t> parse_id(const std::string& s) {
  if (s.empty())
    return std::nullopt;
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size())
    return std::nullopt;
  return v;
}

/// One colon-separated line of /etc/passwd or /etc/group.
std::vector<std::string> split_colon(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : line) {
    if (ch == ':') {
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(ch);
    }
  }
  out.push_back(std::move(cur));
  return out;
}

/// Calls `fn(fields)` for each entry of an /etc file in the image; stops when
/// `fn` returns true. Only a regular file is read: the rootfs is untrusted, so
/// a symlink to a host path must not be followed out of it.
template <class Fn>
void scan_db(const std::filesystem::path& file, Fn&& fn) {
  std::error_code ec;
  auto st = std::filesystem::symlink_status(file, ec);
  if (ec || !std::filesystem::is_regular_file(st))
    return;
  std::ifstream in(file);
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line) && ++n < 100000) {
    if (line.empty() || line[0] == '#')
      continue;
    if (fn(split_colon(line)))
      return;
  }
}

}  // namespace

std::vector<std::string> container_env(const env_list& resolved, const image::image_config& img) {
  std::vector<std::string> env;
  std::map<std::string, std::size_t> index;
  auto set = [&](const std::string& key, const std::string& entry) {
    if (auto it = index.find(key); it != index.end()) {
      env[it->second] = entry;
    } else {
      index[key] = env.size();
      env.push_back(entry);
    }
  };
  for (const auto& e : img.env) {
    auto eq = e.find('=');
    set(eq == std::string::npos ? e : e.substr(0, eq), e);
  }
  for (const auto& [name, value] : resolved)
    set(name, name + "=" + value);
  return env;
}

std::vector<std::string> container_env(const wire::container& c, const image::image_config& img) {
  return container_env(plain_env(c), img);
}

result<std::vector<std::string>>
container_args(const wire::container& c, const image::image_config& img, const env_list& env) {
  std::vector<std::string> argv;
  if (!c.command.empty()) {
    argv = c.command;
    argv.insert(argv.end(), c.args.begin(), c.args.end());
  } else {
    argv = img.entrypoint;
    const auto& tail = c.args.empty() ? img.cmd : c.args;
    argv.insert(argv.end(), tail.begin(), tail.end());
  }
  // ExpandContainerCommandAndArgs: only the pod's own command and args are
  // expanded, never the image's ENTRYPOINT or CMD.
  std::map<std::string, std::string> vars(env.begin(), env.end());
  if (!c.command.empty()) {
    for (auto& a : argv)
      a = expand_references(a, vars);
  } else if (!c.args.empty()) {
    for (std::size_t i = img.entrypoint.size(); i < argv.size(); ++i)
      argv[i] = expand_references(argv[i], vars);
  }
  if (argv.empty() || argv[0].empty())
    return error{errc::invalid, "container \"" + c.name +
                                    "\": no command specified (neither the pod nor "
                                    "the image gives one)"};
  return argv;
}

result<std::vector<std::string>> container_args(const wire::container& c,
                                                const image::image_config& img) {
  return container_args(c, img, plain_env(c));
}

std::string container_cwd(const wire::container& c, const image::image_config& img) {
  if (!c.working_dir.empty())
    return c.working_dir;
  if (!img.working_dir.empty())
    return img.working_dir;
  return "/";
}

result<std::pair<uid_t, gid_t>> resolve_user(const std::string& user,
                                             const std::filesystem::path& rootfs) {
  if (user.empty())
    return std::pair<uid_t, gid_t>{0, 0};
  auto colon = user.find(':');
  std::string u = user.substr(0, colon);
  std::string g = colon == std::string::npos ? std::string{} : user.substr(colon + 1);

  std::optional<uid_t> uid;
  std::optional<gid_t> primary_gid;
  if (auto n = parse_id(u)) {
    uid = *n;
    scan_db(rootfs / "etc" / "passwd", [&](const std::vector<std::string>& f) {
      if (f.size() >= 4 && parse_id(f[2]) == *n) {
        primary_gid = parse_id(f[3]);
        return true;
      }
      return false;
    });
  } else {
    scan_db(rootfs / "etc" / "passwd", [&](const std::vector<std::string>& f) {
      if (f.size() >= 4 && f[0] == u) {
        uid = parse_id(f[2]);
        primary_gid = parse_id(f[3]);
        return true;
      }
      return false;
    });
    if (!uid)
      return error{errc::invalid, "user \"" + u + "\" is not in the image's /etc/passwd"};
  }

  gid_t gid = primary_gid.value_or(0);
  if (!g.empty()) {
    if (auto n = parse_id(g)) {
      gid = *n;
    } else {
      std::optional<gid_t> found;
      scan_db(rootfs / "etc" / "group", [&](const std::vector<std::string>& f) {
        if (f.size() >= 3 && f[0] == g) {
          found = parse_id(f[2]);
          return true;
        }
        return false;
      });
      if (!found)
        return error{errc::invalid, "group \"" + g + "\" is not in the image's /etc/group"};
      gid = *found;
    }
  }
  return std::pair<uid_t, gid_t>{*uid, gid};
}

result<container_process> make_container_process(const wire::container& c,
                                                 const image::image_config& img,
                                                 const std::filesystem::path& rootfs,
                                                 const env_list* env) {
  container_process p;
  auto own = env ? env_list{} : plain_env(c);
  const auto& resolved = env ? *env : own;
  auto args = container_args(c, img, resolved);
  if (!args)
    return std::move(args).err();
  p.args = std::move(*args);
  p.env = container_env(resolved, img);
  p.stop_signal = img.stop_signal;
  p.cwd = container_cwd(c, img);
  if (p.cwd.empty() || p.cwd[0] != '/')
    return error{errc::invalid, "container \"" + c.name +
                                    "\": workingDir must be an absolute path, got \"" + p.cwd +
                                    "\""};
  auto user = resolve_user(img.user, rootfs);
  if (!user)
    return error{errc::invalid, "container \"" + c.name + "\": " + user.err().message};
  p.uid = user->first;
  p.gid = user->second;
  p.image_user = img.user;
  return p;
}

namespace {

// The kubelet's constants (pkg/kubelet/cm: MinShares, MaxShares, SharesPerCPU,
// QuotaPeriod, MinQuotaPeriod).
constexpr int64_t min_shares = 2;
constexpr int64_t max_shares = 262144;
constexpr int64_t shares_per_cpu = 1024;
constexpr int64_t quota_period_us = 100000;
constexpr int64_t min_quota_period_us = 1000;

uint64_t milli_cpu_to_shares(int64_t milli) {
  if (milli == 0)
    return min_shares;
  return static_cast<uint64_t>(
      std::clamp<int64_t>(milli * shares_per_cpu / 1000, min_shares, max_shares));
}

int64_t milli_cpu_to_quota(int64_t milli, int64_t period) {
  if (milli == 0)
    return 0;
  return std::max(milli * period / 1000, min_quota_period_us);
}

/// One quantity of a container's requests or limits, absent when not given.
result<std::optional<int64_t>> quantity_of(const wire::container& c, const wire::string_map& m,
                                           const char* which, const std::string& key, bool milli) {
  auto it = m.find(key);
  if (it == m.end())
    return std::optional<int64_t>{};
  auto v = milli ? api::quantity_milli_value(it->second) : api::quantity_value(it->second);
  if (!v)
    return error{errc::invalid, "container \"" + c.name + "\": resources." + which + "." + key +
                                    ": " + v.err().message};
  if (*v < 0)
    return error{errc::invalid, "container \"" + c.name + "\": resources." + which + "." + key +
                                    " must not be negative"};
  return std::optional<int64_t>{*v};
}

/// cpu request, cpu limit (millicores) and memory limit (bytes) of a
/// container; the request defaults to the limit as the API server's defaulting
/// does.
struct container_quantities {
  std::optional<int64_t> cpu_request, cpu_limit, memory_limit;
};

result<container_quantities> quantities_of(const wire::container& c) {
  container_quantities q;
  const auto& r = c.resources;
  auto cpu_req = quantity_of(c, r.requests, "requests", "cpu", true);
  if (!cpu_req)
    return cpu_req.err();
  auto cpu_lim = quantity_of(c, r.limits, "limits", "cpu", true);
  if (!cpu_lim)
    return cpu_lim.err();
  auto mem_lim = quantity_of(c, r.limits, "limits", "memory", false);
  if (!mem_lim)
    return mem_lim.err();
  // A memory request is only checked for syntax: cgroups have no use for it
  // (oom_score_adj aside).
  if (auto mem_req = quantity_of(c, r.requests, "requests", "memory", false); !mem_req)
    return mem_req.err();
  q.cpu_request = *cpu_req ? *cpu_req : *cpu_lim;
  q.cpu_limit = *cpu_lim;
  q.memory_limit = *mem_lim;
  return q;
}

std::string pod_ref(const wire::pod& p) {
  return (p.metadata.namespace_.empty() ? std::string("default") : p.metadata.namespace_) + "/" +
         p.metadata.name;
}

/// Kubernetes' ID range for runAsUser, runAsGroup, fsGroup, supplementalGroups.
bool valid_id(int64_t v) { return v >= 0 && v <= 2147483647; }

/// The uid part of an image's User, as the kubelet's getImageUser reads it:
/// a number, or a name (that cannot be checked for root).
struct image_uid {
  std::optional<int64_t> uid;
  std::string name;
};

image_uid parse_image_user(const std::string& user) {
  auto u = user.substr(0, user.find(':'));
  if (u.empty())
    return {int64_t{0}, {}};  // no User: the image runs as root
  if (auto n = parse_id(u))
    return {int64_t{*n}, {}};
  return {std::nullopt, u};
}

/// Groups of the image's /etc/group that list `uid`'s user name (or
/// `name`) as a member, except the user's own group, as containerd's
/// WithAdditionalGIDs.
std::vector<gid_t> member_groups(const std::filesystem::path& rootfs, uid_t uid, std::string name) {
  if (name.empty())
    scan_db(rootfs / "etc" / "passwd", [&](const std::vector<std::string>& f) {
      if (f.size() >= 3 && parse_id(f[2]) == uid) {
        name = f[0];
        return true;
      }
      return false;
    });
  std::vector<gid_t> out;
  if (name.empty())
    return out;
  scan_db(rootfs / "etc" / "group", [&](const std::vector<std::string>& f) {
    if (f.size() >= 4 && f[0] != name) {
      std::string members = f[3];
      std::size_t pos = 0;
      while (pos <= members.size()) {
        auto comma = members.find(',', pos);
        auto m = members.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        if (m == name) {
          if (auto g = parse_id(f[2]))
            out.push_back(*g);
          break;
        }
        if (comma == std::string::npos)
          break;
        pos = comma + 1;
      }
    }
    return false;
  });
  return out;
}

/// A relative path without "." or ".." components, as Kubernetes requires of
/// localhostProfile.
bool clean_relative(const std::string& p) {
  if (p.empty() || p.front() == '/')
    return false;
  std::filesystem::path path(p);
  for (const auto& part : path)
    if (part == ".." || part == ".")
      return false;
  return true;
}

result<std::string> load_localhost_profile(const std::string& c_name, const std::string& profile,
                                           const container_options& opts) {
  namespace fs = std::filesystem;
  auto prefix = "container \"" + c_name + "\": seccompProfile Localhost";
  if (!clean_relative(profile))
    return error{errc::invalid, prefix + ": localhostProfile \"" + profile +
                                    "\" must be a relative path without '.' or '..'"};
  if (opts.seccomp_dir.empty())
    return error{errc::invalid, prefix + ": no seccomp profile directory is configured"};
  std::error_code ec;
  auto root = fs::weakly_canonical(opts.seccomp_dir, ec);
  auto file = fs::weakly_canonical(opts.seccomp_dir / profile, ec);
  if (ec)
    return error{errc::not_found,
                 prefix + ": " + (opts.seccomp_dir / profile).string() + ": " + ec.message()};
  // A symlink inside the directory must not lead out of it.
  auto rel = file.lexically_relative(root);
  if (rel.empty() || *rel.begin() == "..")
    return error{errc::invalid,
                 prefix + ": " + profile + " leads out of " + opts.seccomp_dir.string()};
  if (!fs::is_regular_file(file, ec))
    return error{errc::not_found,
                 prefix + ": no profile file " + (opts.seccomp_dir / profile).string()};
  auto text = fsutil::read_file(file, 1u << 20);
  if (!text)
    return error{text.err().code, prefix + ": " + text.err().message};
  return std::move(*text);
}

}  // namespace

result<oci::resource_limits> container_resource_limits(const wire::container& c) {
  auto q = quantities_of(c);
  if (!q)
    return q.err();
  oci::resource_limits l;
  l.cpu_shares = milli_cpu_to_shares(q->cpu_request.value_or(0));
  if (q->cpu_limit && *q->cpu_limit > 0) {
    l.cpu_quota_us = milli_cpu_to_quota(*q->cpu_limit, quota_period_us);
    l.cpu_period_us = quota_period_us;
  }
  if (q->memory_limit && *q->memory_limit > 0) {
    l.memory_limit_bytes = *q->memory_limit;
    // The kubelet without swap support sets memory+swap to the limit.
    l.memory_swap_bytes = *q->memory_limit;
  }
  return l;
}

result<oci::resource_limits> pod_resource_limits(const wire::pod& p,
                                                 const container_options& opts) {
  int64_t cpu_requests = 0, cpu_limits = 0, memory_limits = 0;
  bool all_cpu_limited = !p.spec.containers.empty();
  bool all_memory_limited = !p.spec.containers.empty();
  for (const auto& c : p.spec.containers) {
    auto q = quantities_of(c);
    if (!q)
      return q.err();
    cpu_requests += q->cpu_request.value_or(0);
    if (q->cpu_limit && *q->cpu_limit > 0)
      cpu_limits += *q->cpu_limit;
    else
      all_cpu_limited = false;
    if (q->memory_limit && *q->memory_limit > 0)
      memory_limits += *q->memory_limit;
    else
      all_memory_limited = false;
  }
  oci::resource_limits l;
  l.cpu_shares = milli_cpu_to_shares(cpu_requests);
  if (all_cpu_limited) {
    l.cpu_quota_us = milli_cpu_to_quota(cpu_limits, quota_period_us);
    l.cpu_period_us = quota_period_us;
  }
  if (all_memory_limited)
    l.memory_limit_bytes = memory_limits;
  l.pids_limit = opts.pod_pids_limit;
  return l;
}

error setup_pod_cgroup(const wire::pod& p, const container_options& opts) {
  auto l = pod_resource_limits(p, opts);
  if (!l)
    return l.err();
  return oci::apply_pod_cgroup_limits(p.metadata.uid, *l);
}

result<oci::bundle_spec> container_bundle_spec(const wire::pod& p, const wire::container& c,
                                               const container_process& proc,
                                               const std::filesystem::path& rootfs,
                                               const container_options& opts) {
  const auto& sc = c.security_context_;
  const auto& psc = p.spec.security_context_;
  auto fail = [&](const std::string& what) {
    return error{errc::invalid, "container \"" + c.name + "\": " + what};
  };

  oci::bundle_spec spec;
  spec.args = proc.args;
  spec.env = proc.env;
  spec.cwd = proc.cwd;
  spec.uid = proc.uid;
  spec.gid = proc.gid;
  spec.rootfs = rootfs;
  if (!proc.stop_signal.empty())
    spec.annotations[oci::stop_signal_annotation] = proc.stop_signal;
  auto hostname = p.spec.hostname.empty() ? p.metadata.name : p.spec.hostname;
  if (hostname.size() > 63)
    hostname.resize(63);
  spec.hostname = hostname;

  // -- user and groups: container over pod over image ------------------------
  const auto run_as_user = sc.run_as_user ? sc.run_as_user : psc.run_as_user;
  const auto run_as_group = sc.run_as_group ? sc.run_as_group : psc.run_as_group;
  if (run_as_user && !valid_id(*run_as_user))
    return fail("runAsUser " + std::to_string(*run_as_user) + " is out of range");
  if (run_as_group && !valid_id(*run_as_group))
    return fail("runAsGroup " + std::to_string(*run_as_group) + " is out of range");

  const auto run_as_non_root = sc.run_as_non_root ? sc.run_as_non_root : psc.run_as_non_root;
  if (run_as_non_root.value_or(false)) {
    // The kubelet's verifyRunAsNonRoot, with its messages.
    auto where = " (pod: \"" + pod_ref(p) + "\", container: " + c.name + ")";
    if (run_as_user) {
      if (*run_as_user == 0)
        return fail("container's runAsUser breaks non-root policy" + where);
    } else {
      auto img = parse_image_user(proc.image_user);
      if (img.uid && *img.uid == 0)
        return fail("container has runAsNonRoot and image will run as root" + where);
      if (!img.uid)
        return fail("container has runAsNonRoot and image has non-numeric user (" + img.name +
                    "), cannot verify user is non-root" + where);
    }
  }

  bool explicit_group = proc.image_user.find(':') != std::string::npos;
  if (run_as_user) {
    // containerd's WithUser("uid[:gid]"): without a group, the primary group
    // of the uid in the image's /etc/passwd, else 0.
    auto user = std::to_string(*run_as_user);
    if (run_as_group)
      user += ":" + std::to_string(*run_as_group);
    auto ids = resolve_user(user, rootfs);
    if (!ids)
      return fail(ids.err().message);
    spec.uid = ids->first;
    spec.gid = ids->second;
    explicit_group = run_as_group.has_value();
  } else if (run_as_group) {
    // The kubelet passes the image's uid as runAsUser, so the group applies
    // to the image's user.
    spec.gid = static_cast<gid_t>(*run_as_group);
    explicit_group = true;
  }
  std::vector<gid_t> gids;
  auto add_gid = [&](gid_t g) {
    if (std::find(gids.begin(), gids.end(), g) == gids.end())
      gids.push_back(g);
  };
  if (!explicit_group) {
    auto img = parse_image_user(proc.image_user);
    auto name = run_as_user ? std::string() : img.name;
    for (auto g : member_groups(rootfs, spec.uid, name))
      add_gid(g);
  }
  for (auto g : psc.supplemental_groups) {
    if (!valid_id(g))
      return fail("supplementalGroups entry " + std::to_string(g) + " is out of range");
    add_gid(static_cast<gid_t>(g));
  }
  if (psc.fs_group) {
    if (!valid_id(*psc.fs_group))
      return fail("fsGroup " + std::to_string(*psc.fs_group) + " is out of range");
    add_gid(static_cast<gid_t>(*psc.fs_group));
  }
  spec.additional_gids = std::move(gids);

  // -- privileges ------------------------------------------------------------
  const bool privileged = sc.privileged.value_or(false);
  spec.privileged = privileged;
  spec.cap_add = sc.capabilities_.add;
  spec.cap_drop = sc.capabilities_.drop;
  if (sc.allow_privilege_escalation && !*sc.allow_privilege_escalation) {
    // The API server's validation, repeated for pods that bypass it (static
    // pods): both combinations imply escalation.
    if (privileged)
      return fail("cannot set allowPrivilegeEscalation to false and privileged to true");
    for (auto cap : sc.capabilities_.add) {
      std::transform(cap.begin(), cap.end(), cap.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
      if (cap == "SYS_ADMIN" || cap == "CAP_SYS_ADMIN")
        return fail("cannot set allowPrivilegeEscalation to false and capabilities.Add "
                    "CAP_SYS_ADMIN");
    }
    spec.no_new_privileges = true;
  }
  spec.readonly_rootfs = sc.read_only_root_filesystem.value_or(false);

  // -- seccomp: container over pod; unset is Unconfined ------------------------
  const auto& prof = sc.seccomp_profile_.type.empty() ? psc.seccomp_profile_ : sc.seccomp_profile_;
  if (prof.type.empty() || prof.type == "Unconfined") {
    spec.seccomp = oci::seccomp_mode::unconfined;
  } else if (prof.type == "RuntimeDefault") {
    spec.seccomp = oci::seccomp_mode::runtime_default;
  } else if (prof.type == "Localhost") {
    if (!privileged) {  // privileged containers get no filter at all
      auto text = load_localhost_profile(c.name, prof.localhost_profile, opts);
      if (!text)
        return text.err();
      spec.seccomp = oci::seccomp_mode::profile;
      spec.seccomp_profile = std::move(*text);
    }
  } else {
    return fail("seccompProfile type \"" + prof.type +
                "\" is not one of RuntimeDefault, Unconfined, Localhost");
  }

  // -- resources ---------------------------------------------------------------
  auto limits = container_resource_limits(c);
  if (!limits)
    return limits.err();
  spec.resources = *limits;
  spec.cgroups_path = oci::container_cgroup_path(p.metadata.uid, c.name);
  return spec;
}

std::vector<wire::container_stats> collect_container_stats(const runtime_options& opts,
                                                           const std::string& uid) {
  std::vector<wire::container_stats> out;
  std::vector<wire::sandbox_status> sandboxes;
  if (uid.empty()) {
    sandboxes = list_sandboxes(opts);
  } else if (auto st = read_sandbox(opts, uid)) {
    sandboxes.push_back(std::move(*st));
  }
  for (const auto& sb : sandboxes) {
    if (sb.state != "ready")
      continue;
    for (const auto& c : sb.containers) {
      if (!c.status.state.is_running())
        continue;
      auto s = oci::read_cgroup_stats(oci::container_cgroup_path(sb.uid, c.name));
      if (!s)
        continue;
      wire::container_stats w;
      w.uid = sb.uid;
      w.pod = sb.namespace_ + "/" + sb.name;
      w.container = c.name;
      w.cpu_usage_ns = s->cpu_usage_ns;
      w.memory_usage_bytes = s->memory_usage_bytes;
      w.memory_working_set_bytes = s->memory_working_set_bytes;
      w.memory_limit_bytes = s->memory_limit_bytes;
      w.pids = s->pids;
      w.timestamp_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      out.push_back(std::move(w));
    }
  }
  return out;
}

}  // namespace deckhand::runtime
