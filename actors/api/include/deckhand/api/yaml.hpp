#pragma once

/// YAML and JSON documents as Kubernetes reads and prints them: a stream of
/// YAML documents (separated by `---`) or JSON values in, kubectl-style YAML
/// out.

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "deckhand/common/result.hpp"

namespace deckhand::api {

/// Parses every document of `text` into JSON values. YAML scalars are typed as
/// Kubernetes' YAML reader types them (plain `80` is a number, `"80"` a
/// string, `true`/`yes` booleans, `~`/`null` null). Empty documents are
/// dropped. Errors name `source` and the line, as kubectl does:
/// `error parsing SOURCE: error converting YAML to JSON: yaml: line N: ...`.
result<std::vector<nlohmann::json>> parse_documents(std::string_view text,
                                                    const std::string& source);

/// `j` rendered as YAML the way kubectl prints objects: two-space indent,
/// sequences at their key's indent, strings quoted only where plain YAML
/// would read them as something else.
std::string to_yaml(const nlohmann::json& j);

}  // namespace deckhand::api
