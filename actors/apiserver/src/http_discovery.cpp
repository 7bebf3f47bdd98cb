/// API discovery: /api, /apis and each group's resource list, from the kinds
/// the registry serves.

#include "http_api_impl.hpp"

namespace deckhand::apiserver {

using namespace http_detail;

const kind_info* http_api::impl::find_resource(const std::string& group,
                                               const std::string& resource) const {
  for (const auto& k : reg.kinds())
    if (k.group == group && k.resource == resource)
      return &k;
  return nullptr;
}

std::map<std::string, std::string> http_api::impl::groups() const {
  std::map<std::string, std::string> out;
  for (const auto& k : reg.kinds())
    if (!k.group.empty())
      out.emplace(k.group, k.version);
  return out;
}

void http_api::impl::discovery_group(const std::string& group, const std::string& version,
                                     httplib::Response& res) {
  json resources = json::array();
  for (const auto& k : reg.kinds()) {
    if (k.group != group || k.version != version)
      continue;
    json r = {
        {"name", k.resource},
        {"singularName", k.singular},
        {"namespaced", k.namespaced},
        {"kind", k.kind},
        {"verbs", json::array({"create", "delete", "get", "list", "patch", "update", "watch"})}};
    if (!k.short_names.empty())
      r["shortNames"] = k.short_names;
    resources.push_back(std::move(r));
  }
  if (resources.empty())
    return send_not_found_path(res);
  send_json(res, 200,
            {{"kind", "APIResourceList"},
             {"apiVersion", "v1"},
             {"groupVersion", group + "/" + version},
             {"resources", resources}});
}

void http_api::impl::discovery_v1(httplib::Response& res) {
  json resources = json::array();
  for (const auto& k : reg.kinds()) {
    if (!k.group.empty())
      continue;
    resources.push_back(
        {{"name", k.resource},
         {"singularName", k.singular},
         {"namespaced", k.namespaced},
         {"kind", k.kind},
         {"verbs", json::array({"create", "delete", "get", "list", "patch", "update", "watch"})},
         {"shortNames", k.short_names}});
    if (k.status_subresource)
      resources.push_back({{"name", k.resource + "/status"},
                           {"singularName", ""},
                           {"namespaced", k.namespaced},
                           {"kind", k.kind},
                           {"verbs", json::array({"get", "update"})}});
    if (k.kind == "Pod")
      resources.push_back({{"name", "pods/binding"},
                           {"singularName", ""},
                           {"namespaced", true},
                           {"kind", "Binding"},
                           {"verbs", json::array({"create"})}});
  }
  resources.push_back({{"name", "namespaces"},
                       {"singularName", "namespace"},
                       {"namespaced", false},
                       {"kind", "Namespace"},
                       {"verbs", json::array({"get", "list"})},
                       {"shortNames", json::array({"ns"})}});
  send_json(res, 200,
            {{"kind", "APIResourceList"}, {"groupVersion", "v1"}, {"resources", resources}});
}

}  // namespace deckhand::apiserver
