#include "deckhand/kubelet/container_events.hpp"

#include <set>

#include "deckhand/kubelet/event_recorder.hpp"

namespace deckhand::kubelet {

namespace {

constexpr const char* crash_loop = "CrashLoopBackOff";

/// A container instance is known by when it started: the supervisor sets
/// startedAt once per start, and keeps it in the terminated state.
std::string started_at(const wire::container_state& s) {
  if (s.is_running())
    return s.running.started_at;
  if (s.is_terminated())
    return s.terminated.started_at;
  return {};
}

const wire::container_status* find(const std::vector<wire::container_status>& v,
                                   const std::string& name) {
  for (const auto& cs : v)
    if (cs.name == name)
      return &cs;
  return nullptr;
}

} // namespace

std::string format_pod(const wire::pod& pod) {
  return pod.metadata.name + "_" + pod.metadata.namespace_ + "(" + pod.metadata.uid + ")";
}

std::vector<pod_event_note> container_events(const wire::pod& pod,
                                             const std::vector<wire::container_status>& known,
                                             const wire::sandbox_status& sandbox) {
  std::vector<pod_event_note> out;
  for (const auto& rec : sandbox.containers) {
    const auto& now = rec.status;
    const auto* before = find(known, rec.name);
    std::set<std::string> seen;
    if (before) {
      seen.insert(started_at(before->state));
      seen.insert(started_at(before->last_state));
    }
    seen.erase(std::string{});
    auto path = container_field_path(rec.name);
    // The older instance first: lastState, then state.
    for (const auto* st : {&now.last_state, &now.state}) {
      auto at = started_at(*st);
      if (at.empty() || seen.count(at))
        continue;
      seen.insert(at);
      out.push_back({path, "Normal", "Created", "Created container " + rec.name});
      out.push_back({path, "Normal", "Started", "Started container " + rec.name});
    }
    bool was_backing_off = before && before->state.is_waiting()
                           && before->state.waiting.reason == crash_loop
                           && before->restart_count == now.restart_count;
    if (now.state.is_waiting() && now.state.waiting.reason == crash_loop && !was_backing_off)
      out.push_back({path, "Warning", "BackOff",
                     "Back-off restarting failed container " + rec.name + " in pod "
                       + format_pod(pod)});
  }
  return out;
}

} // namespace deckhand::kubelet
