#include <boost/test/unit_test.hpp>

#include "deckhand/common/backoff.hpp"

using namespace std::chrono_literals;
using deckhand::common::backoff;
using deckhand::common::backoff_policy;

BOOST_AUTO_TEST_SUITE(backoff_schedule)

BOOST_AUTO_TEST_CASE(doubles_from_initial_up_to_the_cap) {
  backoff b{backoff_policy{200ms, 1000ms, 0ms, false}};
  BOOST_TEST(b.peek().count() == 200);
  BOOST_TEST(b.next().count() == 200);
  BOOST_TEST(b.next().count() == 400);
  BOOST_TEST(b.next().count() == 800);
  BOOST_TEST(b.next().count() == 1000);
  BOOST_TEST(b.next().count() == 1000);
  b.reset();
  BOOST_TEST(b.next().count() == 200);
}

BOOST_AUTO_TEST_CASE(crash_loop_restarts_the_first_failure_at_once) {
  // The kubelet's crash-loop back-off: 0, 10s, 20s, 40s, ... 5m.
  backoff b{backoff_policy{10s, 300s, 600s, true}};
  BOOST_TEST(b.next().count() == 0);
  BOOST_TEST(b.next().count() == 10'000);
  BOOST_TEST(b.next().count() == 20'000);
  BOOST_TEST(b.next().count() == 40'000);
  for (int i = 0; i < 100; ++i)
    b.next();
  BOOST_TEST(b.peek().count() == 300'000);
  BOOST_TEST(b.step() < 100);  // counting stops at the cap
}

BOOST_AUTO_TEST_CASE(a_long_run_starts_the_schedule_over) {
  backoff b{backoff_policy{10s, 300s, 600s, true}};
  b.next();
  b.next();
  b.next();
  BOOST_TEST(b.next_after_run(599s).count() == 40'000);
  BOOST_TEST(b.next_after_run(600s).count() == 0);
  BOOST_TEST(b.next().count() == 10'000);
}

BOOST_AUTO_TEST_CASE(no_reset_when_reset_after_is_zero) {
  backoff b{backoff_policy{100ms, 10s, 0ms, false}};
  b.next();
  BOOST_TEST(b.next_after_run(24h).count() == 200);
}

BOOST_AUTO_TEST_CASE(step_survives_a_restart_of_its_owner) {
  backoff a{backoff_policy{10s, 300s, 600s, true}};
  a.next();
  a.next();
  backoff b{a.policy()};
  b.set_step(a.step());
  BOOST_TEST(b.peek() == a.peek());
  b.set_step(-3);
  BOOST_TEST(b.step() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
