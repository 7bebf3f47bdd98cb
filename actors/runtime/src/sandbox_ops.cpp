#include "deckhand/runtime/sandbox_ops.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/messages/json.hpp"
#include "deckhand/net/netns.hpp"
#include "deckhand/oci/bundle.hpp"
#include "deckhand/oci/cgroups.hpp"
#include "deckhand/oci/mount.hpp"
#include "deckhand/oci/process.hpp"
#include "deckhand/oci/runc.hpp"
#include "deckhand/runtime/container_process.hpp"
#include "deckhand/runtime/network.hpp"
#include "deckhand/runtime/pod_env.hpp"
#include "deckhand/runtime/supervisor_process.hpp"
#include "deckhand/runtime/volumes.hpp"

namespace deckhand::runtime {

namespace fs = std::filesystem;

namespace {

bool valid_uid(const std::string& uid) {
  if (uid.empty() || uid.size() > 128 || uid[0] == '.' || uid[0] == '-')
    return false;
  return std::all_of(uid.begin(), uid.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
  });
}

/// RFC 1123 label, as Kubernetes requires of container names.
bool valid_container_name(const std::string& n) {
  if (n.empty() || n.size() > 63 || n.front() == '-' || n.back() == '-')
    return false;
  return std::all_of(n.begin(), n.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
  });
}

std::string pod_namespace(const std::string& ns) { return ns.empty() ? "default" : ns; }

template <class T>
result<T> read_json_file(const fs::path& file) {
  auto text = fsutil::read_file(file, 16u << 20);
  if (!text)
    return std::move(text).err();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded())
    return error{errc::invalid, file.string() + ": not valid JSON"};
  return wire::from_json<T>(j);
}

std::optional<sandbox_record> read_record(const fs::path& dir) {
  auto text = fsutil::read_file(pod_dir::sandbox_json(dir), 1u << 20);
  if (!text)
    return std::nullopt;
  auto rec = decode_sandbox_record(*text);
  if (!rec)
    return std::nullopt;
  return std::move(*rec);
}

error write_record(const fs::path& dir, const sandbox_record& rec) {
  return fsutil::write_file_atomic(pod_dir::sandbox_json(dir), encode_sandbox_record(rec),
                                   fsutil::durability::process_crash);
}

oci::runc make_runc(const runtime_options& opts) {
  return oci::runc(paths::runc_root(opts.data_dir), opts.oci_runtime);
}

/// Names of the pod's containers from every source that may know them.
std::vector<std::string> container_names(const fs::path& dir) {
  std::set<std::string> names;
  if (auto p = read_json_file<wire::pod>(pod_dir::pod_json(dir))) {
    for (const auto& c : p->spec.init_containers)
      names.insert(c.name);
    for (const auto& c : p->spec.containers)
      names.insert(c.name);
  }
  if (auto rec = read_record(dir))
    names.insert(rec->containers.begin(), rec->containers.end());
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir / "containers", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec))
    names.insert(it->path().filename().string());
  return {names.begin(), names.end()};
}

std::string unescape_mountinfo(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      auto oct = s.substr(i + 1, 3);
      if (oct.size() == 3 &&
          std::all_of(oct.begin(), oct.end(), [](char c) { return c >= '0' && c <= '7'; })) {
        out.push_back(static_cast<char>(std::stoi(oct, nullptr, 8)));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

/// What every container of a pod shares, once set up.
struct pod_shared {
  std::string pod_ip;
  std::string hostname;
  bool host_network = false;
  fs::path netns;
  fs::path uts_ns;
  fs::path ipc_ns;
  std::vector<oci::bind_mount> mounts;
  std::chrono::microseconds network_setup{0};
};

std::string node_hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0)
    return "localhost";
  return buf;
}

