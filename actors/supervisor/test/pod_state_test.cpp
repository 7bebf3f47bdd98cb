#include <csignal>

#include <boost/test/unit_test.hpp>

#include "deckhand/supervisor/pod_state.hpp"

using namespace deckhand;
using namespace deckhand::supervisor;
using namespace std::chrono_literals;
using phase = pod_state::phase;

namespace {

const time_point t0 = wall_clock::from_time_t(1'700'000'000);

pod_context make_ctx(const std::string& policy, std::vector<std::string> names = {"app"}) {
  pod_context ctx;
  ctx.pod.metadata.name = "web";
  ctx.pod.metadata.namespace_ = "default";
  ctx.pod.metadata.uid = "uid-1";
  ctx.pod.spec.restart_policy = policy;
  for (const auto& n : names) {
    wire::container c;
    c.name = n;
    c.image = "busybox:latest";
    ctx.pod.spec.containers.push_back(c);
  }
  ctx.data_dir = "/data";
  ctx.pod_dir = "/data/runtime/pods/uid-1";
  ctx.incarnation = 77;
  ctx.supervisor_pid = 1234;
  return ctx;
}

template <class A>
std::vector<A> only(const std::vector<action_t>& actions) {
  std::vector<A> out;
  for (const auto& a : actions)
    if (const auto* x = std::get_if<A>(&a))
      out.push_back(*x);
  return out;
}

template <class A>
bool has(const std::vector<action_t>& actions) {
  return !only<A>(actions).empty();
}

/// A pod whose containers have all been probed (not running) and started.
struct running_pod {
  pod_state p;
  explicit running_pod(const std::string& policy, std::vector<std::string> names = {"app"})
      : p(make_ctx(policy, names)) {
    p.begin(std::nullopt, std::nullopt, t0);
    (void)p.take_actions();
    for (const auto& n : names) {
      p.on_probed(n, false, t0);
      p.on_started(n, t0);
    }
    (void)p.take_actions();
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(pod_state_logic)

BOOST_AUTO_TEST_CASE(fresh_start_probes_then_launches_in_spec_order) {
  pod_state p(make_ctx("Always", {"first", "second"}));
  p.begin(std::nullopt, std::nullopt, t0);
  auto a = p.take_actions();
  auto probes = only<action::probe>(a);
  BOOST_REQUIRE(probes.size() == 2u);
  BOOST_TEST(probes[0].name == "first");
  BOOST_TEST(probes[0].runtime_id == "uid-1-first");
  BOOST_TEST(probes[1].name == "second");
  BOOST_TEST(has<action::persist>(a));

  p.on_probed("first", false, t0);
  p.on_probed("second", false, t0);
  a = p.take_actions();
  auto launches = only<action::launch>(a);
  BOOST_REQUIRE(launches.size() == 2u);
  BOOST_TEST(launches[0].name == "first");
  BOOST_TEST(launches[0].bundle == "/data/runtime/pods/uid-1/containers/first");
  BOOST_TEST(launches[0].log_file == "/data/logs/pods/default_web_uid-1/first/0.log");
  BOOST_TEST(p.status_of("first")->state.waiting.reason == "ContainerCreating");

  p.on_started("first", t0 + 1s);
  const auto* s = p.status_of("first");
  BOOST_TEST(s->state.is_running());
  BOOST_TEST(s->state.running.started_at == "2023-11-14T22:13:21Z");
  BOOST_TEST(s->started);
  BOOST_TEST(s->ready);
  BOOST_TEST(s->restart_count == 0);
  BOOST_TEST(s->container_id == "deckhand://uid-1-first");
  BOOST_TEST(s->image == "busybox:latest");
  BOOST_TEST(has<action::persist>(p.take_actions()));

  auto snap = p.snapshot();
  BOOST_TEST(snap.state == "ready");
  BOOST_TEST(snap.supervisor_pid == 1234);
  BOOST_TEST(snap.supervisor_incarnation == 77u);
  BOOST_REQUIRE(snap.containers.size() == 2u);
  BOOST_TEST(snap.containers[1].runtime_id == "uid-1-second");
}

BOOST_AUTO_TEST_CASE(first_restart_is_immediate_then_back_off) {
  running_pod rp("OnFailure");
  auto& p = rp.p;
  p.on_exited("app", exit_info{true, 1, 0, {}, {}}, t0 + 2s);
  auto a = p.take_actions();
  // Like the Go kubelet: no back-off before the first restart.
  auto launches = only<action::launch>(a);
  BOOST_REQUIRE(launches.size() == 1u);
  BOOST_TEST(launches[0].log_file.filename() == "1.log");
  BOOST_TEST(launches[0].log.log_file == launches[0].log_file);
  BOOST_TEST(launches[0].log.instance == 1);
  BOOST_TEST(launches[0].log.stdout_fifo == "/data/runtime/pods/uid-1/io/app.stdout");
  BOOST_TEST(launches[0].log.stderr_fifo == "/data/runtime/pods/uid-1/io/app.stderr");
  BOOST_TEST(has<action::persist>(a));
  const auto* s = p.status_of("app");
  BOOST_TEST(s->restart_count == 1);
  BOOST_TEST(s->state.waiting.reason == "ContainerCreating");
  BOOST_TEST(s->last_state.terminated.exit_code == 1);
  BOOST_TEST(s->last_state.terminated.reason == "Error");
  BOOST_TEST(s->last_state.terminated.started_at == "2023-11-14T22:13:20Z");
  BOOST_TEST(s->last_state.terminated.finished_at == "2023-11-14T22:13:22Z");
  BOOST_TEST(!s->ready);
  BOOST_TEST(!p.next_wakeup().has_value());
  p.on_started("app", t0 + 2s);
  BOOST_TEST(p.status_of("app")->state.is_running());
  BOOST_TEST(p.status_of("app")->last_state.terminated.exit_code == 1);

  // The second crash in a row waits 10s in CrashLoopBackOff.
  p.on_exited("app", exit_info{true, 1, 0, {}, {}}, t0 + 3s);
  a = p.take_actions();
  BOOST_TEST(!has<action::launch>(a));
  BOOST_TEST(has<action::persist>(a));
  s = p.status_of("app");
  BOOST_TEST((p.phase_of("app") == phase::backoff));
  BOOST_TEST(s->state.waiting.reason == "CrashLoopBackOff");
  BOOST_TEST(s->state.waiting.message ==
             "back-off 10s restarting failed container=app pod=web_default(uid-1)");
  BOOST_TEST(s->restart_count == 1);
  BOOST_REQUIRE(p.next_wakeup().has_value());
  BOOST_TEST((*p.next_wakeup() == t0 + 13s));

  p.on_tick(t0 + 12s);
  BOOST_TEST(!has<action::launch>(p.take_actions()));
  p.on_tick(t0 + 13s);
  launches = only<action::launch>(p.take_actions());
  BOOST_REQUIRE(launches.size() == 1u);
  BOOST_TEST(launches[0].log_file.filename() == "2.log");
  BOOST_TEST(p.status_of("app")->restart_count == 2);
}

BOOST_AUTO_TEST_CASE(on_failure_leaves_a_completed_container_terminated) {
  running_pod rp("OnFailure");
  rp.p.on_exited("app", exit_info{}, t0 + 1s);
  BOOST_TEST((rp.p.phase_of("app") == phase::terminated));
  BOOST_TEST(rp.p.status_of("app")->state.terminated.reason == "Completed");
  BOOST_TEST(!rp.p.next_wakeup().has_value());
}

BOOST_AUTO_TEST_CASE(never_leaves_a_failed_container_terminated) {
  running_pod rp("Never");
  rp.p.on_exited("app", exit_info{true, 3, 0, {}, {}}, t0 + 1s);
  BOOST_TEST((rp.p.phase_of("app") == phase::terminated));
  const auto* s = rp.p.status_of("app");
  BOOST_TEST(s->state.terminated.exit_code == 3);
  BOOST_TEST(s->state.terminated.reason == "Error");
  BOOST_TEST(s->restart_count == 0);
  BOOST_TEST(!rp.p.next_wakeup().has_value());
  rp.p.on_tick(t0 + 1h);
  BOOST_TEST(!has<action::launch>(rp.p.take_actions()));
}

BOOST_AUTO_TEST_CASE(always_restarts_even_a_completed_container) {
  running_pod rp("Always");
  rp.p.on_exited("app", exit_info{}, t0 + 1s);
  BOOST_TEST((rp.p.phase_of("app") == phase::launching));
  BOOST_TEST(rp.p.status_of("app")->last_state.terminated.reason == "Completed");
}

BOOST_AUTO_TEST_CASE(back_off_doubles_caps_and_resets) {
  running_pod rp("Always");
  auto& p = rp.p;
  time_point t = t0;
  std::vector<long> delays;
  for (int i = 0; i < 8; ++i) {
    auto exited = t + 1s;
    p.on_exited("app", exit_info{true, 1, 0, {}, {}}, exited);
    auto wake = p.next_wakeup().value_or(exited);
    delays.push_back(
        static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(wake - exited).count()));
    p.on_tick(wake);
    BOOST_TEST((p.phase_of("app") == phase::launching));
    p.on_started("app", wake);
    t = wake;
  }
  std::vector<long> want{0, 10, 20, 40, 80, 160, 300, 300};
  BOOST_TEST(delays == want, boost::test_tools::per_element());
  BOOST_TEST(p.status_of("app")->restart_count == 8);
  BOOST_TEST(p.status_of("app")->state.is_running());
  // Ran for ten minutes: the schedule starts over, with an immediate restart.
  p.on_exited("app", exit_info{true, 1, 0, {}, {}}, t + 600s);
  BOOST_TEST(!p.next_wakeup().has_value());
  BOOST_TEST((p.phase_of("app") == phase::launching));
  p.on_started("app", t + 600s);
  p.on_exited("app", exit_info{true, 1, 0, {}, {}}, t + 601s);
  BOOST_TEST((*p.next_wakeup() == t + 611s));
  BOOST_TEST(p.status_of("app")->state.waiting.message.find("back-off 10s") == 0u);
}

BOOST_AUTO_TEST_CASE(kill_by_signal_is_recorded) {
  running_pod rp("Never");
  rp.p.on_exited("app", exit_info::from_wait_status(SIGKILL), t0 + 1s);
  const auto& term = rp.p.status_of("app")->state.terminated;
  BOOST_TEST(term.exit_code == 137);
  BOOST_TEST(term.signal == 9);
  BOOST_TEST(term.reason == "Error");
}

BOOST_AUTO_TEST_CASE(oom_kill_is_reported_as_oom_killed) {
  running_pod rp("Always");
  auto e = exit_info::from_wait_status(SIGKILL);
  e.reason = "OOMKilled";  // what the runner sets when the cgroup counted an OOM kill
  rp.p.on_exited("app", e, t0 + 1s);
  const auto& term = rp.p.status_of("app")->last_state.terminated;
  BOOST_TEST(term.exit_code == 137);
  BOOST_TEST(term.reason == "OOMKilled");
  BOOST_TEST(rp.p.status_of("app")->restart_count == 1);
}

BOOST_AUTO_TEST_CASE(start_failure_follows_the_policy) {
  {
    pod_state p(make_ctx("Never"));
    p.begin(std::nullopt, std::nullopt, t0);
    p.on_probed("app", false, t0);
    p.on_start_failed("app", "exec: no such file", t0);
    const auto& term = p.status_of("app")->state.terminated;
    BOOST_TEST(term.reason == "StartError");
    BOOST_TEST(term.exit_code == 128);
    BOOST_TEST(term.message == "exec: no such file");
  }
  {
    pod_state p(make_ctx("Always"));
    p.begin(std::nullopt, std::nullopt, t0);
    p.on_probed("app", false, t0);
    p.on_start_failed("app", "boom", t0);
    BOOST_TEST((p.phase_of("app") == phase::launching));  // first retry at once
    p.on_start_failed("app", "boom", t0);
    BOOST_TEST((p.phase_of("app") == phase::backoff));
    BOOST_TEST(p.status_of("app")->last_state.terminated.reason == "StartError");
  }
}

BOOST_AUTO_TEST_CASE(restarted_supervisor_adopts_running_container) {
  running_pod first("Always");
  first.p.on_exited("app", exit_info{true, 1, 0, {}, {}}, t0 + 1s);
  first.p.on_tick(t0 + 11s);
  first.p.on_started("app", t0 + 11s);
  auto doc = first.p.document();
  BOOST_TEST(doc.sandbox.containers[0].status.restart_count == 1);

  pod_state p(make_ctx("Always"));
  p.begin(doc, std::nullopt, t0 + 100s);
  auto a = p.take_actions();
  BOOST_TEST(only<action::probe>(a).size() == 1u);
  p.on_probed("app", true, t0 + 100s);
  a = p.take_actions();
  BOOST_TEST(!has<action::launch>(a));
  BOOST_TEST(!has<action::kill>(a));
  const auto* s = p.status_of("app");
  BOOST_TEST((p.phase_of("app") == phase::running));
  BOOST_TEST(s->restart_count == 1);
  BOOST_TEST(s->state.running.started_at == "2023-11-14T22:13:31Z");
  BOOST_TEST(s->last_state.terminated.exit_code == 1);
}

BOOST_AUTO_TEST_CASE(container_gone_while_supervisor_was_down_is_unknown_exit) {
  running_pod first("OnFailure");
  auto doc = first.p.document();
  pod_state p(make_ctx("OnFailure"));
  p.begin(doc, std::nullopt, t0 + 50s);
  p.on_probed("app", false, t0 + 50s);
  const auto* s = p.status_of("app");
  // OnFailure restarts on 137 (the first time at once); the unknown exit
  // lands in lastState.
  BOOST_TEST((p.phase_of("app") == phase::launching));
  BOOST_TEST(s->last_state.terminated.exit_code == 137);
  BOOST_TEST(s->last_state.terminated.reason == "ContainerStatusUnknown");
  BOOST_TEST(s->last_state.terminated.message ==
             "the container exited while its supervisor was down; exit code unknown");
  BOOST_TEST(s->restart_count == 1);

  // An adopted container that exits later is reported the same way.
  pod_state q(make_ctx("Never"));
  q.begin(doc, std::nullopt, t0 + 50s);
  q.on_probed("app", true, t0 + 50s);
  q.on_exited("app", exit_info::unknown(), t0 + 60s);
  BOOST_TEST(q.status_of("app")->state.terminated.reason == "ContainerStatusUnknown");
  BOOST_TEST(q.status_of("app")->state.terminated.exit_code == 137);
}

BOOST_AUTO_TEST_CASE(back_off_survives_a_supervisor_restart) {
  running_pod first("Always");
  auto& p1 = first.p;
  p1.on_exited("app", exit_info{true, 1, 0, {}, {}}, t0 + 1s);  // restarted at once
  p1.on_started("app", t0 + 1s);
  p1.on_exited("app", exit_info{true, 1, 0, {}, {}}, t0 + 2s);  // 10s -> t0+12s
  auto doc = p1.document();

  pod_state p(make_ctx("Always"));
  p.begin(doc, std::nullopt, t0 + 5s);
  auto a = p.take_actions();
  auto probes = only<action::probe>(a);
  BOOST_REQUIRE(probes.size() == 1u);
  // Output left in the pipes belongs to the instance that died.
  BOOST_TEST(probes[0].log.log_file.filename() == "1.log");
  p.on_probed("app", false, t0 + 5s);
  BOOST_TEST((p.phase_of("app") == phase::backoff));
  BOOST_TEST(!has<action::launch>(p.take_actions()));
  BOOST_TEST((*p.next_wakeup() == t0 + 12s));
  p.on_tick(t0 + 12s);
  BOOST_TEST(has<action::launch>(p.take_actions()));
  BOOST_TEST(p.status_of("app")->restart_count == 2);
  p.on_started("app", t0 + 12s);
  p.on_exited("app", exit_info{true, 1, 0, {}, {}}, t0 + 13s);
  BOOST_TEST((*p.next_wakeup() == t0 + 33s));  // 20s: the schedule continued
}

BOOST_AUTO_TEST_CASE(terminated_container_stays_terminated_after_restart) {
  running_pod first("Never");
  first.p.on_exited("app", exit_info{true, 2, 0, {}, {}}, t0 + 1s);
  pod_state p(make_ctx("Never"));
  p.begin(first.p.document(), std::nullopt, t0 + 5s);
  p.on_probed("app", false, t0 + 5s);
  BOOST_TEST(!has<action::launch>(p.take_actions()));
  BOOST_TEST(p.status_of("app")->state.terminated.exit_code == 2);
}

BOOST_AUTO_TEST_CASE(interrupted_launch_is_retried_with_the_same_count) {
  running_pod first("Always");
  first.p.on_exited("app", exit_info{true, 1, 0, {}, {}}, t0 + 1s);
  first.p.on_tick(t0 + 11s);  // launching restart #1, persisted before runc runs
  auto doc = first.p.document();
  BOOST_TEST(doc.sandbox.containers[0].status.restart_count == 1);

  pod_state p(make_ctx("Always"));
  p.begin(doc, std::nullopt, t0 + 12s);
  (void)p.take_actions();
  p.on_probed("app", false, t0 + 12s);
  auto launches = only<action::launch>(p.take_actions());
  BOOST_REQUIRE(launches.size() == 1u);
  BOOST_TEST(launches[0].log_file.filename() == "1.log");
  BOOST_TEST(p.status_of("app")->restart_count == 1);
}

BOOST_AUTO_TEST_CASE(stop_terms_then_kills_at_the_deadline) {
  running_pod rp("Always", {"a", "b"});
  auto& p = rp.p;
  p.on_stop_request(7, 30, t0 + 10s);
  auto a = p.take_actions();
  // The marker before any signal.
  BOOST_REQUIRE(!a.empty());
  BOOST_TEST(std::holds_alternative<action::write_stop_marker>(a.front()));
  BOOST_TEST(only<action::write_stop_marker>(a)[0].marker.deadline_ms == to_epoch_ms(t0 + 40s));
  auto kills = only<action::kill>(a);
  BOOST_REQUIRE(kills.size() == 2u);
  BOOST_TEST(kills[0].signal == SIGTERM);
  BOOST_TEST(!kills[0].all);
  BOOST_TEST(p.snapshot().state == "stopping");
  BOOST_TEST((*p.next_wakeup() == t0 + 40s));

  p.on_exited("a", exit_info::from_wait_status(SIGTERM), t0 + 11s);
  BOOST_TEST((p.phase_of("a") == phase::terminated));  // no restart while stopping
  BOOST_TEST(!has<action::stop_done>(p.take_actions()));

  p.on_tick(t0 + 39s);
  BOOST_TEST(!has<action::kill>(p.take_actions()));
  p.on_tick(t0 + 40s);
  kills = only<action::kill>(p.take_actions());
  BOOST_REQUIRE(kills.size() == 1u);
  BOOST_TEST(kills[0].name == "b");
  BOOST_TEST(kills[0].signal == SIGKILL);
  BOOST_TEST(kills[0].all);

  p.on_exited("b", exit_info::from_wait_status(SIGKILL), t0 + 40s);
  a = p.take_actions();
  auto done = only<action::stop_done>(a);
  BOOST_REQUIRE(done.size() == 1u);
  BOOST_TEST(done[0].tokens == std::vector<uint64_t>{7});
  BOOST_TEST(p.snapshot().state == "stopped");
  BOOST_TEST(p.status_of("b")->state.terminated.exit_code == 137);
  BOOST_TEST(!p.next_wakeup().has_value());

  // Stop is idempotent: answered at once.
  p.on_stop_request(8, 30, t0 + 50s);
  done = only<action::stop_done>(p.take_actions());
  BOOST_REQUIRE(done.size() == 1u);
  BOOST_TEST(done[0].tokens == std::vector<uint64_t>{8});
}

BOOST_AUTO_TEST_CASE(stop_ends_back_off_and_pending_launches) {
  running_pod rp("Always", {"a", "b"});
  auto& p = rp.p;
  p.on_exited("a", exit_info{true, 1, 0, {}, {}}, t0 + 1s);
  p.on_exited("b", exit_info{true, 1, 0, {}, {}}, t0 + 1s);
  p.on_tick(t0 + 11s);  // both launching
  p.on_started("a", t0 + 11s);
  (void)p.take_actions();
  p.on_stop_request(1, 0, t0 + 11s);
  auto a = p.take_actions();
  // Grace 0: TERM and, at once, KILL.
  auto kills = only<action::kill>(a);
  BOOST_TEST(kills.size() == 2u);
  BOOST_TEST(kills.back().signal == SIGKILL);
  // "b" starts after the stop: killed right away, never left running.
  p.on_started("b", t0 + 12s);
  kills = only<action::kill>(p.take_actions());
  BOOST_REQUIRE(kills.size() == 1u);
  BOOST_TEST(kills[0].name == "b");
  BOOST_TEST(kills[0].signal == SIGKILL);
  p.on_exited("a", exit_info::from_wait_status(SIGKILL), t0 + 12s);
  p.on_exited("b", exit_info::from_wait_status(SIGKILL), t0 + 12s);
  BOOST_TEST(has<action::stop_done>(p.take_actions()));
  p.on_tick(t0 + 1h);
  BOOST_TEST(!has<action::launch>(p.take_actions()));

  // A container waiting out its back-off ends with its last termination.
  running_pod rq("Always");
  rq.p.on_exited("app", exit_info{true, 4, 0, {}, {}}, t0 + 1s);
  rq.p.on_started("app", t0 + 1s);
  rq.p.on_exited("app", exit_info{true, 4, 0, {}, {}}, t0 + 2s);
  BOOST_TEST((rq.p.phase_of("app") == phase::backoff));
  rq.p.on_stop_request(2, 30, t0 + 3s);
  BOOST_TEST(has<action::stop_done>(rq.p.take_actions()));
  BOOST_TEST(rq.p.status_of("app")->state.terminated.exit_code == 4);
}

BOOST_AUTO_TEST_CASE(restarted_supervisor_finishes_a_stop) {
  running_pod first("Always", {"a", "b"});
  auto doc = first.p.document();
  stop_marker m{30, to_epoch_ms(t0 + 40s)};

  pod_state p(make_ctx("Always", {"a", "b"}));
  p.begin(doc, m, t0 + 20s);
  (void)p.take_actions();
  p.on_probed("a", true, t0 + 20s);
  auto kills = only<action::kill>(p.take_actions());
  BOOST_REQUIRE(kills.size() == 1u);
  BOOST_TEST(kills[0].signal == SIGTERM);
  p.on_probed("b", false, t0 + 20s);  // gone: unknown exit, never restarted
  BOOST_TEST(!has<action::launch>(p.take_actions()));
  BOOST_TEST(p.status_of("b")->state.terminated.reason == "ContainerStatusUnknown");
  BOOST_TEST((*p.next_wakeup() == t0 + 40s));
  p.on_tick(t0 + 40s);
  BOOST_TEST(only<action::kill>(p.take_actions()).at(0).signal == SIGKILL);
  p.on_exited("a", exit_info::unknown(), t0 + 41s);
  BOOST_TEST(p.snapshot().state == "stopped");
  p.on_stop_request(3, 30, t0 + 42s);
  BOOST_TEST(has<action::stop_done>(p.take_actions()));
}

BOOST_AUTO_TEST_CASE(fresh_pod_with_stop_marker_starts_nothing) {
  pod_state p(make_ctx("Always"));
  p.begin(std::nullopt, stop_marker{}, t0);
  (void)p.take_actions();
  p.on_probed("app", false, t0);
  BOOST_TEST(!has<action::launch>(p.take_actions()));
  BOOST_TEST(p.stopped());
}

BOOST_AUTO_TEST_SUITE_END()
