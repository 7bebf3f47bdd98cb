#include <map>
#include <set>

#include "deckhand/api/defaults.hpp"
#include "deckhand/api/qos.hpp"
#include "deckhand/api/quantity.hpp"
#include "validation/checks.hpp"

namespace deckhand::api {

using namespace detail;

namespace {

const char* const pod_update_forbidden_msg =
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set "
    "to 1 if it was previously negative)";

void validate_resources(const json& res, const std::string& path, field_errors& errs) {
  if (!res.is_object()) {
    errs.push_back(invalid(path, res, "must be an object"));
    return;
  }
  std::map<std::string, quantity> limits;
  for (const char* which : {"limits", "requests"}) {
    if (!res.contains(which) || res[which].is_null())
      continue;
    if (!res[which].is_object()) {
      errs.push_back(invalid(path + "." + which, res[which], "must be a map of quantities"));
      continue;
    }
    for (const auto& [r, q] : res[which].items()) {
      std::string qpath = path + "." + which + "[" + r + "]";
      std::string text = q.is_string() ? q.get<std::string>() : q.dump();
      auto v = quantity::parse(text);
      if (!v) {
        errs.push_back(invalid(qpath, text,
                               "quantities must match the regular expression "
                               "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"));
        continue;
      }
      if (v->sign() < 0) {
        errs.push_back(invalid(qpath, text, "must be greater than or equal to 0"));
        continue;
      }
      if (std::string(which) == "limits") {
        limits[r] = *v;
      } else if (limits.count(r) && *v > limits[r]) {
        errs.push_back(
            invalid(path + ".requests", text,
                    "must be less than or equal to " + r + " limit of " +
                        (res["limits"][r].is_string() ? res["limits"][r].get<std::string>()
                                                      : res["limits"][r].dump())));
      }
    }
  }
}

void validate_container(const json& c, const std::string& path,
                        const std::set<std::string>& volumes, std::set<std::string>& names,
                        field_errors& errs) {
  if (!c.is_object()) {
    errs.push_back(invalid(path, c, "must be an object"));
    return;
  }
  if (!c.contains("name") || (c["name"].is_string() && c["name"].get<std::string>().empty())) {
    errs.push_back(required(path + ".name"));
  } else {
    check_name(path + ".name", c["name"], check_dns1123_label, errs);
    if (c["name"].is_string() && !names.insert(c["name"].get<std::string>()).second)
      errs.push_back({"Duplicate value", path + ".name", c["name"].dump()});
  }
  if (!c.contains("image") || (c["image"].is_string() && c["image"].get<std::string>().empty()))
    errs.push_back(required(path + ".image"));
  else if (!c["image"].is_string())
    errs.push_back(invalid(path + ".image", c["image"], "must be a string"));
  check_one_of(c, "imagePullPolicy", path + ".imagePullPolicy", {"Always", "IfNotPresent", "Never"},
               errs);
  check_one_of(c, "terminationMessagePolicy", path + ".terminationMessagePolicy",
               {"File", "FallbackToLogsOnError"}, errs);
  if (c.contains("ports")) {
    if (!c["ports"].is_array()) {
      errs.push_back(invalid(path + ".ports", c["ports"], "must be a list"));
    } else {
      for (std::size_t i = 0; i < c["ports"].size(); ++i) {
        const json& p = c["ports"][i];
        std::string pp = path + ".ports[" + std::to_string(i) + "]";
        check_int_range(p, "containerPort", pp + ".containerPort", 1, 65535, true, errs);
        check_int_range(p, "hostPort", pp + ".hostPort", 1, 65535, false, errs);
        check_one_of(p, "protocol", pp + ".protocol", {"SCTP", "TCP", "UDP"}, errs);
      }
    }
  }
  if (c.contains("resources"))
    validate_resources(c["resources"], path + ".resources", errs);
  if (c.contains("volumeMounts") && c["volumeMounts"].is_array()) {
    for (std::size_t i = 0; i < c["volumeMounts"].size(); ++i) {
      const json& m = c["volumeMounts"][i];
      std::string mp = path + ".volumeMounts[" + std::to_string(i) + "]";
      auto name = str_at(m, "name");
      if (!name || name->empty())
        errs.push_back(required(mp + ".name"));
      else if (!volumes.count(*name))
        errs.push_back({"Not found", mp + ".name", quote(*name)});
      auto mount_path = str_at(m, "mountPath");
      if (!mount_path || mount_path->empty())
        errs.push_back(required(mp + ".mountPath"));
    }
  }
}

}  // namespace

field_errors validate_pod(const json& pod) {
  field_errors errs;
  validate_object_meta(pod, true, check_dns1123_subdomain, errs);
  if (!pod.contains("spec") || !pod["spec"].is_object()) {
    errs.push_back(required("spec.containers"));
    return errs;
  }
  const json& spec = pod["spec"];
  std::set<std::string> volumes;
  if (spec.contains("volumes")) {
    if (!spec["volumes"].is_array()) {
      errs.push_back(invalid("spec.volumes", spec["volumes"], "must be a list"));
    } else {
      for (std::size_t i = 0; i < spec["volumes"].size(); ++i) {
        std::string vp = "spec.volumes[" + std::to_string(i) + "].name";
        const json& v = spec["volumes"][i];
        auto name = str_at(v, "name");
        if (!name || name->empty()) {
          errs.push_back(required(vp));
          continue;
        }
        check_name(vp, *name, check_dns1123_label, errs);
        if (!volumes.insert(*name).second)
          errs.push_back({"Duplicate value", vp, quote(*name)});
      }
    }
  }

  std::set<std::string> names;
  if (spec.contains("initContainers") && !spec["initContainers"].is_null()) {
    if (!spec["initContainers"].is_array())
      errs.push_back(invalid("spec.initContainers", spec["initContainers"], "must be a list"));
    else
      for (std::size_t i = 0; i < spec["initContainers"].size(); ++i)
        validate_container(spec["initContainers"][i],
                           "spec.initContainers[" + std::to_string(i) + "]", volumes, names, errs);
  }
  if (!spec.contains("containers") || !spec["containers"].is_array() ||
      spec["containers"].empty()) {
    errs.push_back(required("spec.containers"));
  } else {
    for (std::size_t i = 0; i < spec["containers"].size(); ++i)
      validate_container(spec["containers"][i], "spec.containers[" + std::to_string(i) + "]",
                         volumes, names, errs);
  }
  check_one_of(spec, "restartPolicy", "spec.restartPolicy", {"Always", "OnFailure", "Never"}, errs);
  check_one_of(spec, "dnsPolicy", "spec.dnsPolicy",
               {"ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"}, errs);
  if (!at_or_null(spec, "terminationGracePeriodSeconds").is_number_integer())
    errs.push_back(invalid("spec.terminationGracePeriodSeconds",
                           at_or_null(spec, "terminationGracePeriodSeconds"),
                           "must be an integer"));
  check_int_range(spec, "activeDeadlineSeconds", "spec.activeDeadlineSeconds", 1, 2147483647, false,
                  errs);
  if (spec.contains("nodeName") && !spec["nodeName"].is_null() &&
      !(spec["nodeName"].is_string() && spec["nodeName"].get<std::string>().empty()))
    check_name("spec.nodeName", spec["nodeName"], check_dns1123_subdomain, errs);
  if (spec.contains("nodeSelector") && !spec["nodeSelector"].is_null())
    validate_labels(spec["nodeSelector"], "spec.nodeSelector", errs);
  if (spec.contains("tolerations") && !spec["tolerations"].is_null() &&
      !spec["tolerations"].is_array())
    errs.push_back(invalid("spec.tolerations", spec["tolerations"], "must be a list"));

  return errs;
}

field_errors default_and_validate_pod(json& pod) {
  default_pod(pod);
  field_errors errs = validate_pod(pod);
  if (errs.empty()) {
    json status = json::object();
    status["phase"] = "Pending";
    status["qosClass"] = to_string(pod_qos(pod["spec"]));
    pod["status"] = status;
  }
  return errs;
}

field_errors validate_pod_update(const json& old_pod, json& updated) {
  field_errors errs = default_and_validate_pod(updated);
  if (!errs.empty())
    return errs;
  const json old_spec = old_pod.value("spec", json::object());
  json masked = updated["spec"];
  // Blank out what may change, then any remaining difference is forbidden.
  for (const char* list : {"containers", "initContainers"}) {
    if (!masked.contains(list) || !old_spec.contains(list) || !masked[list].is_array() ||
        !old_spec[list].is_array() || masked[list].size() != old_spec[list].size())
      continue;
    for (std::size_t i = 0; i < masked[list].size(); ++i) {
      if (masked[list][i].contains("image") && old_spec[list][i].contains("image")) {
        masked[list][i]["image"] = old_spec[list][i]["image"];
        // The pull policy default follows the image, so it moves with it.
        if (old_spec[list][i].contains("imagePullPolicy"))
          masked[list][i]["imagePullPolicy"] = old_spec[list][i]["imagePullPolicy"];
      }
    }
  }
  if (masked.contains("activeDeadlineSeconds")) {
    const json& nv = masked["activeDeadlineSeconds"];
    bool ok = !old_spec.contains("activeDeadlineSeconds") ||
              (nv.is_number_integer() && old_spec["activeDeadlineSeconds"].is_number_integer() &&
               nv.get<long long>() <= old_spec["activeDeadlineSeconds"].get<long long>());
    if (!ok)
      errs.push_back(invalid("spec.activeDeadlineSeconds", nv,
                             "must be less than or equal to previous value"));
  }
  if (old_spec.contains("activeDeadlineSeconds"))
    masked["activeDeadlineSeconds"] = old_spec["activeDeadlineSeconds"];
  else
    masked.erase("activeDeadlineSeconds");
  json old_tol = old_spec.value("tolerations", json::array());
  json new_tol = masked.value("tolerations", json::array());
  bool superset = new_tol.is_array();
  for (const auto& t : old_tol)
    superset = superset && std::find(new_tol.begin(), new_tol.end(), t) != new_tol.end();
  if (superset) {
    if (old_spec.contains("tolerations"))
      masked["tolerations"] = old_spec["tolerations"];
    else
      masked.erase("tolerations");
  }
  if (masked != old_spec)
    errs.push_back({"Forbidden", "spec", pod_update_forbidden_msg});
  return errs;
}

}  // namespace deckhand::api
