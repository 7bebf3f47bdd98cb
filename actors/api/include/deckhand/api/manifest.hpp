#pragma once

/// Manifests as `deckhand apply` and the kubelet's static pod source read
/// them: YAML (several documents separated by `---`) or JSON, turned into
/// Kubernetes objects of the kinds this node serves, plus the REST mapping
/// between resource names, collections, kinds and API versions.

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "deckhand/common/result.hpp"

namespace deckhand::api {

/// One object from a manifest.
struct manifest_object {
  std::string api_version;
  std::string kind;      ///< "Pod", "Service" or "Endpoints"
  std::string resource;  ///< the REST collection: "pods", "services" or "endpoints"
  std::string name;
  std::string namespace_;  ///< empty when the manifest leaves it to `-n`
  nlohmann::json object;   ///< the document as given
};

/// Parses and validates the manifests of one source. `kind: List` documents
/// are expanded into their items. Fails, naming the first problem, on invalid
/// YAML/JSON, a missing `apiVersion` or `kind`, a kind other than Pod, Service
/// or Endpoints in `v1` (`no matches for kind "X" in version "Y"`), or a missing
/// `metadata.name`. Everything in a source is checked before anything is
/// used, so a file with one broken document yields nothing.
result<std::vector<manifest_object>> parse_manifests(std::string_view text,
                                                     const std::string& source);

/// The REST collection for a resource name as kubectl accepts it
/// (pod/pods/po, service/services/svc, endpoints/ep,
/// endpointslice/endpointslices, event/events/ev); empty when unknown.
std::string resource_collection(const std::string& name);

/// The kind served by a REST collection ("pods" -> "Pod").
std::string collection_kind(const std::string& collection);

/// The API version of a REST collection's objects: "v1", or
/// "discovery.k8s.io/v1" for endpointslices (served under /apis/GROUP/VERSION).
std::string collection_api_version(const std::string& collection);

}  // namespace deckhand::api
