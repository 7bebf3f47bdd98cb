#include "deckhand/kubelet/pod_status.hpp"

#include <chrono>
#include <map>

namespace deckhand::kubelet {

api::qos_class pod_qos(const wire::pod_spec& spec) {
  std::vector<api::container_resources> all;
  for (const auto* list : {&spec.containers, &spec.init_containers})
    for (const auto& c : *list)
      all.push_back({c.resources.requests, c.resources.limits});
  return api::pod_qos(all);
}

std::string qos_class(const wire::pod_spec& spec) { return api::to_string(pod_qos(spec)); }

std::optional<wire::container_state_waiting> config_error_waiting(const std::string& message) {
  static const std::string prefix = std::string(reason_create_container_config_error) + ": ";
  if (message.rfind(prefix, 0) != 0)
    return std::nullopt;
  return wire::container_state_waiting{reason_create_container_config_error,
                                       message.substr(prefix.size())};
}

namespace {

const wire::container_status* find_status(const std::vector<wire::container_status>& v,
                                          const std::string& name) {
  for (const auto& s : v)
    if (s.name == name)
      return &s;
  return nullptr;
}

bool is_terminal(const std::string& phase) { return phase == "Succeeded" || phase == "Failed"; }

/// Kubernetes' HasAnyRegularContainerStarted.
bool any_regular_started(const wire::pod_spec& spec,
                         const std::vector<wire::container_status>& statuses) {
  for (const auto& c : spec.containers)
    if (auto* s = find_status(statuses, c.name))
      if (s->state.is_running() || s->state.is_terminated())
        return true;
  return false;
}

/// Every regular container has exited and none will start again under the
/// pod's restart policy: the kubelet then stops the pod's sidecars.
bool regular_containers_done(const wire::pod_spec& spec,
                             const std::vector<wire::container_status>& statuses) {
  if (spec.restart_policy == "Always" || spec.containers.empty())
    return false;
  for (const auto& c : spec.containers) {
    auto* s = find_status(statuses, c.name);
    if (!s || !s->state.is_terminated())
      return false;
    if (spec.restart_policy == "OnFailure" && s->state.terminated.exit_code != 0)
      return false;
  }
  return true;
}

/// "[a b]": how Go's %s prints a []string.
std::string go_list(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i)
    out += (i ? " " : "") + names[i];
  return out + "]";
}

wire::pod_condition condition(const std::string& type, bool value, const std::string& reason = {},
                              const std::string& message = {}) {
  wire::pod_condition c;
  c.type = type;
  c.status = value ? "True" : "False";
  c.reason = reason;
  c.message = message;
  return c;
}

/// Kubernetes' GeneratePodInitializedCondition.
wire::pod_condition initialized_condition(const wire::pod_spec& spec,
                                          const std::vector<wire::container_status>& inits,
                                          const std::vector<wire::container_status>& regular,
                                          const std::string& phase) {
  if (spec.init_containers.empty())
    return condition("Initialized", true);
  std::vector<std::string> unknown, incomplete;
  for (const auto& c : spec.init_containers) {
    auto* s = find_status(inits, c.name);
    if (!s) {
      unknown.push_back(c.name);
      continue;
    }
    if (c.is_sidecar()) {
      if (!s->started)
        incomplete.push_back(c.name);
    } else if (!s->state.is_terminated() || s->state.terminated.exit_code != 0) {
      incomplete.push_back(c.name);
    }
  }
  if (phase == "Succeeded" && unknown.empty())
    return condition("Initialized", true, "PodCompleted");
  if (any_regular_started(spec, regular))
    return condition("Initialized", true);
  std::string message;
  if (!unknown.empty())
    message = "containers with unknown status: " + go_list(unknown);
  if (!incomplete.empty())
    message += (message.empty() ? "" : ", ") + std::string("containers with incomplete status: ") +
               go_list(incomplete);
  if (!message.empty())
    return condition("Initialized", false, "ContainersNotInitialized", message);
  return condition("Initialized", true);
}

/// Kubernetes' GenerateContainersReadyCondition (sidecars count as regular
/// containers).
wire::pod_condition containers_ready_condition(const wire::pod_spec& spec,
                                               const std::vector<wire::container_status>& inits,
                                               const std::vector<wire::container_status>& regular,
                                               const std::string& phase) {
  std::vector<std::string> unknown, unready;
  auto check = [&](const std::vector<wire::container_status>& statuses, const wire::container& c) {
    if (auto* s = find_status(statuses, c.name)) {
      if (!s->ready)
        unready.push_back(c.name);
    } else {
      unknown.push_back(c.name);
    }
  };
  for (const auto& c : spec.init_containers)
    if (c.is_sidecar())
      check(inits, c);
  for (const auto& c : spec.containers)
    check(regular, c);
  if (phase == "Succeeded" && unknown.empty())
    return condition("ContainersReady", false, "PodCompleted");
  if (phase == "Failed")
    return condition("ContainersReady", false, "PodFailed");
  std::string message;
  if (!unknown.empty())
    message = "containers with unknown status: " + go_list(unknown);
  if (!unready.empty())
    message += (message.empty() ? "" : ", ") + std::string("containers with unready status: ") +
               go_list(unready);
  if (!message.empty())
    return condition("ContainersReady", false, "ContainersNotReady", message);
  return condition("ContainersReady", true);
}

/// The status of one container: the supervisor's record if there is one,
/// else a waiting state saying why it has not been created.
wire::container_status
container_status_of(const wire::container& c,
                    const std::map<std::string, const wire::container_record*>& records,
                    const observed_pod& obs, const std::string& default_reason) {
  wire::container_status cs;
  auto it = records.find(c.name);
  if (it != records.end()) {
    cs = it->second->status;
  } else if (auto w = obs.waiting.find(c.name); w != obs.waiting.end()) {
    cs.state.waiting = w->second;
  } else if (auto cfg = config_error_waiting(obs.runtime_error_message)) {
    cs.state.waiting = *cfg;
  } else if (!obs.runtime_error_reason.empty()) {
    cs.state.waiting.reason = obs.runtime_error_reason;
    cs.state.waiting.message = obs.runtime_error_message;
  } else {
    cs.state.waiting.reason = default_reason;
  }
  cs.name = c.name;
  if (cs.image.empty())
    cs.image = c.image;
  if (!cs.state.is_running()) {
    cs.ready = false;
    cs.started = false;
  }
  if (obs.terminating)
    cs.ready = false;
  return cs;
}

}  // namespace

