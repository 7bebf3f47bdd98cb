// Conformance: init containers, sidecars and pod termination on a real node
// (deckhand up, runc containers). Each case names the Kubernetes behaviour
// it checks.
//
// Where the API's view depends on the kubelet's pod status code
// (initContainerStatuses, the Failed/Succeeded phase), the cases read the pod
// supervisor's own view instead: DATA/runtime/pods/UID/status.json (a
// sandbox_status: initContainers and containers records). Ordering is
// checked through the CRI log files' timestamps (RFC 3339 with nanoseconds,
// one per line), which the supervisor's log pump writes as output arrives.
#define BOOST_TEST_MODULE conformance_lifecycle
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <fstream>
#include <functional>
#include <future>
#include <sstream>
#include <thread>

#include "conformance.hpp"

using namespace deckhand::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

/// The supervisor's status.json of pod `uid` (null while absent/unreadable).
json supervisor_status(node& n, const std::string& uid) {
  auto text = read_text(n.data() / "runtime" / "pods" / uid / "status.json");
  auto j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json() : j;
}

/// A container's record (status) in the supervisor's view: init containers
/// and app containers by name; null if absent.
json record(const json& st, const std::string& name) {
  for (const char* list : {"initContainers", "containers"})
    if (st.is_object() && st.contains(list))
      for (const auto& r : st[list])
        if (r.value("name", "") == name)
          return r.value("status", json::object());
  return json();
}

/// The pod's uid, once the API server has it.
std::string wait_uid(node& n, const std::string& name) {
  std::string uid;
  BOOST_REQUIRE(eventually([&] { return !(uid = uid_of(n.pod(name))).empty(); }, 30s));
  return uid;
}

/// Waits until the supervisor's record of `container` satisfies `pred`.
json wait_record(node& n, const std::string& uid, const std::string& container,
                 const std::function<bool(const json&)>& pred,
                 std::chrono::milliseconds deadline = 60s) {
  json last;
  bool ok = eventually(
      [&] {
        last = record(supervisor_status(n, uid), container);
        return !last.is_null() && pred(last);
      },
      deadline);
  BOOST_REQUIRE_MESSAGE(ok, "container " << container << " never got there; last: " << last.dump()
                                         << "; status.json: " << supervisor_status(n, uid).dump());
  return last;
}

bool terminated(const json& r) { return r.contains("state") && r["state"].contains("terminated"); }
int exit_code(const json& r) { return r.value("/state/terminated/exitCode"_json_pointer, -1); }

/// The CRI log file of one instance of a container.
fs::path log_file(node& n, const std::string& pod, const std::string& uid,
                  const std::string& container, int instance = 0) {
  return n.data() / "logs" / "pods" / ("default_" + pod + "_" + uid) / container /
         (std::to_string(instance) + ".log");
}

/// The CRI timestamp of the first log line containing `text` ("" if none).
/// RFC 3339 with a fixed number of fraction digits and Z: comparable as text.
/// The CRI timestamp of the first line of `log` containing `text`, with the
/// fraction padded to 9 digits (RFC 3339 Nano drops trailing zeros) so that
/// two of them compare in time order as strings.
std::string line_time(const std::string& log, const std::string& text) {
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(text) == std::string::npos)
      continue;
    auto ts = line.substr(0, line.find(' '));
    auto dot = ts.find('.');
    auto zone = ts.find_first_of("Z+", dot == std::string::npos ? 0 : dot);
    if (zone == std::string::npos)
      return ts;
    if (dot == std::string::npos) {
      ts.insert(zone, ".000000000");
    } else {
      auto digits = zone - dot - 1;
      if (digits < 9)
        ts.insert(zone, std::string(9 - digits, '0'));
    }
    return ts;
  }
  return {};
}

/// Position of `text` in `log`, npos if absent.
std::size_t pos(const std::string& log, const std::string& text) { return log.find(text); }

}  // namespace

BOOST_AUTO_TEST_SUITE(lifecycle, *deckhand::testing::skip_unless(deckhand::testing::containers()))

