#include "validation/checks.hpp"

namespace deckhand::api {

using namespace detail;

field_errors validate_event(const json& obj) {
  field_errors errs;
  const json& md = at_or_null(obj, "metadata");
  std::string ns = str_or(md, "namespace");
  if (!obj.contains("involvedObject") || !obj["involvedObject"].is_object()) {
    errs.push_back({"Required value", "involvedObject", ""});
    return errs;
  }
  std::string io_ns = str_or(obj["involvedObject"], "namespace");
  // Kubernetes: an event about a namespaced object lives in its namespace.
  if (!io_ns.empty() && io_ns != ns)
    errs.push_back({"Invalid value", "involvedObject.namespace",
                    json(io_ns).dump() + ": does not match event.namespace"});
  std::string type = str_or(obj, "type");
  if (!type.empty() && type != "Normal" && type != "Warning")
    errs.push_back({"Unsupported value", "type",
                    json(type).dump() + ": supported values: \"Normal\", \"Warning\""});
  for (const auto& m : check_dns1123_subdomain(str_or(md, "name")))
    errs.push_back({"Invalid value", "metadata.name", json(str_or(md, "name")).dump() + ": " + m});
  if (obj.contains("count") && !obj["count"].is_number_integer())
    errs.push_back({"Invalid value", "count", "must be an integer"});
  return errs;
}

}  // namespace deckhand::api
