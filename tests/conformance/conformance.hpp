#pragma once

// What every conformance suite shares: one node per executable (starting a
// node is the slow part), started by the first case that needs it and
// stopped after the last, and the helpers that read pods back from the API
// server. Suites skip where containers cannot run (deckhand/testing/skip.hpp).
// Include from the suite's one source file only (it registers a global
// fixture).

#include <boost/test/unit_test.hpp>

#include "deckhand/testing/skip.hpp"

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "node_fixture.hpp"

namespace deckhand::testing {

/// The image every suite's pods run (imported by the_node()).
inline const char* const image = "deckhand.local/busybox:test";

inline std::unique_ptr<node>& shared_node_slot() {
  static std::unique_ptr<node> n;
  return n;
}

/// The node the suite's cases share, with the busybox image imported;
/// `extra_config` (node_fixture's launcher config lines) counts on the first
/// call only, which starts the node.
inline node& the_node(const std::string& extra_config = {}) {
  auto& n = shared_node_slot();
  if (!n) {
    n = std::make_unique<node>(extra_config);
    n->import_busybox();
  }
  return *n;
}

/// The status of container `name` of `pod` (an empty object if none).
inline nlohmann::json container_status(const nlohmann::json& pod, const std::string& name = "app") {
  for (const auto& cs : pod.value(nlohmann::json::json_pointer("/status/containerStatuses"),
                                  nlohmann::json::array()))
    if (cs.value("name", "") == name)
      return cs;
  return nlohmann::json::object();
}

/// The condition `type` of a pod or node (an empty object if none).
inline nlohmann::json condition(const nlohmann::json& obj, const std::string& type) {
  for (const auto& c :
       obj.value(nlohmann::json::json_pointer("/status/conditions"), nlohmann::json::array()))
    if (c.value("type", "") == type)
      return c;
  return nlohmann::json::object();
}

/// The pod's uid ("" for a null pod).
inline std::string uid_of(const nlohmann::json& pod) {
  return pod.is_null() ? "" : pod.value(nlohmann::json::json_pointer("/metadata/uid"), "");
}

/// Waits until the API server has the pod with `pred` true; returns it.
inline nlohmann::json wait_pod(node& n, const std::string& name,
                               const std::function<bool(const nlohmann::json&)>& pred,
                               std::chrono::milliseconds deadline = std::chrono::seconds(60)) {
  nlohmann::json last;
  bool ok = eventually(
      [&] {
        last = n.pod(name);
        return !last.is_null() && pred(last);
      },
      deadline);
  BOOST_REQUIRE_MESSAGE(ok, "pod " << name << " never got there; last: " << last.dump());
  return last;
}

/// Deletes the pod at once (force, no grace period), without waiting.
inline void remove_now(node& n, const std::string& name) {
  n.cli({"delete", "pod", name, "--force", "--grace-period=0", "--wait=false"}, {},
        std::chrono::seconds(30));
}

/// A whole file ("" if unreadable).
inline std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Stops the shared node (and removes what it made) after the last case.
struct shared_node_teardown {
  ~shared_node_teardown() { shared_node_slot().reset(); }
};
BOOST_TEST_GLOBAL_FIXTURE(shared_node_teardown);

}  // namespace deckhand::testing
