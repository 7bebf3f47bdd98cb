// The one-thread CAF scheduler of pod supervisors: messages, timers, request
// timeouts and shutdown work as with CAF's own schedulers, on one thread.
#include <boost/test/unit_test.hpp>

#include <dirent.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <thread>

#include <caf/all.hpp>

#include "deckhand/host/single_thread_scheduler.hpp"

namespace {

using namespace std::chrono_literals;
using ping_atom = caf::atom_constant<caf::atom("st_ping")>;
using tick_atom = caf::atom_constant<caf::atom("st_tick")>;

int thread_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.')
        ++n;
    ::closedir(d);
  }
  return n;
}

struct fixture {
  caf::actor_system_config cfg;
  fixture() {
    cfg.set("scheduler.max-threads", 1);
    deckhand::host::install_single_thread_scheduler(cfg);
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(single_thread_scheduler_suite, fixture)

BOOST_AUTO_TEST_CASE(runs_actors_and_timers_on_one_thread) {
  int before = thread_count();
  std::set<std::thread::id> seen;
  std::promise<std::set<std::thread::id>> seen_threads;
  std::promise<std::chrono::steady_clock::duration> delay_seen;
  {
    caf::actor_system sys{cfg};
    // Exactly one thread more: no clock thread, no printer thread.
    BOOST_TEST(thread_count() == before + 1);

    auto echo = sys.spawn([](caf::event_based_actor*) -> caf::behavior {
      return {[](ping_atom, int x) { return x + 1; }};
    });
    auto start = std::chrono::steady_clock::now();
    sys.spawn([&, echo](caf::event_based_actor* self) -> caf::behavior {
      auto ids = std::make_shared<std::set<std::thread::id>>();
      auto left = std::make_shared<int>(1000);
      // A chain of 1,000 request/replies, then a 50 ms delayed message.
      auto step = std::make_shared<std::function<void(int)>>();
      *step = [=, &seen_threads, &delay_seen](int x) {
        ids->insert(std::this_thread::get_id());
        if (--*left == 0) {
          self->delayed_send(self, 50ms, tick_atom::value);
          return;
        }
        self->request(echo, caf::infinite, ping_atom::value, x).then([=](int y) { (*step)(y); });
      };
      (*step)(0);
      return {
          [=, &seen_threads, &delay_seen](tick_atom) {
            delay_seen.set_value(std::chrono::steady_clock::now() - start);
            seen_threads.set_value(*ids);
            self->quit();
          },
      };
    });
    auto ids_future = seen_threads.get_future();
    BOOST_REQUIRE(ids_future.wait_for(10s) == std::future_status::ready);
    caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
    seen = ids_future.get();
  }
  auto ids = seen;
  BOOST_TEST(ids.size() == 1u);
  BOOST_TEST(ids.count(std::this_thread::get_id()) == 0u);
  BOOST_TEST(delay_seen.get_future().get() >= 50ms);
  BOOST_TEST(thread_count() == before);
}

BOOST_AUTO_TEST_CASE(request_timeouts_fire_and_earlier_timers_wake_the_thread) {
  caf::actor_system sys{cfg};
  // Never answers.
  auto mute = sys.spawn([](caf::event_based_actor* self) -> caf::behavior {
    return {[=](ping_atom, int) { return self->make_response_promise<int>(); }};
  });
  std::promise<bool> timed_out;
  std::promise<std::vector<int>> order;
  sys.spawn([&, mute](caf::event_based_actor* self) -> caf::behavior {
    auto got = std::make_shared<std::vector<int>>();
    // A far timer first, then a near one: the near one must not wait for the far one.
    self->delayed_send(self, 10s, tick_atom::value, 2);
    self->delayed_send(self, 50ms, tick_atom::value, 1);
    self->request(mute, 20ms, ping_atom::value, 1)
        .then([&](int) { timed_out.set_value(false); },
              [&](caf::error&) { timed_out.set_value(true); });
    return {
        [=, &order](tick_atom, int which) {
          got->push_back(which);
          order.set_value(*got);
          self->quit();
        },
    };
  });
  auto f = timed_out.get_future();
  BOOST_REQUIRE(f.wait_for(5s) == std::future_status::ready);
  BOOST_TEST(f.get());
  auto o = order.get_future();
  BOOST_REQUIRE(o.wait_for(5s) == std::future_status::ready);
  BOOST_TEST(o.get() == std::vector<int>{1});
  caf::anon_send_exit(mute, caf::exit_reason::user_shutdown);
  sys.await_all_actors_done();
}

BOOST_AUTO_TEST_CASE(messages_from_foreign_threads_are_delivered) {
  caf::actor_system sys{cfg};
  std::atomic<int> sum{0};
  std::promise<void> done;
  auto sink = sys.spawn([&](caf::event_based_actor* self) -> caf::behavior {
    return {[&, self](ping_atom, int x) {
      if (sum.fetch_add(x) + x == 4 * 2500)
        done.set_value();
      (void)self;
    }};
  });
  std::vector<std::thread> senders;
  for (int t = 0; t < 4; ++t)
    senders.emplace_back([&] {
      for (int i = 0; i < 2500; ++i)
        caf::anon_send(sink, ping_atom::value, 1);
    });
  for (auto& t : senders)
    t.join();
  BOOST_REQUIRE(done.get_future().wait_for(10s) == std::future_status::ready);
  caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
  sys.await_all_actors_done();
}

BOOST_AUTO_TEST_SUITE_END()

// Driven by the owner's poll loop (scheduler_loop): no thread at all; a
// message and a delayed message run inside run(), on the loop's thread, and
// run() reports how long the loop may sleep before the next timer.
BOOST_AUTO_TEST_CASE(runs_on_the_owners_poll_loop) {
  caf::actor_system_config cfg2;
  cfg2.set("scheduler.max-threads", 1);
  deckhand::host::scheduler_loop loop;
  deckhand::host::install_single_thread_scheduler(cfg2, &loop);
  int before = thread_count();
  std::set<std::thread::id> ran_on;
  int got = 0;
  bool ticked = false;
  {
    caf::actor_system sys{cfg2};
    BOOST_TEST(thread_count() == before);  // no scheduler thread
    auto a = sys.spawn([&](caf::event_based_actor* self) -> caf::behavior {
      return {
          [&, self](ping_atom, int x) {
            ran_on.insert(std::this_thread::get_id());
            got = x;
            self->delayed_send(self, 30ms, tick_atom::value);
          },
          [&](tick_atom) {
            ran_on.insert(std::this_thread::get_id());
            ticked = true;
          },
      };
    });
    // Sent from another thread: the loop's fd becomes readable.
    std::thread([&] { caf::anon_send(a, ping_atom::value, 41); }).join();
    auto deadline = std::chrono::steady_clock::now() + 5s;
    int timeout = 0;
    bool saw_timer_wait = false;
    while (!ticked && std::chrono::steady_clock::now() < deadline) {
      struct pollfd p {
        loop.wake_fd(), POLLIN, 0
      };
      ::poll(&p, 1, timeout < 0 ? 1000 : timeout);
      timeout = loop.run();
      saw_timer_wait = saw_timer_wait || timeout > 0;
    }
    BOOST_TEST(got == 41);
    BOOST_TEST(ticked);
    BOOST_TEST(saw_timer_wait);  // it told the loop to wait for the timer
    BOOST_TEST(ran_on.size() == 1u);
    BOOST_TEST((ran_on.count(std::this_thread::get_id()) == 1u));
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    // The owner drives the loop until the actors are done (as
    // host::component does), then the system must not wait for them itself.
    for (int i = 0; i < 1000 && sys.registry().running() > 0; ++i) {
      struct pollfd p {
        loop.wake_fd(), POLLIN, 0
      };
      ::poll(&p, 1, 10);
      loop.run();
    }
    BOOST_TEST(sys.registry().running() == 0u);
    sys.await_actors_before_shutdown(false);
  }
  BOOST_TEST(loop.run() == -1);  // no coordinator any more: a no-op
}
