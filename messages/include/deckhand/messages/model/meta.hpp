#pragma once

/// ObjectMeta, the metadata every Kubernetes object carries.

#include <cstdint>
#include <map>
#include <string>

#include "deckhand/messages/fields.hpp"

namespace deckhand::wire {

using string_map = std::map<std::string, std::string>;

struct object_meta {
  static constexpr const char* type_name = "object_meta";
  std::string name;
  std::string namespace_;
  std::string uid;
  std::string resource_version;
  int64_t generation = 0;
  std::string creation_timestamp;
  std::string deletion_timestamp;
  int64_t deletion_grace_period_seconds = 0;
  string_map labels;
  string_map annotations;
  static constexpr auto fields() {
    return std::make_tuple(
        field("name", &object_meta::name), field("namespace", &object_meta::namespace_),
        field("uid", &object_meta::uid), field("resourceVersion", &object_meta::resource_version),
        field("generation", &object_meta::generation),
        field("creationTimestamp", &object_meta::creation_timestamp),
        field("deletionTimestamp", &object_meta::deletion_timestamp),
        field("deletionGracePeriodSeconds", &object_meta::deletion_grace_period_seconds),
        field("labels", &object_meta::labels), field("annotations", &object_meta::annotations));
  }
};

}  // namespace deckhand::wire
