#pragma once

/// core/v1 Node: the node's spec, conditions, addresses and system info.

#include <cstdint>
#include <string>
#include <vector>

#include "deckhand/messages/fields.hpp"
#include "deckhand/messages/model/meta.hpp"

namespace deckhand::wire {

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

}  // namespace deckhand::wire
