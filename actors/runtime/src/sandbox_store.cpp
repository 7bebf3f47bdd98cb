// A sandbox's state on disk: validation of what goes there, sandbox.json,
// and the status read back from a pod directory.

#include "deckhand/runtime/sandbox_ops.hpp"

#include <unistd.h>

#include <algorithm>
#include <set>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/runtime/supervisor_process.hpp"
#include "sandbox_store.hpp"

namespace deckhand::runtime {

namespace fs = std::filesystem;

namespace {

/// RFC 1123 label, as Kubernetes requires of container names.
bool valid_container_name(const std::string& n) {
  if (n.empty() || n.size() > 63 || n.front() == '-' || n.back() == '-')
    return false;
  return std::all_of(n.begin(), n.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
  });
}

}  // namespace

bool valid_uid(const std::string& uid) {
  if (uid.empty() || uid.size() > 128 || uid[0] == '.' || uid[0] == '-')
    return false;
  return std::all_of(uid.begin(), uid.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
  });
}

std::string pod_namespace(const std::string& ns) { return ns.empty() ? "default" : ns; }

result<wire::pod> read_pod(const fs::path& dir) {
  return read_json_file<wire::pod>(pod_dir::pod_json(dir));
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
  if (auto p = read_pod(dir)) {
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

std::string node_hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0)
    return "localhost";
  return buf;
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

result<wire::sandbox_status> read_sandbox(const runtime_options& opts, const std::string& uid) {
  if (!valid_uid(uid))
    return error{errc::not_found, "no sandbox " + uid};
  auto dir = pod_dir::root(opts.data_dir, uid);
  auto pod = read_pod(dir);
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
  auto add_waiting = [&](const std::vector<wire::container>& specs,
                         std::vector<wire::container_record>& records, const char* reason) {
    for (const auto& c : specs) {
      bool known = std::any_of(records.begin(), records.end(),
                               [&](const wire::container_record& r) { return r.name == c.name; });
      if (known)
        continue;
      wire::container_record r;
      r.name = c.name;
      r.runtime_id = pod_dir::runtime_id(uid, c.name);
      r.status.name = c.name;
      r.status.image = c.image;
      r.status.state.waiting.reason = reason;
      records.push_back(std::move(r));
    }
  };
  add_waiting(pod->spec.init_containers, st.init_containers, "PodInitializing");
  add_waiting(pod->spec.containers, st.containers, "ContainerCreating");
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

}  // namespace deckhand::runtime