std::string pod_phase(const wire::pod_spec& spec,
                      const std::vector<wire::container_status>& init_statuses,
                      const std::vector<wire::container_status>& statuses, bool pod_is_terminal) {
  int pending_init = 0, failed_init = 0;
  for (const auto& c : spec.init_containers) {
    if (c.is_sidecar())
      continue;
    auto* s = find_status(init_statuses, c.name);
    if (!s || s->state.is_running()) {
      ++pending_init;
    } else if (s->state.is_terminated()) {
      if (s->state.terminated.exit_code != 0)
        ++failed_init;
    } else if (s->last_state.is_terminated()) {
      if (s->last_state.terminated.exit_code != 0)
        ++failed_init;
    } else {
      ++pending_init;
    }
  }

  int unknown = 0, running = 0, waiting = 0, stopped = 0, succeeded = 0;
  bool sidecars_stopping = regular_containers_done(spec, statuses);
  for (const auto& c : spec.init_containers) {
    if (!c.is_sidecar())
      continue;
    auto* s = find_status(init_statuses, c.name);
    if (!s) {
      ++unknown;
    } else if (s->state.is_running()) {
      if (sidecars_stopping)
        continue;  // the kubelet stops it: it keeps nothing running
      if (!s->started)
        ++pending_init;
      ++running;
    } else if (s->state.is_terminated() || s->last_state.is_terminated()) {
      // Terminated sidecars do not count towards the phase.
    } else if (!sidecars_stopping) {
      ++pending_init;
      ++waiting;
    }
  }

  for (const auto& c : spec.containers) {
    auto* s = find_status(statuses, c.name);
    if (!s) {
      ++unknown;
    } else if (s->state.is_running()) {
      ++running;
    } else if (s->state.is_terminated()) {
      ++stopped;
      if (s->state.terminated.exit_code == 0)
        ++succeeded;
    } else if (s->last_state.is_terminated()) {
      ++stopped;
    } else {
      ++waiting;
    }
  }

  if (failed_init > 0 && spec.restart_policy == "Never")
    return "Failed";
  if ((pending_init > 0 && !any_regular_started(spec, statuses)) || waiting > 0)
    return "Pending";
  if (running > 0 && unknown == 0)
    return "Running";
  if (running == 0 && stopped > 0 && unknown == 0) {
    if (pod_is_terminal)
      return stopped == succeeded ? "Succeeded" : "Failed";
    if (spec.restart_policy == "Always")
      return "Running";
    if (stopped == succeeded)
      return "Succeeded";
    if (spec.restart_policy == "Never")
      return "Failed";
    return "Running";
  }
  return "Pending";
}

