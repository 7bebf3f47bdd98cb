#include "deckhand/kubelet/container_events.hpp"

#include <chrono>
#include <list>
#include <mutex>
#include <set>
#include <unordered_map>

#include "deckhand/api/time.hpp"
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

/// The note marks of the pods this process has seen, least recently used
/// first out beyond `max_pods` (a pod gone for long needs no marks).
class note_registry {
 public:
  static note_registry& get() {
    static note_registry r;
    return r;
  }

  std::vector<pod_event_note> observe(const wire::sandbox_status& sandbox) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(sandbox.uid);
    if (it == index_.end()) {
      lru_.emplace_front(sandbox.uid, note_marks{});
      it = index_.emplace(sandbox.uid, lru_.begin()).first;
      if (lru_.size() > max_pods) {
        index_.erase(lru_.back().first);
        lru_.pop_back();
      }
    } else {
      lru_.splice(lru_.begin(), lru_, it->second);
    }
    return note_events(sandbox, it->second->second, started_);
  }

 private:
  static constexpr std::size_t max_pods = 4096;

  note_registry() {
    // This process's start, as the notes stamp their times (UTC, seconds).
    started_ = api::now_rfc3339();
  }

  std::mutex mu_;
  std::string started_;
  std::list<std::pair<std::string, note_marks>> lru_;
  std::unordered_map<std::string, std::list<std::pair<std::string, note_marks>>::iterator> index_;
};

void notes_of(const wire::container_record& rec, const std::string& field_path, note_marks& marks,
              const std::string& baseline, std::vector<pod_event_note>& out) {
  if (rec.notes.empty())
    return;
  auto mark = marks.find(rec.name);
  if (mark == marks.end()) {
    // First sight in this process: what predates it was the previous
    // kubelet's to report. RFC 3339 UTC times of one format compare as text.
    uint64_t seen = 0;
    for (const auto& n : rec.notes)
      if (!baseline.empty() && n.timestamp < baseline)
        seen = std::max(seen, n.seq);
    mark = marks.emplace(rec.name, seen).first;
  } else if (rec.notes.back().seq < mark->second) {
    mark->second = 0;
  }
  for (const auto& n : rec.notes) {
    if (n.seq <= mark->second)
      continue;
    out.push_back(
        {field_path, n.type.empty() ? std::string("Normal") : n.type, n.reason, n.message});
    mark->second = n.seq;
  }
}

}  // namespace

std::vector<pod_event_note> note_events(const wire::sandbox_status& sandbox, note_marks& marks,
                                        const std::string& baseline) {
  std::vector<pod_event_note> out;
  for (const auto& rec : sandbox.init_containers)
    notes_of(rec, "spec.initContainers{" + rec.name + "}", marks, baseline, out);
  for (const auto& rec : sandbox.containers)
    notes_of(rec, container_field_path(rec.name), marks, baseline, out);
  return out;
}

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
    bool was_backing_off = before && before->state.is_waiting() &&
                           before->state.waiting.reason == crash_loop &&
                           before->restart_count == now.restart_count;
    if (now.state.is_waiting() && now.state.waiting.reason == crash_loop && !was_backing_off)
      out.push_back(
          {path, "Warning", "BackOff",
           "Back-off restarting failed container " + rec.name + " in pod " + format_pod(pod)});
  }
  if (!sandbox.uid.empty())
    for (auto& n : note_registry::get().observe(sandbox))
      out.push_back(std::move(n));
  return out;
}

}  // namespace deckhand::kubelet
