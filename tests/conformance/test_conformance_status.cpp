// Conformance: pod phases, conditions, container states, QoS classes,
// activeDeadlineSeconds and deletion (grace period, force, a kubelet killed
// mid-deletion) on a real node (deckhand up, runc containers), read through
// the API server as kubectl would. Each case names the Kubernetes behaviour
// it checks.
//
// The cases share one node (starting a node is the slow part); pods have
// distinct names and the case that kills the kubelet runs last.
#define BOOST_TEST_MODULE conformance_status
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "conformance.hpp"

using namespace deckhand::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;

namespace {

/// A one-container pod manifest; `extra_spec` and `extra_container` are
/// YAML lines indented for the spec and the container.
std::string pod_yaml(const std::string& name, const std::string& command,
                     const std::string& extra_spec = {}, const std::string& extra_container = {}) {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + "}\nspec:\n" + extra_spec +
         "  containers:\n  - name: app\n    image: " + image + "\n    command: " + command + "\n" +
         extra_container;
}

/// A shell that ignores SIGTERM and runs until killed.
const std::string stubborn = R"(["sh", "-c", "trap '' TERM; while true; do sleep 1; done"])";

}  // namespace

BOOST_AUTO_TEST_SUITE(status, *deckhand::testing::skip_unless(deckhand::testing::containers()))

// Kubernetes: restartPolicy Never, a container that exits 0: phase
// Succeeded, the container terminated with reason Completed, exit code 0,
// and the pod is no longer ready (reason PodCompleted).
BOOST_AUTO_TEST_CASE(never_with_exit_0_succeeds) {
  auto& n = the_node();
  n.apply(pod_yaml("ok", R"(["sh", "-c", "exit 0"])", "  restartPolicy: Never\n"));
  auto p = n.wait_phase("ok", "Succeeded");
  auto cs = container_status(p);
  BOOST_TEST(cs.value("/state/terminated/reason"_json_pointer, "") == "Completed");
  BOOST_TEST(cs.value("/state/terminated/exitCode"_json_pointer, -1) == 0);
  BOOST_TEST(!cs.value("/state/terminated/finishedAt"_json_pointer, "").empty());
  BOOST_TEST(cs.value("ready", true) == false);
  BOOST_TEST(cs.value("restartCount", -1) == 0);
  BOOST_TEST(condition(p, "Ready").value("reason", "") == "PodCompleted");
  BOOST_TEST(condition(p, "Ready").value("status", "") == "False");
}

// Kubernetes: restartPolicy Never, a container that exits 1: phase Failed,
// reason Error, exit code 1, no restart.
BOOST_AUTO_TEST_CASE(never_with_exit_1_fails) {
  auto& n = the_node();
  n.apply(pod_yaml("bad", R"(["sh", "-c", "exit 1"])", "  restartPolicy: Never\n"));
  auto p = n.wait_phase("bad", "Failed");
  auto cs = container_status(p);
  BOOST_TEST(cs.value("/state/terminated/reason"_json_pointer, "") == "Error");
  BOOST_TEST(cs.value("/state/terminated/exitCode"_json_pointer, -1) == 1);
  BOOST_TEST(cs.value("restartCount", -1) == 0);
  BOOST_TEST(condition(p, "ContainersReady").value("reason", "") == "PodFailed");
}

// Kubernetes: restartPolicy OnFailure restarts a failed container; once it
// exits 0 the pod Succeeds, with restartCount 1 and the failure as lastState.
BOOST_AUTO_TEST_CASE(on_failure_restarts_then_succeeds) {
  auto& n = the_node();
  n.apply(pod_yaml(
      "retry", R"(["sh", "-c", "if [ -f /work/ran ]; then exit 0; fi; touch /work/ran; exit 1"])",
      "  restartPolicy: OnFailure\n  volumes:\n  - {name: work, emptyDir: {}}\n",
      "    volumeMounts:\n    - {name: work, mountPath: /work}\n"));
  auto p = n.wait_phase("retry", "Succeeded");
  auto cs = container_status(p);
  BOOST_TEST(cs.value("restartCount", -1) == 1);
  BOOST_TEST(cs.value("/lastState/terminated/exitCode"_json_pointer, -1) == 1);
  BOOST_TEST(cs.value("/state/terminated/reason"_json_pointer, "") == "Completed");
}