wire::pod_status compute_status(const wire::pod& pod, const observed_pod& obs,
                                const wire::pod_status& previous) {
  const auto& spec = pod.spec;
  wire::pod_status st;
  st.qos_class = qos_class(spec);
  st.host_ip = obs.host_ip;
  if (!st.host_ip.empty())
    st.host_ips.push_back(wire::pod_ip{st.host_ip});
  st.start_time = previous.start_time.empty() ? obs.now : previous.start_time;

  std::map<std::string, const wire::container_record*> records, init_records;
  if (obs.sandbox) {
    for (const auto& r : obs.sandbox->containers)
      records[r.name] = &r;
    for (const auto& r : obs.sandbox->init_containers)
      init_records[r.name] = &r;
  }
  // Kubernetes: with init containers, every container not yet created waits
  // with PodInitializing; without, with ContainerCreating.
  const char* default_reason =
      spec.init_containers.empty() ? reason_container_creating : reason_pod_initializing;
  for (const auto& c : spec.init_containers) {
    auto cs = container_status_of(c, init_records, obs, default_reason);
    // A regular init container is ready once it completed successfully.
    if (!c.is_sidecar())
      cs.ready = cs.state.is_terminated() && cs.state.terminated.exit_code == 0;
    st.init_container_statuses.push_back(std::move(cs));
  }
  for (const auto& c : spec.containers)
    st.container_statuses.push_back(container_status_of(c, records, obs, default_reason));

  bool pod_is_terminal = obs.terminating && obs.containers_stopped;
  st.phase = pod_phase(spec, st.init_container_statuses, st.container_statuses, pod_is_terminal);
  if (obs.deadline_exceeded) {
    st.phase = "Failed";
    st.reason = reason_deadline_exceeded;
    st.message = message_deadline_exceeded;
  }
  // Pods never leave a terminal phase.
  if (is_terminal(previous.phase)) {
    st.phase = previous.phase;
    st.reason = previous.reason;
    st.message = previous.message;
  }

  bool sandbox_up = obs.sandbox && obs.sandbox->state != "stopped" && !is_terminal(st.phase) &&
                    !obs.containers_stopped;
  auto containers_ready =
      containers_ready_condition(spec, st.init_container_statuses, st.container_statuses, st.phase);
  auto ready = containers_ready;
  ready.type = "Ready";
  // Go's order: PodReadyToStartContainers, Initialized, Ready, ContainersReady,
  // PodScheduled.
  st.conditions = {
      condition("PodReadyToStartContainers", sandbox_up),
      initialized_condition(spec, st.init_container_statuses, st.container_statuses, st.phase),
      ready, containers_ready, condition("PodScheduled", true)};
  // lastTransitionTime moves only when the status flips.
  for (auto& c : st.conditions) {
    c.last_transition_time = obs.now;
    for (const auto& old : previous.conditions)
      if (old.type == c.type && old.status == c.status && !old.last_transition_time.empty())
        c.last_transition_time = old.last_transition_time;
  }

  if (obs.sandbox) {
    st.pod_ip_ = spec.host_network ? obs.host_ip : obs.sandbox->pod_ip_;
    if (!st.pod_ip_.empty())
      st.pod_ips.push_back(wire::pod_ip{st.pod_ip_});
  }
  return st;
}

}  // namespace deckhand::kubelet
