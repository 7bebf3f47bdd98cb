#include "deckhand/api/defaults.hpp"

#include "validation/checks.hpp"

namespace deckhand::api {

using namespace detail;

namespace {

void default_ports(json& ports) {
  if (!ports.is_array())
    return;
  for (json& p : ports)
    if (p.is_object())
      set_default(p, "protocol", "TCP");
}

}  // namespace

void default_endpoints(json& ep) {
  if (!ep.contains("subsets") || !ep["subsets"].is_array())
    return;
  for (json& ss : ep["subsets"])
    if (ss.is_object() && ss.contains("ports"))
      default_ports(ss["ports"]);
}

void default_endpoint_slice(json& slice) {
  if (slice.is_object() && slice.contains("ports"))
    default_ports(slice["ports"]);
}

}  // namespace deckhand::api
