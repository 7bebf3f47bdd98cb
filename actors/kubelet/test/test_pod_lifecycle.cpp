#define BOOST_TEST_MODULE deckhand_kubelet_pod_lifecycle
#include <boost/test/unit_test.hpp>

/// Pod phases, conditions, QoS classes, grace periods and the active deadline
/// as the Go kubelet computes them (getPhase, generateAPIPodStatus,
/// ComputePodQOS, calculateEffectiveGracePeriod, activeDeadlineHandler).
/// Pure functions: no actors, no time passes.

#include <chrono>
#include <string>
#include <vector>

#include "container_records.hpp"
#include "deckhand/kubelet/admission.hpp"
#include "deckhand/kubelet/pod_lifecycle.hpp"
#include "deckhand/kubelet/pod_status.hpp"

using namespace deckhand;
using namespace deckhand::kubelet;
using deckhand::kubelet::test::exited;
using deckhand::kubelet::test::running;
using namespace std::chrono_literals;

namespace {

wire::container container(const std::string& name, const std::string& restart_policy = {}) {
  wire::container c;
  c.name = name;
  c.image = "busybox:test";
  c.restart_policy = restart_policy;
  return c;
}

wire::pod make_pod(const std::string& policy, std::vector<std::string> apps = {"app"},
                   std::vector<wire::container> inits = {}) {
  wire::pod p;
  p.metadata.name = "p";
  p.metadata.namespace_ = "default";
  p.metadata.uid = "u";
  p.spec.restart_policy = policy;
  for (const auto& n : apps)
    p.spec.containers.push_back(container(n));
  p.spec.init_containers = std::move(inits);
  return p;
}

/// Waiting to restart after an exit (CrashLoopBackOff).
wire::container_record backing_off(const std::string& name, int code) {
  wire::container_record r;
  r.name = name;
  r.status.state.waiting.reason = "CrashLoopBackOff";
  r.status.last_state = exited(name, code).status.state;
  r.status.restart_count = 2;
  return r;
}

const wire::pod_condition& cond(const wire::pod_status& st, const std::string& type) {
  for (const auto& c : st.conditions)
    if (c.type == type)
      return c;
  BOOST_FAIL("no condition " << type);
  static wire::pod_condition none;
  return none;
}

wire::pod_status status_of(const wire::pod& p, std::vector<wire::container_record> apps,
                           std::vector<wire::container_record> inits = {},
                           const wire::pod_status& previous = {}, const std::string& now = "t1") {
  static wire::sandbox_status sb;
  sb = {};
  sb.state = "ready";
  sb.pod_ip_ = "10.88.0.5";
  sb.containers = std::move(apps);
  sb.init_containers = std::move(inits);
  observed_pod obs;
  obs.sandbox = &sb;
  obs.host_ip = "192.0.2.1";
  obs.now = now;
  return compute_status(p, obs, previous);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(pod_phase_suite)

// Kubernetes (getPhase): the phase table for each restart policy.
BOOST_AUTO_TEST_CASE(phase_table_by_restart_policy) {
  struct row {
    const char* policy;
    std::vector<wire::container_record> records;
    const char* phase;
  };
  std::vector<row> rows = {
      {"Always", {running("app")}, "Running"},
      {"Always", {exited("app", 0)}, "Running"},
      {"Always", {exited("app", 1)}, "Running"},
      {"Always", {backing_off("app", 1)}, "Running"},
      {"OnFailure", {exited("app", 0)}, "Succeeded"},
      {"OnFailure", {exited("app", 1)}, "Running"},
      {"OnFailure", {backing_off("app", 1)}, "Running"},
      {"Never", {exited("app", 0)}, "Succeeded"},
      {"Never", {exited("app", 1)}, "Failed"},
      {"Never", {running("app")}, "Running"},
  };
  for (const auto& r : rows) {
    BOOST_TEST_CONTEXT(r.policy << " " << r.records.front().status.state.terminated.exit_code) {
      BOOST_TEST(status_of(make_pod(r.policy), r.records).phase == r.phase);
    }
  }
  // Two containers: one still running keeps the pod Running; one exited 0
  // and one failed under Never is Failed.
  auto two = make_pod("Never", {"a", "b"});
  BOOST_TEST(status_of(two, {exited("a", 0), running("b")}).phase == "Running");
  BOOST_TEST(status_of(two, {exited("a", 0), exited("b", 2)}).phase == "Failed");
  BOOST_TEST(status_of(two, {exited("a", 0), exited("b", 0)}).phase == "Succeeded");
  // A container not created yet (no record) waits: Pending.
  BOOST_TEST(status_of(two, {running("a")}).phase == "Pending");
}

// Kubernetes: while init containers run the pod is Pending; a failed init
// container fails a Never pod and keeps OnFailure/Always pods Pending (it
// is retried).
BOOST_AUTO_TEST_CASE(init_containers_hold_the_pod_pending) {
  auto inits = std::vector<wire::container>{container("init1"), container("init2")};
  for (const char* policy : {"Always", "OnFailure", "Never"}) {
    BOOST_TEST_CONTEXT(policy) {
      auto p = make_pod(policy, {"app"}, inits);
      auto st = status_of(p, {}, {running("init1", false)});
      BOOST_TEST(st.phase == "Pending");
      BOOST_TEST(st.init_container_statuses.size() == 2u);
      BOOST_TEST(st.init_container_statuses[1].state.waiting.reason == "PodInitializing");
      BOOST_TEST(st.container_statuses.at(0).state.waiting.reason == "PodInitializing");
      BOOST_TEST(cond(st, "Initialized").status == "False");
      BOOST_TEST(cond(st, "Initialized").reason == "ContainersNotInitialized");
      BOOST_TEST(cond(st, "Initialized").message ==
                 "containers with incomplete status: [init1 init2]");

      auto failed = status_of(p, {}, {exited("init1", 1)});
      BOOST_TEST(failed.phase == (std::string(policy) == "Never" ? "Failed" : "Pending"));
      auto retrying = status_of(p, {}, {backing_off("init1", 1)});
      BOOST_TEST(retrying.phase == (std::string(policy) == "Never" ? "Failed" : "Pending"));

      auto done = status_of(p, {running("app")}, {exited("init1", 0), exited("init2", 0)});
      BOOST_TEST(done.phase == "Running");
      BOOST_TEST(cond(done, "Initialized").status == "True");
      BOOST_TEST(done.init_container_statuses[0].ready);
    }
  }
}

// Kubernetes: a sidecar (init container with restartPolicy Always) must have
// started before the app containers; it counts towards Ready, and it does
// not keep a pod Running once the app containers completed.
BOOST_AUTO_TEST_CASE(sidecars) {
  auto inits = std::vector<wire::container>{container("proxy", "Always")};
  auto p = make_pod("Never", {"app"}, inits);
  auto not_started = running("proxy", false);
  not_started.status.started = false;
  auto st = status_of(p, {}, {not_started});
  BOOST_TEST(st.phase == "Pending");
  BOOST_TEST(cond(st, "Initialized").message == "containers with incomplete status: [proxy]");

  auto both = status_of(p, {running("app")}, {running("proxy", false)});
  BOOST_TEST(both.phase == "Running");
  BOOST_TEST(cond(both, "Initialized").status == "True");
  BOOST_TEST(cond(both, "ContainersReady").message == "containers with unready status: [proxy]");

  BOOST_TEST(status_of(p, {exited("app", 0)}, {running("proxy")}).phase == "Succeeded");
  BOOST_TEST(status_of(p, {exited("app", 3)}, {running("proxy")}).phase == "Failed");
  // Under Always the app restarts: still Running.
  auto always = make_pod("Always", {"app"}, inits);
  BOOST_TEST(status_of(always, {exited("app", 0)}, {running("proxy")}).phase == "Running");
}

// Kubernetes 1.27+: a deleted pod whose containers the kubelet stopped ends
// Succeeded (all exited 0) or Failed, whatever its restart policy.
BOOST_AUTO_TEST_CASE(a_stopped_terminating_pod_is_terminal) {
  wire::sandbox_status sb;
  sb.state = "stopped";
  sb.containers = {exited("app", 137)};
  observed_pod obs;
  obs.sandbox = &sb;
  obs.terminating = true;
  BOOST_TEST(compute_status(make_pod("Always"), obs, {}).phase == "Running");
  obs.containers_stopped = true;
  auto st = compute_status(make_pod("Always"), obs, {});
  BOOST_TEST(st.phase == "Failed");
  BOOST_TEST(cond(st, "PodReadyToStartContainers").status == "False");
  sb.containers = {exited("app", 0)};
  BOOST_TEST(compute_status(make_pod("Always"), obs, {}).phase == "Succeeded");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(pod_conditions_suite)

// Kubernetes: a running ready pod has all five conditions True; a running
// pod with an unready container says which.
BOOST_AUTO_TEST_CASE(conditions_of_running_pods) {
  auto p = make_pod("Always", {"app", "web"});
  auto st = status_of(p, {running("app"), running("web")});
  std::vector<std::string> types;
  for (const auto& c : st.conditions) {
    types.push_back(c.type);
    BOOST_TEST(c.status == "True", c.type);
  }
  std::vector<std::string> want = {"PodReadyToStartContainers", "Initialized", "Ready",
                                   "ContainersReady", "PodScheduled"};
  BOOST_TEST(types == want, boost::test_tools::per_element());
  BOOST_TEST(st.pod_ip_ == "10.88.0.5");
  BOOST_TEST(st.host_ip == "192.0.2.1");
  BOOST_TEST(st.start_time == "t1");

  auto unready = status_of(p, {running("app", false), running("web")});
  BOOST_TEST(cond(unready, "Ready").status == "False");
  BOOST_TEST(cond(unready, "Ready").reason == "ContainersNotReady");
  BOOST_TEST(cond(unready, "Ready").message == "containers with unready status: [app]");
  BOOST_TEST(cond(unready, "ContainersReady").message == "containers with unready status: [app]");
}

// Kubernetes (status manager): lastTransitionTime changes only when a
// condition's status flips, not when it is recomputed.
BOOST_AUTO_TEST_CASE(transition_times_move_only_on_flips) {
  auto p = make_pod("Always");
  auto s1 = status_of(p, {running("app", false)}, {}, {}, "t1");
  auto s2 = status_of(p, {running("app", false)}, {}, s1, "t2");
  BOOST_TEST(cond(s2, "Ready").last_transition_time == "t1");
  BOOST_TEST(s2.start_time == "t1");
  auto s3 = status_of(p, {running("app", true)}, {}, s2, "t3");
  BOOST_TEST(cond(s3, "Ready").status == "True");
  BOOST_TEST(cond(s3, "Ready").last_transition_time == "t3");
  BOOST_TEST(cond(s3, "PodScheduled").last_transition_time == "t1");
  auto s4 = status_of(p, {running("app", true)}, {}, s3, "t4");
  BOOST_TEST(cond(s4, "Ready").last_transition_time == "t3");
  auto s5 = status_of(p, {running("app", false)}, {}, s4, "t5");
  BOOST_TEST(cond(s5, "Ready").last_transition_time == "t5");
}

// Kubernetes: terminal pods are not ready, with reason PodCompleted
// (Succeeded) or PodFailed (Failed); terminal phases never change again.
BOOST_AUTO_TEST_CASE(terminal_pods) {
  auto ok = status_of(make_pod("Never"), {exited("app", 0)});
  BOOST_TEST(ok.phase == "Succeeded");
  BOOST_TEST(cond(ok, "Ready").reason == "PodCompleted");
  BOOST_TEST(cond(ok, "PodReadyToStartContainers").status == "False");
  auto bad = status_of(make_pod("Never"), {exited("app", 1)});
  BOOST_TEST(cond(bad, "ContainersReady").reason == "PodFailed");
  BOOST_TEST(bad.container_statuses[0].state.terminated.reason == "Error");
  BOOST_TEST(status_of(make_pod("Never"), {running("app")}, {}, bad).phase == "Failed");
}

// Kubernetes: a container that cannot be configured waits with
// CreateContainerConfigError and the reason why; the pod stays Pending.
BOOST_AUTO_TEST_CASE(create_container_config_error) {
  BOOST_TEST(!config_error_waiting("image \"x\" not found"));
  auto w = config_error_waiting("CreateContainerConfigError: configmap \"cfg\" not found");
  BOOST_REQUIRE(w);
  BOOST_TEST(w->reason == "CreateContainerConfigError");
  BOOST_TEST(w->message == "configmap \"cfg\" not found");
  observed_pod obs;
  obs.runtime_error_reason = "CreateContainerError";
  obs.runtime_error_message = "CreateContainerConfigError: configmap \"cfg\" not found";
  auto st = compute_status(make_pod("Always"), obs, {});
  BOOST_TEST(st.phase == "Pending");
  BOOST_TEST(st.container_statuses[0].state.waiting.reason == "CreateContainerConfigError");
  BOOST_TEST(st.container_statuses[0].state.waiting.message == "configmap \"cfg\" not found");
  BOOST_TEST(cond(st, "PodReadyToStartContainers").status == "False");
}

// Kubernetes: DeadlineExceeded fails the pod with the kubelet's message.
BOOST_AUTO_TEST_CASE(deadline_exceeded_fails_the_pod) {
  wire::sandbox_status sb;
  sb.state = "ready";
  sb.containers = {running("app")};
  observed_pod obs;
  obs.sandbox = &sb;
  obs.deadline_exceeded = true;
  auto st = compute_status(make_pod("Always"), obs, {});
  BOOST_TEST(st.phase == "Failed");
  BOOST_TEST(st.reason == "DeadlineExceeded");
  BOOST_TEST(st.message == "Pod was active on the node longer than the specified deadline");
  // The reason stays with the terminal phase.
  obs.deadline_exceeded = false;
  auto again = compute_status(make_pod("Always"), obs, st);
  BOOST_TEST(again.reason == "DeadlineExceeded");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(qos_suite)

// Kubernetes (ComputePodQOS): Guaranteed when every container (init ones
// included) has cpu and memory limits equal to its requests; BestEffort
// with no requests or limits at all; Burstable otherwise.
// Quantities compare by value: 1Gi requested against a 1024Mi limit (and
// 1 cpu against 1000m) is Guaranteed in the status, for eviction and for
// admission alike.
BOOST_AUTO_TEST_CASE(qos_compares_quantities_by_value) {
  wire::pod_spec s;
  s.containers.push_back(container("app"));
  s.containers[0].resources.requests = {{"cpu", "1"}, {"memory", "1Gi"}};
  s.containers[0].resources.limits = {{"cpu", "1000m"}, {"memory", "1024Mi"}};
  BOOST_TEST(qos_class(s) == "Guaranteed");
  BOOST_TEST((pod_qos(s) == deckhand::api::qos_class::guaranteed));
  BOOST_TEST(!is_best_effort(s));
}

BOOST_AUTO_TEST_CASE(qos_class_rules) {
  wire::pod_spec s;
  s.containers.push_back(container("app"));
  BOOST_TEST(qos_class(s) == "BestEffort");
  s.containers[0].resources.requests = {{"cpu", "100m"}};
  BOOST_TEST(qos_class(s) == "Burstable");
  s.containers[0].resources.limits = {{"cpu", "100m"}, {"memory", "64Mi"}};
  s.containers[0].resources.requests = {{"cpu", "0.1"}, {"memory", "64Mi"}};
  BOOST_TEST(qos_class(s) == "Guaranteed");
  // Limits alone: the API server defaults requests to them.
  s.containers[0].resources.requests.clear();
  BOOST_TEST(qos_class(s) == "Guaranteed");
  // Requests below limits.
  s.containers[0].resources.requests = {{"cpu", "50m"}};
  BOOST_TEST(qos_class(s) == "Burstable");
  s.containers[0].resources.requests.clear();
  // An init container without limits makes the pod Burstable...
  s.init_containers.push_back(container("init"));
  s.init_containers[0].resources.requests = {{"memory", "1Mi"}};
  BOOST_TEST(qos_class(s) == "Burstable");
  // ...one with equal limits keeps it Guaranteed.
  s.init_containers[0].resources.limits = {{"cpu", "1"}, {"memory", "1Mi"}};
  s.init_containers[0].resources.requests.clear();
  BOOST_TEST(qos_class(s) == "Guaranteed");
  // Only cpu and memory count.
  wire::pod_spec e;
  e.containers.push_back(container("app"));
  e.containers[0].resources.limits = {{"ephemeral-storage", "1Gi"}};
  BOOST_TEST(qos_class(e) == "BestEffort");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(termination_suite)

// Kubernetes (calculateEffectiveGracePeriod, kuberuntime): the deletion's
// grace period wins over the pod's own; a grace period only shrinks; a
// graceful stop gets at least 2 s; a force deletion (override 0) kills now.
BOOST_AUTO_TEST_CASE(grace_period_of_a_stop) {
  auto p = make_pod("Always");
  p.spec.termination_grace_period_seconds = 30;
  BOOST_TEST(effective_grace_period(&p, -1, -1) == 30);
  p.metadata.deletion_timestamp = "2026-01-01T00:00:10Z";
  p.metadata.deletion_grace_period_seconds = 10;
  BOOST_TEST(effective_grace_period(&p, -1, -1) == 10);
  BOOST_TEST(effective_grace_period(&p, 5, -1) == 5);  // never longer again
  p.metadata.deletion_grace_period_seconds = 1;        // kubectl delete --now
  BOOST_TEST(effective_grace_period(&p, 10, -1) == 2);
  BOOST_TEST(effective_grace_period(&p, 10, 0) == 0);       // force-deleted
  BOOST_TEST(effective_grace_period(nullptr, -1, 2) == 2);  // an orphan
  BOOST_TEST(effective_grace_period(nullptr, -1, -1) == 30);
}

// Kubernetes (activeDeadlineHandler): time left from status.startTime.
BOOST_AUTO_TEST_CASE(time_left_before_the_active_deadline) {
  wire::pod_spec s;
  BOOST_TEST(!active_deadline_left(s, 100s));
  s.active_deadline_seconds = 2;
  BOOST_TEST(active_deadline_left(s, 500ms)->count() == 1500);
  BOOST_TEST(active_deadline_left(s, 2s)->count() == 0);
  BOOST_TEST(active_deadline_left(s, 3s)->count() < 0);

  auto t0 = parse_rfc3339_time("2026-01-01T00:00:00Z");
  BOOST_REQUIRE(t0);
  BOOST_TEST((parse_rfc3339_time("2026-01-01T01:00:00+01:00") == t0));
  BOOST_TEST((parse_rfc3339_time("2026-01-01T00:00:00.250Z") == t0));
  BOOST_TEST(!parse_rfc3339_time("yesterday"));
  BOOST_TEST(!parse_rfc3339_time("2026-01-01T00:00:00"));
  BOOST_TEST(active_duration("2026-01-01T00:00:00Z", *t0 + 90s).count() == 90000);
  BOOST_TEST(active_duration("", *t0).count() == 0);
  BOOST_TEST(active_duration("2026-01-01T00:00:05Z", *t0).count() == 0);  // clock skew
}

BOOST_AUTO_TEST_SUITE_END()
