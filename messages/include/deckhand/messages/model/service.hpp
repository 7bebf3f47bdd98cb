#pragma once

/// core/v1 Service and discovery.k8s.io/v1 EndpointSlice: what proxies program.

#include <cstdint>
#include <string>
#include <vector>

#include "deckhand/messages/fields.hpp"
#include "deckhand/messages/model/meta.hpp"

namespace deckhand::wire {

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

}  // namespace deckhand::wire
