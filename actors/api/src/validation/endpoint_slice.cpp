#include <set>

#include "deckhand/api/defaults.hpp"
#include "validation/checks.hpp"

namespace deckhand::api {

using namespace detail;

field_errors validate_endpoint_slice(const json& slice) {
  field_errors errs;
  validate_object_meta(slice, true, check_dns1123_subdomain, errs);
  std::string type = str_or(slice, "addressType");
  if (type.empty())
    errs.push_back(required("addressType"));
  else
    check_one_of(slice, "addressType", "addressType", {"FQDN", "IPv4", "IPv6"}, errs);
  if (slice.contains("endpoints") && !slice["endpoints"].is_null()) {
    const json& eps = slice["endpoints"];
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
    const json& ports = slice["ports"];
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

field_errors default_and_validate_endpoint_slice(json& slice) {
  default_endpoint_slice(slice);
  return validate_endpoint_slice(slice);
}

field_errors validate_endpoint_slice_update(const json& old_slice, json& updated) {
  field_errors errs = default_and_validate_endpoint_slice(updated);
  if (old_slice.value("addressType", json()) != updated.value("addressType", json()))
    errs.push_back(
        invalid("addressType", updated.value("addressType", json()), "field is immutable"));
  return errs;
}

}  // namespace deckhand::api
