#pragma once

/// Table responses (meta.k8s.io/v1 Table) for `kubectl get`: the columns the
/// Kubernetes API server prints for Services, Endpoints and EndpointSlices.
/// kubectl asks for them with `Accept: application/json;as=Table;...` and
/// shows the cells as they are; kinds without columns here are sent as plain
/// lists (kubectl then prints NAME and AGE).

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace deckhand::apiserver {

/// Whether a Table of `kind` can be made.
bool has_table(const std::string& kind);

/// The Table of `objects` of `kind` at `now`. `include_object` is the
/// request's includeObject ("None", "Object", or "Metadata", the default).
nlohmann::json make_table(const std::string& kind, const std::vector<nlohmann::json>& objects,
                          const std::string& resource_version, const std::string& include_object,
                          std::chrono::system_clock::time_point now);

/// Kubernetes' HumanDuration (`5s`, `3m2s`, `15m`, `4h`, `2d5h`, `1y30d`).
std::string human_duration(std::chrono::seconds d);

}  // namespace deckhand::apiserver
