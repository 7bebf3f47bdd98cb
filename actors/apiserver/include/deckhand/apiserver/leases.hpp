#pragma once

/// coordination.k8s.io/v1 Leases: the kind (REST names, validation), the
/// node lease renewal kubelets send (`lease_renew`), and the node lifecycle
/// controller's view of liveness: a node is alive while its lease is fresh
/// (renewTime + leaseDurationSeconds in the future) or, for kubelets that
/// predate leases, while its node heartbeats are.
///
/// Node leases live in namespace kube-node-lease, named after the node, with
/// spec.holderIdentity, spec.leaseDurationSeconds and spec.renewTime (a
/// MicroTime: RFC 3339 with microseconds) and an ownerReference to the Node,
/// as the Kubernetes kubelet writes them.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "deckhand/apiserver/registry.hpp"
#include "deckhand/common/result.hpp"

namespace deckhand::apiserver {

/// The namespace of node leases.
inline constexpr const char* node_lease_namespace = "kube-node-lease";

/// The Lease kind: group coordination.k8s.io, resource "leases", namespaced.
kind_info lease_kind();

/// MicroTime text: "2024-05-01T12:00:00.123456Z".
std::string format_micro_time(std::chrono::system_clock::time_point t);

/// Parses RFC 3339 UTC with optional fraction (MicroTime or Time).
std::optional<std::chrono::system_clock::time_point> parse_micro_time(const std::string& text);

/// Creates the node's lease or renews it (renewTime = now, holder and
/// duration as given). Returns the stored object.
result<nlohmann::json> renew_node_lease(registry& reg, const std::string& node_name,
                                        const std::string& holder, int32_t duration_seconds,
                                        std::chrono::system_clock::time_point now);

/// When `lease` expires (renewTime + leaseDurationSeconds); nullopt when it
/// has no valid renewTime.
std::optional<std::chrono::system_clock::time_point> lease_expiry(const nlohmann::json& lease);

/// Whether the node's lease in `reg` is fresh at `now`.
bool node_lease_fresh(const registry& reg, const std::string& node_name,
                      std::chrono::system_clock::time_point now);

}  // namespace deckhand::apiserver
