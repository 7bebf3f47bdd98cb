#pragma once

/// core/v1 Pod: spec, status and the pod-level securityContext.

#include <cstdint>
#include <string>
#include <vector>

#include "deckhand/messages/fields.hpp"
#include "deckhand/messages/model/container.hpp"
#include "deckhand/messages/model/meta.hpp"
#include "deckhand/messages/model/volume.hpp"

namespace deckhand::wire {

/// The pod-level securityContext: defaults for every container.
struct pod_security_context {
  static constexpr const char* type_name = "pod_security_context";
  opt<int64_t> run_as_user;
  opt<int64_t> run_as_group;
  opt<bool> run_as_non_root;
  opt<int64_t> fs_group;
  std::vector<int64_t> supplemental_groups;
  seccomp_profile seccomp_profile_;
  static constexpr auto fields() {
    return std::make_tuple(field("runAsUser", &pod_security_context::run_as_user),
                           field("runAsGroup", &pod_security_context::run_as_group),
                           field("runAsNonRoot", &pod_security_context::run_as_non_root),
                           field("fsGroup", &pod_security_context::fs_group),
                           field("supplementalGroups", &pod_security_context::supplemental_groups),
                           field("seccompProfile", &pod_security_context::seccomp_profile_));
  }
};

/// imagePullSecrets entry: the name of a credential the node knows.
struct local_object_reference {
  static constexpr const char* type_name = "local_object_reference";
  std::string name;
  static constexpr auto fields() {
    return std::make_tuple(field("name", &local_object_reference::name));
  }
};

struct pod_spec {
  static constexpr const char* type_name = "pod_spec";
  std::string node_name;
  std::string restart_policy = "Always";
  bool host_network = false;
  int64_t termination_grace_period_seconds = 30;
  int64_t active_deadline_seconds = 0;
  std::vector<container> init_containers;
  std::vector<container> containers;
  std::vector<volume> volumes;
  std::string hostname;
  string_map node_selector;
  pod_security_context security_context_;
  std::vector<local_object_reference> image_pull_secrets;
  static constexpr auto fields() {
    return std::make_tuple(
        field("nodeName", &pod_spec::node_name), field("restartPolicy", &pod_spec::restart_policy),
        field("hostNetwork", &pod_spec::host_network),
        field_always("terminationGracePeriodSeconds", &pod_spec::termination_grace_period_seconds),
        field("activeDeadlineSeconds", &pod_spec::active_deadline_seconds),
        field("initContainers", &pod_spec::init_containers),
        field("containers", &pod_spec::containers), field("volumes", &pod_spec::volumes),
        field("hostname", &pod_spec::hostname), field("nodeSelector", &pod_spec::node_selector),
        field("securityContext", &pod_spec::security_context_),
        field("imagePullSecrets", &pod_spec::image_pull_secrets));
  }
};

struct container_state_waiting {
  static constexpr const char* type_name = "container_state_waiting";
  std::string reason;
  std::string message;
  static constexpr auto fields() {
    return std::make_tuple(field("reason", &container_state_waiting::reason),
                           field("message", &container_state_waiting::message));
  }
};

struct container_state_running {
  static constexpr const char* type_name = "container_state_running";
  std::string started_at;
  static constexpr auto fields() {
    return std::make_tuple(field("startedAt", &container_state_running::started_at));
  }
};

struct container_state_terminated {
  static constexpr const char* type_name = "container_state_terminated";
  int32_t exit_code = 0;
  int32_t signal = 0;
  std::string reason;
  std::string message;
  std::string started_at;
  std::string finished_at;
  std::string container_id;
  static constexpr auto fields() {
    return std::make_tuple(field_always("exitCode", &container_state_terminated::exit_code),
                           field("signal", &container_state_terminated::signal),
                           field("reason", &container_state_terminated::reason),
                           field("message", &container_state_terminated::message),
                           field("startedAt", &container_state_terminated::started_at),
                           field("finishedAt", &container_state_terminated::finished_at),
                           field("containerID", &container_state_terminated::container_id));
  }
};

/// Exactly one of the three is non-empty (Kubernetes' ContainerState).
struct container_state {
  static constexpr const char* type_name = "container_state";
  container_state_waiting waiting;
  container_state_running running;
  container_state_terminated terminated;
  static constexpr auto fields() {
    return std::make_tuple(field("waiting", &container_state::waiting),
                           field("running", &container_state::running),
                           field("terminated", &container_state::terminated));
  }
  bool is_running() const { return !running.started_at.empty(); }
  bool is_terminated() const { return !terminated.finished_at.empty(); }
  bool is_waiting() const { return !is_running() && !is_terminated(); }
};

struct container_status {
  static constexpr const char* type_name = "container_status";
  std::string name;
  container_state state;
  container_state last_state;
  bool ready = false;
  int32_t restart_count = 0;
  std::string image;
  std::string image_id;
  std::string container_id;
  bool started = false;
  static constexpr auto fields() {
    return std::make_tuple(field("name", &container_status::name),
                           field_always("state", &container_status::state),
                           field_always("lastState", &container_status::last_state),
                           field_always("ready", &container_status::ready),
                           field_always("restartCount", &container_status::restart_count),
                           field_always("image", &container_status::image),
                           field_always("imageID", &container_status::image_id),
                           field("containerID", &container_status::container_id),
                           field_always("started", &container_status::started));
  }
};

struct pod_condition {
  static constexpr const char* type_name = "pod_condition";
  std::string type;
  std::string status;
  std::string last_probe_time;
  std::string last_transition_time;
  std::string reason;
  std::string message;
  static constexpr auto fields() {
    return std::make_tuple(
        field("type", &pod_condition::type), field("status", &pod_condition::status),
        field("lastProbeTime", &pod_condition::last_probe_time),
        field("lastTransitionTime", &pod_condition::last_transition_time),
        field("reason", &pod_condition::reason), field("message", &pod_condition::message));
  }
};

struct pod_ip {
  static constexpr const char* type_name = "pod_ip";
  std::string ip;
  static constexpr auto fields() { return std::make_tuple(field("ip", &pod_ip::ip)); }
};

struct pod_status {
  static constexpr const char* type_name = "pod_status";
  std::string phase;
  std::vector<pod_condition> conditions;
  std::string message;
  std::string reason;
  std::string host_ip;
  std::string pod_ip_;
  std::vector<pod_ip> pod_ips;
  std::vector<pod_ip> host_ips;  ///< Kubernetes' HostIP has the same shape
  std::string start_time;
  std::vector<container_status> init_container_statuses;
  std::vector<container_status> container_statuses;
  std::string qos_class;
  static constexpr auto fields() {
    return std::make_tuple(
        field("phase", &pod_status::phase), field("conditions", &pod_status::conditions),
        field("message", &pod_status::message), field("reason", &pod_status::reason),
        field("hostIP", &pod_status::host_ip), field("podIP", &pod_status::pod_ip_),
        field("podIPs", &pod_status::pod_ips), field("hostIPs", &pod_status::host_ips),
        field("startTime", &pod_status::start_time),
        field("initContainerStatuses", &pod_status::init_container_statuses),
        field("containerStatuses", &pod_status::container_statuses),
        field("qosClass", &pod_status::qos_class));
  }
};

struct pod {
  static constexpr const char* type_name = "pod";
  std::string api_version = "v1";
  std::string kind = "Pod";
  object_meta metadata;
  pod_spec spec;
  pod_status status;
  static constexpr auto fields() {
    return std::make_tuple(field("apiVersion", &pod::api_version), field("kind", &pod::kind),
                           field("metadata", &pod::metadata), field("spec", &pod::spec),
                           field("status", &pod::status));
  }
};

}  // namespace deckhand::wire
