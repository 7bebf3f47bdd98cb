#pragma once

/// A container's ports and environment, with the selectors that env values
/// and downward-API files read from.

#include <cstdint>
#include <string>
#include <vector>

#include "deckhand/messages/fields.hpp"

namespace deckhand::wire {

struct container_port {
  static constexpr const char* type_name = "container_port";
  std::string name;
  int32_t container_port = 0;
  std::string protocol;
  int32_t host_port = 0;
  static constexpr auto fields() {
    return std::make_tuple(field("name", &container_port::name),
                           field_always("containerPort", &container_port::container_port),
                           field("protocol", &container_port::protocol),
                           field("hostPort", &container_port::host_port));
  }
};

/// `fieldRef`: a field of the pod (`metadata.name`, `metadata.labels['k']`,
/// `spec.nodeName`, `status.podIP`, ...).
struct object_field_selector {
  static constexpr const char* type_name = "object_field_selector";
  std::string api_version;
  std::string field_path;
  static constexpr auto fields() {
    return std::make_tuple(field("apiVersion", &object_field_selector::api_version),
                           field("fieldPath", &object_field_selector::field_path));
  }
};

/// `resourceFieldRef`: a container's request or limit (`limits.cpu`,
/// `requests.memory`, ...), divided by `divisor` (a quantity, default 1).
struct resource_field_selector {
  static constexpr const char* type_name = "resource_field_selector";
  std::string container_name;
  std::string resource;
  int_or_string divisor;  ///< a quantity: "1m", "1Mi", 1
  static constexpr auto fields() {
    return std::make_tuple(field("containerName", &resource_field_selector::container_name),
                           field("resource", &resource_field_selector::resource),
                           field("divisor", &resource_field_selector::divisor));
  }
};

/// `configMapKeyRef` / `secretKeyRef`. deckhand has no ConfigMaps or Secrets:
/// a container that needs one waits with CreateContainerConfigError, as on
/// Kubernetes when the object is missing (unless `optional: true`).
struct key_selector {
  static constexpr const char* type_name = "key_selector";
  std::string name;
  std::string key;
  opt<bool> optional;
  static constexpr auto fields() {
    return std::make_tuple(field("name", &key_selector::name), field("key", &key_selector::key),
                           field("optional", &key_selector::optional));
  }
};

struct env_var_source {
  static constexpr const char* type_name = "env_var_source";
  opt<object_field_selector> field_ref;
  opt<resource_field_selector> resource_field_ref;
  opt<key_selector> config_map_key_ref;
  opt<key_selector> secret_key_ref;
  static constexpr auto fields() {
    return std::make_tuple(field("fieldRef", &env_var_source::field_ref),
                           field("resourceFieldRef", &env_var_source::resource_field_ref),
                           field("configMapKeyRef", &env_var_source::config_map_key_ref),
                           field("secretKeyRef", &env_var_source::secret_key_ref));
  }
};

struct env_var {
  static constexpr const char* type_name = "env_var";
  std::string name;
  std::string value;
  opt<env_var_source> value_from{};  // {}: brace-initialised env lists may leave it out
  static constexpr auto fields() {
    return std::make_tuple(field("name", &env_var::name), field("value", &env_var::value),
                           field("valueFrom", &env_var::value_from));
  }
};

}  // namespace deckhand::wire
