#pragma once

/// Validation of the kinds this node serves, the way the Kubernetes API
/// server does it, with its field paths and wording
/// (`spec.containers[0].image: Required value`). Used by the API server's
/// registry and by the kubelet for static pod manifests.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace deckhand::api {

/// One problem with one field, as Kubernetes' field.Error.
struct field_error {
  /// "Required value", "Invalid value", "Unsupported value", "Duplicate value",
  /// "Forbidden", "Too long".
  std::string type;
  std::string field;   ///< e.g. "spec.containers[0].image"
  std::string detail;  ///< already includes the offending value where Kubernetes shows it

  /// "FIELD: TYPE[: DETAIL]"
  std::string to_string() const;
};

using field_errors = std::vector<field_error>;

/// `Kind "name" is invalid: e` for one error, `...: [e1, e2]` for several.
std::string invalid_message(const std::string& kind, const std::string& name,
                            const field_errors& errs);

/// Returns the messages Kubernetes gives for a name that is not a DNS-1123
/// label (<=63 chars, [a-z0-9-], alphanumeric at both ends); empty if valid.
std::vector<std::string> check_dns1123_label(const std::string& s);
/// Same for a DNS-1123 subdomain (<=253 chars, dot-separated labels).
std::vector<std::string> check_dns1123_subdomain(const std::string& s);
/// Same for a DNS-1035 label (a DNS-1123 label that starts with a letter).
std::vector<std::string> check_dns1035_label(const std::string& s);

/// Validates metadata common to all kinds (name, namespace, labels). `name_check`
/// is one of the check_dns* functions.
void validate_object_meta(const nlohmann::json& obj, bool namespaced,
                          std::vector<std::string> (*name_check)(const std::string&),
                          field_errors& errs);

// -- Pods (validation/pod.cpp) -------------------------------------------------

/// Validates a defaulted Pod: metadata, volumes, containers and init
/// containers (names, images, ports, resources, mounts), policies.
field_errors validate_pod(const nlohmann::json& pod);

/// default_pod, then validate_pod; a valid pod gets status.phase Pending and
/// status.qosClass.
field_errors default_and_validate_pod(nlohmann::json& pod);

/// Checks that a pod update changes only what Kubernetes lets change in a pod
/// spec (container images, activeDeadlineSeconds, added tolerations). Defaults
/// `updated` first so an omitted default does not count as a change.
field_errors validate_pod_update(const nlohmann::json& old_pod, nlohmann::json& updated);

// -- Services (validation/service.cpp) -----------------------------------------

/// Validates a defaulted Service. nodePort is checked against 1-65535 only:
/// the configured range is the allocator's.
field_errors validate_service(const nlohmann::json& svc);

/// default_service, then validate_service; a valid service's status is reset.
field_errors default_and_validate_service(nlohmann::json& svc);

/// Checks a service update: spec.clusterIP may not change once set. Drops
/// nodePorts and externalTrafficPolicy carried over unchanged when the type no
/// longer uses them, and a carried-over sessionAffinityConfig when affinity is
/// None, as Kubernetes does.
field_errors validate_service_update(const nlohmann::json& old_svc, nlohmann::json& updated);

// -- Endpoints and EndpointSlices (validation/endpoints.cpp, endpoint_slice.cpp)

/// core/v1 Endpoints: subsets of addresses with valid IPs and ports in 1-65535.
field_errors validate_endpoints(const nlohmann::json& endpoints);
field_errors default_and_validate_endpoints(nlohmann::json& endpoints);

/// discovery.k8s.io/v1 EndpointSlice (addressType, 1-100 addresses per
/// endpoint, ports).
field_errors validate_endpoint_slice(const nlohmann::json& slice);
field_errors default_and_validate_endpoint_slice(nlohmann::json& slice);

/// Also checks that addressType does not change.
field_errors validate_endpoint_slice_update(const nlohmann::json& old_slice,
                                            nlohmann::json& updated);

// -- Nodes, Events, Leases (validation/node.cpp, event.cpp, lease.cpp) ---------

/// A Node: cluster-scoped, name a DNS-1123 subdomain.
field_errors validate_node(const nlohmann::json& node);
field_errors default_and_validate_node(nlohmann::json& node);

/// A core/v1 Event: involvedObject required and in the event's namespace,
/// type Normal or Warning, count an integer.
field_errors validate_event(const nlohmann::json& event);

/// A coordination.k8s.io/v1 Lease: positive leaseDurationSeconds,
/// non-negative leaseTransitions, MicroTime renew/acquire times.
field_errors validate_lease(const nlohmann::json& lease);
field_errors default_and_validate_lease(nlohmann::json& lease);

}  // namespace deckhand::api