/// Files that need not survive a machine crash: a crash takes the pod down
/// with it, and a new sandbox writes them afresh. Skipping fsync keeps three
/// disk flushes off the pod start path.
error write_pod_file(const fs::path& file, const std::string& text) {
  auto fd = oci::open_fd(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!fd)
    return fd.err();
  if (::write(fd->get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return error::from_errno("write " + file.string());
  return {};
}

/// Namespaces, network, /dev/shm and /etc files of pod `p` in `dir`.
/// Everything it creates lives under `dir` or is found by pod uid (the
/// address allocation, and through it the veth), so remove_sandbox() undoes
/// a partial run.
result<pod_shared> set_up_pod_shared(const runtime_options& opts, const wire::pod& p,
                                     const fs::path& dir) {
  pod_shared sh;
  sh.host_network = p.spec.host_network;
  if (opts.backend == "process") {
    // Host processes: no namespace, mount or interface of their own (none of
    // that is possible without privileges); they share the node's network
    // and see the node's /etc files. The bundle still records the process.
    sh.host_network = true;
    sh.hostname = node_hostname();
    auto ip = node_address(opts.bridge_name);
    sh.pod_ip = ip ? ip->to_string() : "127.0.0.1";
    return sh;
  }
  if (sh.host_network) {
    // The node's hostname, as Kubernetes gives hostNetwork pods, but in a UTS
    // namespace of the pod's own so that runc never renames the node.
    sh.hostname = node_hostname();
  } else {
    sh.hostname = p.spec.hostname.empty() ? p.metadata.name : p.spec.hostname;
    if (sh.hostname.size() > 63)
      sh.hostname.resize(63);
    sh.netns = pod_dir::netns(dir);
  }
  sh.uts_ns = sandbox_files::uts_ns(dir);
  sh.ipc_ns = sandbox_files::ipc_ns(dir);
  if (auto r = net::create_namespaces({sh.netns, sh.uts_ns, sh.ipc_ns}, sh.hostname); !r)
    return std::move(r).err();

  if (sh.host_network) {
    auto ip = node_address(opts.bridge_name);
    sh.pod_ip = ip ? ip->to_string() : "127.0.0.1";
  } else {
    auto began = std::chrono::steady_clock::now();
    auto net = pod_network::open(opts);
    if (!net)
      return std::move(net).err();
    auto att = net->attach(p.metadata.uid, sh.netns);
    if (!att)
      return std::move(att).err();
    sh.network_setup = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - began);
    sh.pod_ip = att->ip.to_string();
  }

  auto shm = sandbox_files::shm(dir);
  std::error_code ec;
  fs::create_directories(shm, ec);
  if (ec)
    return error{errc::io, "create " + shm.string() + ": " + ec.message()};
  if (!oci::is_mountpoint(shm) &&
      ::mount("shm", shm.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=1777,size=67108864") != 0)
    return error::from_errno("mount tmpfs on " + shm.string());

  auto etc = sandbox_files::etc(dir);
  fs::create_directories(etc, ec);
  if (ec)
    return error{errc::io, "create " + etc.string() + ": " + ec.message()};
  if (auto err = write_pod_file(etc / "hostname", sh.hostname + "\n"))
    return err;
  if (auto err = write_pod_file(etc / "hosts", render_hosts_file(sh.pod_ip, sh.hostname)))
    return err;
  if (auto err = write_pod_file(etc / "resolv.conf", render_resolv_conf(opts, sh.host_network)))
    return err;
  sh.mounts = {{etc / "hostname", "/etc/hostname", false},
               {etc / "hosts", "/etc/hosts", false},
               {etc / "resolv.conf", "/etc/resolv.conf", false},
               {shm, "/dev/shm", false}};
  return sh;
}

/// Deletes the pod's veth and releases its address; a failure is logged and
/// left to the next start-up sweep.
void release_pod_network(const runtime_options& opts, const std::string& uid) {
  auto net = pod_network::open(opts);
  if (!net) {
    log::get()->warn("msg=\"pod network unusable, address not released\" uid={} error=\"{}\"", uid,
                     net.err().message);
    return;
  }
  if (auto err = net->detach(uid))
    log::get()->warn("msg=\"pod network teardown failed\" uid={} error=\"{}\"", uid, err.message);
}

/// Makes a container spec join what its pod shares.
void join_pod_shared(oci::bundle_spec& spec, const pod_shared& sh) {
  spec.host_network = sh.host_network;
  spec.netns_path = sh.netns;
  spec.uts_ns_path = sh.uts_ns;
  spec.ipc_ns_path = sh.ipc_ns;
  spec.hostname = sh.hostname;
  spec.mounts.insert(spec.mounts.end(), sh.mounts.begin(), sh.mounts.end());
}

}  // namespace

std::vector<fs::path> mounts_under(const fs::path& dir) {
  std::error_code ec;
  auto base = fs::weakly_canonical(dir, ec);
  if (ec)
    base = dir;
  auto prefix = base.string();
  std::vector<fs::path> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mount-point ...; spaces in paths are octal
    // escapes, so splitting on blanks is exact.
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    if (!(fields >> id >> parent >> devno >> root >> point))
      continue;
    auto mp = unescape_mountinfo(point);
    if (mp == prefix || (mp.size() > prefix.size() && mp.compare(0, prefix.size(), prefix) == 0 &&
                         mp[prefix.size()] == '/'))
      out.emplace_back(mp);
  }
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) {
    return a.string().size() > b.string().size();
  });
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

