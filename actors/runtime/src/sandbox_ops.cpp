#include "deckhand/runtime/sandbox_ops.hpp"

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/messages/json.hpp"
#include "deckhand/oci/bundle.hpp"
#include "deckhand/oci/mount.hpp"
#include "deckhand/oci/netns.hpp"
#include "deckhand/oci/runc.hpp"
#include "deckhand/runtime/container_process.hpp"
#include "deckhand/runtime/supervisor_process.hpp"

namespace deckhand::runtime {

namespace fs = std::filesystem;

namespace {

bool valid_uid(const std::string& uid) {
  if (uid.empty() || uid.size() > 128 || uid[0] == '.' || uid[0] == '-')
    return false;
  return std::all_of(uid.begin(), uid.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_'
           || ch == '.';
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

std::string pod_namespace(const std::string& ns) {
  return ns.empty() ? "default" : ns;
}

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
  return fsutil::write_file_atomic(pod_dir::sandbox_json(dir), encode_sandbox_record(rec));
}

oci::runc make_runc(const runtime_options& opts) {
  return oci::runc(paths::runc_root(opts.data_dir), opts.oci_runtime);
}

/// Names of the pod's containers from every source that may know them.
std::vector<std::string> container_names(const fs::path& dir) {
  std::set<std::string> names;
  if (auto p = read_json_file<wire::pod>(pod_dir::pod_json(dir)))
    for (const auto& c : p->spec.containers)
      names.insert(c.name);
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
      if (oct.size() == 3 && std::all_of(oct.begin(), oct.end(),
                                         [](char c) { return c >= '0' && c <= '7'; })) {
        out.push_back(static_cast<char>(std::stoi(oct, nullptr, 8)));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

} // namespace

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
    if (mp == prefix || (mp.size() > prefix.size() && mp.compare(0, prefix.size(), prefix) == 0
                         && mp[prefix.size()] == '/'))
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
    return {errc::invalid, "pod uid \"" + p.metadata.uid
                             + "\" is empty or not usable as a name (letters, digits, "
                               "'-', '_', '.'; at most 128)"};
  if (p.metadata.name.empty())
    return {errc::invalid, "pod " + p.metadata.uid + " has no name"};
  if (p.spec.containers.empty())
    return {errc::invalid, "pod " + p.metadata.name + " has no containers"};
  std::set<std::string> seen;
  for (const auto& c : p.spec.containers) {
    if (!valid_container_name(c.name))
      return {errc::invalid, "container name \"" + c.name
                               + "\" is not a DNS label (lower-case letters, digits, "
                                 "'-'; at most 63)"};
    if (!seen.insert(c.name).second)
      return {errc::invalid, "container name \"" + c.name + "\" is used twice"};
    if (c.image.empty())
      return {errc::invalid, "container \"" + c.name + "\" has no image"};
  }
  return {};
}

result<wire::sandbox_status> create_sandbox(const runtime_options& opts,
                                            const image::image_store& images,
                                            const wire::pod& p) {
  if (auto err = validate_pod(p))
    return err;
  const auto& uid = p.metadata.uid;
  auto lg = log::get();

  // Everything that can be checked is checked before anything is created.
  struct planned {
    const wire::container* spec;
    fs::path lower;
    container_process proc;
  };
  std::vector<planned> plan;
  for (const auto& c : p.spec.containers) {
    auto rec = images.find(c.image);
    if (!rec) {
      if (rec.err().code == errc::not_found)
        return error{errc::not_found,
                     "image \"" + c.image
                       + "\" is not present on the node; import it with: deckhand "
                         "image import PATH"};
      return error{rec.err().code, "image \"" + c.image + "\": " + rec.err().message};
    }
    auto lower = images.rootfs_path(*rec);
    auto proc = make_container_process(c, rec->config, lower);
    if (!proc)
      return std::move(proc).err();
    plan.push_back({&c, lower, std::move(*proc)});
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
  if (auto err = fsutil::write_file_atomic(pod_dir::pod_json(dir), wire::to_json(p).dump()))
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
  for (const auto& c : p.spec.containers)
    rec.containers.push_back(c.name);
  if (auto err = write_record(dir, rec))
    return fail(err);

  if (!p.spec.host_network)
    if (auto r = oci::create_netns(pod_dir::netns(dir)); !r)
      return fail(r.err());

  for (auto& step : plan) {
    auto b = pod_dir::bundle(dir, step.spec->name);
    if (auto r = oci::mount_overlay({step.lower}, b / "upper", b / "work", b / "rootfs"); !r)
      return fail(r.err());
    auto spec = container_bundle_spec(p, *step.spec, step.proc, b / "rootfs");
    if (p.spec.host_network)
      spec.host_network = true;
    else
      spec.netns_path = pod_dir::netns(dir);
    if (auto r = oci::write_bundle(b, spec); !r)
      return fail(r.err());
  }

  rec.state = "ready";
  if (auto err = write_record(dir, rec))
    return fail(err);
  lg->info("msg=\"sandbox created\" pod={}/{} uid={} containers={}", rec.namespace_,
           rec.name, uid, rec.containers.size());
  auto st = read_sandbox(opts, uid);
  if (!st)
    return fail(st.err());
  return st;
}

result<wire::sandbox_status> read_sandbox(const runtime_options& opts,
                                          const std::string& uid) {
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

error mark_stopping(const runtime_options& opts, const std::string& uid,
                    int64_t grace_seconds) {
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

result<wire::sandbox_status> stop_containers(const runtime_options& opts,
                                             const std::string& uid,
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
      lg->warn("msg=\"runc delete failed, forcing\" uid={} container={} error=\"{}\"", uid,
               n, r.err().message);
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
  lg->info("msg=\"containers stopped without supervisor\" uid={} signalled={}", uid,
           killed.size());
  return st;
}

error remove_sandbox(const runtime_options& opts, const std::string& uid,
                     pid_t supervisor_pid) {
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
        lg->warn("msg=\"runc delete --force failed\" uid={} container={} error=\"{}\"",
                 uid, n, r.err().message);

    auto netns = pod_dir::netns(dir);
    for (const auto& m : mounts_under(dir)) {
      if (m == fs::weakly_canonical(netns, ec))
        continue;
      if (auto r = oci::unmount(m); !r)
        lg->warn("msg=\"unmount failed\" uid={} path={} error=\"{}\"", uid, m.string(),
                 r.err().message);
    }
    if (auto r = oci::remove_netns(netns); !r)
      lg->warn("msg=\"netns removal failed\" uid={} error=\"{}\"", uid, r.err().message);
    // Never delete through a mount: that would reach into whatever is mounted.
    if (auto left = mounts_under(dir); !left.empty())
      return {errc::io, "pod " + uid + ": " + left.front().string()
                          + " is still mounted; not removing the directory"};
    fs::remove_all(dir, ec);
    if (ec)
      return error::from_errno("remove " + dir.string(), ec.value());
    lg->info("msg=\"sandbox removed\" pod={}/{} uid={}", ns, name, uid);
  }

  if (!name.empty())
    fs::remove_all(paths::pod_log_dir(opts.data_dir, ns, name, uid), ec);
  auto suffix = "_" + uid;
  for (auto it = fs::directory_iterator(paths::pod_logs_root(opts.data_dir), ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    auto fname = it->path().filename().string();
    if (fname.size() > suffix.size()
        && fname.compare(fname.size() - suffix.size(), suffix.size(), suffix) == 0) {
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
    lg->info("msg=\"found sandbox\" uid={} action={} supervisor_pid={}", uid,
             to_string(action), alive ? *pid : 0);
    if (action == startup_action::sweep) {
      if (auto err = remove_sandbox(opts, uid))
        lg->error("msg=\"sweep failed\" uid={} error=\"{}\"", uid, err.message);
      continue;
    }
    out.push_back({uid, action, alive ? *pid : 0});
  }
  return out;
}

} // namespace deckhand::runtime
