#pragma once

/// The proxy's view of what to program: one entry per Service port, with the
/// endpoints behind it, built from Services and EndpointSlices. Every data
/// plane (nftables, iptables, userspace) renders from this and nothing else,
/// so the three agree on which backends a Service has.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "deckhand/messages/model.hpp"

namespace deckhand::proxy {

struct backend {
  std::string ip;
  int32_t port = 0;
  /// Kubernetes' conditions (absent in the slice means true). The proxy sends
  /// new connections to ready endpoints; when none is ready it falls back to
  /// serving-and-terminating ones, as kube-proxy does.
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  std::string node_name;
  friend bool operator==(const backend&, const backend&) = default;
  friend auto operator<=>(const backend& a, const backend& b) {
    if (auto c = a.ip <=> b.ip; c != 0)
      return c;
    return a.port <=> b.port;
  }
};

/// One Service port: the unit of rules (kube-proxy's "service port name").
struct service_port_entry {
  std::string namespace_;
  std::string service;
  std::string port_name;   ///< the Service port's name ("" if unnamed)
  std::string protocol;    ///< TCP, UDP or SCTP
  std::string cluster_ip;  ///< empty or "None": no ClusterIP rules (headless)
  int32_t port = 0;
  int32_t node_port = 0;  ///< 0: none
  bool affinity_client_ip = false;
  int32_t affinity_timeout_seconds = 10800;
  bool external_policy_local = false;  ///< externalTrafficPolicy: Local
  /// Sorted by (ip, port), no duplicates; all of them, ready or not.
  std::vector<backend> backends;

  /// "NS/SVC:PORTNAME" (kube-proxy's ServicePortName), unique per entry.
  std::string key() const;
  /// What new connections may go to: ready backends, else serving+terminating
  /// ones, else none (the Service then rejects connections).
  std::vector<backend> usable_backends() const;
  friend bool operator==(const service_port_entry&, const service_port_entry&) = default;
};

/// Sorted by key(); equal maps program equal rules, so comparing two maps is
/// how a sync decides whether anything changed.
struct service_map {
  std::vector<service_port_entry> entries;
  friend bool operator==(const service_map&, const service_map&) = default;
};

/// Services keyed by "NS/NAME"; slices keyed by "NS/SLICENAME" and matched to
/// their Service by the `kubernetes.io/service-name` label. A slice port
/// matches a Service port by name and protocol. A Service port without a
/// ClusterIP and without a nodePort (headless) yields no entry.
service_map build_service_map(const std::map<std::string, wire::service>& services,
                              const std::map<std::string, wire::endpoint_slice>& slices);

}  // namespace deckhand::proxy
