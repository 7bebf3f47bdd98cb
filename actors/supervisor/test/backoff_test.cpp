#include <boost/test/unit_test.hpp>

#include "deckhand/supervisor/backoff.hpp"

using namespace deckhand;
using namespace deckhand::supervisor;
using namespace std::chrono_literals;

namespace {
const time_point t0 = wall_clock::from_time_t(1'700'000'000);
}

BOOST_AUTO_TEST_SUITE(backoff)

BOOST_AUTO_TEST_CASE(restart_policy_decisions) {
  BOOST_TEST(should_restart("Always", 0));
  BOOST_TEST(should_restart("Always", 1));
  BOOST_TEST(should_restart("Always", 137));
  BOOST_TEST(!should_restart("OnFailure", 0));
  BOOST_TEST(should_restart("OnFailure", 1));
  BOOST_TEST(should_restart("OnFailure", 137));
  BOOST_TEST(!should_restart("Never", 0));
  BOOST_TEST(!should_restart("Never", 1));
  BOOST_TEST(should_restart("", 0));  // Kubernetes' default is Always
}

BOOST_AUTO_TEST_CASE(doubles_from_initial_up_to_max) {
  common::backoff b(crash_loop_policy({}));  // kubelet defaults: 10s, cap 5m
  time_point t = t0;
  std::vector<long> got;
  for (int i = 0; i < 8; ++i) {
    auto d = next_restart_delay(b, t, t + 1s);  // crashes after one second every time
    got.push_back(static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(d).count()));
    t += 1s + d;
  }
  // The first restart is immediate, as in the Go kubelet.
  std::vector<long> want{0, 10, 20, 40, 80, 160, 300, 300};
  BOOST_TEST(got == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(resets_after_a_long_enough_run) {
  backoff_config cfg{100ms, 1000ms, 5000ms};
  common::backoff b(crash_loop_policy(cfg));
  BOOST_TEST(next_restart_delay(b, t0, t0 + 10ms).count() == 0);
  BOOST_TEST(next_restart_delay(b, t0, t0 + 10ms).count() == 100);
  BOOST_TEST(next_restart_delay(b, t0, t0 + 10ms).count() == 200);
  BOOST_TEST(b.step() == 3);
  // Ran 4999 ms: not long enough.
  BOOST_TEST(next_restart_delay(b, t0, t0 + 4999ms).count() == 400);
  // Ran exactly the reset period: starts over, with an immediate restart.
  BOOST_TEST(next_restart_delay(b, t0, t0 + 5000ms).count() == 0);
  BOOST_TEST(b.step() == 1);
  BOOST_TEST(next_restart_delay(b, t0, t0 + 10ms).count() == 100);
}

BOOST_AUTO_TEST_CASE(unknown_start_never_resets) {
  common::backoff b(crash_loop_policy({100ms, 1000ms, 5000ms}));
  b.set_step(3);
  BOOST_TEST(next_restart_delay(b, time_point{}, t0).count() == 400);
}

BOOST_AUTO_TEST_CASE(step_restored_from_disk_continues_the_schedule) {
  common::backoff b(crash_loop_policy({}));
  b.set_step(2);
  BOOST_TEST(b.peek().count() == 20'000);
  BOOST_TEST(next_restart_delay(b, t0, t0 + 1s).count() == 20'000);
  BOOST_TEST(b.step() == 3);
}

BOOST_AUTO_TEST_CASE(capped_step_does_not_overflow) {
  common::backoff b(crash_loop_policy({1ms, 300'000ms, 600'000ms}));
  for (int i = 0; i < 1000; ++i)
    next_restart_delay(b, t0, t0 + 1ms);
  BOOST_TEST(b.peek().count() == 300'000);
  BOOST_TEST(b.step() < 64);
}

BOOST_AUTO_TEST_CASE(go_duration_matches_kubelet_messages) {
  BOOST_TEST(go_duration(10s) == "10s");
  BOOST_TEST(go_duration(20s) == "20s");
  BOOST_TEST(go_duration(80s) == "1m20s");
  BOOST_TEST(go_duration(160s) == "2m40s");
  BOOST_TEST(go_duration(300s) == "5m0s");
  BOOST_TEST(go_duration(50ms) == "50ms");
  BOOST_TEST(go_duration(1500ms) == "1.5s");
  BOOST_TEST(go_duration(3600s) == "1h0m0s");
  BOOST_TEST(go_duration(0ms) == "0s");
}

BOOST_AUTO_TEST_SUITE_END()