// Kubernetes: restartPolicy Always keeps a crashing pod Running, its
// restartCount growing, waiting with CrashLoopBackOff between attempts, and
// not Ready while it waits. (Between attempts the container briefly runs,
// and a running container without a readiness probe is ready, so Ready is
// checked on a snapshot taken while the container waits.)
BOOST_AUTO_TEST_CASE(always_keeps_a_crashing_pod_running) {
  auto& n = the_node();
  n.apply(pod_yaml("crashy", R"(["sh", "-c", "exit 3"])", "  terminationGracePeriodSeconds: 1\n"));
  auto p = wait_pod(n, "crashy", [&](const json& pod) {
    auto cs = container_status(pod);
    return cs.value("/state/waiting/reason"_json_pointer, "") == "CrashLoopBackOff" &&
           cs.value("restartCount", 0) >= 2;
  });
  BOOST_TEST(p.value("/status/phase"_json_pointer, "") == "Running");
  BOOST_TEST(container_status(p).value("/lastState/terminated/exitCode"_json_pointer, -1) == 3);
  BOOST_TEST(condition(p, "Ready").value("status", "") == "False");
  remove_now(n, "crashy");
}

// Kubernetes: a running, ready pod has PodReadyToStartContainers,
// Initialized, Ready, ContainersReady and PodScheduled all True, a podIP, a
// hostIP, a startTime, and a running container with its id and start time.
BOOST_AUTO_TEST_CASE(conditions_of_a_running_ready_pod) {
  auto& n = the_node();
  n.apply(pod_yaml("ready", R"(["sleep", "3600"])", "  terminationGracePeriodSeconds: 1\n"));
  auto p = wait_pod(n, "ready", [](const json& pod) {
    return condition(pod, "Ready").value("status", "") == "True";
  });
  BOOST_TEST(p.value("/status/phase"_json_pointer, "") == "Running");
  for (const char* type :
       {"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"}) {
    BOOST_TEST_CONTEXT(type) {
      BOOST_TEST(condition(p, type).value("status", "") == "True");
      BOOST_TEST(!condition(p, type).value("lastTransitionTime", "").empty());
    }
  }
  BOOST_TEST(!p.value("/status/podIP"_json_pointer, "").empty());
  BOOST_TEST(!p.value("/status/hostIP"_json_pointer, "").empty());
  BOOST_TEST(!p.value("/status/startTime"_json_pointer, "").empty());
  BOOST_TEST(p.value("/status/qosClass"_json_pointer, "") == "BestEffort");
  auto cs = container_status(p);
  BOOST_TEST(cs.value("ready", false));
  BOOST_TEST(cs.value("started", false));
  BOOST_TEST(!cs.value("containerID", "").empty());
  BOOST_TEST(!cs.value("/state/running/startedAt"_json_pointer, "").empty());
  BOOST_TEST(cs.value("image", "") == image);
  remove_now(n, "ready");
}

// Kubernetes: the QoS class: Guaranteed (limits equal requests for cpu and
// memory, requests defaulted from limits), Burstable (some request), and
// BestEffort (none).
BOOST_AUTO_TEST_CASE(qos_classes) {
  auto& n = the_node();
  const std::string grace = "  terminationGracePeriodSeconds: 1\n";
  n.apply(pod_yaml("guaranteed", R"(["sleep", "3600"])", grace,
                   "    resources: {limits: {cpu: 100m, memory: 64Mi}}\n"));
  n.apply(pod_yaml("burstable", R"(["sleep", "3600"])", grace,
                   "    resources: {requests: {cpu: 50m}}\n"));
  n.apply(pod_yaml("besteffort", R"(["sleep", "3600"])", grace));
  for (auto [name, qos] : {std::pair{"guaranteed", "Guaranteed"},
                           {"burstable", "Burstable"},
                           {"besteffort", "BestEffort"}}) {
    BOOST_TEST_CONTEXT(name) {
      auto p = wait_pod(n, name, [](const json& pod) {
        return !pod.value("/status/qosClass"_json_pointer, "").empty();
      });
      BOOST_TEST(p.value("/status/qosClass"_json_pointer, "") == qos);
    }
  }
  for (const char* name : {"guaranteed", "burstable", "besteffort"})
    remove_now(n, name);
}

