#define BOOST_TEST_MODULE deckhand_kubelet
#include <boost/test/unit_test.hpp>

#include "container_records.hpp"
#include "deckhand/kubelet/image_pull.hpp"
#include "deckhand/kubelet/pod_status.hpp"

using namespace deckhand;
using namespace deckhand::kubelet;
using deckhand::kubelet::test::exited;
using deckhand::kubelet::test::running;

namespace {

wire::pod make_pod(const std::string& policy, int containers = 1) {
  wire::pod p;
  p.metadata.name = "p";
  p.metadata.namespace_ = "default";
  p.metadata.uid = "u";
  p.spec.restart_policy = policy;
  for (int i = 0; i < containers; ++i) {
    wire::container c;
    c.name = "c" + std::to_string(i);
    c.image = "img";
    p.spec.containers.push_back(c);
  }
  return p;
}

const wire::pod_condition* cond(const wire::pod_status& st, const std::string& type) {
  for (const auto& c : st.conditions)
    if (c.type == type)
      return &c;
  return nullptr;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(pod_status_suite)

// Kubernetes: a pod without a sandbox is Pending with ContainerCreating.
BOOST_AUTO_TEST_CASE(pending_before_the_sandbox_exists) {
  auto p = make_pod("Always");
  observed_pod obs;
  obs.now = "t0";
  auto st = compute_status(p, obs, {});
  BOOST_TEST(st.phase == "Pending");
  BOOST_TEST(st.container_statuses.at(0).state.waiting.reason == "ContainerCreating");
  BOOST_TEST(cond(st, "Ready")->status == "False");
  BOOST_TEST(st.qos_class == "BestEffort");
}

// Kubernetes: image problems surface as the container's waiting reason.
BOOST_AUTO_TEST_CASE(runtime_error_becomes_waiting_reason) {
  auto p = make_pod("Always");
  observed_pod obs;
  obs.runtime_error_reason = "ErrImagePull";
  obs.runtime_error_message = "image \"img\" is not present";
  auto st = compute_status(p, obs, {});
  BOOST_TEST(st.phase == "Pending");
  BOOST_TEST(st.container_statuses.at(0).state.waiting.reason == "ErrImagePull");
}

BOOST_AUTO_TEST_CASE(running_and_ready) {
  auto p = make_pod("Always", 2);
  wire::sandbox_status sb;
  sb.containers = {running("c0"), running("c1")};
  observed_pod obs;
  obs.sandbox = &sb;
  obs.now = "t1";
  auto st = compute_status(p, obs, {});
  BOOST_TEST(st.phase == "Running");
  BOOST_TEST(cond(st, "Ready")->status == "True");
  BOOST_TEST(cond(st, "ContainersReady")->status == "True");
  BOOST_TEST(st.container_statuses.at(1).image == "img");
  // Transition times stick while the status does not change.
  observed_pod later = obs;
  later.now = "t2";
  auto st2 = compute_status(p, later, st);
  BOOST_TEST(cond(st2, "Ready")->last_transition_time == "t1");
}

// Kubernetes: Never + all exit 0 -> Succeeded; any non-zero -> Failed;
// OnFailure + a failure -> still Running (it will be restarted).
BOOST_AUTO_TEST_CASE(terminal_phases_follow_restart_policy) {
  wire::sandbox_status ok, bad;
  ok.containers = {exited("c0", 0)};
  bad.containers = {exited("c0", 3)};
  observed_pod o1, o2;
  o1.sandbox = &ok;
  o2.sandbox = &bad;
  BOOST_TEST(compute_status(make_pod("Never"), o1, {}).phase == "Succeeded");
  BOOST_TEST(compute_status(make_pod("Never"), o2, {}).phase == "Failed");
  BOOST_TEST(compute_status(make_pod("OnFailure"), o1, {}).phase == "Succeeded");
  BOOST_TEST(compute_status(make_pod("OnFailure"), o2, {}).phase == "Running");
  BOOST_TEST(compute_status(make_pod("Always"), o1, {}).phase == "Running");
  auto failed = compute_status(make_pod("Never"), o2, {});
  // Kubernetes (generateContainersReadyConditionForTerminalPhase): PodFailed.
  BOOST_TEST(cond(failed, "Ready")->reason == "PodFailed");
  // A terminal phase never goes back.
  wire::sandbox_status again;
  again.containers = {running("c0")};
  observed_pod o3;
  o3.sandbox = &again;
  BOOST_TEST(compute_status(make_pod("Never"), o3, failed).phase == "Failed");
}

BOOST_AUTO_TEST_CASE(crash_loop_keeps_running_phase) {
  auto p = make_pod("Always");
  wire::sandbox_status sb;
  auto r = exited("c0", 1);
  wire::container_record waiting;
  waiting.name = "c0";
  waiting.status.state.waiting.reason = "CrashLoopBackOff";
  waiting.status.last_state = r.status.state;
  waiting.status.restart_count = 3;
  sb.containers = {waiting};
  observed_pod obs;
  obs.sandbox = &sb;
  wire::pod_status prev;
  prev.phase = "Running";
  auto st = compute_status(p, obs, prev);
  BOOST_TEST(st.phase == "Running");
  BOOST_TEST(st.container_statuses.at(0).restart_count == 3);
  BOOST_TEST(st.container_statuses.at(0).state.waiting.reason == "CrashLoopBackOff");
}

BOOST_AUTO_TEST_CASE(qos_classes) {
  wire::pod_spec s;
  s.containers.resize(1);
  BOOST_TEST(qos_class(s) == "BestEffort");
  s.containers[0].resources.requests = {{"cpu", "100m"}};
  BOOST_TEST(qos_class(s) == "Burstable");
  s.containers[0].resources.limits = {{"cpu", "100m"}, {"memory", "64Mi"}};
  s.containers[0].resources.requests = {{"cpu", "100m"}, {"memory", "64Mi"}};
  BOOST_TEST(qos_class(s) == "Guaranteed");
}

BOOST_AUTO_TEST_SUITE_END()

// imagePullPolicy defaults and the waiting states image pulls produce.
BOOST_AUTO_TEST_SUITE(image_pull_suite)

// Kubernetes defaults imagePullPolicy from the tag: Always for :latest or no
// tag, IfNotPresent otherwise (digests included); a registry port is no tag.
BOOST_AUTO_TEST_CASE(default_policy_follows_the_tag) {
  BOOST_TEST(default_pull_policy("busybox") == "Always");
  BOOST_TEST(default_pull_policy("busybox:latest") == "Always");
  BOOST_TEST(default_pull_policy("127.0.0.1:5000/busybox") == "Always");
  BOOST_TEST(default_pull_policy("127.0.0.1:5000/busybox:1.36") == "IfNotPresent");
  BOOST_TEST(default_pull_policy("busybox@sha256:" + std::string(64, 'a')) == "IfNotPresent");
  wire::container c;
  c.image = "busybox:1.36";
  BOOST_TEST(pull_policy(c) == "IfNotPresent");
  c.image_pull_policy = "Never";
  BOOST_TEST(pull_policy(c) == "Never");
}

// The messages users grep for, exactly as the Go kubelet writes them.
BOOST_AUTO_TEST_CASE(messages_match_kubernetes) {
  BOOST_TEST(never_pull_message("x:1") ==
             "Container image \"x:1\" is not present with pull policy of Never");
  BOOST_TEST(pull_backoff_message("x:1") == "Back-off pulling image \"x:1\"");
}

// A container held up by its image shows its own waiting state; the others
// show ContainerCreating, and the pod stays Pending.
BOOST_AUTO_TEST_CASE(per_container_waiting_overrides) {
  auto p = make_pod("Always", 2);
  observed_pod obs;
  obs.now = "2026-11-27T20:00:00Z";
  obs.waiting["c1"] =
      wire::container_state_waiting{"ImagePullBackOff", "Back-off pulling image \"img\""};
  auto st = compute_status(p, obs, {});
  BOOST_TEST(st.phase == "Pending");
  BOOST_REQUIRE(st.container_statuses.size() == 2u);
  BOOST_TEST(st.container_statuses[0].state.waiting.reason == "ContainerCreating");
  BOOST_TEST(st.container_statuses[1].state.waiting.reason == "ImagePullBackOff");
  BOOST_TEST(st.container_statuses[1].state.waiting.message == "Back-off pulling image \"img\"");
}

BOOST_AUTO_TEST_SUITE_END()