// Kubernetes: init containers run one at a time, in spec order, each to
// completion, and the app containers start only after all of them completed.
BOOST_AUTO_TEST_CASE(init_containers_run_in_order_before_the_app) {
  node n;
  n.import_busybox();
  n.apply(std::string(R"(apiVersion: v1
kind: Pod
metadata: {name: inits}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: first
    image: )") +
          image + R"(
    command: ["sh", "-c", "echo first-begin; sleep 1; echo first-end"]
  - name: second
    image: )" +
          image + R"(
    command: ["sh", "-c", "echo second-begin; echo second-end"]
  containers:
  - name: app
    image: )" +
          image + R"(
    command: ["sh", "-c", "echo app-begin; exec sleep 100000"]
)");
  auto uid = wait_uid(n, "inits");
  wait_record(n, uid, "app",
              [](const json& r) { return r.contains("state") && r["state"].contains("running"); });
  std::string app_log;
  BOOST_REQUIRE(eventually([&] {
    app_log = read_text(log_file(n, "inits", uid, "app"));
    return !line_time(app_log, "app-begin").empty();
  }));
  auto first = read_text(log_file(n, "inits", uid, "first"));
  auto second = read_text(log_file(n, "inits", uid, "second"));
  auto first_end = line_time(first, "first-end");
  auto second_begin = line_time(second, "second-begin");
  auto second_end = line_time(second, "second-end");
  auto app_begin = line_time(app_log, "app-begin");
  BOOST_REQUIRE(!first_end.empty());
  BOOST_REQUIRE(!second_begin.empty());
  BOOST_TEST(first_end < second_begin);
  BOOST_TEST(second_end < app_begin);

  // Both completed, never restarted (the supervisor's view).
  auto st = supervisor_status(n, uid);
  BOOST_REQUIRE(st["initContainers"].size() == 2u);
  BOOST_TEST(st["initContainers"][0].value("name", "") == "first");
  for (const char* c : {"first", "second"}) {
    auto r = record(st, c);
    BOOST_TEST(exit_code(r) == 0, c);
    BOOST_TEST(r.value("/state/terminated/reason"_json_pointer, "") == "Completed", c);
    BOOST_TEST(r.value("restartCount", -1) == 0, c);
  }
  // The app's startedAt is not before the last init container's finishedAt.
  BOOST_TEST(record(st, "second").value("/state/terminated/finishedAt"_json_pointer, "~") <=
             record(st, "app").value("/state/running/startedAt"_json_pointer, ""));
  // The API: Running once initialized (initContainerStatuses come from the
  // kubelet's pod status).
  auto pod = n.wait_phase("inits", "Running");
  if (pod.contains("status") && pod["status"].contains("initContainerStatuses")) {
    auto ics = pod["status"]["initContainerStatuses"];
    BOOST_REQUIRE(ics.size() == 2u);
    BOOST_TEST(ics[0].value("name", "") == "first");
    BOOST_TEST(ics[1].value("/state/terminated/reason"_json_pointer, "") == "Completed");
  } else {
    BOOST_TEST_MESSAGE("API has no initContainerStatuses yet (kubelet pod status)");
  }
}

// Kubernetes: with restartPolicy Never, a failing init container fails the
// pod: it stays terminated with its exit code, and the app containers never
// start.
BOOST_AUTO_TEST_CASE(failing_init_container_fails_a_never_pod) {
  node n;
  n.import_busybox();
  n.apply(std::string(R"(apiVersion: v1
kind: Pod
metadata: {name: badinit}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: init
    image: )") +
          image + R"(
    command: ["sh", "-c", "echo failing; exit 3"]
  containers:
  - name: app
    image: )" +
          image + R"(
    command: ["sh", "-c", "echo app-ran; exec sleep 100000"]
)");
  auto uid = wait_uid(n, "badinit");
  auto r = wait_record(n, uid, "init", terminated);
  BOOST_TEST(exit_code(r) == 3);
  BOOST_TEST(r.value("/state/terminated/reason"_json_pointer, "") == "Error");
  // Given time to go wrong, nothing restarts and the app never starts.
  std::this_thread::sleep_for(2s);
  auto st = supervisor_status(n, uid);
  BOOST_TEST(record(st, "init").value("restartCount", -1) == 0);
  BOOST_TEST(exit_code(record(st, "init")) == 3);
  auto app = record(st, "app");
  BOOST_TEST(app.value("/state/waiting/reason"_json_pointer, "") == "PodInitializing");
  // (The supervisor creates the empty log file when it first probes it.)
  BOOST_TEST(read_text(log_file(n, "badinit", uid, "app")).find("app-ran") == std::string::npos);
  BOOST_TEST(n.container_state(uid, "app").is_null());
  // The API's phase (the kubelet's part).
  bool failed = eventually(
      [&] { return n.pod("badinit").value("/status/phase"_json_pointer, "") == "Failed"; }, 15s);
  if (!failed)
    BOOST_TEST_MESSAGE("API phase is not Failed: "
                       << n.pod("badinit").value("/status/phase"_json_pointer, "?")
                       << " (kubelet pod status)");
  BOOST_TEST(n.pod("badinit").value("/status/phase"_json_pointer, "") != "Running");
}