error validate_pod(const wire::pod& p) {
  if (!valid_uid(p.metadata.uid))
    return {errc::invalid, "pod uid \"" + p.metadata.uid +
                               "\" is empty or not usable as a name (letters, digits, "
                               "'-', '_', '.'; at most 128)"};
  if (p.metadata.name.empty())
    return {errc::invalid, "pod " + p.metadata.uid + " has no name"};
  if (p.spec.containers.empty())
    return {errc::invalid, "pod " + p.metadata.name + " has no containers"};
  std::set<std::string> seen;
  std::vector<const wire::container*> all;
  for (const auto& c : p.spec.init_containers)
    all.push_back(&c);
  for (const auto& c : p.spec.containers)
    all.push_back(&c);
  for (const auto* cp : all) {
    const auto& c = *cp;
    if (!valid_container_name(c.name))
      return {errc::invalid, "container name \"" + c.name +
                                 "\" is not a DNS label (lower-case letters, digits, "
                                 "'-'; at most 63)"};
    if (!seen.insert(c.name).second)
      return {errc::invalid, "container name \"" + c.name + "\" is used twice"};
    if (c.image.empty())
      return {errc::invalid, "container \"" + c.name + "\" has no image"};
  }
  return {};
}

result<wire::sandbox_status> create_sandbox(const runtime_options& opts,
                                            const image::image_store& images, const wire::pod& p) {
  if (auto err = validate_pod(p))
    return err;
  const auto& uid = p.metadata.uid;
  auto lg = log::get();

  // Everything that can be checked is checked before anything is created.
  struct planned {
    const wire::container* spec;
    fs::path lower;
    image::image_config config;
  };
  const bool host_processes = opts.backend == "process";
  if (auto err = validate_volumes(p))
    return err;
  // Before anything exists: the values a container's env needs from the
  // sandbox are placeholders here, resolved for real once it is set up.
  pod_env_context env_ctx;
  env_ctx.host_ip = p.status.host_ip;
  if (env_ctx.host_ip.empty())
    if (auto ip = node_address(opts.bridge_name))
      env_ctx.host_ip = ip->to_string();
  env_ctx.node = read_node_allocatable(opts.data_dir);
  std::vector<planned> plan;
  std::vector<const wire::container*> all;
  for (const auto& c : p.spec.init_containers)
    all.push_back(&c);
  for (const auto& c : p.spec.containers)
    all.push_back(&c);
  for (const auto* cp : all) {
    const auto& c = *cp;
    if (host_processes && !c.volume_mounts.empty())
      return error{errc::unsupported,
                   "volumes are not supported by the process backend (no mount namespace): "
                   "container \"" +
                       c.name + "\" mounts volume \"" + c.volume_mounts.front().name + "\""};
    auto rec = images.find(c.image);
    if (!rec) {
      if (rec.err().code == errc::not_found)
        return error{errc::not_found, "image \"" + c.image +
                                          "\" is not present on the node; import it with: deckhand "
                                          "image import PATH"};
      return error{rec.err().code, "image \"" + c.image + "\": " + rec.err().message};
    }
    // After the image, as the kubelet's generateContainerConfig runs after
    // EnsureImageExists.
    auto env = resolve_env(p, c, env_ctx);
    if (!env)
      return env.err();
    auto lower = images.rootfs_path(*rec);
    auto proc = make_container_process(c, rec->config, lower, &*env);
    if (!proc)
      return std::move(proc).err();
    plan.push_back({&c, lower, rec->config});
  }

  auto dir = pod_dir::root(opts.data_dir, uid);
  std::error_code ec;
  if (fs::exists(dir, ec))
    if (auto err = remove_sandbox(opts, uid))
      return err;

  auto fail = [&](error err) -> result<wire::sandbox_status> {
    lg->warn("msg=\"sandbox creation failed, undoing\" pod={}/{} uid={} error=\"{}\"",
             pod_namespace(p.metadata.namespace_), p.metadata.name, uid, err.message);
    if (auto undo = remove_sandbox(opts, uid))
      lg->error("msg=\"undo failed\" uid={} error=\"{}\"", uid, undo.message);
    return err;
  };

  fs::create_directories(dir / "containers", ec);
  if (ec)
    return error::from_errno("mkdir " + dir.string(), ec.value());
  if (auto err = fsutil::write_file_atomic(pod_dir::pod_json(dir), wire::to_json(p).dump(),
                                           fsutil::durability::process_crash))
    return fail(err);

  sandbox_record rec;
  rec.uid = uid;
  rec.namespace_ = pod_namespace(p.metadata.namespace_);
  rec.name = p.metadata.name;
  rec.state = "creating";
  rec.host_network = p.spec.host_network;
  if (!p.spec.host_network)
    rec.netns = pod_dir::netns(dir).string();
  rec.created_at = now_rfc3339();
  for (const auto* c : all)
    rec.containers.push_back(c->name);
  if (auto err = write_record(dir, rec))
    return fail(err);

  auto shared = set_up_pod_shared(opts, p, dir);
  if (!shared)
    return fail(shared.err());
  rec.pod_ip = shared->pod_ip;
  env_ctx.pod_ip = shared->pod_ip;

  // The process back-end mounts nothing, so it has no use for volumes (no
  // container may mount one, checked above).
  volume_paths volumes;
  if (!host_processes) {
    auto v = set_up_volumes(p, dir, env_ctx.node);
    if (!v)
      return fail(v.err());
    volumes = std::move(*v);
  }

  const container_options copts{paths::kubelet_dir(opts.data_dir) / "seccomp", std::nullopt};
  if (!host_processes)
    if (auto err = setup_pod_cgroup(p, copts))
      return fail(err);
  for (auto& step : plan) {
    auto b = pod_dir::bundle(dir, step.spec->name);
    // The process back-end mounts nothing: its bundle points at the image's
    // unpacked rootfs, which deckhand-process-oci never reads or writes.
    auto rootfs = host_processes ? step.lower : b / "rootfs";
    if (!host_processes)
      if (auto r = oci::mount_overlay({step.lower}, b / "upper", b / "work", rootfs); !r)
        return fail(r.err());
    auto env = resolve_env(p, *step.spec, env_ctx);
    if (!env)
      return fail(env.err());
    auto proc = make_container_process(*step.spec, step.config, step.lower, &*env);
    if (!proc)
      return fail(proc.err());
    auto built = container_bundle_spec(p, *step.spec, *proc, rootfs, copts);
    if (!built)
      return fail(built.err());
    auto& spec = *built;
    if (host_processes) {
      fs::create_directories(b, ec);
      spec.host_network = true;
      spec.cgroups_path.reset();
    } else {
      join_pod_shared(spec, *shared);
      auto mounts = container_volume_mounts(*step.spec, volumes);
      if (!mounts)
        return fail(mounts.err());
      spec.mounts.insert(spec.mounts.end(), mounts->begin(), mounts->end());
    }
    if (auto r = oci::write_bundle(b, spec); !r)
      return fail(r.err());
  }

  rec.state = "ready";
  if (auto err = write_record(dir, rec))
    return fail(err);
  lg->info("msg=\"sandbox created\" pod={}/{} uid={} containers={} ip={} network_us={}",
           rec.namespace_, rec.name, uid, rec.containers.size(), rec.pod_ip,
           shared->network_setup.count());
  auto st = read_sandbox(opts, uid);
  if (!st)
    return fail(st.err());
  return st;
}

