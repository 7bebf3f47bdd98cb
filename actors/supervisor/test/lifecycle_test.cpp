// pod_state with init containers, sidecars and termination (preStop, stop
// signal, SIGKILL), in virtual time.
#include <csignal>
#include <fstream>

#include <boost/test/unit_test.hpp>

#include "deckhand/common/signals.hpp"
#include "deckhand/supervisor/pod_state.hpp"
#include "deckhand/supervisor/termination.hpp"

using namespace deckhand;
using namespace deckhand::supervisor;
using namespace std::chrono_literals;
using phase = pod_state::phase;

namespace {

const time_point t0 = wall_clock::from_time_t(1'700'000'000);

wire::container make_container(const std::string& name, bool sidecar = false) {
  wire::container c;
  c.name = name;
  c.image = "busybox:latest";
  if (sidecar)
    c.restart_policy = "Always";
  return c;
}

/// `init` names starting with "side" are sidecars.
pod_context make_ctx(const std::string& policy, std::vector<std::string> init,
                     std::vector<std::string> apps = {"app"}) {
  pod_context ctx;
  ctx.pod.metadata.name = "web";
  ctx.pod.metadata.namespace_ = "default";
  ctx.pod.metadata.uid = "uid-1";
  ctx.pod.spec.restart_policy = policy;
  ctx.pod.spec.termination_grace_period_seconds = 30;
  for (const auto& n : init)
    ctx.pod.spec.init_containers.push_back(make_container(n, n.rfind("side", 0) == 0));
  for (const auto& n : apps)
    ctx.pod.spec.containers.push_back(make_container(n));
  ctx.data_dir = "/data";
  ctx.pod_dir = "/data/runtime/pods/uid-1";
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

std::vector<std::string> launched(const std::vector<action_t>& actions) {
  std::vector<std::string> out;
  for (const auto& l : only<action::launch>(actions))
    out.push_back(l.name);
  return out;
}

/// "name:signal" for each kill, in order.
std::vector<std::string> kills(const std::vector<action_t>& actions) {
  std::vector<std::string> out;
  for (const auto& k : only<action::kill>(actions))
    out.push_back(k.name + ":" + std::to_string(k.signal));
  return out;
}

using strings = std::vector<std::string>;

/// Begins `p` and answers every probe with "not running".
void begin_fresh(pod_state& p, time_point now = t0) {
  p.begin(std::nullopt, std::nullopt, now);
  auto probes = only<action::probe>(p.take_actions());
  for (const auto& pr : probes)
    p.on_probed(pr.name, false, now);
}

const std::string term = std::to_string(SIGTERM);
const std::string kill9 = std::to_string(SIGKILL);

/// A pod with `init` done (sidecars running) and its apps running.
pod_state running_pod(const std::string& policy, std::vector<std::string> init,
                      std::vector<std::string> apps = {"app"}) {
  pod_state p(make_ctx(policy, init, apps));
  begin_fresh(p);
  for (const auto& n : init) {
    p.on_started(n, t0);
    if (n.rfind("side", 0) != 0)
      p.on_exited(n, exit_info{}, t0);
  }
  for (const auto& n : apps)
    p.on_started(n, t0);
  (void)p.take_actions();
  return p;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(pod_lifecycle)

BOOST_AUTO_TEST_CASE(init_containers_run_one_at_a_time_before_the_apps) {
  pod_state p(make_ctx("Always", {"init1", "init2"}, {"a", "b"}));
  p.begin(std::nullopt, std::nullopt, t0);
  auto a = p.take_actions();
  BOOST_TEST(only<action::probe>(a).size() == 4u);
  // Everything waits until the gate lets it through.
  BOOST_TEST(p.status_of("a")->state.waiting.reason == "PodInitializing");
  BOOST_TEST(p.status_of("init2")->state.waiting.reason == "PodInitializing");
  p.on_probed("a", false, t0);
  p.on_probed("b", false, t0);
  p.on_probed("init2", false, t0);
  BOOST_TEST(launched(p.take_actions()).empty());  // init1 not probed yet
  p.on_probed("init1", false, t0);
  a = p.take_actions();
  BOOST_TEST(launched(a) == strings{"init1"});
  BOOST_TEST(only<action::launch>(a)[0].bundle == "/data/runtime/pods/uid-1/containers/init1");
  BOOST_TEST(only<action::launch>(a)[0].log_file ==
             "/data/logs/pods/default_web_uid-1/init1/0.log");
  BOOST_TEST(p.status_of("init1")->state.waiting.reason == "ContainerCreating");

  p.on_started("init1", t0 + 1s);
  BOOST_TEST(launched(p.take_actions()).empty());  // running is not done
  p.on_exited("init1", exit_info{}, t0 + 2s);
  a = p.take_actions();
  BOOST_TEST(launched(a) == strings{"init2"});
  BOOST_TEST((p.phase_of("init1") == phase::terminated));
  BOOST_TEST(p.status_of("init1")->state.terminated.reason == "Completed");
  p.on_started("init2", t0 + 2s);
  p.on_exited("init2", exit_info{}, t0 + 3s);
  a = p.take_actions();
  BOOST_TEST(launched(a) == (strings{"a", "b"}));  // apps together
  BOOST_TEST(p.status_of("init2")->restart_count == 0);

  auto snap = p.snapshot();
  BOOST_REQUIRE(snap.init_containers.size() == 2u);
  BOOST_TEST(snap.init_containers[0].name == "init1");
  BOOST_TEST(snap.init_containers[1].name == "init2");
  BOOST_TEST(snap.init_containers[1].runtime_id == "uid-1-init2");
  BOOST_REQUIRE(snap.containers.size() == 2u);
  BOOST_TEST(snap.containers[0].name == "a");
  // An Always pod does not wind down because its init containers completed.
  BOOST_TEST(p.snapshot().state == "ready");
}

BOOST_AUTO_TEST_CASE(failing_init_container_is_retried_with_back_off) {
  for (std::string policy : {"OnFailure", "Always"}) {
    BOOST_TEST_CONTEXT("restartPolicy " << policy) {
      pod_state p(make_ctx(policy, {"init"}));
      begin_fresh(p);
      BOOST_TEST(launched(p.take_actions()) == strings{"init"});
      p.on_started("init", t0);
      p.on_exited("init", exit_info{true, 1, 0, {}, {}}, t0 + 1s);
      // The first retry at once, then CrashLoopBackOff.
      BOOST_TEST(launched(p.take_actions()) == strings{"init"});
      BOOST_TEST(p.status_of("init")->restart_count == 1);
      p.on_started("init", t0 + 1s);
      p.on_exited("init", exit_info{true, 1, 0, {}, {}}, t0 + 2s);
      BOOST_TEST(launched(p.take_actions()).empty());
      BOOST_TEST(p.status_of("init")->state.waiting.reason == "CrashLoopBackOff");
      BOOST_TEST(p.status_of("init")->last_state.terminated.exit_code == 1);
      BOOST_TEST((*p.next_wakeup() == t0 + 12s));
      BOOST_TEST(p.status_of("app")->state.waiting.reason == "PodInitializing");
      p.on_tick(t0 + 12s);
      BOOST_TEST(launched(p.take_actions()) == strings{"init"});
      BOOST_TEST(p.status_of("init")->restart_count == 2);
      p.on_started("init", t0 + 12s);
      p.on_exited("init", exit_info{}, t0 + 13s);
      BOOST_TEST(launched(p.take_actions()) == strings{"app"});
    }
  }
}

BOOST_AUTO_TEST_CASE(failing_init_container_under_never_fails_the_pod) {
  pod_state p(make_ctx("Never", {"side", "init", "later"}, {"a"}));
  begin_fresh(p);
  BOOST_TEST(launched(p.take_actions()) == strings{"side"});
  p.on_started("side", t0);
  BOOST_TEST(launched(p.take_actions()) == strings{"init"});
  p.on_started("init", t0);
  p.on_exited("init", exit_info{true, 3, 0, {}, {}}, t0 + 1s);
  auto a = p.take_actions();
  BOOST_TEST(launched(a).empty());
  // The sidecar is stopped: nothing else will run.
  BOOST_TEST(kills(a) == strings{"side:" + term});
  const auto* s = p.status_of("init");
  BOOST_TEST(s->state.terminated.exit_code == 3);
  BOOST_TEST(s->state.terminated.reason == "Error");
  BOOST_TEST(s->restart_count == 0);
  BOOST_TEST((p.phase_of("later") == phase::terminated));
  BOOST_TEST((p.phase_of("a") == phase::terminated));
  BOOST_TEST(p.status_of("a")->state.waiting.reason == "PodInitializing");
  p.on_exited("side", exit_info::from_wait_status(SIGTERM), t0 + 2s);
  BOOST_TEST((p.phase_of("side") == phase::terminated));  // not restarted
  p.on_tick(t0 + 1h);
  BOOST_TEST(launched(p.take_actions()).empty());
  BOOST_TEST(!p.next_wakeup().has_value());
  // The kubelet's stop later is answered at once.
  p.on_stop_request(5, 30, t0 + 1h);
  BOOST_TEST(only<action::stop_done>(p.take_actions()).size() == 1u);
}

BOOST_AUTO_TEST_CASE(sidecar_gates_the_next_container_until_started) {
  pod_state p(make_ctx("Never", {"side1", "side2"}, {"a"}));
  begin_fresh(p);
  BOOST_TEST(launched(p.take_actions()) == strings{"side1"});
  // A sidecar that crashes before it started blocks the way, and is
  // restarted although the pod's policy is Never.
  p.on_start_failed("side1", "boom", t0);
  BOOST_TEST(launched(p.take_actions()) == strings{"side1"});
  BOOST_TEST(p.status_of("side1")->restart_count == 1);
  p.on_started("side1", t0 + 1s);
  BOOST_TEST(launched(p.take_actions()) == strings{"side2"});
  p.on_started("side2", t0 + 1s);
  BOOST_TEST(launched(p.take_actions()) == strings{"a"});
  BOOST_TEST(p.status_of("side1")->state.is_running());
}

BOOST_AUTO_TEST_CASE(sidecar_is_restarted_whatever_the_pod_policy) {
  auto p = running_pod("Never", {"side"});
  p.on_exited("side", exit_info{}, t0 + 1s);  // even exit 0
  BOOST_TEST(launched(p.take_actions()) == strings{"side"});
  p.on_started("side", t0 + 1s);
  p.on_exited("side", exit_info{true, 2, 0, {}, {}}, t0 + 2s);
  BOOST_TEST((p.phase_of("side") == phase::backoff));
  p.on_tick(t0 + 12s);
  BOOST_TEST(launched(p.take_actions()) == strings{"side"});
  BOOST_TEST(p.status_of("side")->restart_count == 2);
  BOOST_TEST(p.status_of("app")->state.is_running());  // the app is left alone
}

BOOST_AUTO_TEST_CASE(completed_apps_stop_the_sidecars_in_reverse_order) {
  for (std::string policy : {"Never", "OnFailure"}) {
    BOOST_TEST_CONTEXT("restartPolicy " << policy) {
      auto p = running_pod(policy, {"side1", "init", "side2"}, {"a", "b"});
      p.on_exited("a", exit_info{}, t0 + 5s);
      BOOST_TEST(kills(p.take_actions()).empty());  // b still runs
      p.on_exited("b", exit_info{}, t0 + 6s);
      auto a = p.take_actions();
      BOOST_TEST(kills(a) == strings{"side2:" + term});
      p.on_exited("side2", exit_info::from_wait_status(SIGTERM), t0 + 7s);
      a = p.take_actions();
      BOOST_TEST(launched(a).empty());
      BOOST_TEST(kills(a) == strings{"side1:" + term});
      p.on_exited("side1", exit_info::from_wait_status(SIGTERM), t0 + 8s);
      BOOST_TEST((p.phase_of("side1") == phase::terminated));
      BOOST_TEST(!p.next_wakeup().has_value());
      BOOST_TEST(p.status_of("a")->state.terminated.reason == "Completed");
    }
  }
  // A sidecar that ignores SIGTERM is killed at the pod's grace period.
  auto p = running_pod("Never", {"side"});
  p.on_exited("app", exit_info{}, t0 + 5s);
  BOOST_TEST(kills(p.take_actions()) == strings{"side:" + term});
  BOOST_TEST((*p.next_wakeup() == t0 + 35s));
  p.on_tick(t0 + 35s);
  BOOST_TEST(kills(p.take_actions()) == strings{"side:" + kill9});
}

BOOST_AUTO_TEST_CASE(stop_terminates_apps_first_then_sidecars_last_first) {
  auto p = running_pod("Always", {"side1", "side2"}, {"a", "b"});
  p.on_stop_request(1, 30, t0 + 10s);
  auto a = p.take_actions();
  BOOST_TEST(std::holds_alternative<action::write_stop_marker>(a.front()));
  BOOST_TEST(kills(a) == (strings{"a:" + term, "b:" + term}));
  p.on_exited("a", exit_info::from_wait_status(SIGTERM), t0 + 11s);
  BOOST_TEST(kills(p.take_actions()).empty());
  p.on_exited("b", exit_info::from_wait_status(SIGTERM), t0 + 12s);
  BOOST_TEST(kills(p.take_actions()) == strings{"side2:" + term});
  // side2 uses up the rest of the grace period: killed at the deadline, and
  // side1 then gets no grace at all.
  p.on_tick(t0 + 40s);
  BOOST_TEST(kills(p.take_actions()) == strings{"side2:" + kill9});
  p.on_exited("side2", exit_info::from_wait_status(SIGKILL), t0 + 40s);
  a = p.take_actions();
  BOOST_TEST(kills(a) == (strings{"side1:" + term, "side1:" + kill9}));
  BOOST_TEST(only<action::stop_done>(a).empty());
  p.on_exited("side1", exit_info::from_wait_status(SIGKILL), t0 + 40s);
  a = p.take_actions();
  BOOST_TEST(only<action::stop_done>(a).size() == 1u);
  BOOST_TEST(p.snapshot().state == "stopped");
  BOOST_TEST(p.status_of("side1")->state.terminated.exit_code == 137);
}

BOOST_AUTO_TEST_CASE(stop_during_init_ends_the_running_init_container) {
  pod_state p(make_ctx("Always", {"side", "init"}, {"a"}));
  begin_fresh(p);
  p.on_started("side", t0);
  p.on_started("init", t0);
  (void)p.take_actions();
  p.on_stop_request(1, 30, t0 + 1s);
  BOOST_TEST(kills(p.take_actions()) == strings{"init:" + term});
  p.on_exited("init", exit_info::from_wait_status(SIGTERM), t0 + 2s);
  auto a = p.take_actions();
  BOOST_TEST(launched(a).empty());
  BOOST_TEST(kills(a) == strings{"side:" + term});
  p.on_exited("side", exit_info::from_wait_status(SIGTERM), t0 + 2s);
  BOOST_TEST(only<action::stop_done>(p.take_actions()).size() == 1u);
  BOOST_TEST((p.phase_of("a") == phase::terminated));
}

wire::lifecycle_handler exec_hook() {
  wire::lifecycle_handler h;
  h.exec = wire::exec_action{};
  h.exec->command = {"sh", "-c", "echo bye"};
  return h;
}

pod_context with_pre_stop(pod_context ctx, const std::string& name, wire::lifecycle_handler h) {
  for (auto* list : {&ctx.pod.spec.init_containers, &ctx.pod.spec.containers})
    for (auto& c : *list)
      if (c.name == name) {
        c.lifecycle_ = wire::lifecycle{};
        c.lifecycle_->pre_stop = h;
      }
  return ctx;
}

BOOST_AUTO_TEST_CASE(pre_stop_hook_runs_before_the_stop_signal) {
  pod_state p(with_pre_stop(make_ctx("Always", {}), "app", exec_hook()));
  begin_fresh(p);
  p.on_started("app", t0);
  (void)p.take_actions();
  p.on_stop_request(1, 30, t0 + 10s);
  auto a = p.take_actions();
  BOOST_TEST(kills(a).empty());
  auto hooks = only<action::run_hook>(a);
  BOOST_REQUIRE(hooks.size() == 1u);
  BOOST_TEST(hooks[0].name == "app");
  BOOST_TEST(hooks[0].runtime_id == "uid-1-app");
  BOOST_TEST((hooks[0].handler.exec->command == strings{"sh", "-c", "echo bye"}));
  BOOST_TEST(hooks[0].timeout.count() == 30000);
  BOOST_TEST((*p.next_wakeup() == t0 + 40s));
  p.on_hook_done("app", hooks[0].gen + 1, true, {}, t0 + 11s);  // not this run
  BOOST_TEST(kills(p.take_actions()).empty());
  p.on_hook_done("app", hooks[0].gen, true, {}, t0 + 12s);
  a = p.take_actions();
  BOOST_TEST(kills(a) == strings{"app:" + term});
  BOOST_TEST(p.status_of("app")->state.is_running());
  BOOST_TEST((*p.next_wakeup() == t0 + 40s));  // the hook's time counted
  p.on_tick(t0 + 40s);
  BOOST_TEST(kills(p.take_actions()) == strings{"app:" + kill9});
}

BOOST_AUTO_TEST_CASE(pre_stop_hook_still_running_at_the_deadline_gets_two_seconds) {
  pod_state p(with_pre_stop(make_ctx("Always", {}), "app", exec_hook()));
  begin_fresh(p);
  p.on_started("app", t0);
  (void)p.take_actions();
  p.on_stop_request(1, 5, t0);
  auto hooks = only<action::run_hook>(p.take_actions());
  BOOST_REQUIRE(hooks.size() == 1u);
  p.on_tick(t0 + 4s);
  BOOST_TEST(kills(p.take_actions()).empty());
  p.on_tick(t0 + 5s);
  BOOST_TEST(kills(p.take_actions()) == strings{"app:" + term});
  BOOST_TEST((*p.next_wakeup() == t0 + 7s));
  p.on_hook_done("app", hooks[0].gen, true, {}, t0 + 6s);  // too late: ignored
  BOOST_TEST(kills(p.take_actions()).empty());
  p.on_tick(t0 + 6s);
  BOOST_TEST(kills(p.take_actions()).empty());
  p.on_tick(t0 + 7s);
  BOOST_TEST(kills(p.take_actions()) == strings{"app:" + kill9});
  p.on_exited("app", exit_info::from_wait_status(SIGKILL), t0 + 7s);
  BOOST_TEST(only<action::stop_done>(p.take_actions()).size() == 1u);
  // A hook ending just before the deadline still leaves 2 s after the signal.
  pod_state q(with_pre_stop(make_ctx("Always", {}), "app", exec_hook()));
  begin_fresh(q);
  q.on_started("app", t0);
  (void)q.take_actions();
  q.on_stop_request(1, 5, t0);
  hooks = only<action::run_hook>(q.take_actions());
  q.on_hook_done("app", hooks[0].gen, true, {}, t0 + 4s);
  BOOST_TEST(kills(q.take_actions()) == strings{"app:" + term});
  BOOST_TEST((*q.next_wakeup() == t0 + 6s));
}

BOOST_AUTO_TEST_CASE(failed_pre_stop_hook_is_noted_and_the_stop_goes_on) {
  pod_state p(with_pre_stop(make_ctx("Always", {}), "app", exec_hook()));
  begin_fresh(p);
  p.on_started("app", t0);
  (void)p.take_actions();
  p.on_stop_request(1, 30, t0);
  auto hooks = only<action::run_hook>(p.take_actions());
  BOOST_REQUIRE(hooks.size() == 1u);
  p.on_hook_done("app", hooks[0].gen, false, "command exited with 7", t0 + 1s);
  auto a = p.take_actions();
  BOOST_TEST(kills(a) == strings{"app:" + term});
  auto snap = p.snapshot();
  BOOST_REQUIRE(snap.containers[0].notes.size() == 1u);
  const auto& n = snap.containers[0].notes[0];
  BOOST_TEST(n.type == "Warning");
  BOOST_TEST(n.reason == "FailedPreStopHook");
  BOOST_TEST(n.message.find("command exited with 7") != std::string::npos);
  BOOST_TEST(n.seq == 1u);
  BOOST_TEST(n.timestamp == "2023-11-14T22:13:21Z");
  // Notes survive a supervisor restart (they are in status.json).
  pod_state q(with_pre_stop(make_ctx("Always", {}), "app", exec_hook()));
  q.begin(p.document(), std::nullopt, t0 + 2s);
  BOOST_TEST(q.snapshot().containers[0].notes.size() == 1u);
}

BOOST_AUTO_TEST_CASE(sleep_pre_stop_is_timed_by_the_state_machine) {
  wire::lifecycle_handler h;
  h.sleep = wire::sleep_action{5};
  pod_state p(with_pre_stop(make_ctx("Always", {}), "app", h));
  begin_fresh(p);
  p.on_started("app", t0);
  (void)p.take_actions();
  p.on_stop_request(1, 30, t0);
  auto a = p.take_actions();
  BOOST_TEST(only<action::run_hook>(a).empty());
  BOOST_TEST(kills(a).empty());
  BOOST_TEST((*p.next_wakeup() == t0 + 5s));
  p.on_tick(t0 + 5s);
  BOOST_TEST(kills(p.take_actions()) == strings{"app:" + term});
  BOOST_TEST((*p.next_wakeup() == t0 + 30s));
  // A sleep longer than the grace period is cut at the deadline (+2 s).
  h.sleep->seconds = 100;
  pod_state q(with_pre_stop(make_ctx("Always", {}), "app", h));
  begin_fresh(q);
  q.on_started("app", t0);
  (void)q.take_actions();
  q.on_stop_request(1, 3, t0);
  BOOST_TEST((*q.next_wakeup() == t0 + 3s));
  q.on_tick(t0 + 3s);
  BOOST_TEST(kills(q.take_actions()) == strings{"app:" + term});
  q.on_tick(t0 + 5s);
  BOOST_TEST(kills(q.take_actions()) == strings{"app:" + kill9});
}

BOOST_AUTO_TEST_CASE(no_pre_stop_hook_without_grace) {
  pod_state p(with_pre_stop(make_ctx("Always", {}), "app", exec_hook()));
  begin_fresh(p);
  p.on_started("app", t0);
  (void)p.take_actions();
  p.on_stop_request(1, 0, t0);
  auto a = p.take_actions();
  BOOST_TEST(only<action::run_hook>(a).empty());
  BOOST_TEST(kills(a) == (strings{"app:" + term, "app:" + kill9}));
}

BOOST_AUTO_TEST_CASE(image_stop_signal_replaces_sigterm) {
  auto ctx = make_ctx("Always", {});
  ctx.stop_signals["app"] = SIGQUIT;
  pod_state p(ctx);
  begin_fresh(p);
  p.on_started("app", t0);
  (void)p.take_actions();
  p.on_stop_request(1, 30, t0);
  BOOST_TEST(kills(p.take_actions()) == strings{"app:" + std::to_string(SIGQUIT)});
  p.on_tick(t0 + 30s);
  BOOST_TEST(kills(p.take_actions()) == strings{"app:" + kill9});
}

BOOST_AUTO_TEST_CASE(stop_signal_names_and_bundle_annotation) {
  BOOST_TEST(*common::parse_signal("SIGQUIT") == SIGQUIT);
  BOOST_TEST(*common::parse_signal("quit") == SIGQUIT);
  BOOST_TEST(*common::parse_signal("3") == 3);
  BOOST_TEST(!common::parse_signal("SIGRTMAX+99"));
  BOOST_TEST(!common::parse_signal(""));
  BOOST_TEST(!common::parse_signal("999"));
  char tmpl[] = "/tmp/lifecycle_test.XXXXXX";
  std::filesystem::path dir = ::mkdtemp(tmpl);
  BOOST_TEST(bundle_stop_signal(dir) == SIGTERM);  // no config.json
  {
    std::ofstream(dir / "config.json")
        << R"({"ociVersion":"1.0.2","annotations":{"org.opencontainers.image.stopSignal":"SIGUSR1"}})";
  }
  BOOST_TEST(bundle_stop_signal(dir) == SIGUSR1);
  {
    std::ofstream(dir / "config.json")
        << R"({"annotations":{"org.opencontainers.image.stopSignal":"bogus"}})";
  }
  BOOST_TEST(bundle_stop_signal(dir) == SIGTERM);
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(restarted_supervisor_does_not_rerun_completed_init_containers) {
  pod_state first(make_ctx("Always", {"side", "init"}, {"a"}));
  begin_fresh(first);
  first.on_started("side", t0);
  first.on_started("init", t0);
  first.on_exited("init", exit_info{}, t0 + 1s);
  first.on_started("a", t0 + 1s);
  auto doc = first.document();
  BOOST_REQUIRE(doc.sandbox.init_containers.size() == 2u);

  // Round trip through status.json text.
  auto decoded = decode_status(encode_status(doc));
  BOOST_REQUIRE(decoded.ok());
  pod_state p(make_ctx("Always", {"side", "init"}, {"a"}));
  p.begin(*decoded, std::nullopt, t0 + 50s);
  (void)p.take_actions();
  p.on_probed("a", true, t0 + 50s);
  p.on_probed("init", false, t0 + 50s);
  // The sidecar died while the supervisor was down: restarted, and the
  // others are neither blocked nor rerun.
  p.on_probed("side", false, t0 + 50s);
  auto a = p.take_actions();
  BOOST_TEST(launched(a) == strings{"side"});
  BOOST_TEST((p.phase_of("init") == phase::terminated));
  BOOST_TEST(p.status_of("init")->state.terminated.reason == "Completed");
  BOOST_TEST((p.phase_of("a") == phase::running));
  BOOST_TEST(p.status_of("side")->restart_count == 1);

  // Killed in the middle of init: the completed one stays completed, the
  // next one is (re)launched.
  pod_state second(make_ctx("Never", {"one", "two"}, {"a"}));
  begin_fresh(second);
  second.on_started("one", t0);
  second.on_exited("one", exit_info{}, t0 + 1s);  // "two" launching
  pod_state q(make_ctx("Never", {"one", "two"}, {"a"}));
  q.begin(second.document(), std::nullopt, t0 + 5s);
  (void)q.take_actions();
  for (const char* n : {"a", "two", "one"})
    q.on_probed(n, false, t0 + 5s);
  BOOST_TEST(launched(q.take_actions()) == strings{"two"});
  BOOST_TEST(q.status_of("one")->restart_count == 0);
}

BOOST_AUTO_TEST_CASE(restarted_supervisor_continues_a_wind_down) {
  auto p = running_pod("OnFailure", {"side"});
  p.on_exited("app", exit_info{}, t0 + 5s);
  BOOST_TEST(kills(p.take_actions()) == strings{"side:" + term});
  pod_state q(make_ctx("OnFailure", {"side"}));
  q.begin(p.document(), std::nullopt, t0 + 6s);
  (void)q.take_actions();
  q.on_probed("app", false, t0 + 6s);
  q.on_probed("side", true, t0 + 6s);
  auto a = q.take_actions();
  BOOST_TEST(launched(a).empty());
  BOOST_TEST(kills(a) == strings{"side:" + term});
}

BOOST_AUTO_TEST_SUITE_END()
