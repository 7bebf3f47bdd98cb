#pragma once

// What every conformance suite shares: the precondition that skips a suite
// where containers cannot run, and one node per executable (starting a node
// is the slow part), started by the first case that needs it and stopped
// after the last. Include from the suite's one source file only (it
// registers a global fixture).

#include <boost/test/unit_test.hpp>

#include "deckhand/testing/skip.hpp"

#include <memory>
#include <string>

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

/// Stops the shared node (and removes what it made) after the last case.
struct shared_node_teardown {
  ~shared_node_teardown() { shared_node_slot().reset(); }
};
BOOST_TEST_GLOBAL_FIXTURE(shared_node_teardown);

}  // namespace deckhand::testing