result<wire::sandbox_status> read_sandbox(const runtime_options& opts, const std::string& uid) {
  if (!valid_uid(uid))
    return error{errc::not_found, "no sandbox " + uid};
  auto dir = pod_dir::root(opts.data_dir, uid);
  auto pod = read_json_file<wire::pod>(pod_dir::pod_json(dir));
  auto rec = read_record(dir);
  if (!pod || !rec || rec->state == "creating")
    return error{errc::not_found, "no sandbox " + uid};

  wire::sandbox_status st;
  if (auto sup = read_json_file<wire::sandbox_status>(pod_dir::status_json(dir)))
    st = std::move(*sup);
  st.uid = uid;
  st.namespace_ = rec->namespace_;
  st.name = rec->name;
  st.created_at = rec->created_at;
  st.pod_ip_ = rec->pod_ip;
  auto pid = read_supervisor_pid(dir);
  st.supervisor_pid = pid.value_or(0);
  st.supervisor_alive = pid && is_supervisor_of(*pid, uid);
  std::error_code ec;
  bool stopping = fs::exists(pod_dir::stopping_marker(dir), ec);
  if (rec->state == "stopped" || (stopping && st.state == "stopped"))
    st.state = "stopped";
  else if (stopping)
    st.state = "stopping";
  else
    st.state = "ready";
  // Before the supervisor's first status.json, every container is waiting.
  for (const auto& c : pod->spec.init_containers) {
    bool known = std::any_of(st.init_containers.begin(), st.init_containers.end(),
                             [&](const wire::container_record& r) { return r.name == c.name; });
    if (known)
      continue;
    wire::container_record r;
    r.name = c.name;
    r.runtime_id = pod_dir::runtime_id(uid, c.name);
    r.status.name = c.name;
    r.status.image = c.image;
    r.status.state.waiting.reason = "PodInitializing";
    st.init_containers.push_back(std::move(r));
  }
  for (const auto& c : pod->spec.containers) {
    bool known = std::any_of(st.containers.begin(), st.containers.end(),
                             [&](const wire::container_record& r) { return r.name == c.name; });
    if (known)
      continue;
    wire::container_record r;
    r.name = c.name;
    r.runtime_id = pod_dir::runtime_id(uid, c.name);
    r.status.name = c.name;
    r.status.image = c.image;
    r.status.state.waiting.reason = "ContainerCreating";
    st.containers.push_back(std::move(r));
  }
  return st;
}

