#pragma once

/// The Kubernetes object model as deckhand's processes see it: the subset of
/// Pod, Service and Node that the node components act on. JSON field names are
/// Kubernetes' own; the API server keeps the full objects it was given, and
/// these structs are what it feeds to kubelets and proxies.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "deckhand/messages/fields.hpp"

namespace deckhand::wire {

using string_map = std::map<std::string, std::string>;

struct object_meta {
  static constexpr const char* type_name = "object_meta";
  std::string name;
  std::string namespace_;
  std::string uid;
  std::string resource_version;
  int64_t generation = 0;
  std::string creation_timestamp;
  std::string deletion_timestamp;
  int64_t deletion_grace_period_seconds = 0;
  string_map labels;
  string_map annotations;
  static constexpr auto fields() {
    return std::make_tuple(
        field("name", &object_meta::name), field("namespace", &object_meta::namespace_),
        field("uid", &object_meta::uid), field("resourceVersion", &object_meta::resource_version),
        field("generation", &object_meta::generation),
        field("creationTimestamp", &object_meta::creation_timestamp),
        field("deletionTimestamp", &object_meta::deletion_timestamp),
        field("deletionGracePeriodSeconds", &object_meta::deletion_grace_period_seconds),
        field("labels", &object_meta::labels), field("annotations", &object_meta::annotations));
  }
};

struct container_port {
  static constexpr const char* type_name = "container_port";
  std::string name;
  int32_t container_port = 0;
  std::string protocol;
  int32_t host_port = 0;
  static constexpr auto fields() {
    return std::make_tuple(field("name", &container_port::name),
                           field_always("containerPort", &container_port::container_port),
                           field("protocol", &container_port::protocol),
                           field("hostPort", &container_port::host_port));
  }
};

/// `fieldRef`: a field of the pod (`metadata.name`, `metadata.labels['k']`,
/// `spec.nodeName`, `status.podIP`, ...).
struct object_field_selector {
  static constexpr const char* type_name = "object_field_selector";
  std::string api_version;
  std::string field_path;
  static constexpr auto fields() {
    return std::make_tuple(field("apiVersion", &object_field_selector::api_version),
                           field("fieldPath", &object_field_selector::field_path));
  }
};

/// `resourceFieldRef`: a container's request or limit (`limits.cpu`,
/// `requests.memory`, ...), divided by `divisor` (a quantity, default 1).
struct resource_field_selector {
  static constexpr const char* type_name = "resource_field_selector";
  std::string container_name;
  std::string resource;
  int_or_string divisor;  ///< a quantity: "1m", "1Mi", 1
  static constexpr auto fields() {
    return std::make_tuple(field("containerName", &resource_field_selector::container_name),
                           field("resource", &resource_field_selector::resource),
                           field("divisor", &resource_field_selector::divisor));
  }
};

/// `configMapKeyRef` / `secretKeyRef`. deckhand has no ConfigMaps or Secrets:
/// a container that needs one waits with CreateContainerConfigError, as on
/// Kubernetes when the object is missing (unless `optional: true`).
struct key_selector {
  static constexpr const char* type_name = "key_selector";
  std::string name;
  std::string key;
  opt<bool> optional;
  static constexpr auto fields() {
    return std::make_tuple(field("name", &key_selector::name), field("key", &key_selector::key),
                           field("optional", &key_selector::optional));
  }
};

struct env_var_source {
  static constexpr const char* type_name = "env_var_source";
  opt<object_field_selector> field_ref;
  opt<resource_field_selector> resource_field_ref;
  opt<key_selector> config_map_key_ref;
  opt<key_selector> secret_key_ref;
  static constexpr auto fields() {
    return std::make_tuple(field("fieldRef", &env_var_source::field_ref),
                           field("resourceFieldRef", &env_var_source::resource_field_ref),
                           field("configMapKeyRef", &env_var_source::config_map_key_ref),
                           field("secretKeyRef", &env_var_source::secret_key_ref));
  }
};

struct env_var {
  static constexpr const char* type_name = "env_var";
  std::string name;
  std::string value;
  opt<env_var_source> value_from;
  static constexpr auto fields() {
    return std::make_tuple(field("name", &env_var::name), field("value", &env_var::value),
                           field("valueFrom", &env_var::value_from));
  }
};

// -- probes and lifecycle hooks ---------------------------------------------------

struct exec_action {
  static constexpr const char* type_name = "exec_action";
  std::vector<std::string> command;
  static constexpr auto fields() {
    return std::make_tuple(field("command", &exec_action::command));
  }
};

struct http_header {
  static constexpr const char* type_name = "http_header";
  std::string name;
  std::string value;
  static constexpr auto fields() {
    return std::make_tuple(field("name", &http_header::name), field("value", &http_header::value));
  }
};

/// `httpGet`: `port` is a number or the name of a container port; `host`
/// defaults to the pod IP, `scheme` to HTTP, `path` to "/".
struct http_get_action {
  static constexpr const char* type_name = "http_get_action";
  std::string path;
  int_or_string port;
  std::string host;
  std::string scheme;
  std::vector<http_header> http_headers;
  static constexpr auto fields() {
    return std::make_tuple(
        field("path", &http_get_action::path), field("port", &http_get_action::port),
        field("host", &http_get_action::host), field("scheme", &http_get_action::scheme),
        field("httpHeaders", &http_get_action::http_headers));
  }
};

struct tcp_socket_action {
  static constexpr const char* type_name = "tcp_socket_action";
  int_or_string port;
  std::string host;
  static constexpr auto fields() {
    return std::make_tuple(field("port", &tcp_socket_action::port),
                           field("host", &tcp_socket_action::host));
  }
};

struct sleep_action {
  static constexpr const char* type_name = "sleep_action";
  int64_t seconds = 0;
  static constexpr auto fields() {
    return std::make_tuple(field_always("seconds", &sleep_action::seconds));
  }
};

/// A probe, with Kubernetes' defaults for the fields a manifest leaves out.
struct probe {
  static constexpr const char* type_name = "probe";
  opt<exec_action> exec;
  opt<http_get_action> http_get;
  opt<tcp_socket_action> tcp_socket;
  int32_t initial_delay_seconds = 0;
  int32_t timeout_seconds = 1;
  int32_t period_seconds = 10;
  int32_t success_threshold = 1;
  int32_t failure_threshold = 3;
  opt<int64_t> termination_grace_period_seconds;
  static constexpr auto fields() {
    return std::make_tuple(
        field("exec", &probe::exec), field("httpGet", &probe::http_get),
        field("tcpSocket", &probe::tcp_socket),
        field("initialDelaySeconds", &probe::initial_delay_seconds),
        field("timeoutSeconds", &probe::timeout_seconds),
        field("periodSeconds", &probe::period_seconds),
        field("successThreshold", &probe::success_threshold),
        field("failureThreshold", &probe::failure_threshold),
        field("terminationGracePeriodSeconds", &probe::termination_grace_period_seconds));
  }
};

/// A `postStart` or `preStop` handler: exactly one action is set.
struct lifecycle_handler {
  static constexpr const char* type_name = "lifecycle_handler";
  opt<exec_action> exec;
  opt<http_get_action> http_get;
  opt<tcp_socket_action> tcp_socket;
  opt<sleep_action> sleep;
  static constexpr auto fields() {
    return std::make_tuple(field("exec", &lifecycle_handler::exec),
                           field("httpGet", &lifecycle_handler::http_get),
                           field("tcpSocket", &lifecycle_handler::tcp_socket),
                           field("sleep", &lifecycle_handler::sleep));
  }
};

struct lifecycle {
  static constexpr const char* type_name = "lifecycle";
  opt<lifecycle_handler> post_start;
  opt<lifecycle_handler> pre_stop;
  static constexpr auto fields() {
    return std::make_tuple(field("postStart", &lifecycle::post_start),
                           field("preStop", &lifecycle::pre_stop));
  }
};

// -- volumes ------------------------------------------------------------------------

struct volume_mount {
  static constexpr const char* type_name = "volume_mount";
  std::string name;
  std::string mount_path;
  bool read_only = false;
  std::string sub_path;
  static constexpr auto fields() {
    return std::make_tuple(
        field("name", &volume_mount::name), field("mountPath", &volume_mount::mount_path),
        field("readOnly", &volume_mount::read_only), field("subPath", &volume_mount::sub_path));
  }
};

struct empty_dir_volume_source {
  static constexpr const char* type_name = "empty_dir_volume_source";
  std::string medium;        ///< "" (node disk) or "Memory" (tmpfs)
  int_or_string size_limit;  ///< a quantity, e.g. "64Mi"
  static constexpr auto fields() {
    return std::make_tuple(field("medium", &empty_dir_volume_source::medium),
                           field("sizeLimit", &empty_dir_volume_source::size_limit));
  }
};

struct host_path_volume_source {
  static constexpr const char* type_name = "host_path_volume_source";
  std::string path;
  std::string type;  ///< "", DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice,
                     ///< BlockDevice
  static constexpr auto fields() {
    return std::make_tuple(field("path", &host_path_volume_source::path),
                           field("type", &host_path_volume_source::type));
  }
};

struct downward_api_volume_file {
  static constexpr const char* type_name = "downward_api_volume_file";
  std::string path;
  opt<object_field_selector> field_ref;
  opt<resource_field_selector> resource_field_ref;
  opt<int32_t> mode;
  static constexpr auto fields() {
    return std::make_tuple(field("path", &downward_api_volume_file::path),
                           field("fieldRef", &downward_api_volume_file::field_ref),
                           field("resourceFieldRef", &downward_api_volume_file::resource_field_ref),
                           field("mode", &downward_api_volume_file::mode));
  }
};

struct downward_api_volume_source {
  static constexpr const char* type_name = "downward_api_volume_source";
  std::vector<downward_api_volume_file> items;
  opt<int32_t> default_mode;
  static constexpr auto fields() {
    return std::make_tuple(field("items", &downward_api_volume_source::items),
                           field("defaultMode", &downward_api_volume_source::default_mode));
  }
};

/// A pod volume. deckhand supports emptyDir, hostPath and downwardAPI; a
/// volume with none of them set (another source, which decoding ignores) is
/// refused with a clear error when the pod is run.
struct volume {
  static constexpr const char* type_name = "volume";
  std::string name;
  opt<empty_dir_volume_source> empty_dir;
  opt<host_path_volume_source> host_path;
  opt<downward_api_volume_source> downward_api;
  static constexpr auto fields() {
    return std::make_tuple(field("name", &volume::name), field("emptyDir", &volume::empty_dir),
                           field("hostPath", &volume::host_path),
                           field("downwardAPI", &volume::downward_api));
  }
};

struct resource_requirements {
  static constexpr const char* type_name = "resource_requirements";
  string_map limits;
  string_map requests;
  static constexpr auto fields() {
    return std::make_tuple(field("limits", &resource_requirements::limits),
                           field("requests", &resource_requirements::requests));
  }
};

struct capabilities {
  static constexpr const char* type_name = "capabilities";
  std::vector<std::string> add;
  std::vector<std::string> drop;
  static constexpr auto fields() {
    return std::make_tuple(field("add", &capabilities::add), field("drop", &capabilities::drop));
  }
};

/// `type`: RuntimeDefault, Unconfined or Localhost (with localhostProfile).
struct seccomp_profile {
  static constexpr const char* type_name = "seccomp_profile";
  std::string type;
  std::string localhost_profile;
  static constexpr auto fields() {
    return std::make_tuple(field("type", &seccomp_profile::type),
                           field("localhostProfile", &seccomp_profile::localhost_profile));
  }
};

/// A container's securityContext. Pointer fields of Kubernetes are `opt`:
/// absent means "the image's or the pod's value".
struct security_context {
  static constexpr const char* type_name = "security_context";
  opt<int64_t> run_as_user;
  opt<int64_t> run_as_group;
  opt<bool> run_as_non_root;
  opt<bool> read_only_root_filesystem;
  opt<bool> allow_privilege_escalation;
  opt<bool> privileged;
  capabilities capabilities_;
  seccomp_profile seccomp_profile_;
  static constexpr auto fields() {
    return std::make_tuple(
        field("runAsUser", &security_context::run_as_user),
        field("runAsGroup", &security_context::run_as_group),
        field("runAsNonRoot", &security_context::run_as_non_root),
        field("readOnlyRootFilesystem", &security_context::read_only_root_filesystem),
        field("allowPrivilegeEscalation", &security_context::allow_privilege_escalation),
        field("privileged", &security_context::privileged),
        field("capabilities", &security_context::capabilities_),
        field("seccompProfile", &security_context::seccomp_profile_));
  }
};

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

struct container {
  static constexpr const char* type_name = "container";
  std::string name;
  std::string image;
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::string working_dir;
  std::vector<env_var> env;
  std::vector<container_port> ports;
  resource_requirements resources;
  std::string image_pull_policy;
  security_context security_context_;
  std::vector<volume_mount> volume_mounts;
  opt<probe> liveness_probe;
  opt<probe> readiness_probe;
  opt<probe> startup_probe;
  opt<lifecycle> lifecycle_;
  /// Only on init containers: "Always" makes it a sidecar.
  std::string restart_policy;
  static constexpr auto fields() {
    return std::make_tuple(field("name", &container::name), field("image", &container::image),
                           field("command", &container::command), field("args", &container::args),
                           field("workingDir", &container::working_dir),
                           field("env", &container::env), field("ports", &container::ports),
                           field("resources", &container::resources),
                           field("imagePullPolicy", &container::image_pull_policy),
                           field("securityContext", &container::security_context_),
                           field("volumeMounts", &container::volume_mounts),
                           field("livenessProbe", &container::liveness_probe),
                           field("readinessProbe", &container::readiness_probe),
                           field("startupProbe", &container::startup_probe),
                           field("lifecycle", &container::lifecycle_),
                           field("restartPolicy", &container::restart_policy));
  }
  /// An init container with `restartPolicy: Always` (Kubernetes 1.29+).
  bool is_sidecar() const { return restart_policy == "Always"; }
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

struct service_port {
  static constexpr const char* type_name = "service_port";
  std::string name;
  std::string protocol = "TCP";
  int32_t port = 0;
  /// A port number in decimal or the name of a container port (IntOrString).
  int_or_string target_port;
  int32_t node_port = 0;
  static constexpr auto fields() {
    return std::make_tuple(
        field("name", &service_port::name), field("protocol", &service_port::protocol),
        field_always("port", &service_port::port), field("targetPort", &service_port::target_port),
        field("nodePort", &service_port::node_port));
  }
};

struct client_ip_config {
  static constexpr const char* type_name = "client_ip_config";
  /// Affinity timeout; Kubernetes' default is 10800 (3 hours).
  opt<int32_t> timeout_seconds;
  static constexpr auto fields() {
    return std::make_tuple(field("timeoutSeconds", &client_ip_config::timeout_seconds));
  }
};

struct session_affinity_config {
  static constexpr const char* type_name = "session_affinity_config";
  opt<client_ip_config> client_ip;
  static constexpr auto fields() {
    return std::make_tuple(field("clientIP", &session_affinity_config::client_ip));
  }
};

struct service_spec {
  static constexpr const char* type_name = "service_spec";
  std::string type = "ClusterIP";
  std::string cluster_ip;
  std::vector<std::string> cluster_ips;
  string_map selector;
  std::vector<service_port> ports;
  std::string session_affinity;
  opt<session_affinity_config> session_affinity_config_;
  /// Cluster (default) or Local; Local keeps NodePort traffic on this node's endpoints.
  std::string external_traffic_policy;
  static constexpr auto fields() {
    return std::make_tuple(
        field("type", &service_spec::type), field("clusterIP", &service_spec::cluster_ip),
        field("clusterIPs", &service_spec::cluster_ips), field("selector", &service_spec::selector),
        field("ports", &service_spec::ports),
        field("sessionAffinity", &service_spec::session_affinity),
        field("sessionAffinityConfig", &service_spec::session_affinity_config_),
        field("externalTrafficPolicy", &service_spec::external_traffic_policy));
  }
};

struct service {
  static constexpr const char* type_name = "service";
  std::string api_version = "v1";
  std::string kind = "Service";
  object_meta metadata;
  service_spec spec;
  static constexpr auto fields() {
    return std::make_tuple(field("apiVersion", &service::api_version),
                           field("kind", &service::kind), field("metadata", &service::metadata),
                           field("spec", &service::spec));
  }
};

// -- discovery.k8s.io/v1 EndpointSlice: what proxies program ---------------------

struct endpoint_conditions {
  static constexpr const char* type_name = "endpoint_conditions";
  /// Kubernetes pointer-bools: absent means "unknown", which consumers treat as true.
  opt<bool> ready;
  opt<bool> serving;
  opt<bool> terminating;
  static constexpr auto fields() {
    return std::make_tuple(field("ready", &endpoint_conditions::ready),
                           field("serving", &endpoint_conditions::serving),
                           field("terminating", &endpoint_conditions::terminating));
  }
};

struct object_reference {
  static constexpr const char* type_name = "object_reference";
  std::string kind;
  std::string namespace_;
  std::string name;
  std::string uid;
  static constexpr auto fields() {
    return std::make_tuple(
        field("kind", &object_reference::kind), field("namespace", &object_reference::namespace_),
        field("name", &object_reference::name), field("uid", &object_reference::uid));
  }
};

struct endpoint {
  static constexpr const char* type_name = "endpoint";
  std::vector<std::string> addresses;
  endpoint_conditions conditions;
  std::string hostname;
  std::string node_name;
  opt<object_reference> target_ref;
  static constexpr auto fields() {
    return std::make_tuple(
        field("addresses", &endpoint::addresses), field_always("conditions", &endpoint::conditions),
        field("hostname", &endpoint::hostname), field("nodeName", &endpoint::node_name),
        field("targetRef", &endpoint::target_ref));
  }
};

struct endpoint_port {
  static constexpr const char* type_name = "endpoint_port";
  std::string name;
  std::string protocol = "TCP";
  int32_t port = 0;
  static constexpr auto fields() {
    return std::make_tuple(field("name", &endpoint_port::name),
                           field("protocol", &endpoint_port::protocol),
                           field_always("port", &endpoint_port::port));
  }
};

/// One slice of a Service's endpoints. The owning Service is named by the label
/// `kubernetes.io/service-name`; a Service may have several slices.
struct endpoint_slice {
  static constexpr const char* type_name = "endpoint_slice";
  std::string api_version = "discovery.k8s.io/v1";
  std::string kind = "EndpointSlice";
  object_meta metadata;
  std::string address_type = "IPv4";
  std::vector<endpoint> endpoints;
  std::vector<endpoint_port> ports;
  static constexpr auto fields() {
    return std::make_tuple(
        field("apiVersion", &endpoint_slice::api_version), field("kind", &endpoint_slice::kind),
        field("metadata", &endpoint_slice::metadata),
        field_always("addressType", &endpoint_slice::address_type),
        field("endpoints", &endpoint_slice::endpoints), field("ports", &endpoint_slice::ports));
  }
};

struct node_condition {
  static constexpr const char* type_name = "node_condition";
  std::string type;
  std::string status;
  std::string last_heartbeat_time;
  std::string last_transition_time;
  std::string reason;
  std::string message;
  static constexpr auto fields() {
    return std::make_tuple(
        field("type", &node_condition::type), field("status", &node_condition::status),
        field("lastHeartbeatTime", &node_condition::last_heartbeat_time),
        field("lastTransitionTime", &node_condition::last_transition_time),
        field("reason", &node_condition::reason), field("message", &node_condition::message));
  }
};

struct node_address {
  static constexpr const char* type_name = "node_address";
  std::string type;
  std::string address;
  static constexpr auto fields() {
    return std::make_tuple(field("type", &node_address::type),
                           field("address", &node_address::address));
  }
};

struct node_system_info {
  static constexpr const char* type_name = "node_system_info";
  std::string machine_id;
  std::string kernel_version;
  std::string os_image;
  std::string container_runtime_version;
  std::string kubelet_version;
  std::string operating_system = "linux";
  std::string architecture;
  static constexpr auto fields() {
    return std::make_tuple(
        field("machineID", &node_system_info::machine_id),
        field("kernelVersion", &node_system_info::kernel_version),
        field("osImage", &node_system_info::os_image),
        field("containerRuntimeVersion", &node_system_info::container_runtime_version),
        field("kubeletVersion", &node_system_info::kubelet_version),
        field("operatingSystem", &node_system_info::operating_system),
        field("architecture", &node_system_info::architecture));
  }
};

struct node_status {
  static constexpr const char* type_name = "node_status";
  string_map capacity;
  string_map allocatable;
  std::vector<node_condition> conditions;
  std::vector<node_address> addresses;
  node_system_info node_info;
  static constexpr auto fields() {
    return std::make_tuple(
        field("capacity", &node_status::capacity), field("allocatable", &node_status::allocatable),
        field("conditions", &node_status::conditions), field("addresses", &node_status::addresses),
        field("nodeInfo", &node_status::node_info));
  }
};

struct node_spec {
  static constexpr const char* type_name = "node_spec";
  std::string pod_cidr;
  bool unschedulable = false;
  static constexpr auto fields() {
    return std::make_tuple(field("podCIDR", &node_spec::pod_cidr),
                           field("unschedulable", &node_spec::unschedulable));
  }
};

struct node {
  static constexpr const char* type_name = "node";
  std::string api_version = "v1";
  std::string kind = "Node";
  object_meta metadata;
  node_spec spec;
  node_status status;
  static constexpr auto fields() {
    return std::make_tuple(field("apiVersion", &node::api_version), field("kind", &node::kind),
                           field("metadata", &node::metadata), field("spec", &node::spec),
                           field("status", &node::status));
  }
};

// -- core/v1 Event: what happened to an object, for `kubectl describe` ---------

/// The object an event is about (core/v1 ObjectReference with fieldPath, e.g.
/// "spec.containers{app}" for a container's events).
struct event_object_reference {
  static constexpr const char* type_name = "event_object_reference";
  std::string kind;
  std::string namespace_;
  std::string name;
  std::string uid;
  std::string api_version;
  std::string field_path;
  static constexpr auto fields() {
    return std::make_tuple(field("kind", &event_object_reference::kind),
                           field("namespace", &event_object_reference::namespace_),
                           field("name", &event_object_reference::name),
                           field("uid", &event_object_reference::uid),
                           field("apiVersion", &event_object_reference::api_version),
                           field("fieldPath", &event_object_reference::field_path));
  }
};

struct event_source {
  static constexpr const char* type_name = "event_source";
  std::string component;
  std::string host;
  static constexpr auto fields() {
    return std::make_tuple(field("component", &event_source::component),
                           field("host", &event_source::host));
  }
};

/// One event series: the same involvedObject, reason and message seen `count`
/// times between firstTimestamp and lastTimestamp (RFC 3339, seconds).
struct event {
  static constexpr const char* type_name = "event";
  std::string api_version = "v1";
  std::string kind = "Event";
  object_meta metadata;
  event_object_reference involved_object;
  std::string reason;
  std::string message;
  std::string type = "Normal";  ///< Normal or Warning
  event_source source;
  std::string first_timestamp;
  std::string last_timestamp;
  int32_t count = 1;
  std::string reporting_component;
  std::string reporting_instance;
  static constexpr auto fields() {
    return std::make_tuple(
        field("apiVersion", &event::api_version), field("kind", &event::kind),
        field("metadata", &event::metadata),
        field_always("involvedObject", &event::involved_object), field("reason", &event::reason),
        field("message", &event::message), field("type", &event::type),
        field("source", &event::source), field("firstTimestamp", &event::first_timestamp),
        field("lastTimestamp", &event::last_timestamp), field("count", &event::count),
        field("reportingComponent", &event::reporting_component),
        field("reportingInstance", &event::reporting_instance));
  }
};

}  // namespace deckhand::wire
