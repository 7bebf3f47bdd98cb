#pragma once

/// Manifests as `deckhand apply` reads them: YAML (several documents separated
/// by `---`) or JSON, turned into Kubernetes objects of the kinds this node
/// serves. Everything in a source is validated before anything is sent, so a
/// file with one broken document applies nothing.

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "deckhand/common/result.hpp"

namespace deckhand::cli {

/// One object from a manifest.
struct manifest_object {
  std::string api_version;
  std::string kind;      ///< "Pod", "Service" or "Endpoints"
  std::string resource;  ///< the REST collection: "pods", "services" or "endpoints"
  std::string name;
  std::string namespace_;  ///< empty when the manifest leaves it to `-n`
  nlohmann::json object;   ///< the document as given
};

/// Parses every document of `text` into JSON values. YAML scalars are typed as
/// Kubernetes' YAML reader types them (plain `80` is a number, `"80"` a
/// string, `true`/`yes` booleans, `~`/`null` null). Empty documents are
/// dropped. Errors name `source` and the line, as kubectl does:
/// `error parsing SOURCE: error converting YAML to JSON: yaml: line N: ...`.
result<std::vector<nlohmann::json>> parse_documents(std::string_view text,
                                                    const std::string& source);

/// Parses and validates the manifests of one source. `kind: List` documents
/// are expanded into their items. Fails, naming the first problem, on invalid
/// YAML/JSON, a missing `apiVersion` or `kind`, a kind other than Pod, Service
/// or Endpoints in `v1` (`no matches for kind "X" in version "Y"`), or a missing
/// `metadata.name`.
result<std::vector<manifest_object>> parse_manifests(std::string_view text,
                                                     const std::string& source);

/// `j` rendered as YAML the way kubectl prints objects: two-space indent,
/// sequences at their key's indent, strings quoted only where plain YAML
/// would read them as something else.
std::string to_yaml(const nlohmann::json& j);

/// The REST collection for a resource name as kubectl accepts it
/// (pod/pods/po, service/services/svc, endpoints/ep,
/// endpointslice/endpointslices); empty when unknown.
std::string resource_collection(const std::string& name);

/// The kind served by a REST collection ("pods" -> "Pod").
std::string collection_kind(const std::string& collection);

/// The API version of a REST collection's objects: "v1", or
/// "discovery.k8s.io/v1" for endpointslices (served under /apis/GROUP/VERSION).
std::string collection_api_version(const std::string& collection);

}  // namespace deckhand::cli
