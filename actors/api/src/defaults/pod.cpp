#include "deckhand/api/defaults.hpp"

#include "validation/checks.hpp"

namespace deckhand::api {

using namespace detail;

namespace {

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

}  // namespace

std::string default_pull_policy(const std::string& image) {
  if (image.find('@') != std::string::npos)
    return "IfNotPresent";
  auto slash = image.rfind('/');
  auto colon = image.rfind(':');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash))
    return "Always";
  return image.substr(colon + 1) == "latest" ? "Always" : "IfNotPresent";
}

void default_pod(json& pod) {
  if (!pod.contains("spec") || !pod["spec"].is_object())
    return;
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
}

}  // namespace deckhand::api
