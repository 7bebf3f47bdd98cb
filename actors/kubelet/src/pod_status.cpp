#include "deckhand/kubelet/pod_status.hpp"

#include <chrono>
#include <ctime>
#include <map>

namespace deckhand::kubelet {

std::string now_rfc3339() {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string qos_class(const wire::pod_spec& spec) {
  bool any = false;
  bool guaranteed = true;
  for (const auto& c : spec.containers) {
    const auto& r = c.resources;
    if (!r.requests.empty() || !r.limits.empty())
      any = true;
    for (const char* res : {"cpu", "memory"}) {
      auto lim = r.limits.find(res);
      if (lim == r.limits.end()) {
        guaranteed = false;
        continue;
      }
      auto req = r.requests.find(res);
      if (req != r.requests.end() && req->second != lim->second)
        guaranteed = false;
    }
  }
  if (!any)
    return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

namespace {

void set_condition(wire::pod_status& st, const wire::pod_status& previous,
                   const std::string& type, bool value, const std::string& now,
                   const std::string& reason = {}) {
  wire::pod_condition c;
  c.type = type;
  c.status = value ? "True" : "False";
  c.reason = reason;
  c.last_transition_time = now;
  for (const auto& old : previous.conditions)
    if (old.type == type && old.status == c.status && !old.last_transition_time.empty())
      c.last_transition_time = old.last_transition_time;
  st.conditions.push_back(std::move(c));
}

} // namespace

wire::pod_status compute_status(const wire::pod& pod, const observed_pod& obs,
                                const wire::pod_status& previous) {
  wire::pod_status st;
  st.qos_class = qos_class(pod.spec);
  st.host_ip = obs.host_ip;
  st.start_time = previous.start_time.empty() ? obs.now : previous.start_time;

  std::map<std::string, const wire::container_record*> records;
  if (obs.sandbox)
    for (const auto& r : obs.sandbox->containers)
      records[r.name] = &r;

  int running = 0, succeeded = 0, failed = 0, waiting = 0, ready = 0;
  for (const auto& c : pod.spec.containers) {
    wire::container_status cs;
    auto it = records.find(c.name);
    if (it != records.end()) {
      cs = it->second->status;
    } else if (auto w = obs.waiting.find(c.name); w != obs.waiting.end()) {
      cs.state.waiting = w->second;
    } else {
      cs.state.waiting.reason = obs.runtime_error_reason.empty()
                                  ? "ContainerCreating"
                                  : obs.runtime_error_reason;
      cs.state.waiting.message = obs.runtime_error_message;
    }
    cs.name = c.name;
    cs.image = c.image;
    if (cs.state.is_running()) {
      ++running;
      if (cs.ready)
        ++ready;
    } else if (cs.state.is_terminated()) {
      cs.ready = false;
      if (cs.state.terminated.exit_code == 0)
        ++succeeded;
      else
        ++failed;
    } else {
      cs.ready = false;
      ++waiting;
    }
    st.container_statuses.push_back(std::move(cs));
  }

  const auto& policy = pod.spec.restart_policy;
  auto total = static_cast<int>(pod.spec.containers.size());
  if (previous.phase == "Succeeded" || previous.phase == "Failed") {
    st.phase = previous.phase;
  } else if (running > 0) {
    st.phase = "Running";
  } else if (total > 0 && succeeded + failed == total) {
    if (policy == "Always")
      st.phase = "Running";
    else if (failed == 0)
      st.phase = "Succeeded";
    else if (policy == "Never")
      st.phase = "Failed";
    else
      st.phase = "Running";
  } else if (obs.sandbox && waiting > 0 && (succeeded + failed + running) > 0) {
    // Some containers are waiting to restart (CrashLoopBackOff): Running.
    st.phase = "Running";
  } else if (obs.sandbox && waiting > 0 && previous.phase == "Running") {
    st.phase = "Running";
  } else {
    st.phase = "Pending";
  }

  bool all_ready = total > 0 && ready == total;
  set_condition(st, previous, "PodReadyToStartContainers", obs.sandbox != nullptr, obs.now);
  set_condition(st, previous, "Initialized", true, obs.now);
  set_condition(st, previous, "Ready", all_ready && !obs.terminating, obs.now,
                all_ready ? "" : (st.phase == "Succeeded" || st.phase == "Failed")
                                   ? "PodCompleted"
                                   : "ContainersNotReady");
  set_condition(st, previous, "ContainersReady", all_ready, obs.now,
                all_ready ? "" : (st.phase == "Succeeded" || st.phase == "Failed")
                                   ? "PodCompleted"
                                   : "ContainersNotReady");
  set_condition(st, previous, "PodScheduled", true, obs.now);

  if (obs.sandbox) {
    st.pod_ip_ = pod.spec.host_network ? obs.host_ip : obs.sandbox->pod_ip_;
    if (!st.pod_ip_.empty())
      st.pod_ips.push_back(wire::pod_ip{st.pod_ip_});
  }
  return st;
}

} // namespace deckhand::kubelet
