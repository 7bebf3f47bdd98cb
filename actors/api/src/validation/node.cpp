#include "deckhand/api/defaults.hpp"
#include "validation/checks.hpp"

namespace deckhand::api {

using namespace detail;

field_errors validate_node(const json& node) {
  field_errors errs;
  validate_object_meta(node, false, check_dns1123_subdomain, errs);
  if (node.contains("spec") && !node["spec"].is_null() && !node["spec"].is_object())
    errs.push_back(invalid("spec", node["spec"], "must be an object"));
  if (node.contains("status") && !node["status"].is_null() && !node["status"].is_object())
    errs.push_back(invalid("status", node["status"], "must be an object"));
  return errs;
}

field_errors default_and_validate_node(json& node) {
  default_node(node);
  return validate_node(node);
}

}  // namespace deckhand::api
