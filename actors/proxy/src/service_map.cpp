#include "deckhand/proxy/service_map.hpp"

#include <algorithm>

namespace deckhand::proxy {

std::string service_port_entry::key() const { return namespace_ + "/" + service + ":" + port_name; }

std::vector<backend> service_port_entry::usable_backends() const {
  std::vector<backend> out;
  for (const auto& b : backends)
    if (b.ready)
      out.push_back(b);
  if (!out.empty())
    return out;
  for (const auto& b : backends)
    if (b.serving && b.terminating)
      out.push_back(b);
  return out;
}

namespace {

const std::string service_name_label = "kubernetes.io/service-name";

bool has_cluster_ip(const wire::service_spec& s) {
  return !s.cluster_ip.empty() && s.cluster_ip != "None";
}

}  // namespace

service_map build_service_map(const std::map<std::string, wire::service>& services,
                              const std::map<std::string, wire::endpoint_slice>& slices) {
  // Slices by owning Service key.
  std::map<std::string, std::vector<const wire::endpoint_slice*>> by_service;
  for (const auto& [_, es] : slices) {
    auto it = es.metadata.labels.find(service_name_label);
    if (it == es.metadata.labels.end() || es.address_type != "IPv4")
      continue;
    by_service[es.metadata.namespace_ + "/" + it->second].push_back(&es);
  }

  service_map out;
  for (const auto& [key, svc] : services) {
    const auto& spec = svc.spec;
    bool cluster = has_cluster_ip(spec);
    auto slices_it = by_service.find(key);
    for (const auto& sp : spec.ports) {
      if (!cluster && sp.node_port == 0)
        continue;
      service_port_entry e;
      e.namespace_ = svc.metadata.namespace_;
      e.service = svc.metadata.name;
      e.port_name = sp.name;
      e.protocol = sp.protocol.empty() ? "TCP" : sp.protocol;
      e.cluster_ip = cluster ? spec.cluster_ip : std::string{};
      e.port = sp.port;
      e.node_port = sp.node_port;
      e.affinity_client_ip = spec.session_affinity == "ClientIP";
      if (spec.session_affinity_config_ && spec.session_affinity_config_->client_ip &&
          spec.session_affinity_config_->client_ip->timeout_seconds)
        e.affinity_timeout_seconds = *spec.session_affinity_config_->client_ip->timeout_seconds;
      e.external_policy_local = spec.external_traffic_policy == "Local";
      if (slices_it != by_service.end()) {
        for (const auto* es : slices_it->second) {
          const wire::endpoint_port* match = nullptr;
          for (const auto& p : es->ports) {
            auto proto = p.protocol.empty() ? std::string("TCP") : p.protocol;
            if (p.name == sp.name && proto == e.protocol) {
              match = &p;
              break;
            }
          }
          if (!match || match->port <= 0 || match->port > 65535)
            continue;
          for (const auto& ep : es->endpoints) {
            for (const auto& addr : ep.addresses) {
              backend b;
              b.ip = addr;
              b.port = match->port;
              b.ready = ep.conditions.ready.value_or(true);
              b.serving = ep.conditions.serving.value_or(b.ready);
              b.terminating = ep.conditions.terminating.value_or(false);
              b.node_name = ep.node_name;
              e.backends.push_back(std::move(b));
            }
          }
        }
      }
      std::sort(e.backends.begin(), e.backends.end());
      e.backends.erase(std::unique(e.backends.begin(), e.backends.end(),
                                   [](const backend& a, const backend& b) {
                                     return a.ip == b.ip && a.port == b.port;
                                   }),
                       e.backends.end());
      out.entries.push_back(std::move(e));
    }
  }
  std::sort(out.entries.begin(), out.entries.end(),
            [](const auto& a, const auto& b) { return a.key() < b.key(); });
  return out;
}

}  // namespace deckhand::proxy
