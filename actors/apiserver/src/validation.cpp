#include "deckhand/apiserver/validation.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>

namespace deckhand::apiserver {

using nlohmann::json;

namespace {

const char* const dns1123_label_msg =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const char* const dns1123_subdomain_msg =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const char* const dns1035_label_msg =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const char* const label_value_msg =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const char* const label_name_msg =
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const char* const pod_update_forbidden_msg =
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set "
    "to 1 if it was previously negative)";

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

bool is_label_shape(const std::string& s) {
  if (s.empty() || !lower_alnum(s.front()) || !lower_alnum(s.back()))
    return false;
  for (char c : s)
    if (!lower_alnum(c) && c != '-')
      return false;
  return true;
}

std::string quote(const std::string& s) { return json(s).dump(); }

field_error required(std::string field, std::string detail = {}) {
  return {"Required value", std::move(field), std::move(detail)};
}

field_error invalid(std::string field, const json& value, const std::string& msg) {
  return {"Invalid value", std::move(field), value.dump() + ": " + msg};
}

field_error unsupported(std::string field, const std::string& value,
                        const std::vector<std::string>& supported) {
  std::string d = quote(value) + ": supported values: ";
  for (std::size_t i = 0; i < supported.size(); ++i)
    d += (i ? ", " : "") + quote(supported[i]);
  return {"Unsupported value", std::move(field), d};
}

/// The string at `key` of `obj`, if it is a string.
std::optional<std::string> str_at(const json& obj, const char* key) {
  if (obj.is_object() && obj.contains(key) && obj[key].is_string())
    return obj[key].get<std::string>();
  return std::nullopt;
}

std::string str_or(const json& obj, const char* key, const std::string& dflt = {}) {
  return str_at(obj, key).value_or(dflt);
}

/// Sets obj[key] = value unless present (and not null).
void set_default(json& obj, const char* key, const json& value) {
  if (!obj.contains(key) || obj[key].is_null())
    obj[key] = value;
}

void check_one_of(const json& obj, const char* key, const std::string& path,
                  const std::vector<std::string>& supported, field_errors& errs) {
  if (!obj.contains(key))
    return;
  const json& v = obj[key];
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  for (const auto& ok : supported)
    if (s == ok)
      return;
  errs.push_back(unsupported(path, s, supported));
}

void check_int_range(const json& obj, const char* key, const std::string& path, long long lo,
                     long long hi, bool is_required, field_errors& errs) {
  if (!obj.contains(key) || obj[key].is_null()) {
    if (is_required)
      errs.push_back(required(path));
    return;
  }
  const json& v = obj[key];
  if (!v.is_number_integer() || v.get<long long>() < lo || v.get<long long>() > hi)
    errs.push_back(invalid(path, v,
                           "must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                               ", inclusive"));
}

void check_name(const std::string& path, const json& v,
                std::vector<std::string> (*check)(const std::string&), field_errors& errs) {
  if (!v.is_string()) {
    errs.push_back(invalid(path, v, "must be a string"));
    return;
  }
  for (const auto& m : check(v.get<std::string>()))
    errs.push_back(invalid(path, v, m));
}

void validate_labels(const json& labels, const std::string& path, field_errors& errs) {
  if (labels.is_null())
    return;
  if (!labels.is_object()) {
    errs.push_back(invalid(path, labels, "must be a map of strings"));
    return;
  }
  for (const auto& [k, v] : labels.items()) {
    std::string name = k;
    if (auto slash = k.find('/'); slash != std::string::npos) {
      std::string prefix = k.substr(0, slash);
      name = k.substr(slash + 1);
      for (const auto& m : check_dns1123_subdomain(prefix))
        errs.push_back(invalid(path, k, "prefix part " + m));
    }
    bool name_ok = !name.empty() && name.size() <= 63 && alnum(name.front()) && alnum(name.back());
    for (char c : name)
      name_ok = name_ok && (alnum(c) || c == '-' || c == '_' || c == '.');
    if (!name_ok)
      errs.push_back(invalid(path, k, label_name_msg));
    if (!v.is_string()) {
      errs.push_back(invalid(path + "[" + k + "]", v, "must be a string"));
      continue;
    }
    std::string s = v.get<std::string>();
    bool ok = s.size() <= 63 && (s.empty() || (alnum(s.front()) && alnum(s.back())));
    for (char c : s)
      ok = ok && (alnum(c) || c == '-' || c == '_' || c == '.');
    if (!ok)
      errs.push_back(invalid(path, s, label_value_msg));
  }
}

/// Always if the image names no tag or the tag "latest", else IfNotPresent
/// (also for digests), as Kubernetes defaults imagePullPolicy.
std::string default_pull_policy(const std::string& image) {
  if (image.find('@') != std::string::npos)
    return "IfNotPresent";
  auto slash = image.rfind('/');
  auto colon = image.rfind(':');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash))
    return "Always";
  return image.substr(colon + 1) == "latest" ? "Always" : "IfNotPresent";
}

void default_container(json& c) {
  if (!c.is_object())
    return;
  if (auto image = str_at(c, "image"))
    set_default(c, "imagePullPolicy", default_pull_policy(*image));
  set_default(c, "terminationMessagePath", "/dev/termination-log");
  set_default(c, "terminationMessagePolicy", "File");
  set_default(c, "resources", json::object());
  json& res = c["resources"];
  // Kubernetes fills a missing request with the limit of the same resource.
  if (res.is_object() && res.contains("limits") && res["limits"].is_object()) {
    for (const auto& [r, q] : res["limits"].items()) {
      if (!res.contains("requests") || !res["requests"].is_object())
        res["requests"] = json::object();
      set_default(res["requests"], r.c_str(), q);
    }
  }
  if (c.contains("ports") && c["ports"].is_array())
    for (auto& p : c["ports"])
      if (p.is_object())
        set_default(p, "protocol", "TCP");
}

void validate_resources(const json& res, const std::string& path, field_errors& errs) {
  if (!res.is_object()) {
    errs.push_back(invalid(path, res, "must be an object"));
    return;
  }
  std::map<std::string, long double> limits;
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
      auto v = parse_quantity(text);
      if (!v) {
        errs.push_back(invalid(qpath, text,
                               "quantities must match the regular expression "
                               "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"));
        continue;
      }
      if (*v < 0) {
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

bool positive_quantity(const json& list, const char* r) {
  if (!list.is_object() || !list.contains(r))
    return false;
  const json& q = list[r];
  auto v = parse_quantity(q.is_string() ? q.get<std::string>() : q.dump());
  return v && *v > 0;
}

std::optional<long double> quantity_at(const json& list, const char* r) {
  if (!list.is_object() || !list.contains(r))
    return std::nullopt;
  const json& q = list[r];
  return parse_quantity(q.is_string() ? q.get<std::string>() : q.dump());
}

bool valid_ipv4(const std::string& s) {
  in_addr a{};
  return ::inet_pton(AF_INET, s.c_str(), &a) == 1;
}

}  // namespace

std::string field_error::to_string() const {
  std::string s = field + ": " + type;
  if (!detail.empty())
    s += ": " + detail;
  return s;
}

std::string invalid_message(const std::string& kind, const std::string& name,
                            const field_errors& errs) {
  std::string s = kind + " " + quote(name) + " is invalid: ";
  if (errs.size() == 1)
    return s + errs[0].to_string();
  s += "[";
  for (std::size_t i = 0; i < errs.size(); ++i)
    s += (i ? ", " : "") + errs[i].to_string();
  return s + "]";
}

std::vector<std::string> check_dns1123_label(const std::string& s) {
  std::vector<std::string> out;
  if (s.size() > 63)
    out.push_back("must be no more than 63 characters");
  if (!is_label_shape(s))
    out.push_back(dns1123_label_msg);
  return out;
}

std::vector<std::string> check_dns1123_subdomain(const std::string& s) {
  std::vector<std::string> out;
  if (s.size() > 253)
    out.push_back("must be no more than 253 characters");
  bool ok = !s.empty();
  std::size_t start = 0;
  while (ok) {
    auto dot = s.find('.', start);
    ok =
        is_label_shape(s.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos)
      break;
    start = dot + 1;
  }
  if (!ok)
    out.push_back(dns1123_subdomain_msg);
  return out;
}

std::vector<std::string> check_dns1035_label(const std::string& s) {
  std::vector<std::string> out;
  if (s.size() > 63)
    out.push_back("must be no more than 63 characters");
  if (!is_label_shape(s) || !(s.front() >= 'a' && s.front() <= 'z'))
    out.push_back(dns1035_label_msg);
  return out;
}

std::optional<long double> parse_quantity(const std::string& s) {
  if (s.empty() || s.size() > 64)
    return std::nullopt;
  std::size_t i = 0;
  if (s[i] == '+' || s[i] == '-')
    ++i;
  bool digits = false, dot = false;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) {
    if (s[i] == '.') {
      if (dot)
        return std::nullopt;
      dot = true;
    } else {
      digits = true;
    }
    ++i;
  }
  if (!digits)
    return std::nullopt;
  long double v = std::stold(s.substr(0, i));
  std::string suffix = s.substr(i);
  static const std::map<std::string, long double> mult = {{"", 1.0L},
                                                          {"n", 1e-9L},
                                                          {"u", 1e-6L},
                                                          {"m", 1e-3L},
                                                          {"k", 1e3L},
                                                          {"M", 1e6L},
                                                          {"G", 1e9L},
                                                          {"T", 1e12L},
                                                          {"P", 1e15L},
                                                          {"E", 1e18L},
                                                          {"Ki", 1024.0L},
                                                          {"Mi", 1048576.0L},
                                                          {"Gi", 1073741824.0L},
                                                          {"Ti", 1099511627776.0L},
                                                          {"Pi", 1125899906842624.0L},
                                                          {"Ei", 1152921504606846976.0L}};
  // Whole thousandths, so that "0.5" and "500m" compare equal despite binary
  // floating point; anything positive below 1m counts as 1m, as Kubernetes'
  // MilliValue rounds up.
  auto milli = [](long double x) {
    long double r = std::roundl(x);
    return r == 0 && x > 0 ? 1.0L : r;
  };
  if (auto it = mult.find(suffix); it != mult.end())
    return milli(v * it->second * 1000.0L);
  if (suffix.size() >= 2 && (suffix[0] == 'e' || suffix[0] == 'E')) {
    std::size_t j = 1;
    if (suffix[j] == '+' || suffix[j] == '-')
      ++j;
    if (j >= suffix.size())
      return std::nullopt;
    for (std::size_t k = j; k < suffix.size(); ++k)
      if (!std::isdigit(static_cast<unsigned char>(suffix[k])))
        return std::nullopt;
    int exp = std::stoi(suffix.substr(1));
    if (exp > 18 || exp < -9)
      return std::nullopt;
    return milli(v * std::pow(10.0L, exp) * 1000.0L);
  }
  return std::nullopt;
}

void validate_object_meta(const json& obj, bool namespaced,
                          std::vector<std::string> (*name_check)(const std::string&),
                          field_errors& errs) {
  if (!obj.contains("metadata") || !obj["metadata"].is_object()) {
    errs.push_back(required("metadata.name", "name or generateName is required"));
    return;
  }
  const json& md = obj["metadata"];
  if (!md.contains("name") || (md["name"].is_string() && md["name"].get<std::string>().empty()))
    errs.push_back(required("metadata.name", "name or generateName is required"));
  else
    check_name("metadata.name", md["name"], name_check, errs);
  if (namespaced) {
    if (!md.contains("namespace") || !md["namespace"].is_string() ||
        md["namespace"].get<std::string>().empty())
      errs.push_back(required("metadata.namespace"));
    else
      check_name("metadata.namespace", md["namespace"], check_dns1123_label, errs);
  }
  if (md.contains("labels"))
    validate_labels(md["labels"], "metadata.labels", errs);
  if (md.contains("annotations") && !md["annotations"].is_null()) {
    if (!md["annotations"].is_object())
      errs.push_back(
          invalid("metadata.annotations", md["annotations"], "must be a map of strings"));
    else
      for (const auto& [k, v] : md["annotations"].items())
        if (!v.is_string())
          errs.push_back(invalid("metadata.annotations[" + k + "]", v, "must be a string"));
  }
}

std::string pod_qos_class(const json& spec) {
  bool any = false;
  bool guaranteed = true;
  for (const char* list : {"initContainers", "containers"}) {
    if (!spec.contains(list) || !spec[list].is_array())
      continue;
    for (const auto& c : spec[list]) {
      json requests = json::object(), limits = json::object();
      if (c.is_object() && c.contains("resources") && c["resources"].is_object()) {
        requests = c["resources"].value("requests", json::object());
        limits = c["resources"].value("limits", json::object());
      }
      for (const char* r : {"cpu", "memory"}) {
        bool has_req = positive_quantity(requests, r);
        bool has_lim = positive_quantity(limits, r);
        any = any || has_req || has_lim;
        if (!has_lim) {
          guaranteed = false;
        } else if (has_req) {
          if (quantity_at(requests, r) != quantity_at(limits, r))
            guaranteed = false;
        }
      }
    }
  }
  if (!any)
    return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

field_errors default_and_validate_pod(json& pod) {
  field_errors errs;
  validate_object_meta(pod, true, check_dns1123_subdomain, errs);
  if (!pod.contains("spec") || !pod["spec"].is_object()) {
    errs.push_back(required("spec.containers"));
    return errs;
  }
  json& spec = pod["spec"];
  set_default(spec, "restartPolicy", "Always");
  set_default(spec, "terminationGracePeriodSeconds", 30);
  set_default(spec, "dnsPolicy", "ClusterFirst");
  set_default(spec, "schedulerName", "default-scheduler");
  set_default(spec, "securityContext", json::object());
  set_default(spec, "enableServiceLinks", true);
  set_default(spec, "preemptionPolicy", "PreemptLowerPriority");
  set_default(spec, "priority", 0);
  for (const char* list : {"initContainers", "containers"})
    if (spec.contains(list) && spec[list].is_array())
      for (auto& c : spec[list])
        default_container(c);

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
  if (!spec["terminationGracePeriodSeconds"].is_number_integer())
    errs.push_back(invalid("spec.terminationGracePeriodSeconds",
                           spec["terminationGracePeriodSeconds"], "must be an integer"));
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

  if (errs.empty()) {
    json status = json::object();
    status["phase"] = "Pending";
    status["qosClass"] = pod_qos_class(spec);
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

field_errors default_and_validate_service(json& svc) {
  field_errors errs;
  validate_object_meta(svc, true, check_dns1035_label, errs);
  if (!svc.contains("spec") || !svc["spec"].is_object()) {
    errs.push_back(required("spec.ports"));
    return errs;
  }
  json& spec = svc["spec"];
  set_default(spec, "type", "ClusterIP");
  set_default(spec, "sessionAffinity", "None");
  check_one_of(spec, "type", "spec.type", {"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"},
               errs);
  check_one_of(spec, "sessionAffinity", "spec.sessionAffinity", {"ClientIP", "None"}, errs);
  if (str_or(spec, "sessionAffinity") == "ClientIP") {
    set_default(spec, "sessionAffinityConfig", json::object());
    json& cfg = spec["sessionAffinityConfig"];
    if (!cfg.is_object()) {
      errs.push_back(invalid("spec.sessionAffinityConfig", cfg, "must be an object"));
    } else {
      set_default(cfg, "clientIP", json::object());
      if (!cfg["clientIP"].is_object()) {
        errs.push_back(
            invalid("spec.sessionAffinityConfig.clientIP", cfg["clientIP"], "must be an object"));
      } else {
        set_default(cfg["clientIP"], "timeoutSeconds", 10800);
        const json& t = cfg["clientIP"]["timeoutSeconds"];
        if (!t.is_number_integer() || t.get<long long>() <= 0 || t.get<long long>() > 86400)
          errs.push_back(invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", t,
                                 "must be greater than 0 and less than 86400"));
      }
    }
  } else if (spec.contains("sessionAffinityConfig") && !spec["sessionAffinityConfig"].is_null()) {
    errs.push_back({"Forbidden", "spec.sessionAffinityConfig",
                    "must not be set when `sessionAffinity` is None"});
  }
  std::string type = str_or(spec, "type");
  std::string cluster_ip = str_or(spec, "clusterIP");
  if (type != "ExternalName") {
    set_default(spec, "internalTrafficPolicy", "Cluster");
    if (type == "NodePort" || type == "LoadBalancer")
      set_default(spec, "externalTrafficPolicy", "Cluster");
  }
  if (spec.contains("clusterIP") && !spec["clusterIP"].is_null() && !spec["clusterIP"].is_string())
    errs.push_back(invalid("spec.clusterIP", spec["clusterIP"], "must be a string"));
  if (!cluster_ip.empty() && cluster_ip != "None" && !valid_ipv4(cluster_ip))
    errs.push_back(invalid("spec.clusterIPs[0]", cluster_ip, "must be a valid IP address"));
  if (!cluster_ip.empty()) {
    spec["clusterIPs"] = json::array({cluster_ip});
    if (cluster_ip != "None") {
      set_default(spec, "ipFamilies", json::array({"IPv4"}));
      set_default(spec, "ipFamilyPolicy", "SingleStack");
    }
  }
  bool headless = cluster_ip == "None";
  if (!spec.contains("ports") || spec["ports"].is_null() ||
      (spec["ports"].is_array() && spec["ports"].empty())) {
    if (!headless && type != "ExternalName")
      errs.push_back(required("spec.ports"));
  } else if (!spec["ports"].is_array()) {
    errs.push_back(invalid("spec.ports", spec["ports"], "must be a list"));
  } else {
    std::set<std::string> names;
    json& ports = spec["ports"];
    for (std::size_t i = 0; i < ports.size(); ++i) {
      json& p = ports[i];
      std::string pp = "spec.ports[" + std::to_string(i) + "]";
      if (!p.is_object()) {
        errs.push_back(invalid(pp, p, "must be an object"));
        continue;
      }
      set_default(p, "protocol", "TCP");
      check_one_of(p, "protocol", pp + ".protocol", {"SCTP", "TCP", "UDP"}, errs);
      check_int_range(p, "port", pp + ".port", 1, 65535, true, errs);
      if (p.contains("port") && p["port"].is_number_integer())
        set_default(p, "targetPort", p["port"]);
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

namespace {

bool valid_ipv6(const std::string& s) {
  in6_addr a{};
  return ::inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

void validate_endpoint_port(json& p, const std::string& path, bool name_required,
                            std::set<std::string>& names, bool port_required, field_errors& errs) {
  if (!p.is_object()) {
    errs.push_back(invalid(path, p, "must be an object"));
    return;
  }
  set_default(p, "protocol", "TCP");
  check_one_of(p, "protocol", path + ".protocol", {"SCTP", "TCP", "UDP"}, errs);
  check_int_range(p, "port", path + ".port", 1, 65535, port_required, errs);
  auto name = str_at(p, "name");
  if (name_required && (!name || name->empty())) {
    errs.push_back(required(path + ".name"));
  } else if (name && !name->empty()) {
    check_name(path + ".name", *name, check_dns1123_label, errs);
    if (!names.insert(*name).second)
      errs.push_back({"Duplicate value", path + ".name", quote(*name)});
  }
}

}  // namespace

field_errors default_and_validate_endpoints(json& ep) {
  field_errors errs;
  validate_object_meta(ep, true, check_dns1123_subdomain, errs);
  if (!ep.contains("subsets") || ep["subsets"].is_null())
    return errs;
  if (!ep["subsets"].is_array()) {
    errs.push_back(invalid("subsets", ep["subsets"], "must be a list"));
    return errs;
  }
  json& subsets = ep["subsets"];
  for (std::size_t i = 0; i < subsets.size(); ++i) {
    json& ss = subsets[i];
    std::string sp = "subsets[" + std::to_string(i) + "]";
    if (!ss.is_object()) {
      errs.push_back(invalid(sp, ss, "must be an object"));
      continue;
    }
    bool any = false;
    for (const char* list : {"addresses", "notReadyAddresses"}) {
      if (!ss.contains(list) || ss[list].is_null())
        continue;
      if (!ss[list].is_array()) {
        errs.push_back(invalid(sp + "." + list, ss[list], "must be a list"));
        continue;
      }
      for (std::size_t j = 0; j < ss[list].size(); ++j) {
        const json& a = ss[list][j];
        std::string ap = sp + "." + list + "[" + std::to_string(j) + "]";
        any = true;
        std::string ip = str_or(a, "ip");
        if (ip.empty())
          errs.push_back(required(ap + ".ip"));
        else if (!valid_ipv4(ip) && !valid_ipv6(ip))
          errs.push_back(invalid(ap + ".ip", ip, "must be a valid IP address"));
      }
    }
    if (!any)
      errs.push_back(required(sp, "must specify `addresses` or `notReadyAddresses`"));
    if (ss.contains("ports") && !ss["ports"].is_null()) {
      if (!ss["ports"].is_array()) {
        errs.push_back(invalid(sp + ".ports", ss["ports"], "must be a list"));
        continue;
      }
      std::set<std::string> names;
      for (std::size_t j = 0; j < ss["ports"].size(); ++j)
        validate_endpoint_port(ss["ports"][j], sp + ".ports[" + std::to_string(j) + "]",
                               ss["ports"].size() > 1, names, true, errs);
    }
  }
  return errs;
}

field_errors default_and_validate_endpoint_slice(json& slice) {
  field_errors errs;
  validate_object_meta(slice, true, check_dns1123_subdomain, errs);
  std::string type = str_or(slice, "addressType");
  if (type.empty())
    errs.push_back(required("addressType"));
  else
    check_one_of(slice, "addressType", "addressType", {"FQDN", "IPv4", "IPv6"}, errs);
  if (slice.contains("endpoints") && !slice["endpoints"].is_null()) {
    json& eps = slice["endpoints"];
    if (!eps.is_array()) {
      errs.push_back(invalid("endpoints", eps, "must be a list"));
    } else {
      if (eps.size() > 1000)
        errs.push_back({"Too many", "endpoints",
                        std::to_string(eps.size()) + ": must have at most 1000 items"});
      for (std::size_t i = 0; i < eps.size(); ++i) {
        const json& e = eps[i];
        std::string ep = "endpoints[" + std::to_string(i) + "]";
        if (!e.is_object()) {
          errs.push_back(invalid(ep, e, "must be an object"));
          continue;
        }
        if (!e.contains("addresses") || !e["addresses"].is_array() || e["addresses"].empty()) {
          errs.push_back(required(ep + ".addresses"));
          continue;
        }
        if (e["addresses"].size() > 100)
          errs.push_back({"Too many", ep + ".addresses", "must have at most 100 items"});
        for (std::size_t j = 0; j < e["addresses"].size(); ++j) {
          const json& a = e["addresses"][j];
          std::string ap = ep + ".addresses[" + std::to_string(j) + "]";
          std::string s = a.is_string() ? a.get<std::string>() : std::string{};
          if ((type == "IPv4" && !valid_ipv4(s)) || (type == "IPv6" && !valid_ipv6(s)))
            errs.push_back(invalid(ap, a, "must be a valid IP address"));
          else if (type == "FQDN" && check_dns1123_subdomain(s).size())
            errs.push_back(invalid(ap, a, "must be a valid DNS subdomain"));
        }
        if (e.contains("conditions") && !e["conditions"].is_null() && !e["conditions"].is_object())
          errs.push_back(invalid(ep + ".conditions", e["conditions"], "must be an object"));
      }
    }
  }
  if (slice.contains("ports") && !slice["ports"].is_null()) {
    json& ports = slice["ports"];
    if (!ports.is_array()) {
      errs.push_back(invalid("ports", ports, "must be a list"));
    } else {
      std::set<std::string> names;
      for (std::size_t i = 0; i < ports.size(); ++i)
        validate_endpoint_port(ports[i], "ports[" + std::to_string(i) + "]", false, names, false,
                               errs);
    }
  }
  return errs;
}

field_errors validate_endpoint_slice_update(const json& old_slice, json& updated) {
  field_errors errs = default_and_validate_endpoint_slice(updated);
  if (old_slice.value("addressType", json()) != updated.value("addressType", json()))
    errs.push_back(
        invalid("addressType", updated.value("addressType", json()), "field is immutable"));
  return errs;
}

field_errors default_and_validate_node(json& node) {
  field_errors errs;
  validate_object_meta(node, false, check_dns1123_subdomain, errs);
  if (node.contains("spec") && !node["spec"].is_null() && !node["spec"].is_object())
    errs.push_back(invalid("spec", node["spec"], "must be an object"));
  set_default(node, "spec", json::object());
  if (node.contains("status") && !node["status"].is_null() && !node["status"].is_object())
    errs.push_back(invalid("status", node["status"], "must be an object"));
  return errs;
}

}  // namespace deckhand::apiserver