// Kubernetes: with restartPolicy OnFailure, a failing init container is
// restarted (with back-off) and its restartCount grows; the app waits.
BOOST_AUTO_TEST_CASE(failing_init_container_is_retried_under_on_failure) {
  node n;
  n.import_busybox();
  n.apply(std::string(R"(apiVersion: v1
kind: Pod
metadata: {name: retryinit}
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: init
    image: )") +
          image + R"(
    command: ["sh", "-c", "exit 1"]
  containers:
  - name: app
    image: )" +
          image + R"(
    command: ["sh", "-c", "exec sleep 100000"]
)");
  auto uid = wait_uid(n, "retryinit");
  auto r = wait_record(n, uid, "init",
                       [](const json& rec) { return rec.value("restartCount", 0) >= 2; });
  BOOST_TEST(r.value("/lastState/terminated/exitCode"_json_pointer, -1) == 1);
  BOOST_TEST(
      record(supervisor_status(n, uid), "app").value("/state/waiting/reason"_json_pointer, "") ==
      "PodInitializing");
  bool api = eventually(
      [&] {
        return n.pod("retryinit")
                   .value("/status/initContainerStatuses/0/restartCount"_json_pointer, 0) >= 2;
      },
      10s);
  if (!api)
    BOOST_TEST_MESSAGE("API has no initContainerStatuses restartCount yet (kubelet pod status)");
  BOOST_TEST(n.pod("retryinit").value("/status/phase"_json_pointer, "") == "Pending");
}

// Kubernetes: a sidecar (init container with restartPolicy Always) starts
// before the app containers, keeps running beside them, and on deletion is
// stopped only after the app containers have exited.
BOOST_AUTO_TEST_CASE(sidecar_starts_before_the_app_and_stops_after_it) {
  node n;
  n.import_busybox();
  n.apply(std::string(R"(apiVersion: v1
kind: Pod
metadata: {name: withsidecar}
spec:
  terminationGracePeriodSeconds: 20
  initContainers:
  - name: side
    image: )") +
          image + R"(
    restartPolicy: Always
    command: ["sh", "-c", "trap 'echo side-term; sleep 1; exit 0' TERM; echo side-begin; while true; do sleep 1; done"]
  containers:
  - name: app
    image: )" +
          image + R"(
    command: ["sh", "-c", "trap 'echo app-term; sleep 2; echo app-exit; exit 0' TERM; echo app-begin; while true; do sleep 1; done"]
)");
  auto uid = wait_uid(n, "withsidecar");
  n.wait_phase("withsidecar", "Running");
  std::string side, app;
  BOOST_REQUIRE(eventually([&] {
    side = read_text(log_file(n, "withsidecar", uid, "side"));
    app = read_text(log_file(n, "withsidecar", uid, "app"));
    return !line_time(app, "app-begin").empty();
  }));
  BOOST_REQUIRE(!line_time(side, "side-begin").empty());
  BOOST_TEST(line_time(side, "side-begin") < line_time(app, "app-begin"));
  BOOST_TEST(record(supervisor_status(n, uid), "side").contains("/state/running"_json_pointer));

  // Delete, and watch the logs while the pod terminates (they go with it).
  auto del = std::async(std::launch::async, [&] {
    return n.cli({"delete", "pod", "withsidecar"}, {}, 60s);
  });
  std::string side_seen, app_seen;
  while (del.wait_for(20ms) != std::future_status::ready) {
    auto s = read_text(log_file(n, "withsidecar", uid, "side"));
    auto a = read_text(log_file(n, "withsidecar", uid, "app"));
    if (s.size() > side_seen.size())
      side_seen = s;
    if (a.size() > app_seen.size())
      app_seen = a;
  }
  auto r = del.get();
  BOOST_TEST(r.exit_code == 0, r.err);
  auto app_exit = line_time(app_seen, "app-exit");
  auto side_term = line_time(side_seen, "side-term");
  BOOST_REQUIRE_MESSAGE(!app_exit.empty(), app_seen);
  BOOST_REQUIRE_MESSAGE(!side_term.empty(), side_seen);
  // The sidecar got its signal only after the app had exited.
  BOOST_TEST(app_exit < side_term);
  BOOST_TEST(n.pod("withsidecar").is_null());
}

