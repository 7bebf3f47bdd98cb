#include "deckhand/api/qos.hpp"

#include <optional>
#include <set>

#include "deckhand/api/quantity.hpp"

namespace deckhand::api {

namespace {

/// The positive amount `text` stands for, if any.
std::optional<quantity> positive(const std::string& text) {
  auto q = quantity::parse(text);
  if (!q || q->sign() <= 0)
    return std::nullopt;
  return *q;
}

std::map<std::string, std::string> string_map(const nlohmann::json& j) {
  std::map<std::string, std::string> out;
  if (!j.is_object())
    return out;
  for (const auto& [k, v] : j.items())
    out[k] = v.is_string() ? v.get<std::string>() : v.dump();
  return out;
}

}  // namespace

const char* to_string(qos_class c) {
  switch (c) {
  case qos_class::best_effort: return "BestEffort";
  case qos_class::burstable: return "Burstable";
  case qos_class::guaranteed: return "Guaranteed";
  }
  return "BestEffort";
}

qos_class pod_qos(const std::vector<container_resources>& containers) {
  std::map<std::string, quantity> requests, limits;
  bool guaranteed = true;
  for (const auto& c : containers) {
    std::set<std::string> limited;
    for (const char* res : {"cpu", "memory"}) {
      auto lim = c.limits.find(res);
      auto req = c.requests.find(res);
      const std::string* req_text = req != c.requests.end() ? &req->second
                                    : lim != c.limits.end() ? &lim->second
                                                            : nullptr;
      if (req_text)
        if (auto q = positive(*req_text))
          requests[res] += *q;
      if (lim != c.limits.end())
        if (auto q = positive(lim->second)) {
          limits[res] += *q;
          limited.insert(res);
        }
    }
    if (limited.size() != 2)
      guaranteed = false;
  }
  if (requests.empty() && limits.empty())
    return qos_class::best_effort;
  if (guaranteed)
    for (const auto& [res, amount] : requests) {
      auto lim = limits.find(res);
      if (lim == limits.end() || lim->second != amount) {
        guaranteed = false;
        break;
      }
    }
  return guaranteed && requests.size() == limits.size() ? qos_class::guaranteed
                                                        : qos_class::burstable;
}

qos_class pod_qos(const nlohmann::json& spec) {
  std::vector<container_resources> all;
  for (const char* list : {"containers", "initContainers"}) {
    if (!spec.is_object() || !spec.contains(list) || !spec[list].is_array())
      continue;
    for (const auto& c : spec[list]) {
      container_resources r;
      if (c.is_object() && c.contains("resources") && c["resources"].is_object()) {
        r.requests = string_map(c["resources"].value("requests", nlohmann::json::object()));
        r.limits = string_map(c["resources"].value("limits", nlohmann::json::object()));
      }
      all.push_back(std::move(r));
    }
  }
  return pod_qos(all);
}

}  // namespace deckhand::api
