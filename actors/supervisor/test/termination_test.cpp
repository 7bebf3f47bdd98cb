#include <sys/wait.h>

#include <boost/test/unit_test.hpp>

#include "deckhand/supervisor/termination.hpp"

using namespace deckhand::supervisor;

namespace {
// waitpid() status words, built the way the kernel encodes them.
int exited_with(int code) { return (code & 0xff) << 8; }
int killed_by(int sig) { return sig & 0x7f; }
}  // namespace

BOOST_AUTO_TEST_SUITE(termination)

BOOST_AUTO_TEST_CASE(exit_codes) {
  BOOST_REQUIRE(WIFEXITED(exited_with(3)));
  auto e = exit_info::from_wait_status(exited_with(0));
  BOOST_TEST(e.known);
  BOOST_TEST(e.code == 0);
  auto t = terminated_state(e, "s", "f", "deckhand://x");
  BOOST_TEST(t.exit_code == 0);
  BOOST_TEST(t.reason == "Completed");
  BOOST_TEST(t.signal == 0);
  BOOST_TEST(t.container_id == "deckhand://x");
  BOOST_TEST(t.started_at == "s");
  BOOST_TEST(t.finished_at == "f");

  t = terminated_state(exit_info::from_wait_status(exited_with(42)), "", "f", "");
  BOOST_TEST(t.exit_code == 42);
  BOOST_TEST(t.reason == "Error");
}

BOOST_AUTO_TEST_CASE(signals_become_128_plus_signal) {
  BOOST_REQUIRE(WIFSIGNALED(killed_by(9)));
  auto t = terminated_state(exit_info::from_wait_status(killed_by(9)), "", "f", "");
  BOOST_TEST(t.exit_code == 137);
  BOOST_TEST(t.signal == 9);
  BOOST_TEST(t.reason == "Error");
  t = terminated_state(exit_info::from_wait_status(killed_by(15)), "", "f", "");
  BOOST_TEST(t.exit_code == 143);
  BOOST_TEST(t.signal == 15);
}

BOOST_AUTO_TEST_CASE(unknown_exit_is_never_invented) {
  auto t = terminated_state(exit_info::unknown(), "s", "f", "");
  BOOST_TEST(t.exit_code == 137);
  BOOST_TEST(t.signal == 0);
  BOOST_TEST(t.reason == "ContainerStatusUnknown");
  BOOST_TEST(t.message == "the container exited while its supervisor was down; exit code unknown");
}

BOOST_AUTO_TEST_CASE(start_error) {
  auto t = terminated_state(exit_info::start_error("no such file"), "", "f", "");
  BOOST_TEST(t.exit_code == 128);
  BOOST_TEST(t.reason == "StartError");
  BOOST_TEST(t.message == "no such file");
}

BOOST_AUTO_TEST_CASE(rfc3339_round_trip) {
  auto t = wall_clock::from_time_t(1'700'000'000);
  BOOST_TEST(rfc3339(t) == "2023-11-14T22:13:20Z");
  auto back = parse_rfc3339("2023-11-14T22:13:20Z");
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST((*back == t));
  auto frac = parse_rfc3339("2023-11-14T22:13:20.123456Z");
  BOOST_REQUIRE(frac.has_value());
  BOOST_TEST((*frac == t));
  auto off = parse_rfc3339("2023-11-14T23:13:20+01:00");
  BOOST_REQUIRE(off.has_value());
  BOOST_TEST((*off == t));
  BOOST_TEST(!parse_rfc3339("").has_value());
  BOOST_TEST(!parse_rfc3339("2023-11-14 22:13:20").has_value());
  BOOST_TEST(!parse_rfc3339("2023-11-14T22:13:20Zjunk").has_value());
}

BOOST_AUTO_TEST_SUITE_END()
