#pragma once

/// Validation and defaulting of Pods, Services and Nodes, the way the
/// Kubernetes API server does it, with its field paths and wording
/// (`spec.containers[0].image: Required value`). Usable outside the registry,
/// e.g. for static pod manifests read by the kubelet.

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace deckhand::apiserver {

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

/// A resource quantity ("500m", "1Gi", "2", "1e3") in whole thousandths of its
/// unit (rounded; positive values below 1m give 1), or nullopt if it does not parse.
std::optional<long double> parse_quantity(const std::string& s);

/// Validates metadata common to all kinds (name, namespace, labels). `name_check`
/// is one of the check_dns* functions.
void validate_object_meta(const nlohmann::json& obj, bool namespaced,
                          std::vector<std::string> (*name_check)(const std::string&),
                          field_errors& errs);

/// Applies the defaults Kubernetes applies to a new Pod (restartPolicy,
/// dnsPolicy, terminationGracePeriodSeconds, per-container imagePullPolicy,
/// terminationMessage*, requests from limits, port protocols, status.phase,
/// status.qosClass) and validates it.
field_errors default_and_validate_pod(nlohmann::json& pod);

/// Checks that a pod update changes only what Kubernetes lets change in a pod
/// spec (container images, activeDeadlineSeconds, added tolerations). Defaults
/// `updated` first so an omitted default does not count as a change.
field_errors validate_pod_update(const nlohmann::json& old_pod, nlohmann::json& updated);

/// The QoS class (BestEffort, Burstable, Guaranteed) of a pod spec.
std::string pod_qos_class(const nlohmann::json& spec);

/// Defaults (type ClusterIP, sessionAffinity None, clientIP timeoutSeconds
/// 10800 with ClientIP affinity, externalTrafficPolicy Cluster for NodePort
/// and LoadBalancer, port protocol TCP, targetPort = port) and validates a
/// Service. nodePort is checked against 1-65535 only: the configured range is
/// the allocator's.
field_errors default_and_validate_service(nlohmann::json& svc);

/// Checks a service update: spec.clusterIP may not change once set. Drops
/// nodePorts and externalTrafficPolicy carried over unchanged when the type no
/// longer uses them, and a carried-over sessionAffinityConfig when affinity is
/// None, as Kubernetes does.
field_errors validate_service_update(const nlohmann::json& old_svc, nlohmann::json& updated);

/// Defaults (port protocol TCP) and validates core/v1 Endpoints: subsets of
/// addresses with valid IPs and ports in 1-65535.
field_errors default_and_validate_endpoints(nlohmann::json& endpoints);

/// Defaults and validates a discovery.k8s.io/v1 EndpointSlice (addressType,
/// 1-100 addresses per endpoint, ports).
field_errors default_and_validate_endpoint_slice(nlohmann::json& slice);

/// Also checks that addressType does not change.
field_errors validate_endpoint_slice_update(const nlohmann::json& old_slice,
                                            nlohmann::json& updated);

/// Validates a Node (cluster-scoped, name a DNS-1123 subdomain).
field_errors default_and_validate_node(nlohmann::json& node);

}  // namespace deckhand::apiserver
