#include "deckhand/apiserver/leases.hpp"

#include "deckhand/api/time.hpp"
#include "deckhand/api/validation.hpp"

namespace deckhand::apiserver {

using nlohmann::json;

kind_info lease_kind() {
  kind_info k;
  k.kind = "Lease";
  k.group = "coordination.k8s.io";
  k.resource = "leases";
  k.singular = "lease";
  k.status_subresource = false;
  k.prepare_create = [](json& obj) { return api::default_and_validate_lease(obj); };
  k.prepare_update = [](const json&, json& obj) { return api::default_and_validate_lease(obj); };
  return k;
}

std::string format_micro_time(std::chrono::system_clock::time_point t) {
  return api::format_rfc3339_micro(t);
}

std::optional<std::chrono::system_clock::time_point> parse_micro_time(const std::string& text) {
  // Leases are written in UTC and compared at MicroTime's precision.
  if (text.empty() || text.back() != 'Z')
    return std::nullopt;
  auto t = api::parse_rfc3339(text);
  if (!t)
    return std::nullopt;
  return std::chrono::floor<std::chrono::microseconds>(*t);
}

result<json> renew_node_lease(registry& reg, const std::string& node_name,
                              const std::string& holder, int32_t duration_seconds,
                              std::chrono::system_clock::time_point now) {
  if (node_name.empty())
    return error{errc::invalid, "lease_renew: nodeName: Required value"};
  if (duration_seconds <= 0)
    return error{errc::invalid, "lease_renew: leaseDurationSeconds: must be greater than 0"};
  auto renew = format_micro_time(now);
  // Two tries: a concurrent writer (kubectl) may win the first.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto existing = reg.get("leases", node_lease_namespace, node_name);
    if (!existing && existing.err().code != errc::not_found)
      return existing.err();
    json lease;
    if (existing) {
      lease = *existing;
    } else {
      lease = {{"apiVersion", "coordination.k8s.io/v1"},
               {"kind", "Lease"},
               {"metadata", {{"name", node_name}, {"namespace", node_lease_namespace}}},
               {"spec", json::object()}};
      // Owned by the Node, as the kubelet sets it (garbage collection).
      auto node = reg.get("nodes", "", node_name);
      if (node && (*node)["metadata"].contains("uid"))
        lease["metadata"]["ownerReferences"] = json::array({{{"apiVersion", "v1"},
                                                             {"kind", "Node"},
                                                             {"name", node_name},
                                                             {"uid", (*node)["metadata"]["uid"]}}});
    }
    auto& spec = lease["spec"];
    spec["holderIdentity"] = holder.empty() ? node_name : holder;
    spec["leaseDurationSeconds"] = duration_seconds;
    spec["renewTime"] = renew;
    auto res = existing ? reg.update("leases", node_lease_namespace, node_name, lease)
                        : reg.create("leases", node_lease_namespace, lease);
    if (res || (res.err().code != errc::conflict && res.err().code != errc::already_exists))
      return res;
  }
  return error{errc::conflict, "lease " + node_name + " changed concurrently"};
}

std::optional<std::chrono::system_clock::time_point> lease_expiry(const json& lease) {
  if (!lease.is_object() || !lease.contains("spec") || !lease["spec"].is_object())
    return std::nullopt;
  const auto& spec = lease["spec"];
  if (!spec.contains("renewTime") || !spec["renewTime"].is_string())
    return std::nullopt;
  auto t = parse_micro_time(spec["renewTime"].get<std::string>());
  if (!t)
    return std::nullopt;
  int64_t duration = 0;
  if (spec.contains("leaseDurationSeconds") && spec["leaseDurationSeconds"].is_number_integer())
    duration = spec["leaseDurationSeconds"].get<int64_t>();
  return *t + std::chrono::seconds(duration);
}

bool node_lease_fresh(const registry& reg, const std::string& node_name,
                      std::chrono::system_clock::time_point now) {
  auto lease = reg.get("leases", node_lease_namespace, node_name);
  if (!lease)
    return false;
  auto exp = lease_expiry(*lease);
  return exp && now < *exp;
}

}  // namespace deckhand::apiserver
