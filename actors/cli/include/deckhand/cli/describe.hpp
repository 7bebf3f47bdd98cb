#pragma once

/// `deckhand describe pod` and `deckhand get events`: kubectl's text for a
/// pod and its events, computed from the objects as kubectl computes it.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deckhand/cli/commands.hpp"
#include "deckhand/cli/printers.hpp"

namespace deckhand::cli {

/// Go's text/tabwriter as kubectl configures it (minwidth 0, padding 2,
/// spaces): cells end at '\t'; consecutive lines that have a cell in the
/// same column are aligned; a line's last cell is not padded.
std::string tab_align(const std::string& text);

/// `kubectl describe pod` for `pod`, with `events` (those whose
/// involvedObject is the pod) in its Events table, ages measured at `now`.
std::string describe_pod(const nlohmann::json& pod, const std::vector<nlohmann::json>& events,
                         wall_time now);

/// The field selector of the events `describe pod` shows for `pod`, as
/// kubectl builds it: involvedObject name, namespace and uid (a mirror pod's
/// events are its static pod's, under the uid in its config.mirror
/// annotation).
std::string pod_events_selector(const nlohmann::json& pod);

/// `kubectl get events`: LAST SEEN TYPE REASON OBJECT MESSAGE (wide adds
/// SUBOBJECT SOURCE FIRST SEEN COUNT NAME), oldest first.
std::string format_event_table(const std::vector<nlohmann::json>& events, const table_options& opts,
                               wall_time now);

struct describe_options {
  node_options node;
  std::string resource;  ///< pod, pods, po, or pod/NAME
  std::vector<std::string> names;
};

/// `deckhand describe pod NAME...`: fetches each pod and its events.
int describe_command(const describe_options& opts, io_streams io);

}  // namespace deckhand::cli
