#define BOOST_TEST_MODULE apiserver
#include <boost/test/unit_test.hpp>

#include "deckhand/common/log.hpp"

namespace {
/// Keeps test output to what matters: warnings (e.g. WAL truncation) and errors.
struct quiet_logs {
  quiet_logs() { deckhand::log::init("apiserver-test", "warn"); }
};
}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(quiet_logs);
