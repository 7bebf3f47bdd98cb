#include "deckhand/api/defaults.hpp"
#include "deckhand/api/time.hpp"
#include "validation/checks.hpp"

namespace deckhand::api {

using namespace detail;

field_errors validate_lease(const json& obj) {
  field_errors errs;
  auto name = str_or(at_or_null(obj, "metadata"), "name");
  for (const auto& m : check_dns1123_subdomain(name))
    errs.push_back({"Invalid value", "metadata.name", json(name).dump() + ": " + m});
  const json& spec = at_or_null(obj, "spec");
  if (!spec.is_object()) {
    errs.push_back({"Invalid value", "spec", "must be an object"});
    return errs;
  }
  if (spec.contains("leaseDurationSeconds")) {
    const auto& d = spec["leaseDurationSeconds"];
    if (!d.is_number_integer() || d.get<int64_t>() <= 0)
      errs.push_back(
          {"Invalid value", "spec.leaseDurationSeconds", d.dump() + ": must be greater than 0"});
  }
  if (spec.contains("leaseTransitions")) {
    const auto& t = spec["leaseTransitions"];
    if (!t.is_number_integer() || t.get<int64_t>() < 0)
      errs.push_back({"Invalid value", "spec.leaseTransitions",
                      t.dump() + ": must be greater than or equal to 0"});
  }
  for (const char* f : {"renewTime", "acquireTime"})
    if (spec.contains(f) && (!spec[f].is_string() || !parse_rfc3339(spec[f].get<std::string>())))
      errs.push_back(
          {"Invalid value", std::string("spec.") + f, spec[f].dump() + ": not an RFC 3339 time"});
  if (spec.contains("holderIdentity") && !spec["holderIdentity"].is_string())
    errs.push_back({"Invalid value", "spec.holderIdentity", "must be a string"});
  return errs;
}

field_errors default_and_validate_lease(json& lease) {
  default_lease(lease);
  return validate_lease(lease);
}

}  // namespace deckhand::api
