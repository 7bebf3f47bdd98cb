// Conformance: startup, liveness and readiness probes (exec, httpGet,
// tcpSocket) on a real node (deckhand up, runc containers), read through the
// API server as kubectl would, and the pod supervisor's own view
// (DATA/runtime/pods/UID/status.json) where the kubelet is out of the
// picture. Each case names the Kubernetes behaviour it checks.
//
// The cases share one node; pods have distinct names and are removed at the
// end of their case. Probes run every second with small thresholds.
#define BOOST_TEST_MODULE conformance_probes
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>

#include "conformance.hpp"

using namespace deckhand::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

/// A one-container pod; `container_extra` is YAML indented for the
/// container (probes, ports).
std::string pod_yaml(const std::string& name, const std::string& command,
                     const std::string& container_extra) {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name +
         "}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n"
         "    image: " +
         image + "\n    command: " + command + "\n" + container_extra;
}

/// The pod's events (`deckhand get events -o json`).
std::vector<json> events_of(node& n, const std::string& pod) {
  auto r = n.cli({"get", "events", "-o", "json"}, {}, 30s);
  std::vector<json> out;
  auto j = json::parse(r.out, nullptr, false);
  if (j.is_discarded())
    return out;
  for (const auto& e : j.value("items", json::array()))
    if (e.value("/involvedObject/name"_json_pointer, "") == pod)
      out.push_back(e);
  return out;
}

/// Whether the pod has an event with `reason` whose message starts with
/// `prefix`.
bool has_event(node& n, const std::string& pod, const std::string& reason,
               const std::string& prefix, std::string* seen = nullptr) {
  for (const auto& e : events_of(n, pod)) {
    if (seen)
      *seen += e.value("reason", "") + ": " + e.value("message", "") + "\n";
    if (e.value("reason", "") == reason && e.value("message", "").rfind(prefix, 0) == 0)
      return true;
  }
  return false;
}

void expect_event(node& n, const std::string& pod, const std::string& reason,
                  const std::string& prefix) {
  std::string seen;
  bool ok = eventually(
      [&] {
        seen.clear();
        return has_event(n, pod, reason, prefix, &seen);
      },
      30s);
  BOOST_TEST(ok, "no " << reason << " event \"" << prefix << "...\" for " << pod << "; events:\n"
                       << seen);
}