// Kubernetes: a pod active longer than activeDeadlineSeconds fails with
// reason DeadlineExceeded and the kubelet's message, its containers stopped.
BOOST_AUTO_TEST_CASE(active_deadline_exceeded) {
  auto& n = the_node();
  n.apply(pod_yaml("deadline", R"(["sleep", "3600"])",
                   "  activeDeadlineSeconds: 2\n  terminationGracePeriodSeconds: 1\n"));
  auto p = n.wait_phase("deadline", "Failed", 30s);
  BOOST_TEST(p.value("/status/reason"_json_pointer, "") == "DeadlineExceeded");
  BOOST_TEST(p.value("/status/message"_json_pointer, "") ==
             "Pod was active on the node longer than the specified deadline");
  wait_pod(
      n, "deadline",
      [](const json& pod) {
        return container_status(pod).contains("state") &&
               container_status(pod)["state"].contains("terminated");
      },
      30s);
  remove_now(n, "deadline");
}

// Kubernetes: DELETE with a grace period sets deletionTimestamp and
// deletionGracePeriodSeconds; a container ignoring SIGTERM is killed after
// the grace period, and only then does the object disappear.
BOOST_AUTO_TEST_CASE(graceful_delete_waits_for_the_grace_period) {
  auto& n = the_node();
  n.apply(pod_yaml("graceful", stubborn));
  auto uid = uid_of(n.wait_phase("graceful", "Running"));
  auto t0 = steady::now();
  auto r = n.cli({"delete", "pod", "graceful", "--grace-period", "3", "--wait=false"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto p = n.pod("graceful");
  BOOST_REQUIRE(!p.is_null());
  BOOST_TEST(p.value("/metadata/deletionGracePeriodSeconds"_json_pointer, 0) == 3);
  BOOST_TEST(!p.value("/metadata/deletionTimestamp"_json_pointer, "").empty());
  BOOST_REQUIRE(eventually([&] { return n.pod("graceful").is_null(); }, 30s));
  auto took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
  BOOST_TEST(took_ms >= 2500);
  BOOST_TEST(n.container_state(uid, "app").is_null());
}

// Kubernetes: `kubectl delete --force --grace-period=0` removes the object
// at once; the kubelet still stops the containers, soon after.
BOOST_AUTO_TEST_CASE(force_delete_removes_the_object_at_once) {
  auto& n = the_node();
  n.apply(pod_yaml("forced", stubborn));
  auto uid = uid_of(n.wait_phase("forced", "Running"));
  auto r = n.cli({"delete", "pod", "forced", "--force", "--grace-period=0"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  BOOST_TEST(r.err.find("Immediate deletion does not wait") != std::string::npos);
  BOOST_TEST(n.pod("forced").is_null());
  BOOST_TEST(eventually([&] { return n.container_state(uid, "app").is_null(); }, 15s));
}

// Kubernetes: a deletion under way when the kubelet dies completes after
// it comes back: the TERM-ignoring container is killed at the end of the
// grace period and then the object goes.
BOOST_AUTO_TEST_CASE(kubelet_killed_mid_deletion_completes_it) {
  auto& n = the_node();
  n.apply(pod_yaml("resilient", stubborn, "  terminationGracePeriodSeconds: 5\n"));
  auto uid = uid_of(n.wait_phase("resilient", "Running"));
  auto kubelet = n.component_pid("kubelet");
  BOOST_REQUIRE(kubelet > 0);
  auto t0 = steady::now();
  auto r = n.cli({"delete", "pod", "resilient", "--wait=false"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  ::kill(kubelet, SIGKILL);
  BOOST_REQUIRE(eventually([&] { return n.pod("resilient").is_null(); }, 60s));
  auto took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
  BOOST_TEST(took_ms >= 4000);
  BOOST_TEST(n.container_state(uid, "app").is_null());
  // The kubelet came back.
  BOOST_TEST(eventually(
      [&] {
        auto pid = n.component_pid("kubelet");
        return pid > 0 && pid != kubelet;
      },
      30s));
}

BOOST_AUTO_TEST_SUITE_END()
