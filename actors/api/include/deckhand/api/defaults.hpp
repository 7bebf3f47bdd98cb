#pragma once

/// The defaults the Kubernetes API server applies to new objects, before
/// validation. Each leaves alone what is already set (and what has the wrong
/// shape, for validation to report).

#include <string>

#include <nlohmann/json.hpp>

namespace deckhand::api {

/// restartPolicy, dnsPolicy, terminationGracePeriodSeconds, schedulerName,
/// priority..., and per container imagePullPolicy, terminationMessage*,
/// requests from limits, port protocols.
void default_pod(nlohmann::json& pod);

/// Always if the image names no tag or the tag "latest", else IfNotPresent
/// (also for digests).
std::string default_pull_policy(const std::string& image);

/// type ClusterIP, sessionAffinity None, clientIP timeoutSeconds 10800 with
/// ClientIP affinity, internal/externalTrafficPolicy Cluster, clusterIPs and
/// IP families from clusterIP, port protocol TCP, targetPort = port.
void default_service(nlohmann::json& svc);

/// Port protocol TCP.
void default_endpoints(nlohmann::json& endpoints);
void default_endpoint_slice(nlohmann::json& slice);

/// An empty spec.
void default_node(nlohmann::json& node);
void default_lease(nlohmann::json& lease);

}  // namespace deckhand::api