/// The supervisor's record of container `app` in status.json (null if none).
json supervisor_record(node& n, const std::string& uid) {
  auto j =
      json::parse(read_text(n.data() / "runtime" / "pods" / uid / "status.json"), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return json();
  for (const auto& r : j.value("containers", json::array()))
    if (r.value("name", "") == "app")
      return r;
  return json();
}

/// `deckhand exec POD -- COMMAND...`.
command_result exec_in(node& n, const std::string& pod, const std::vector<std::string>& command) {
  std::vector<std::string> argv{
      (bin_dir() / "deckhand").string(), "exec", "--data-dir", n.data().string(), pod, "--"};
  argv.insert(argv.end(), command.begin(), command.end());
  return run_program(argv, 30s);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(probes, *deckhand::testing::skip_unless(deckhand::testing::containers()))

// Kubernetes: an exec livenessProbe that fails failureThreshold times in a
// row kills the container (exit 137 after the grace period) and the kubelet
// restarts it: restartCount grows; events "Unhealthy: Liveness probe failed:
// <output>" (Warning) and "Killing: Container app failed liveness probe, will
// be restarted" (Normal).
BOOST_AUTO_TEST_CASE(liveness_exec_failure_restarts_the_container) {
  auto& n = the_node();
  n.apply(pod_yaml(
      "live", R"(["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; exec sleep 100000"])",
      "    livenessProbe:\n"
      "      exec: {command: [\"cat\", \"/tmp/healthy\"]}\n"
      "      periodSeconds: 1\n"
      "      failureThreshold: 2\n"));
  auto p = wait_pod(
      n, "live",
      [](const json& pod) { return container_status(pod).value("restartCount", 0) >= 1; }, 60s);
  auto cs = container_status(p);
  BOOST_TEST(cs.value("/lastState/terminated/exitCode"_json_pointer, -1) == 137);
  expect_event(n, "live", "Unhealthy", "Liveness probe failed: cat: can't open '/tmp/healthy'");
  expect_event(n, "live", "Killing", "Container app failed liveness probe, will be restarted");
  remove_now(n, "live");
}

// Kubernetes: an exec livenessProbe whose command succeeds keeps the
// container running: no Unhealthy, no restart, even with failureThreshold 1
// (a single lost or timed-out run would restart it). The command counts its
// own runs, so the check waits for five probes rather than for a time.
BOOST_AUTO_TEST_CASE(liveness_exec_success_keeps_the_container) {
  auto& n = the_node();
  n.apply(pod_yaml("live-ok", R"(["sh", "-c", "exec sleep 100000"])",
                   "    livenessProbe:\n"
                   "      exec: {command: [\"sh\", \"-c\", \"echo ok >> /tmp/probed\"]}\n"
                   "      periodSeconds: 1\n"
                   "      failureThreshold: 1\n"));
  auto p = wait_pod(n, "live-ok", [](const json& pod) {
    return container_status(pod).value("/state/running"_json_pointer, json()).is_object();
  });
  auto uid = uid_of(p);
  std::string count;
  bool probed = eventually(
      [&] {
        auto r = exec_in(n, "live-ok", {"sh", "-c", "wc -l < /tmp/probed"});
        count = r.out;
        return r.exit_code == 0 && std::atoi(r.out.c_str()) >= 5;
      },
      60s);
  BOOST_REQUIRE_MESSAGE(probed, "probe runs: " << count);
  auto rec = supervisor_record(n, uid);
  BOOST_TEST(rec.value("/status/restartCount"_json_pointer, -1) == 0,
             "status.json: " << rec.dump());
  for (const auto& note : rec.value("notes", json::array()))
    BOOST_TEST(note.value("reason", "") != "Unhealthy", "note: " << note.dump());
  BOOST_TEST(container_status(n.pod("live-ok")).value("restartCount", -1) == 0);
  remove_now(n, "live-ok");
}

// Kubernetes: an httpGet readinessProbe sets the container's `ready` and the
// pod's Ready condition; when the page disappears (404) both go false
// without a restart, and come back when it returns.
BOOST_AUTO_TEST_CASE(readiness_http_get_toggles_ready) {
  auto& n = the_node();
  n.apply(pod_yaml(
      "ready-http",
      R"(["sh", "-c", "mkdir -p /www; echo ok > /www/index.html; exec httpd -f -p 8080 -h /www"])",
      "    readinessProbe:\n"
      "      httpGet: {path: /index.html, port: 8080}\n"
      "      periodSeconds: 1\n"
      "      failureThreshold: 1\n"));
  wait_pod(n, "ready-http", [](const json& pod) {
    return container_status(pod).value("ready", false) &&
           condition(pod, "Ready").value("status", "") == "True";
  });
  auto r = exec_in(n, "ready-http", {"rm", "/www/index.html"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto p = wait_pod(
      n, "ready-http",
      [](const json& pod) {
        return !container_status(pod).value("ready", true) &&
               condition(pod, "Ready").value("status", "") == "False";
      },
      30s);
  BOOST_TEST(container_status(p).value("restartCount", -1) == 0);
  expect_event(n, "ready-http", "Unhealthy",
               "Readiness probe failed: HTTP probe failed with statuscode: 404");
  r = exec_in(n, "ready-http", {"sh", "-c", "echo ok > /www/index.html"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  wait_pod(
      n, "ready-http",
      [](const json& pod) {
        return container_status(pod).value("ready", false) &&
               condition(pod, "Ready").value("status", "") == "True";
      },
      30s);
  remove_now(n, "ready-http");
}

// Kubernetes: a tcpSocket readinessProbe (named port) keeps the container
// unready until something listens on the port ("dial tcp IP:PORT: connect:
// connection refused" meanwhile). The container listens only once the test
// says so (/tmp/listen), so the unready state is not a window to catch.
BOOST_AUTO_TEST_CASE(readiness_tcp_socket) {
  auto& n = the_node();
  n.apply(pod_yaml(
      "ready-tcp",
      R"(["sh", "-c", "until [ -f /tmp/listen ]; do sleep 1; done; mkdir -p /www; exec httpd -f -p 9000 -h /www"])",
      "    ports:\n"
      "    - {name: svc, containerPort: 9000}\n"
      "    readinessProbe:\n"
      "      tcpSocket: {port: svc}\n"
      "      periodSeconds: 1\n"));
  auto p = wait_pod(n, "ready-tcp", [](const json& pod) {
    return container_status(pod).value("/state/running"_json_pointer, json()).is_object();
  });
  BOOST_TEST(!container_status(p).value("ready", true));
  // A failed probe while nothing listens, before anything may listen.
  expect_event(n, "ready-tcp", "Unhealthy", "Readiness probe failed: dial tcp ");
  auto r = exec_in(n, "ready-tcp", {"touch", "/tmp/listen"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  wait_pod(
      n, "ready-tcp", [](const json& pod) { return container_status(pod).value("ready", false); },
      30s);
  bool refused = false;
  for (const auto& e : events_of(n, "ready-tcp"))
    refused = refused || e.value("message", "").find(":9000: connect: connection refused") !=
                             std::string::npos;
  BOOST_TEST(refused);
  remove_now(n, "ready-tcp");
}

// Kubernetes: a startupProbe holds the liveness probe back (and `started`
// stays false) until it succeeds; only then can liveness kill the container.
BOOST_AUTO_TEST_CASE(startup_probe_gates_liveness) {
  auto& n = the_node();
  n.apply(pod_yaml("startup", R"(["sh", "-c", "sleep 8; touch /tmp/started; exec sleep 100000"])",
                   "    startupProbe:\n"
                   "      exec: {command: [\"cat\", \"/tmp/started\"]}\n"
                   "      periodSeconds: 1\n"
                   "      failureThreshold: 30\n"
                   "    livenessProbe:\n"
                   "      exec: {command: [\"cat\", \"/tmp/alive\"]}\n"
                   "      periodSeconds: 1\n"
                   "      failureThreshold: 1\n"));
  auto p = wait_pod(n, "startup", [](const json& pod) {
    return container_status(pod).value("/state/running"_json_pointer, json()).is_object();
  });
  BOOST_TEST(!container_status(p).value("started", true));
  p = wait_pod(
      n, "startup",
      [](const json& pod) { return container_status(pod).value("restartCount", 0) >= 1; }, 60s);
  // The first instance lived through its startup (8 s, long enough for the
  // poll above to see it running and not started on a loaded machine)
  // before liveness could fail it (threshold 1, every second).
  auto last = container_status(p).value("/lastState/terminated"_json_pointer, json::object());
  auto started = last.value("startedAt", ""), finished = last.value("finishedAt", "");
  BOOST_TEST_MESSAGE("first instance " << started << " .. " << finished);
  BOOST_TEST((!started.empty() && finished.substr(0, 19) > started.substr(0, 19)));
  std::tm a{}, b{};
  strptime(started.c_str(), "%Y-%m-%dT%H:%M:%S", &a);
  strptime(finished.c_str(), "%Y-%m-%dT%H:%M:%S", &b);
  BOOST_TEST(timegm(&b) - timegm(&a) >= 3);
  expect_event(n, "startup", "Unhealthy", "Startup probe failed: ");
  expect_event(n, "startup", "Killing", "Container app failed liveness probe");
  BOOST_TEST(!has_event(n, "startup", "Killing", "Container app failed startup probe"));
  remove_now(n, "startup");
}

// Kubernetes semantics, deckhand's twist: probes run in the pod supervisor,
// so a liveness failure restarts the container even while the kubelet is
// dead; the restart (and its Unhealthy/Killing notes) is in the
// supervisor's status at once and reaches the API once a kubelet is back.
BOOST_AUTO_TEST_CASE(liveness_restart_without_the_kubelet) {
  auto& n = the_node();
  n.apply(
      pod_yaml("headless",
               R"(["sh", "-c", "touch /tmp/healthy; sleep 8; rm /tmp/healthy; exec sleep 100000"])",
               "    livenessProbe:\n"
               "      exec: {command: [\"cat\", \"/tmp/healthy\"]}\n"
               "      periodSeconds: 1\n"
               "      failureThreshold: 1\n"));
  auto p = wait_pod(n, "headless", [](const json& pod) {
    return container_status(pod).value("/state/running"_json_pointer, json()).is_object();
  });
  auto uid = uid_of(p);
  BOOST_REQUIRE_EQUAL(container_status(p).value("restartCount", -1), 0);
  pid_t kubelet = n.component_pid("kubelet");
  BOOST_REQUIRE(kubelet > 0);
  BOOST_REQUIRE(::kill(kubelet, SIGKILL) == 0);
  // The supervisor restarts it on its own (deckhand up restarts the kubelet
  // too, after its back-off; the restart does not wait for it).
  json rec;
  bool restarted = eventually(
      [&] {
        rec = supervisor_record(n, uid);
        return !rec.is_null() && rec.value("/status/restartCount"_json_pointer, 0) >= 1;
      },
      30s);
  BOOST_REQUIRE_MESSAGE(restarted, "status.json: " << rec.dump());
  bool killing = false;
  for (const auto& note : rec.value("notes", json::array()))
    killing = killing || (note.value("reason", "") == "Killing" &&
                          note.value("message", "") ==
                              "Container app failed liveness probe, will be restarted");
  BOOST_TEST(killing, "notes: " << rec.value("notes", json::array()).dump());
  // Killed because the file went away, not because a probe timed out.
  bool missing = false, timed_out = false;
  for (const auto& note : rec.value("notes", json::array())) {
    if (note.value("reason", "") != "Unhealthy")
      continue;
    const auto msg = note.value("message", "");
    missing = missing || msg.rfind("Liveness probe failed: cat: can't open '/tmp/healthy'", 0) == 0;
    timed_out = timed_out || msg.find("timed out") != std::string::npos;
  }
  BOOST_TEST(missing, "notes: " << rec.value("notes", json::array()).dump());
  BOOST_TEST(!timed_out, "notes: " << rec.value("notes", json::array()).dump());
  wait_pod(
      n, "headless",
      [](const json& pod) { return container_status(pod).value("restartCount", 0) >= 1; }, 60s);
  remove_now(n, "headless");
}

BOOST_AUTO_TEST_SUITE_END()
