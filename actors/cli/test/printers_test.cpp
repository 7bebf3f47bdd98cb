#include <boost/test/unit_test.hpp>

#include "deckhand/cli/printers.hpp"

using namespace deckhand::cli;
using nlohmann::json;
using namespace std::chrono;

namespace {

wall_time at(const char* ts) { return *parse_rfc3339(ts); }

json pod_with(json status, int containers = 1) {
  json spec = {{"containers", json::array()}};
  for (int i = 0; i < containers; ++i)
    spec["containers"].push_back({{"name", "c" + std::to_string(i)}, {"image", "busybox"}});
  return {{"metadata", {{"name", "p"}, {"creationTimestamp", "2024-05-01T10:00:00Z"}}},
          {"spec", spec},
          {"status", status}};
}

json running(bool ready, int restarts = 0) {
  return {{"name", "c"},
          {"ready", ready},
          {"restartCount", restarts},
          {"state", {{"running", {{"startedAt", "2024-05-01T10:00:01Z"}}}}}};
}

json waiting(const char* reason, int restarts = 0) {
  return {{"name", "c"},
          {"ready", false},
          {"restartCount", restarts},
          {"state", {{"waiting", {{"reason", reason}}}}}};
}

json terminated(const char* reason, int code, int signal = 0) {
  json t = {{"exitCode", code}, {"finishedAt", "2024-05-01T10:00:05Z"}};
  if (*reason)
    t["reason"] = reason;
  if (signal)
    t["signal"] = signal;
  return {{"name", "c"}, {"ready", false}, {"restartCount", 0}, {"state", {{"terminated", t}}}};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(printers)

BOOST_AUTO_TEST_CASE(human_duration_matches_kubectl) {
  BOOST_CHECK_EQUAL(human_duration(seconds(-5)), "<invalid>");
  BOOST_CHECK_EQUAL(human_duration(milliseconds(-500)), "0s");
  BOOST_CHECK_EQUAL(human_duration(seconds(0)), "0s");
  BOOST_CHECK_EQUAL(human_duration(seconds(5)), "5s");
  BOOST_CHECK_EQUAL(human_duration(seconds(119)), "119s");
  BOOST_CHECK_EQUAL(human_duration(seconds(120)), "2m");
  BOOST_CHECK_EQUAL(human_duration(seconds(182)), "3m2s");
  BOOST_CHECK_EQUAL(human_duration(minutes(9) + seconds(59)), "9m59s");
  BOOST_CHECK_EQUAL(human_duration(minutes(10) + seconds(30)), "10m");
  BOOST_CHECK_EQUAL(human_duration(minutes(179)), "179m");
  BOOST_CHECK_EQUAL(human_duration(hours(3)), "3h");
  BOOST_CHECK_EQUAL(human_duration(hours(4) + minutes(5)), "4h5m");
  BOOST_CHECK_EQUAL(human_duration(hours(8) + minutes(5)), "8h");
  BOOST_CHECK_EQUAL(human_duration(hours(47)), "47h");
  BOOST_CHECK_EQUAL(human_duration(hours(48)), "2d");
  BOOST_CHECK_EQUAL(human_duration(hours(53)), "2d5h");
  BOOST_CHECK_EQUAL(human_duration(hours(24 * 10)), "10d");
  BOOST_CHECK_EQUAL(human_duration(hours(24 * (365 * 2 + 30))), "2y30d");
  BOOST_CHECK_EQUAL(human_duration(hours(24 * 365 * 9)), "9y");
}

BOOST_AUTO_TEST_CASE(age_of_timestamps) {
  auto now = at("2024-05-01T10:03:02Z");
  BOOST_CHECK_EQUAL(age_since("2024-05-01T10:00:00Z", now), "3m2s");
  BOOST_CHECK_EQUAL(age_since("2024-05-01T12:00:00+02:00", now), "3m2s");
  BOOST_CHECK_EQUAL(age_since("2024-05-01T10:02:57.999Z", now), "4s");
  BOOST_CHECK_EQUAL(age_since("", now), "<unknown>");
  BOOST_CHECK_EQUAL(age_since("yesterday", now), "<unknown>");
  BOOST_CHECK_EQUAL(format_rfc3339(now), "2024-05-01T10:03:02Z");
}

BOOST_AUTO_TEST_CASE(status_follows_kubectl) {
  BOOST_CHECK_EQUAL(pod_status_text(pod_with({{"phase", "Pending"}})), "Pending");
  BOOST_CHECK_EQUAL(pod_status_text(pod_with(json::object())), "Pending");
  BOOST_CHECK_EQUAL(
      pod_status_text(pod_with({{"phase", "Running"}, {"containerStatuses", {running(true)}}})),
      "Running");
  BOOST_CHECK_EQUAL(
      pod_status_text(pod_with(
          {{"phase", "Running"}, {"containerStatuses", {waiting("CrashLoopBackOff", 3)}}})),
      "CrashLoopBackOff");
  BOOST_CHECK_EQUAL(pod_status_text(pod_with(
                        {{"phase", "Pending"}, {"containerStatuses", {waiting("ErrImagePull")}}})),
                    "ErrImagePull");
  BOOST_CHECK_EQUAL(
      pod_status_text(
          pod_with({{"phase", "Succeeded"}, {"containerStatuses", {terminated("Completed", 0)}}})),
      "Completed");
  BOOST_CHECK_EQUAL(pod_status_text(pod_with(
                        {{"phase", "Failed"}, {"containerStatuses", {terminated("Error", 1)}}})),
                    "Error");
  BOOST_CHECK_EQUAL(
      pod_status_text(pod_with({{"phase", "Failed"}, {"containerStatuses", {terminated("", 3)}}})),
      "ExitCode:3");
  BOOST_CHECK_EQUAL(pod_status_text(pod_with(
                        {{"phase", "Failed"}, {"containerStatuses", {terminated("", 0, 9)}}})),
                    "Signal:9");
  BOOST_CHECK_EQUAL(pod_status_text(pod_with({{"phase", "Failed"}, {"reason", "Evicted"}})),
                    "Evicted");
  // One container completed, another still runs: Running if the pod is Ready.
  auto mixed = pod_with({{"phase", "Running"},
                         {"conditions", {{{"type", "Ready"}, {"status", "True"}}}},
                         {"containerStatuses", {running(true), terminated("Completed", 0)}}},
                        2);
  BOOST_CHECK_EQUAL(pod_status_text(mixed), "Running");
  mixed["status"]["conditions"] = json::array();
  BOOST_CHECK_EQUAL(pod_status_text(mixed), "NotReady");
  // Deletion wins over everything.
  auto deleting = pod_with({{"phase", "Running"}, {"containerStatuses", {running(true)}}});
  deleting["metadata"]["deletionTimestamp"] = "2024-05-01T10:05:00Z";
  BOOST_CHECK_EQUAL(pod_status_text(deleting), "Terminating");
}

BOOST_AUTO_TEST_CASE(init_containers_show_as_init_status) {
  auto pod =
      pod_with({{"phase", "Pending"}, {"initContainerStatuses", {waiting("PodInitializing")}}});
  pod["spec"]["initContainers"] = json::array({{{"name", "i"}}});
  BOOST_CHECK_EQUAL(pod_status_text(pod), "Init:0/1");
  pod["status"]["initContainerStatuses"] = json::array({terminated("Error", 1)});
  BOOST_CHECK_EQUAL(pod_status_text(pod), "Init:Error");
  pod["status"]["initContainerStatuses"] = json::array({waiting("CrashLoopBackOff")});
  BOOST_CHECK_EQUAL(pod_status_text(pod), "Init:CrashLoopBackOff");
}

BOOST_AUTO_TEST_CASE(ready_counts_running_ready_containers) {
  BOOST_CHECK_EQUAL(pod_ready_text(pod_with({{"phase", "Pending"}}, 2)), "0/2");
  BOOST_CHECK_EQUAL(
      pod_ready_text(pod_with(
          {{"phase", "Running"}, {"containerStatuses", {running(true), running(false)}}}, 2)),
      "1/2");
  BOOST_CHECK_EQUAL(
      pod_ready_text(pod_with(
          {{"phase", "Running"}, {"containerStatuses", {running(true), running(true)}}}, 2)),
      "2/2");
}

BOOST_AUTO_TEST_CASE(restarts_show_time_since_last_termination) {
  auto now = at("2024-05-01T10:10:00Z");
  auto cs = waiting("CrashLoopBackOff", 4);
  cs["lastState"] = {{"terminated", {{"exitCode", 1}, {"finishedAt", "2024-05-01T10:05:00Z"}}}};
  auto pod = pod_with({{"phase", "Running"}, {"containerStatuses", {cs}}});
  BOOST_CHECK_EQUAL(pod_restarts_text(pod, now), "4 (5m ago)");
  BOOST_CHECK_EQUAL(pod_restarts_text(pod_with({{"containerStatuses", {running(true)}}}), now),
                    "0");
}

BOOST_AUTO_TEST_CASE(tables_are_aligned_like_kubectl) {
  auto text = format_table(
      {{"NAME", "READY", "STATUS", "RESTARTS", "AGE"}, {"nginx", "1/1", "Running", "0", "10s"}});
  BOOST_CHECK_EQUAL(text, "NAME    READY   STATUS    RESTARTS   AGE\n"
                          "nginx   1/1     Running   0          10s\n");
  // Columns are at least six wide.
  BOOST_CHECK_EQUAL(format_table({{"A", "B"}, {"x", "y"}}), "A     B\nx     y\n");
}

BOOST_AUTO_TEST_CASE(pod_table_with_wide_and_namespaces) {
  auto now = at("2024-05-01T10:00:42Z");
  auto pod = pod_with(
      {{"phase", "Running"}, {"podIP", "10.88.0.5"}, {"containerStatuses", {running(true)}}});
  pod["metadata"]["namespace"] = "default";
  pod["spec"]["nodeName"] = "node-1";
  BOOST_CHECK_EQUAL(format_pod_table({pod}, {}, now), "NAME   READY   STATUS    RESTARTS   AGE\n"
                                                      "p      1/1     Running   0          42s\n");
  table_options wide;
  wide.wide = true;
  wide.all_namespaces = true;
  BOOST_CHECK_EQUAL(format_pod_table({pod}, wide, now),
                    "NAMESPACE   NAME   READY   STATUS    RESTARTS   AGE   IP          NODE\n"
                    "default     p      1/1     Running   0          42s   10.88.0.5   node-1\n");
}

BOOST_AUTO_TEST_CASE(service_table) {
  auto now = at("2024-05-01T10:00:42Z");
  json svc = {{"metadata", {{"name", "web"}, {"creationTimestamp", "2024-05-01T10:00:00Z"}}},
              {"spec",
               {{"type", "NodePort"},
                {"clusterIP", "10.96.0.10"},
                {"selector", {{"app", "web"}}},
                {"ports",
                 {{{"port", 80}, {"nodePort", 30080}, {"protocol", "TCP"}},
                  {{"port", 53}, {"protocol", "UDP"}}}}}}};
  BOOST_CHECK_EQUAL(format_service_table({svc}, {}, now),
                    "NAME   TYPE       CLUSTER-IP   EXTERNAL-IP   PORT(S)               AGE\n"
                    "web    NodePort   10.96.0.10   <none>        80:30080/TCP,53/UDP   42s\n");
  table_options wide;
  wide.wide = true;
  auto text = format_service_table({svc}, wide, now);
  BOOST_CHECK(text.find("SELECTOR") != std::string::npos);
  BOOST_CHECK(text.find("app=web") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(sizes_like_docker) {
  BOOST_CHECK_EQUAL(human_size(999), "999B");
  BOOST_CHECK_EQUAL(human_size(1500), "1.5kB");
  BOOST_CHECK_EQUAL(human_size(4283456), "4.283MB");
}

BOOST_AUTO_TEST_SUITE_END()
