#pragma once

/// core/v1 Event: what happened to an object, for `kubectl describe`.

#include <cstdint>
#include <string>

#include "deckhand/messages/fields.hpp"
#include "deckhand/messages/model/meta.hpp"

namespace deckhand::wire {

/// The object an event is about (core/v1 ObjectReference with fieldPath, e.g.
/// "spec.containers{app}" for a container's events).
struct event_object_reference {
  static constexpr const char* type_name = "event_object_reference";
  std::string kind;
  std::string namespace_;
  std::string name;
  std::string uid;
  std::string api_version;
  std::string field_path;
  static constexpr auto fields() {
    return std::make_tuple(field("kind", &event_object_reference::kind),
                           field("namespace", &event_object_reference::namespace_),
                           field("name", &event_object_reference::name),
                           field("uid", &event_object_reference::uid),
                           field("apiVersion", &event_object_reference::api_version),
                           field("fieldPath", &event_object_reference::field_path));
  }
};

struct event_source {
  static constexpr const char* type_name = "event_source";
  std::string component;
  std::string host;
  static constexpr auto fields() {
    return std::make_tuple(field("component", &event_source::component),
                           field("host", &event_source::host));
  }
};

/// One event series: the same involvedObject, reason and message seen `count`
/// times between firstTimestamp and lastTimestamp (RFC 3339, seconds).
struct event {
  static constexpr const char* type_name = "event";
  std::string api_version = "v1";
  std::string kind = "Event";
  object_meta metadata;
  event_object_reference involved_object;
  std::string reason;
  std::string message;
  std::string type = "Normal";  ///< Normal or Warning
  event_source source;
  std::string first_timestamp;
  std::string last_timestamp;
  int32_t count = 1;
  std::string reporting_component;
  std::string reporting_instance;
  static constexpr auto fields() {
    return std::make_tuple(
        field("apiVersion", &event::api_version), field("kind", &event::kind),
        field("metadata", &event::metadata),
        field_always("involvedObject", &event::involved_object), field("reason", &event::reason),
        field("message", &event::message), field("type", &event::type),
        field("source", &event::source), field("firstTimestamp", &event::first_timestamp),
        field("lastTimestamp", &event::last_timestamp), field("count", &event::count),
        field("reportingComponent", &event::reporting_component),
        field("reportingInstance", &event::reporting_instance));
  }
};

}  // namespace deckhand::wire
