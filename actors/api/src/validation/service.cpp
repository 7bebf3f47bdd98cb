#include <set>

#include "deckhand/api/defaults.hpp"
#include "validation/checks.hpp"

namespace deckhand::api {

using namespace detail;

field_errors validate_service(const json& svc) {
  field_errors errs;
  validate_object_meta(svc, true, check_dns1035_label, errs);
  if (!svc.contains("spec") || !svc["spec"].is_object()) {
    errs.push_back(required("spec.ports"));
    return errs;
  }
  const json& spec = svc["spec"];
  check_one_of(spec, "type", "spec.type", {"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"},
               errs);
  check_one_of(spec, "sessionAffinity", "spec.sessionAffinity", {"ClientIP", "None"}, errs);
  if (str_or(spec, "sessionAffinity") == "ClientIP") {
    const json& cfg = at_or_null(spec, "sessionAffinityConfig");
    if (!cfg.is_object()) {
      errs.push_back(invalid("spec.sessionAffinityConfig", cfg, "must be an object"));
    } else if (!at_or_null(cfg, "clientIP").is_object()) {
      errs.push_back(invalid("spec.sessionAffinityConfig.clientIP", at_or_null(cfg, "clientIP"),
                             "must be an object"));
    } else {
      const json& t = at_or_null(cfg["clientIP"], "timeoutSeconds");
      if (!t.is_number_integer() || t.get<long long>() <= 0 || t.get<long long>() > 86400)
        errs.push_back(invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", t,
                               "must be greater than 0 and less than 86400"));
    }
  } else if (spec.contains("sessionAffinityConfig") && !spec["sessionAffinityConfig"].is_null()) {
    errs.push_back({"Forbidden", "spec.sessionAffinityConfig",
                    "must not be set when `sessionAffinity` is None"});
  }
  std::string type = str_or(spec, "type");
  std::string cluster_ip = str_or(spec, "clusterIP");
  if (spec.contains("clusterIP") && !spec["clusterIP"].is_null() && !spec["clusterIP"].is_string())
    errs.push_back(invalid("spec.clusterIP", spec["clusterIP"], "must be a string"));
  if (!cluster_ip.empty() && cluster_ip != "None" && !valid_ipv4(cluster_ip))
    errs.push_back(invalid("spec.clusterIPs[0]", cluster_ip, "must be a valid IP address"));
  bool headless = cluster_ip == "None";
  if (!spec.contains("ports") || spec["ports"].is_null() ||
      (spec["ports"].is_array() && spec["ports"].empty())) {
    if (!headless && type != "ExternalName")
      errs.push_back(required("spec.ports"));
  } else if (!spec["ports"].is_array()) {
    errs.push_back(invalid("spec.ports", spec["ports"], "must be a list"));
  } else {
    std::set<std::string> names;
    const json& ports = spec["ports"];
    for (std::size_t i = 0; i < ports.size(); ++i) {
      const json& p = ports[i];
      std::string pp = "spec.ports[" + std::to_string(i) + "]";
      if (!p.is_object()) {
        errs.push_back(invalid(pp, p, "must be an object"));
        continue;
      }
      check_one_of(p, "protocol", pp + ".protocol", {"SCTP", "TCP", "UDP"}, errs);
      check_int_range(p, "port", pp + ".port", 1, 65535, true, errs);
      if (p.contains("targetPort") && p["targetPort"].is_number_integer())
        check_int_range(p, "targetPort", pp + ".targetPort", 1, 65535, false, errs);
      if (p.contains("nodePort") && !p["nodePort"].is_null()) {
        if (type != "NodePort" && type != "LoadBalancer")
          errs.push_back(
              {"Forbidden", pp + ".nodePort", "may not be used when `type` is '" + type + "'"});
        else  // the configured range is the allocator's to check
          check_int_range(p, "nodePort", pp + ".nodePort", 1, 65535, false, errs);
      }
      auto name = str_at(p, "name");
      if (ports.size() > 1 && (!name || name->empty())) {
        errs.push_back(required(pp + ".name"));
      } else if (name && !name->empty()) {
        check_name(pp + ".name", *name, check_dns1123_label, errs);
        if (!names.insert(*name).second)
          errs.push_back({"Duplicate value", pp + ".name", quote(*name)});
      }
    }
  }
  if (spec.contains("selector") && !spec["selector"].is_null())
    validate_labels(spec["selector"], "spec.selector", errs);
  if (spec.contains("externalTrafficPolicy") && !spec["externalTrafficPolicy"].is_null()) {
    if (type != "NodePort" && type != "LoadBalancer")
      errs.push_back(invalid("spec.externalTrafficPolicy", spec["externalTrafficPolicy"],
                             "may only be set when `type` is 'NodePort' or 'LoadBalancer'"));
    else
      check_one_of(spec, "externalTrafficPolicy", "spec.externalTrafficPolicy",
                   {"Cluster", "Local"}, errs);
  }
  return errs;
}

field_errors default_and_validate_service(json& svc) {
  default_service(svc);
  field_errors errs = validate_service(svc);
  // Status is the controllers' to write; a new or updated spec starts from none.
  if (errs.empty())
    svc["status"] = {{"loadBalancer", json::object()}};
  return errs;
}

field_errors validate_service_update(const json& old_svc, json& updated) {
  const json old_spec = old_svc.value("spec", json::object());
  std::string old_ip = str_or(old_spec, "clusterIP");
  if (updated.contains("spec") && updated["spec"].is_object() && !old_ip.empty()) {
    // An update that leaves clusterIP out keeps the allocated one, as in Kubernetes.
    json& spec = updated["spec"];
    if (str_or(spec, "clusterIP").empty()) {
      spec["clusterIP"] = old_ip;
      spec.erase("clusterIPs");
    }
  }
  if (updated.contains("spec") && updated["spec"].is_object()) {
    // Fields that only made sense for the old type or affinity, carried over
    // unchanged (kubectl apply keeps what its last manifest did not name), are
    // dropped, as Kubernetes' dropTypeDependentFields does.
    json& spec = updated["spec"];
    auto node_port_type = [](const std::string& t) {
      return t == "NodePort" || t == "LoadBalancer";
    };
    std::string new_type = str_or(spec, "type", "ClusterIP");
    if (node_port_type(str_or(old_spec, "type")) && !node_port_type(new_type)) {
      if (spec.contains("ports") && spec["ports"].is_array() && old_spec.contains("ports") &&
          old_spec["ports"].is_array())
        for (auto& p : spec["ports"]) {
          if (!p.is_object() || !p.contains("nodePort"))
            continue;
          for (const auto& op : old_spec["ports"])
            if (op.is_object() && op.value("nodePort", json()) == p["nodePort"]) {
              p.erase("nodePort");
              break;
            }
        }
      if (spec.value("externalTrafficPolicy", json()) ==
          old_spec.value("externalTrafficPolicy", json()))
        spec.erase("externalTrafficPolicy");
    }
    if (str_or(spec, "sessionAffinity", "None") == "None" &&
        spec.contains("sessionAffinityConfig") &&
        spec["sessionAffinityConfig"] == old_spec.value("sessionAffinityConfig", json()))
      spec.erase("sessionAffinityConfig");
  }
  field_errors errs = default_and_validate_service(updated);
  if (!errs.empty())
    return errs;
  std::string new_ip = str_or(updated["spec"], "clusterIP");
  if (!old_ip.empty() && new_ip != old_ip)
    errs.push_back(invalid("spec.clusterIPs[0]", new_ip, "may not change once set"));
  return errs;
}

}  // namespace deckhand::api
