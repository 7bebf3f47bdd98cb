#pragma once

/// core/v1 Container: image, command, resources, securityContext, probes.

#include <cstdint>
#include <string>
#include <vector>

#include "deckhand/messages/fields.hpp"
#include "deckhand/messages/model/container_env.hpp"
#include "deckhand/messages/model/meta.hpp"
#include "deckhand/messages/model/probe.hpp"
#include "deckhand/messages/model/volume.hpp"

namespace deckhand::wire {

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

}  // namespace deckhand::wire
