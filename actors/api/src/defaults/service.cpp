#include "deckhand/api/defaults.hpp"

#include "validation/checks.hpp"

namespace deckhand::api {

using namespace detail;

void default_service(json& svc) {
  if (!svc.contains("spec") || !svc["spec"].is_object())
    return;
  json& spec = svc["spec"];
  set_default(spec, "type", "ClusterIP");
  set_default(spec, "sessionAffinity", "None");
  if (str_or(spec, "sessionAffinity") == "ClientIP") {
    set_default(spec, "sessionAffinityConfig", json::object());
    json& cfg = spec["sessionAffinityConfig"];
    if (cfg.is_object()) {
      set_default(cfg, "clientIP", json::object());
      if (cfg["clientIP"].is_object())
        set_default(cfg["clientIP"], "timeoutSeconds", 10800);
    }
  }
  std::string type = str_or(spec, "type");
  std::string cluster_ip = str_or(spec, "clusterIP");
  if (type != "ExternalName") {
    set_default(spec, "internalTrafficPolicy", "Cluster");
    if (type == "NodePort" || type == "LoadBalancer")
      set_default(spec, "externalTrafficPolicy", "Cluster");
  }
  if (!cluster_ip.empty()) {
    spec["clusterIPs"] = json::array({cluster_ip});
    if (cluster_ip != "None") {
      set_default(spec, "ipFamilies", json::array({"IPv4"}));
      set_default(spec, "ipFamilyPolicy", "SingleStack");
    }
  }
  if (spec.contains("ports") && spec["ports"].is_array())
    for (json& p : spec["ports"]) {
      if (!p.is_object())
        continue;
      set_default(p, "protocol", "TCP");
      if (p.contains("port") && p["port"].is_number_integer())
        set_default(p, "targetPort", p["port"]);
    }
}

}  // namespace deckhand::api