// Kubernetes: when every app container of a restartPolicy Never pod has
// completed, the sidecars are stopped and the pod completes; a sidecar that
// ignores SIGTERM is killed (exit 137) after terminationGracePeriodSeconds.
BOOST_AUTO_TEST_CASE(completed_app_stops_the_sidecar_within_the_grace_period) {
  node n;
  n.import_busybox();
  n.apply(std::string(R"(apiVersion: v1
kind: Pod
metadata: {name: job}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  initContainers:
  - name: side
    image: )") +
          image + R"(
    restartPolicy: Always
    command: ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]
  containers:
  - name: app
    image: )" +
          image + R"(
    command: ["sh", "-c", "sleep 1; echo done"]
)");
  auto uid = wait_uid(n, "job");
  auto side = wait_record(n, uid, "side", terminated, 60s);
  auto app = record(supervisor_status(n, uid), "app");
  BOOST_TEST(exit_code(app) == 0);
  BOOST_TEST(exit_code(side) == 137);
  auto app_done = app.value("/state/terminated/finishedAt"_json_pointer, "");
  auto side_done = side.value("/state/terminated/finishedAt"_json_pointer, "");
  BOOST_TEST(app_done <= side_done);
  // Killed at the grace period (2 s, second resolution), not before.
  BOOST_TEST(side_done > app_done);
  BOOST_TEST(side.value("restartCount", -1) == 0);
  bool succeeded = eventually(
      [&] { return n.pod("job").value("/status/phase"_json_pointer, "") == "Succeeded"; }, 15s);
  if (!succeeded)
    BOOST_TEST_MESSAGE("API phase is not Succeeded: "
                       << n.pod("job").value("/status/phase"_json_pointer, "?")
                       << " (kubelet pod status)");
}

// Kubernetes: on deletion a container that ignores SIGTERM is SIGKILLed once
// terminationGracePeriodSeconds has passed, and the pod object is removed
// only after that.
BOOST_AUTO_TEST_CASE(container_ignoring_sigterm_is_killed_after_the_grace_period) {
  node n;
  n.import_busybox();
  n.apply(std::string(R"(apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 6
  containers:
  - name: app
    image: )") +
          image + R"(
    command: ["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 1; done"]
)");
  auto uid = wait_uid(n, "stubborn");
  n.wait_phase("stubborn", "Running");
  BOOST_REQUIRE(eventually([&] {
    return read_text(log_file(n, "stubborn", uid, "app")).find("ready") != std::string::npos;
  }));
  auto t0 = std::chrono::steady_clock::now();
  auto del = std::async(std::launch::async, [&] {
    return n.cli({"delete", "pod", "stubborn"}, {}, 60s);
  });
  json last_record;
  bool seen_during_grace = false;
  // The object is looked for late in the grace period (after 4 of its 6 s),
  // leaving a `deckhand get` on a loaded machine 2 s to see it.
  while (del.wait_for(20ms) != std::future_status::ready) {
    auto r = record(supervisor_status(n, uid), "app");
    if (!r.is_null())
      last_record = r;
    if (std::chrono::steady_clock::now() - t0 > 4s && !n.pod("stubborn").is_null())
      seen_during_grace = true;
  }
  auto elapsed = std::chrono::steady_clock::now() - t0;
  auto r = del.get();
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(n.pod("stubborn").is_null());
  BOOST_TEST(seen_during_grace);
  BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() >= 5900);
  // The last status the supervisor wrote: SIGKILL (when the poll caught it
  // before the pod directory went away).
  if (terminated(last_record))
    BOOST_TEST(exit_code(last_record) == 137);
  else
    BOOST_TEST_MESSAGE("final status.json not caught before removal: " << last_record.dump());
}

// Kubernetes: a preStop hook runs before the container gets SIGTERM.
BOOST_AUTO_TEST_CASE(pre_stop_exec_runs_before_sigterm) {
  node n;
  n.import_busybox();
  n.apply(std::string(R"(apiVersion: v1
kind: Pod
metadata: {name: hooked}
spec:
  terminationGracePeriodSeconds: 10
  containers:
  - name: app
    image: )") +
          image + R"(
    command: ["sh", "-c", "trap 'echo term; sleep 2; exit 0' TERM; echo ready; while true; do sleep 1; done"]
    lifecycle:
      preStop:
        exec:
          command: ["sh", "-c", "echo prestop > /proc/1/fd/1"]
)");
  auto uid = wait_uid(n, "hooked");
  n.wait_phase("hooked", "Running");
  BOOST_REQUIRE(eventually([&] {
    return read_text(log_file(n, "hooked", uid, "app")).find("ready") != std::string::npos;
  }));
  auto del = std::async(std::launch::async, [&] {
    return n.cli({"delete", "pod", "hooked"}, {}, 60s);
  });
  std::string seen;
  while (del.wait_for(20ms) != std::future_status::ready) {
    auto s = read_text(log_file(n, "hooked", uid, "app"));
    if (s.size() > seen.size())
      seen = s;
  }
  auto r = del.get();
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_REQUIRE_MESSAGE(pos(seen, "prestop") != std::string::npos, seen);
  BOOST_REQUIRE_MESSAGE(pos(seen, "term") != std::string::npos, seen);
  BOOST_TEST(pos(seen, "prestop") < pos(seen, " term"));
}

BOOST_AUTO_TEST_SUITE_END()