std::vector<wire::sandbox_status> list_sandboxes(const runtime_options& opts) {
  std::vector<wire::sandbox_status> out;
  for (const auto& uid : pod_uids_on_disk(opts))
    if (auto st = read_sandbox(opts, uid))
      out.push_back(std::move(*st));
  return out;
}

error mark_stopping(const runtime_options& opts, const std::string& uid, int64_t grace_seconds) {
  auto dir = pod_dir::root(opts.data_dir, uid);
  std::error_code ec;
  if (fs::exists(pod_dir::stopping_marker(dir), ec))
    return {};
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  nlohmann::json marker{{"gracePeriodSeconds", grace_seconds},
                        {"deadlineMs", now_ms + grace_seconds * 1000}};
  return fsutil::write_file_atomic(pod_dir::stopping_marker(dir), marker.dump() + "\n");
}

error mark_stopped(const runtime_options& opts, const std::string& uid) {
  auto dir = pod_dir::root(opts.data_dir, uid);
  auto rec = read_record(dir);
  if (!rec)
    return {errc::not_found, "no sandbox record for " + uid};
  if (rec->state == "stopped")
    return {};
  rec->state = "stopped";
  return write_record(dir, *rec);
}

result<wire::sandbox_status> stop_containers(const runtime_options& opts, const std::string& uid,
                                             std::chrono::milliseconds grace) {
  auto dir = pod_dir::root(opts.data_dir, uid);
  auto grace_s = std::chrono::duration_cast<std::chrono::seconds>(grace).count();
  if (auto err = mark_stopping(opts, uid, grace_s))
    return err;
  auto rc = make_runc(opts);
  auto names = container_names(dir);
  auto lg = log::get();
  auto running = [&](const std::string& name) {
    auto st = rc.state(pod_dir::runtime_id(uid, name));
    return st && st->status != oci::container_status::stopped;
  };
  auto wait_all = [&](std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      bool any = std::any_of(names.begin(), names.end(), running);
      if (!any || std::chrono::steady_clock::now() >= deadline)
        return !any;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  };
  std::set<std::string> killed;
  for (const auto& n : names)
    if (running(n)) {
      rc.kill(pod_dir::runtime_id(uid, n), SIGTERM);
      killed.insert(n);
    }
  if (!wait_all(grace)) {
    for (const auto& n : names)
      if (running(n))
        rc.kill(pod_dir::runtime_id(uid, n), SIGKILL, true);
    wait_all(std::chrono::seconds(10));
  }
  for (const auto& n : names) {
    auto id = pod_dir::runtime_id(uid, n);
    if (auto r = rc.remove(id); !r) {
      lg->warn("msg=\"runc delete failed, forcing\" uid={} container={} error=\"{}\"", uid, n,
               r.err().message);
      rc.remove(id, true);
    }
  }
  if (auto err = mark_stopped(opts, uid))
    return err;
  auto st = read_sandbox(opts, uid);
  if (!st)
    return st;
  // The exit codes went to the (absent) supervisor; Kubernetes reports such
  // containers as ContainerStatusUnknown with 137.
  for (auto& c : st->containers) {
    auto& s = c.status.state;
    if (s.is_terminated())
      continue;
    if (s.is_running())
      c.status.last_state = s;
    s = wire::container_state{};
    s.terminated.exit_code = 137;
    s.terminated.reason = "ContainerStatusUnknown";
    s.terminated.message = "stopped by the runtime while the pod supervisor was "
                           "unavailable";
    s.terminated.finished_at = now_rfc3339();
    c.status.ready = false;
  }
  lg->info("msg=\"containers stopped without supervisor\" uid={} signalled={}", uid, killed.size());
  return st;
}

