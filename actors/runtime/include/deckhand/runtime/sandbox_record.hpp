#pragma once

/// The runtime's durable record of one pod sandbox (pod_dir::sandbox_json).

#include <optional>
#include <string>
#include <vector>

#include "deckhand/api/time.hpp"
#include "deckhand/common/result.hpp"
#include "deckhand/messages/fields.hpp"

namespace deckhand::runtime {

/// sandbox.json. `state` is "creating" while the runtime builds the sandbox
/// (a sandbox found in that state at start-up is swept), "ready" once its
/// bundles are complete, and "stopped" once a stop has completed.
struct sandbox_record {
  static constexpr const char* type_name = "sandbox_record";
  std::string uid;
  std::string namespace_;
  std::string name;
  std::string state;
  std::string netns;  ///< bind-mounted netns path; empty with hostNetwork
  bool host_network = false;
  /// The pod's address: from the pod CIDR, or the node's own with hostNetwork.
  std::string pod_ip;
  std::string created_at;  ///< RFC 3339, UTC
  std::vector<std::string> containers;
  static constexpr auto fields() {
    return std::make_tuple(wire::field("uid", &sandbox_record::uid),
                           wire::field("namespace", &sandbox_record::namespace_),
                           wire::field("name", &sandbox_record::name),
                           wire::field("state", &sandbox_record::state),
                           wire::field("netns", &sandbox_record::netns),
                           wire::field("hostNetwork", &sandbox_record::host_network),
                           wire::field("podIP", &sandbox_record::pod_ip),
                           wire::field("createdAt", &sandbox_record::created_at),
                           wire::field("containers", &sandbox_record::containers));
  }
};

/// JSON text of `rec`.
std::string encode_sandbox_record(const sandbox_record& rec);

/// Parses sandbox.json text; malformed input is `errc::invalid`.
result<sandbox_record> decode_sandbox_record(const std::string& text);

/// The current time as RFC 3339 UTC with seconds ("2024-05-01T12:00:00Z").
using api::now_rfc3339;

}  // namespace deckhand::runtime
