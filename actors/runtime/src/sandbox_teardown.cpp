// Stopping a pod's containers without its supervisor, and removing a
// sandbox with everything it holds on the host (mounts, veth, address).

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "deckhand/common/log.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/net/netns.hpp"
#include "deckhand/oci/cgroups.hpp"
#include "deckhand/oci/mount.hpp"
#include "deckhand/runtime/network.hpp"
#include "deckhand/runtime/sandbox_ops.hpp"
#include "deckhand/runtime/supervisor_process.hpp"
#include "sandbox_store.hpp"

namespace deckhand::runtime {

namespace fs = std::filesystem;

namespace {

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

}  // namespace

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
  } else if (auto p = read_pod(dir)) {
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

}  // namespace deckhand::runtime
