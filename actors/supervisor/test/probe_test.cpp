#include <csignal>

#include <boost/test/unit_test.hpp>

#include "deckhand/supervisor/pod_state.hpp"
#include "deckhand/supervisor/probe.hpp"

using namespace deckhand;
using namespace deckhand::supervisor;
using namespace std::chrono_literals;

namespace {

const time_point t0 = wall_clock::from_time_t(1'700'000'000);

wire::probe exec_probe(int period = 10, int failure = 3, int success = 1, int delay = 0,
                       int timeout = 1) {
  wire::probe p;
  wire::exec_action e;
  e.command = {"cat", "/tmp/healthy"};
  p.exec = e;
  p.period_seconds = period;
  p.failure_threshold = failure;
  p.success_threshold = success;
  p.initial_delay_seconds = delay;
  p.timeout_seconds = timeout;
  return p;
}

bool has_kind(const std::vector<probe_request>& v, probe_kind k) {
  for (const auto& r : v)
    if (r.kind == k)
      return true;
  return false;
}

const auto ok = handler_outcome::success;
const auto bad = handler_outcome::failure;

}  // namespace

BOOST_AUTO_TEST_SUITE(probe_state_machine)

// Kubernetes: livenessProbe kills the container after failureThreshold
// consecutive failures; a success in between starts the count over.
BOOST_AUTO_TEST_CASE(liveness_kills_after_consecutive_failures) {
  wire::container c;
  c.liveness_probe = exec_probe(10, 3);
  container_probes p(c);
  p.on_running(t0, t0);
  BOOST_TEST(p.started());
  BOOST_TEST(p.ready());
  auto t = t0;
  auto run = [&](handler_outcome o) {
    auto due = p.due(t);
    BOOST_REQUIRE_EQUAL(due.size(), 1u);
    auto v = p.on_result(probe_kind::liveness, due[0].instance, o, t);
    t += 10s;
    return v;
  };
  BOOST_TEST(run(bad).failed_attempt);
  BOOST_TEST(!run(bad).kill);
  BOOST_TEST(!run(ok).kill);
  BOOST_TEST(!run(bad).kill);
  BOOST_TEST(!run(bad).kill);
  auto v = run(bad);
  BOOST_TEST(v.kill);
  BOOST_TEST(v.failed_attempt);
  // On hold until the container is replaced.
  BOOST_TEST(p.due(t + 100s).empty());
  BOOST_TEST(!p.next_wakeup().has_value());
}

// Kubernetes: the first probe runs initialDelaySeconds after the start, then
// every periodSeconds; at most one run of a probe is in flight.
BOOST_AUTO_TEST_CASE(initial_delay_and_period) {
  wire::container c;
  c.liveness_probe = exec_probe(5, 3, 1, 7, 2);
  container_probes p(c);
  p.on_running(t0, t0);
  BOOST_TEST(p.due(t0 + 6s).empty());
  BOOST_TEST((*p.next_wakeup() == t0 + 7s));
  auto due = p.due(t0 + 7s);
  BOOST_REQUIRE_EQUAL(due.size(), 1u);
  BOOST_TEST(due[0].timeout.count() == 2000);
  // In flight: nothing more, however long it takes.
  BOOST_TEST(p.due(t0 + 30s).empty());
  BOOST_TEST(!p.next_wakeup().has_value());
  p.on_result(probe_kind::liveness, due[0].instance, ok, t0 + 8s);
  BOOST_TEST((*p.next_wakeup() == t0 + 12s));
  BOOST_TEST(p.due(t0 + 11s).empty());
  BOOST_TEST(p.due(t0 + 12s).size() == 1u);
}

// Kubernetes: a startupProbe holds liveness and readiness back, and the
// container is not `started`, until it succeeds; it never runs again after.
BOOST_AUTO_TEST_CASE(startup_gates_liveness_and_readiness) {
  wire::container c;
  c.startup_probe = exec_probe(1, 30);
  c.liveness_probe = exec_probe(1, 1);
  c.readiness_probe = exec_probe(1, 1);
  container_probes p(c);
  p.on_running(t0, t0);
  BOOST_TEST(!p.started());
  BOOST_TEST(!p.ready());
  auto due = p.due(t0);
  BOOST_REQUIRE_EQUAL(due.size(), 1u);
  BOOST_TEST((due[0].kind == probe_kind::startup));
  auto v = p.on_result(probe_kind::startup, due[0].instance, bad, t0);
  BOOST_TEST(!v.kill);  // 1 of 30
  BOOST_TEST(!p.started());
  due = p.due(t0 + 1s);
  BOOST_REQUIRE_EQUAL(due.size(), 1u);
  BOOST_TEST((due[0].kind == probe_kind::startup));
  v = p.on_result(probe_kind::startup, due[0].instance, ok, t0 + 1s);
  BOOST_TEST(v.changed);
  BOOST_TEST(p.started());
  BOOST_TEST(!p.ready());  // readiness has not passed yet
  due = p.due(t0 + 1s);
  BOOST_TEST(due.size() == 2u);
  BOOST_TEST(has_kind(due, probe_kind::liveness));
  BOOST_TEST(has_kind(due, probe_kind::readiness));
  BOOST_TEST(!has_kind(p.due(t0 + 100s), probe_kind::startup));
}

// Kubernetes: a startup probe that fails failureThreshold times kills the
// container, like liveness.
BOOST_AUTO_TEST_CASE(startup_failure_kills) {
  wire::container c;
  c.startup_probe = exec_probe(1, 2);
  c.liveness_probe = exec_probe(1, 1);
  container_probes p(c);
  p.on_running(t0, t0);
  auto d = p.due(t0);
  BOOST_TEST(!p.on_result(probe_kind::startup, d[0].instance, bad, t0).kill);
  d = p.due(t0 + 1s);
  auto v = p.on_result(probe_kind::startup, d[0].instance, bad, t0 + 1s);
  BOOST_TEST(v.kill);
  BOOST_TEST(!p.started());
  BOOST_TEST(p.due(t0 + 10s).empty());
}

// Kubernetes: readiness starts as failure, needs successThreshold
// consecutive successes to become ready and failureThreshold failures to
// become unready again; without a readiness probe a started container is
// ready.
BOOST_AUTO_TEST_CASE(readiness_thresholds) {
  wire::container c;
  c.readiness_probe = exec_probe(1, 2, 2);
  container_probes p(c);
  p.on_running(t0, t0);
  BOOST_TEST(p.started());
  BOOST_TEST(!p.ready());
  auto t = t0;
  auto run = [&](handler_outcome o) {
    auto due = p.due(t);
    BOOST_REQUIRE_EQUAL(due.size(), 1u);
    auto v = p.on_result(probe_kind::readiness, due[0].instance, o, t);
    t += 1s;
    return v;
  };
  BOOST_TEST(!run(ok).changed);
  BOOST_TEST(!p.ready());
  BOOST_TEST(run(ok).changed);
  BOOST_TEST(p.ready());
  auto v = run(bad);
  BOOST_TEST(v.failed_attempt);
  BOOST_TEST(!v.kill);
  BOOST_TEST(p.ready());
  BOOST_TEST(run(bad).changed);
  BOOST_TEST(!p.ready());
  BOOST_TEST(!run(bad).kill);  // readiness never kills

  wire::container plain;
  container_probes none(plain);
  BOOST_TEST(!none.any());
  none.on_running(t0, t0);
  BOOST_TEST(none.ready());
  BOOST_TEST(none.due(t0).empty());
}

// Kubernetes: results that could not be obtained (probe errors) are thrown
// away, not counted.
BOOST_AUTO_TEST_CASE(unknown_results_do_not_count) {
  wire::container c;
  c.liveness_probe = exec_probe(1, 1);
  container_probes p(c);
  p.on_running(t0, t0);
  auto d = p.due(t0);
  auto v = p.on_result(probe_kind::liveness, d[0].instance, handler_outcome::unknown, t0);
  BOOST_TEST(!v.counted);
  BOOST_TEST(!v.kill);
  BOOST_TEST(p.due(t0 + 1s).size() == 1u);
}

// Kubernetes: a restarted container starts its probes over (initial delay,
// counters, not ready); results for the previous instance are dropped.
BOOST_AUTO_TEST_CASE(reset_after_restart) {
  wire::container c;
  c.liveness_probe = exec_probe(1, 2, 1, 5);
  c.readiness_probe = exec_probe(1, 1);
  container_probes p(c);
  p.on_running(t0, t0);
  auto d = p.due(t0);
  BOOST_REQUIRE_EQUAL(d.size(), 1u);  // readiness; liveness waits for its delay
  BOOST_TEST((d[0].kind == probe_kind::readiness));
  auto r = p.due(t0 + 5s);
  BOOST_REQUIRE_EQUAL(r.size(), 1u);  // readiness is still in flight
  BOOST_TEST((r[0].kind == probe_kind::liveness));
  auto old = r[0].instance;
  p.on_result(probe_kind::liveness, old, bad, t0 + 5s);
  p.on_stopped();
  BOOST_TEST(!p.ready());
  BOOST_TEST(p.due(t0 + 6s).empty());
  p.on_running(t0 + 10s, t0 + 10s);
  // A late answer for the old instance changes nothing.
  auto v = p.on_result(probe_kind::liveness, old, bad, t0 + 10s);
  BOOST_TEST(!v.counted);
  BOOST_TEST(!has_kind(p.due(t0 + 14s), probe_kind::liveness));
  d = p.due(t0 + 15s);
  BOOST_REQUIRE(has_kind(d, probe_kind::liveness));
  for (const auto& q : d)
    if (q.kind == probe_kind::liveness)
      BOOST_TEST(!p.on_result(q.kind, q.instance, bad, t0 + 15s).kill);  // 1 of 2 again
}

// A previous supervisor's started/ready carry over to the same instance.
BOOST_AUTO_TEST_CASE(resumed_instance_keeps_started_and_ready) {
  wire::container c;
  c.startup_probe = exec_probe(1, 3);
  c.readiness_probe = exec_probe(1, 3);
  container_probes p(c);
  p.on_running(t0, t0 + 60s, true, true, true);
  BOOST_TEST(p.started());
  BOOST_TEST(p.ready());
  auto d = p.due(t0 + 60s);
  BOOST_TEST(!has_kind(d, probe_kind::startup));
  BOOST_TEST(has_kind(d, probe_kind::readiness));
}

BOOST_AUTO_TEST_SUITE_END()

// -- the probes inside pod_state -----------------------------------------------------

namespace {

pod_context probe_ctx(const std::string& policy, const wire::container& c) {
  pod_context ctx;
  ctx.pod.metadata.name = "web";
  ctx.pod.metadata.namespace_ = "default";
  ctx.pod.metadata.uid = "uid-1";
  ctx.pod.spec.restart_policy = policy;
  ctx.pod.spec.termination_grace_period_seconds = 5;
  ctx.pod.spec.containers.push_back(c);
  ctx.data_dir = "/data";
  ctx.pod_dir = "/data/runtime/pods/uid-1";
  ctx.pod_ip = "10.88.0.5";
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

wire::container app(const std::string& name = "app") {
  wire::container c;
  c.name = name;
  c.image = "busybox";
  return c;
}

handler_result result_of(handler_outcome o, std::string msg = {}) {
  handler_result r;
  r.outcome = o;
  r.message = std::move(msg);
  return r;
}

/// Starts the pod and returns the first actions after the start.
std::vector<action_t> start(pod_state& p, const std::string& name = "app", time_point t = t0) {
  p.begin(std::nullopt, std::nullopt, t);
  (void)p.take_actions();
  p.on_probed(name, false, t);
  (void)p.take_actions();
  p.on_started(name, t);
  return p.take_actions();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(pod_state_probes)

// Kubernetes: a failing liveness probe records Unhealthy for each failure,
// then Killing, and the container is stopped (stop signal) and restarted
// per restartPolicy, restartCount growing.
BOOST_AUTO_TEST_CASE(liveness_failure_restarts_container) {
  auto c = app();
  c.liveness_probe = exec_probe(1, 2);
  pod_state p(probe_ctx("Always", c));
  auto acts = start(p);
  auto probes = only<action::run_probe>(acts);
  BOOST_REQUIRE_EQUAL(probes.size(), 1u);
  BOOST_TEST(probes[0].what.exec.has_value());
  BOOST_TEST(probes[0].target.pod_ip == "10.88.0.5");
  BOOST_TEST(probes[0].timeout.count() == 1000);

  p.on_probe_result("app", probes[0].kind, probes[0].instance,
                    result_of(bad, "cat: can't open '/tmp/healthy'"), t0);
  acts = p.take_actions();
  BOOST_TEST(only<action::kill>(acts).empty());
  BOOST_TEST((*p.next_wakeup() == t0 + 1s));
  p.on_tick(t0 + 1s);
  probes = only<action::run_probe>(p.take_actions());
  BOOST_REQUIRE_EQUAL(probes.size(), 1u);
  p.on_probe_result("app", probes[0].kind, probes[0].instance, result_of(bad, "nope"), t0 + 1s);
  acts = p.take_actions();
  auto kills = only<action::kill>(acts);
  BOOST_REQUIRE_EQUAL(kills.size(), 1u);
  BOOST_TEST(kills[0].signal == SIGTERM);

  auto snap = p.snapshot();
  const auto& notes = snap.containers.at(0).notes;
  BOOST_REQUIRE_EQUAL(notes.size(), 3u);
  BOOST_TEST(notes[0].reason == "Unhealthy");
  BOOST_TEST(notes[0].type == "Warning");
  BOOST_TEST(notes[0].message == "Liveness probe failed: cat: can't open '/tmp/healthy'");
  BOOST_TEST(notes[2].reason == "Killing");
  BOOST_TEST(notes[2].type == "Normal");
  BOOST_TEST(notes[2].message == "Container app failed liveness probe, will be restarted");
  BOOST_TEST(notes[0].seq == 1u);
  BOOST_TEST(notes[2].seq == 3u);

  // No more probes of the dying instance; SIGKILL at the grace deadline.
  p.on_tick(t0 + 6s);
  acts = p.take_actions();
  BOOST_TEST(only<action::run_probe>(acts).empty());
  kills = only<action::kill>(acts);
  BOOST_REQUIRE_EQUAL(kills.size(), 1u);
  BOOST_TEST(kills[0].signal == SIGKILL);

  exit_info e;
  e.code = 137;
  e.signal = SIGKILL;
  p.on_exited("app", e, t0 + 6s);
  acts = p.take_actions();
  BOOST_TEST(only<action::launch>(acts).size() == 1u);
  BOOST_TEST(p.status_of("app")->restart_count == 1);
  BOOST_TEST(p.status_of("app")->last_state.terminated.exit_code == 137);
  // The new instance is probed afresh; the old instance's answer is dropped.
  p.on_started("app", t0 + 7s);
  probes = only<action::run_probe>(p.take_actions());
  BOOST_REQUIRE_EQUAL(probes.size(), 1u);
  p.on_probe_result("app", probe_kind::liveness, probes[0].instance - 1, result_of(bad, "old"),
                    t0 + 7s);
  BOOST_TEST(p.snapshot().containers.at(0).notes.size() == 3u);
}

// Kubernetes: restartPolicy Never: the Killing message does not promise a
// restart and the container stays terminated.
BOOST_AUTO_TEST_CASE(liveness_failure_under_never) {
  auto c = app();
  c.liveness_probe = exec_probe(1, 1);
  pod_state p(probe_ctx("Never", c));
  auto probes = only<action::run_probe>(start(p));
  BOOST_REQUIRE_EQUAL(probes.size(), 1u);
  p.on_probe_result("app", probes[0].kind, probes[0].instance, result_of(bad, "x"), t0);
  (void)p.take_actions();
  BOOST_TEST(p.snapshot().containers.at(0).notes.back().message ==
             "Container app failed liveness probe");
  exit_info e;
  e.code = 143;
  e.signal = SIGTERM;
  p.on_exited("app", e, t0 + 1s);
  BOOST_TEST((p.phase_of("app") == pod_state::phase::terminated));
}

// Kubernetes: readiness sets the container's `ready`; no readiness probe:
// ready once running and started.
BOOST_AUTO_TEST_CASE(readiness_toggles_ready) {
  auto c = app();
  c.readiness_probe = exec_probe(1, 1);
  pod_state p(probe_ctx("Always", c));
  auto probes = only<action::run_probe>(start(p));
  BOOST_TEST(p.status_of("app")->started);
  BOOST_TEST(!p.status_of("app")->ready);
  BOOST_REQUIRE_EQUAL(probes.size(), 1u);
  p.on_probe_result("app", probes[0].kind, probes[0].instance, result_of(ok), t0);
  auto acts = p.take_actions();
  BOOST_TEST(p.status_of("app")->ready);
  BOOST_TEST(!only<action::persist>(acts).empty());
  p.on_tick(t0 + 1s);
  probes = only<action::run_probe>(p.take_actions());
  BOOST_REQUIRE_EQUAL(probes.size(), 1u);
  p.on_probe_result("app", probes[0].kind, probes[0].instance,
                    result_of(bad, "HTTP probe failed with statuscode: 404"), t0 + 1s);
  acts = p.take_actions();
  BOOST_TEST(!p.status_of("app")->ready);
  BOOST_TEST(only<action::kill>(acts).empty());
  BOOST_TEST(p.snapshot().containers.at(0).notes.back().message ==
             "Readiness probe failed: HTTP probe failed with statuscode: 404");

  pod_state plain(probe_ctx("Always", app()));
  BOOST_TEST(only<action::run_probe>(start(plain)).empty());
  BOOST_TEST(plain.status_of("app")->ready);
  BOOST_TEST(plain.status_of("app")->started);
}

// Kubernetes: `started` stays false until the startup probe succeeds.
BOOST_AUTO_TEST_CASE(startup_probe_sets_started) {
  auto c = app();
  c.startup_probe = exec_probe(1, 5);
  c.liveness_probe = exec_probe(1, 1);
  pod_state p(probe_ctx("Always", c));
  auto probes = only<action::run_probe>(start(p));
  BOOST_REQUIRE_EQUAL(probes.size(), 1u);
  BOOST_TEST((probes[0].kind == probe_kind::startup));
  BOOST_TEST(!p.status_of("app")->started);
  BOOST_TEST(!p.status_of("app")->ready);
  p.on_probe_result("app", probes[0].kind, probes[0].instance, result_of(ok), t0);
  probes = only<action::run_probe>(p.take_actions());
  BOOST_TEST(p.status_of("app")->started);
  BOOST_TEST(p.status_of("app")->ready);
  BOOST_REQUIRE_EQUAL(probes.size(), 1u);
  BOOST_TEST((probes[0].kind == probe_kind::liveness));
}

// Notes and readiness survive a supervisor restart (status.json); the
// adopted instance keeps its `ready` and its note numbering goes on.
BOOST_AUTO_TEST_CASE(notes_survive_supervisor_restart) {
  auto c = app();
  c.readiness_probe = exec_probe(1, 1);
  pod_state p(probe_ctx("Always", c));
  auto probes = only<action::run_probe>(start(p));
  p.on_probe_result("app", probes[0].kind, probes[0].instance, result_of(bad, "first"), t0);
  p.on_tick(t0 + 1s);
  probes = only<action::run_probe>(p.take_actions());
  p.on_probe_result("app", probes[0].kind, probes[0].instance, result_of(ok), t0 + 1s);
  BOOST_TEST(p.status_of("app")->ready);
  auto doc = decode_status(encode_status(p.document()));
  BOOST_REQUIRE(doc);

  pod_state q(probe_ctx("Always", c));
  q.begin(*doc, std::nullopt, t0 + 10s);
  (void)q.take_actions();
  q.on_probed("app", true, t0 + 10s);
  probes = only<action::run_probe>(q.take_actions());
  BOOST_TEST(q.status_of("app")->ready);
  BOOST_REQUIRE_EQUAL(probes.size(), 1u);
  q.on_probe_result("app", probes[0].kind, probes[0].instance, result_of(bad, "second"), t0 + 10s);
  const auto notes = q.snapshot().containers.at(0).notes;
  BOOST_REQUIRE_EQUAL(notes.size(), 2u);
  BOOST_TEST(notes[0].message == "Readiness probe failed: first");
  BOOST_TEST(notes[1].seq == 2u);
  BOOST_TEST(!q.status_of("app")->ready);
}

// A stopping pod runs no probes.
BOOST_AUTO_TEST_CASE(no_probes_while_stopping) {
  auto c = app();
  c.liveness_probe = exec_probe(1, 1);
  pod_state p(probe_ctx("Always", c));
  auto probes = only<action::run_probe>(start(p));
  p.on_stop_request(1, 5, t0);
  (void)p.take_actions();
  p.on_probe_result("app", probes[0].kind, probes[0].instance, result_of(bad, "x"), t0);
  p.on_tick(t0 + 1s);
  auto acts = p.take_actions();
  BOOST_TEST(only<action::run_probe>(acts).empty());
  BOOST_TEST(p.snapshot().containers.at(0).notes.empty());
}

BOOST_AUTO_TEST_SUITE_END()
