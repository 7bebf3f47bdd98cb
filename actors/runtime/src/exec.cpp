#include "deckhand/runtime/exec.hpp"

#include <algorithm>
#include <filesystem>
#include <optional>

#include <nlohmann/json.hpp>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/common/paths.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/messages/json.hpp"
#include "deckhand/oci/runc.hpp"
#include "sandbox_store.hpp"

namespace deckhand::runtime {

namespace fs = std::filesystem;

namespace {

/// The pod a request names, with its directory.
result<std::pair<wire::pod, fs::path>> find_pod(const runtime_options& opts,
                                                const wire::exec_request& req) {
  if (!req.uid.empty()) {
    if (req.uid.find('/') != std::string::npos || req.uid == "." || req.uid == "..")
      return error{errc::invalid, "invalid pod uid \"" + req.uid + "\""};
    auto dir = pod_dir::root(opts.data_dir, req.uid);
    auto p = read_pod(dir);
    if (!p)
      return error{errc::not_found, "pod with uid " + req.uid + " not found on this node"};
    return std::make_pair(std::move(*p), dir);
  }
  if (req.name.empty())
    return error{errc::invalid, "exec needs a pod uid or name"};
  const std::string ns = req.namespace_.empty() ? "default" : req.namespace_;
  std::optional<std::pair<wire::pod, fs::path>> best;
  bool best_stopping = true;
  fs::file_time_type best_time{};
  std::error_code ec;
  for (const auto& de : fs::directory_iterator(paths::pods_state_dir(opts.data_dir), ec)) {
    auto p = read_pod(de.path());
    if (!p || p->metadata.name != req.name ||
        (p->metadata.namespace_.empty() ? "default" : p->metadata.namespace_) != ns)
      continue;
    bool stopping = fs::exists(pod_dir::stopping_marker(de.path()), ec);
    auto t = fs::last_write_time(pod_dir::pod_json(de.path()), ec);
    // A pod being replaced may still be on disk: prefer the live one, then
    // the newest.
    if (!best || (best_stopping && !stopping) || (best_stopping == stopping && t > best_time)) {
      best = std::make_pair(std::move(*p), de.path());
      best_stopping = stopping;
      best_time = t;
    }
  }
  if (!best)
    return error{errc::not_found, "pod \"" + ns + "/" + req.name + "\" not found on this node"};
  return std::move(*best);
}

}  // namespace

result<wire::exec_reply> exec_in_container(const runtime_options& opts,
                                           const wire::exec_request& req) {
  if (req.command.empty())
    return error{errc::invalid, "exec needs a command"};
  auto found = find_pod(opts, req);
  if (!found)
    return found.err();
  const auto& [pod, dir] = *found;
  const std::string pod_ref = pod.metadata.namespace_ + "/" + pod.metadata.name;
  if (pod.spec.containers.empty())
    return error{errc::not_found, "pod \"" + pod_ref + "\" has no containers"};
  std::string container = req.container.empty() ? pod.spec.containers.front().name : req.container;
  if (std::none_of(pod.spec.containers.begin(), pod.spec.containers.end(),
                   [&](const wire::container& c) { return c.name == container; }))
    return error{errc::not_found,
                 "container " + container + " is not valid for pod " + pod.metadata.name};

  oci::runc rt(paths::runc_root(opts.data_dir), opts.oci_runtime);
  const auto id = pod_dir::runtime_id(pod.metadata.uid, container);
  auto st = rt.state(id);
  if (!st || st->status != oci::container_status::running) {
    if (st || st.err().code == errc::not_found)
      return error{errc::conflict,
                   "container \"" + container + "\" in pod \"" + pod_ref + "\" is not running"};
    return st.err();
  }

  oci::exec_options eo;
  eo.args = req.command;
  eo.stdin_data = req.stdin_data;
  eo.timeout = std::chrono::milliseconds(std::max<int64_t>(req.timeout_ms, 0));
  eo.output_limit = static_cast<std::size_t>(
      std::clamp<int64_t>(req.output_limit, 0, static_cast<int64_t>(max_exec_output)));
  log::get()->info("msg=\"exec\" pod={} uid={} container={} command=\"{}\"", pod_ref,
                   pod.metadata.uid, container, req.command.front());
  auto r = rt.exec(id, eo);
  if (!r) {
    if (r.err().code == errc::conflict)
      return error{errc::conflict,
                   "container \"" + container + "\" in pod \"" + pod_ref + "\" is not running"};
    return r.err();
  }
  wire::exec_reply rep;
  rep.exit_code = r->exit_code;
  rep.stdout_data = std::move(r->out);
  rep.stderr_data = std::move(r->err);
  rep.timed_out = r->timed_out;
  rep.truncated = r->truncated;
  return rep;
}

}  // namespace deckhand::runtime