error remove_sandbox(const runtime_options& opts, const std::string& uid, pid_t supervisor_pid) {
  if (!valid_uid(uid))
    return {errc::invalid, "invalid pod uid \"" + uid + "\""};
  auto dir = pod_dir::root(opts.data_dir, uid);
  auto lg = log::get();
  std::error_code ec;
  std::string ns, name;
  if (auto rec = read_record(dir)) {
    ns = rec->namespace_;
    name = rec->name;
  } else if (auto p = read_json_file<wire::pod>(pod_dir::pod_json(dir))) {
    ns = pod_namespace(p->metadata.namespace_);
    name = p->metadata.name;
  }

  if (fs::exists(dir, ec)) {
    auto file_pid = read_supervisor_pid(dir);
    terminate_supervisor(supervisor_pid, uid);
    if (file_pid && *file_pid != supervisor_pid)
      terminate_supervisor(*file_pid, uid);

    auto rc = make_runc(opts);
    for (const auto& n : container_names(dir))
      if (auto r = rc.remove(pod_dir::runtime_id(uid, n), true); !r)
        lg->warn("msg=\"runc delete --force failed\" uid={} container={} error=\"{}\"", uid, n,
                 r.err().message);
    if (auto err = oci::remove_pod_cgroups(uid))
      lg->warn("msg=\"pod cgroup removal failed\" uid={} error=\"{}\"", uid, err.message);

    release_pod_network(opts, uid);

    auto netns = pod_dir::netns(dir);
    for (const auto& m : mounts_under(dir)) {
      if (m == fs::weakly_canonical(netns, ec))
        continue;
      if (auto r = oci::unmount(m); !r)
        lg->warn("msg=\"unmount failed\" uid={} path={} error=\"{}\"", uid, m.string(),
                 r.err().message);
    }
    if (auto r = net::remove_netns(netns); !r)
      lg->warn("msg=\"netns removal failed\" uid={} error=\"{}\"", uid, r.err().message);
    // Never delete through a mount: that would reach into whatever is mounted.
    if (auto left = mounts_under(dir); !left.empty())
      return {errc::io, "pod " + uid + ": " + left.front().string() +
                            " is still mounted; not removing the directory"};
    fs::remove_all(dir, ec);
    if (ec)
      return error::from_errno("remove " + dir.string(), ec.value());
    lg->info("msg=\"sandbox removed\" pod={}/{} uid={}", ns, name, uid);
  }
  // An address can outlive its directory when a removal was cut short.
  release_pod_network(opts, uid);

  if (!name.empty())
    fs::remove_all(paths::pod_log_dir(opts.data_dir, ns, name, uid), ec);
  auto suffix = "_" + uid;
  for (auto it = fs::directory_iterator(paths::pod_logs_root(opts.data_dir), ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    auto fname = it->path().filename().string();
    if (fname.size() > suffix.size() &&
        fname.compare(fname.size() - suffix.size(), suffix.size(), suffix) == 0) {
      std::error_code ec2;
      fs::remove_all(it->path(), ec2);
    }
  }
  return {};
}

const char* to_string(startup_action a) {
  switch (a) {
  case startup_action::sweep: return "sweep";
  case startup_action::adopt: return "adopt";
  case startup_action::start_supervisor: return "start_supervisor";
  case startup_action::leave_stopped: return "leave_stopped";
  }
  return "unknown";
}

startup_action decide_startup(bool has_pod_json, const std::optional<sandbox_record>& record,
                              bool supervisor_alive, bool stopping) {
  if (!has_pod_json || !record || record->state == "creating")
    return startup_action::sweep;
  if (supervisor_alive)
    return startup_action::adopt;
  if (stopping || record->state == "stopped")
    return startup_action::leave_stopped;
  return startup_action::start_supervisor;
}

std::vector<std::string> pod_uids_on_disk(const runtime_options& opts) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(paths::pods_state_dir(opts.data_dir), ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    auto name = it->path().filename().string();
    if (it->is_directory(ec2) && !it->is_symlink(ec2) && valid_uid(name))
      out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<recovered_pod> recover_sandboxes(const runtime_options& opts) {
  std::vector<recovered_pod> out;
  auto lg = log::get();
  for (const auto& uid : pod_uids_on_disk(opts)) {
    auto dir = pod_dir::root(opts.data_dir, uid);
    std::error_code ec;
    bool has_pod = fs::exists(pod_dir::pod_json(dir), ec);
    auto rec = read_record(dir);
    auto pid = read_supervisor_pid(dir);
    bool alive = pid && is_supervisor_of(*pid, uid);
    bool stopping = fs::exists(pod_dir::stopping_marker(dir), ec);
    auto action = decide_startup(has_pod, rec, alive, stopping);
    lg->info("msg=\"found sandbox\" uid={} action={} supervisor_pid={}", uid, to_string(action),
             alive ? *pid : 0);
    if (action == startup_action::sweep) {
      if (auto err = remove_sandbox(opts, uid))
        lg->error("msg=\"sweep failed\" uid={} error=\"{}\"", uid, err.message);
      continue;
    }
    out.push_back({uid, action, alive ? *pid : 0});
  }
  auto left = pod_uids_on_disk(opts);
  sweep_orphans(opts, {left.begin(), left.end()});
  return out;
}

void sweep_orphans(const runtime_options& opts, const std::set<std::string>& live) {
  auto lg = log::get();
  if (auto net = pod_network::open(opts)) {
    auto rep = net->sweep(live);
    if (rep.released_ips > 0 || rep.deleted_veths > 0)
      lg->info("msg=\"network orphans removed\" addresses={} veths={}", rep.released_ips,
               rep.deleted_veths);
  } else {
    lg->warn("msg=\"pod network unusable, not swept\" error=\"{}\"", net.err().message);
  }
  // Mounts (netns, overlay, shm) under the pods dir outside any live pod's
  // directory, e.g. left on a directory that was renamed or deleted.
  auto pods = paths::pods_state_dir(opts.data_dir);
  std::error_code ec;
  auto base = fs::weakly_canonical(pods, ec);
  if (ec)
    base = pods;
  for (const auto& m : mounts_under(pods)) {
    auto rel = m.lexically_relative(base);
    auto first = rel.empty() ? std::string() : rel.begin()->string();
    if (!first.empty() && first != ".." && live.count(first))
      continue;
    if (auto r = oci::unmount(m); !r)
      lg->warn("msg=\"stray mount not removed\" path={} error=\"{}\"", m.string(), r.err().message);
    else
      lg->info("msg=\"stray mount removed\" path={}", m.string());
  }
}

std::string render_hosts_file(const std::string& pod_ip, const std::string& hostname) {
  // The kubelet's managed hosts file, line for line.
  std::string out = "# Kubernetes-managed hosts file.\n"
                    "127.0.0.1\tlocalhost\n"
                    "::1\tlocalhost ip6-localhost ip6-loopback\n"
                    "fe00::0\tip6-localnet\n"
                    "fe00::0\tip6-mcastprefix\n"
                    "fe00::1\tip6-allnodes\n"
                    "fe00::2\tip6-allrouters\n";
  if (!pod_ip.empty())
    out += pod_ip + "\t" + hostname + "\n";
  return out;
}

std::string render_resolv_conf(const runtime_options& opts, bool host_network) {
  std::string out;
  if (!opts.dns_nameservers.empty()) {
    for (const auto& ns : opts.dns_nameservers)
      out += "nameserver " + ns + "\n";
  } else {
    auto text = fsutil::read_file(opts.resolv_conf, 1u << 20);
    std::istringstream in(text ? *text : std::string());
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string key, value;
      f >> key >> value;
      if (key == "search" && !opts.dns_searches.empty())
        continue;
      // The node's loopback resolver (systemd-resolved, dnsmasq) is out of
      // reach from a pod's own network namespace.
      if (key == "nameserver" && !host_network && (value.rfind("127.", 0) == 0 || value == "::1"))
        continue;
      out += line + "\n";
    }
  }
  if (!opts.dns_searches.empty()) {
    out += "search";
    for (const auto& s : opts.dns_searches)
      out += " " + s;
    out += "\n";
  }
  return out;
}

}  // namespace deckhand::runtime
