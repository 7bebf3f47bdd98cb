// What start-up does with the pod directories it finds.

#include "deckhand/common/log.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/runtime/sandbox_ops.hpp"
#include "deckhand/runtime/supervised_backend.hpp"
#include "deckhand/runtime/supervisor_process.hpp"
#include "sandbox_store.hpp"

namespace deckhand::runtime {

namespace fs = std::filesystem;

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

std::vector<recovered_pod> supervised_backend::recover(const runtime_options& opts) const {
  return recover_sandboxes(opts);
}

}  // namespace deckhand::runtime
