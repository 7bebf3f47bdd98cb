#include <set>

#include "deckhand/api/defaults.hpp"
#include "validation/checks.hpp"

namespace deckhand::api {

using namespace detail;

field_errors validate_endpoints(const json& ep) {
  field_errors errs;
  validate_object_meta(ep, true, check_dns1123_subdomain, errs);
  if (!ep.contains("subsets") || ep["subsets"].is_null())
    return errs;
  if (!ep["subsets"].is_array()) {
    errs.push_back(invalid("subsets", ep["subsets"], "must be a list"));
    return errs;
  }
  const json& subsets = ep["subsets"];
  for (std::size_t i = 0; i < subsets.size(); ++i) {
    const json& ss = subsets[i];
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

field_errors default_and_validate_endpoints(json& ep) {
  default_endpoints(ep);
  return validate_endpoints(ep);
}

}  // namespace deckhand::api
