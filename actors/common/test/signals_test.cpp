#include <signal.h>

#include <boost/test/unit_test.hpp>

#include "deckhand/common/signals.hpp"

using namespace deckhand;
using namespace deckhand::common;

BOOST_AUTO_TEST_SUITE(signals)

BOOST_AUTO_TEST_CASE(names_with_and_without_prefix_in_any_case) {
  BOOST_TEST(*parse_signal("SIGTERM") == SIGTERM);
  BOOST_TEST(*parse_signal("TERM") == SIGTERM);
  BOOST_TEST(*parse_signal("term") == SIGTERM);
  BOOST_TEST(*parse_signal("SigQuit") == SIGQUIT);
  BOOST_TEST(*parse_signal("KILL") == SIGKILL);
  BOOST_TEST(*parse_signal("SIGUSR1") == SIGUSR1);
  BOOST_TEST(*parse_signal("IOT") == SIGABRT);
}

BOOST_AUTO_TEST_CASE(numbers_below_nsig) {
  BOOST_TEST(*parse_signal("9") == 9);
  BOOST_TEST(*parse_signal("15") == 15);
  BOOST_TEST(*parse_signal("64") == 64);
}

BOOST_AUTO_TEST_CASE(rejects_garbage) {
  for (const char* bad : {"", "999", "0", "SIGRTMAX+99", "NOPE", "-9", "99999999999999999999"}) {
    auto r = parse_signal(bad);
    BOOST_TEST_CONTEXT(bad) {
      BOOST_REQUIRE(!r.ok());
      BOOST_TEST(r.err().code == errc::invalid);
    }
  }
}

BOOST_AUTO_TEST_CASE(names_round_trip) {
  BOOST_TEST(signal_name(SIGTERM) == "SIGTERM");
  BOOST_TEST(signal_name(SIGABRT) == "SIGABRT");
  BOOST_TEST(signal_name(SIGIO) == "SIGIO");
  BOOST_TEST(signal_name(40) == "SIG40");
  for (int sig = 1; sig < 32; ++sig)
    BOOST_TEST(*parse_signal(signal_name(sig)) == sig);
}

BOOST_AUTO_TEST_SUITE_END()
