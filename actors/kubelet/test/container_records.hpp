#pragma once

// Container records as the runtime reports them, for the kubelet's pure
// status tests (test_kubelet.cpp, test_pod_lifecycle.cpp).

#include <string>

#include "deckhand/messages/wire.hpp"

namespace deckhand::kubelet::test {

/// A container running since a fixed time, started and (by default) ready.
inline wire::container_record running(const std::string& name, bool ready = true) {
  wire::container_record r;
  r.name = name;
  r.status.state.running.started_at = "2026-11-27T20:00:00Z";
  r.status.ready = ready;
  r.status.started = true;
  return r;
}

/// A container that exited with `code` (reason Completed for 0, else Error).
inline wire::container_record exited(const std::string& name, int code) {
  wire::container_record r;
  r.name = name;
  r.status.state.terminated.exit_code = code;
  r.status.state.terminated.reason = code == 0 ? "Completed" : "Error";
  r.status.state.terminated.finished_at = "2026-11-27T20:00:01Z";
  return r;
}

}  // namespace deckhand::kubelet::test
