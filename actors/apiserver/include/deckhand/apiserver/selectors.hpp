#pragma once

/// Kubernetes label and field selectors: parsing and matching.
///
/// Label selectors: comma-separated requirements, all of which must hold:
/// `key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`,
/// `key` (exists), `!key` (does not exist). Field selectors: `path=value`,
/// `path==value`, `path!=value`; which paths are allowed depends on the kind.

#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deckhand/common/result.hpp"

namespace deckhand::apiserver {

/// One requirement of a label selector.
struct label_requirement {
  enum class op { equals, not_equals, in, not_in, exists, not_exists };
  std::string key;
  op operation = op::equals;
  std::set<std::string> values;
};

/// A parsed label selector; the empty selector matches everything.
struct label_selector {
  std::vector<label_requirement> requirements;

  bool empty() const { return requirements.empty(); }
  /// Whether `labels` (metadata.labels, an object or null) satisfies every requirement.
  bool matches(const nlohmann::json& labels) const;
};

/// One requirement of a field selector.
struct field_requirement {
  std::string field;  ///< dotted path, e.g. "spec.nodeName"
  bool negate = false;
  std::string value;
};

/// A parsed field selector; the empty selector matches everything.
struct field_selector {
  std::vector<field_requirement> requirements;

  bool empty() const { return requirements.empty(); }
  /// Whether `object` satisfies every requirement; a missing field compares as "".
  bool matches(const nlohmann::json& object) const;
};

/// Parses a label selector; errc::invalid with a message naming the problem.
result<label_selector> parse_label_selector(const std::string& text);

/// Parses a field selector; `allowed` lists the field paths the kind supports
/// (errc::invalid "field label not supported: X" for others).
result<field_selector> parse_field_selector(const std::string& text,
                                            const std::set<std::string>& allowed);

/// The string value at a dotted path of `object` ("" if absent; numbers and
/// booleans in their JSON spelling).
std::string field_value(const nlohmann::json& object, const std::string& path);

}  // namespace deckhand::apiserver
