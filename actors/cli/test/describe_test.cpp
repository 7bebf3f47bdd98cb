#include <boost/test/unit_test.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <httplib.h>

#include "deckhand/cli/commands.hpp"
#include "deckhand/cli/describe.hpp"
#include "deckhand/common/paths.hpp"

using namespace deckhand::cli;
using nlohmann::json;

namespace {

const wall_time now = *parse_rfc3339("2024-05-01T12:10:00Z");

json golden_pod() {
  return json::parse(R"js({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "default", "uid": "u1",
                 "creationTimestamp": "2024-05-01T12:00:00Z",
                 "labels": {"app": "web", "tier": "front"}},
    "spec": {
      "nodeName": "node-a",
      "containers": [{
        "name": "app", "image": "busybox:1.36",
        "command": ["sh", "-c", "sleep 1000"],
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "resources": {"limits": {"cpu": "500m", "memory": "64Mi"},
                      "requests": {"cpu": "250m", "memory": "64Mi"}},
        "env": [{"name": "GREETING", "value": "hello"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]
      }],
      "volumes": [{"name": "scratch", "emptyDir": {}}]
    },
    "status": {
      "phase": "Running", "hostIP": "192.0.2.10", "podIP": "10.88.0.5",
      "podIPs": [{"ip": "10.88.0.5"}], "startTime": "2024-05-01T12:00:00Z",
      "qosClass": "Burstable",
      "conditions": [
        {"type": "PodReadyToStartContainers", "status": "True"},
        {"type": "Initialized", "status": "True"},
        {"type": "Ready", "status": "True"},
        {"type": "ContainersReady", "status": "True"},
        {"type": "PodScheduled", "status": "True"}],
      "containerStatuses": [{
        "name": "app", "containerID": "runc://0123abcd", "image": "busybox:1.36",
        "imageID": "sha256:feed", "ready": true, "restartCount": 1, "started": true,
        "state": {"running": {"startedAt": "2024-05-01T12:05:00Z"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                     "startedAt": "2024-05-01T12:00:02Z",
                                     "finishedAt": "2024-05-01T12:04:50Z"}}
      }]
    }
  })js");
}

json event(const std::string& reason, const std::string& type, const std::string& from,
           const std::string& message, const std::string& first, const std::string& last,
           int count) {
  return {{"metadata", {{"name", "web-1." + reason}, {"namespace", "default"}}},
          {"involvedObject", {{"kind", "Pod"}, {"name", "web-1"}, {"namespace", "default"}}},
          {"reason", reason},
          {"type", type},
          {"source", {{"component", from}}},
          {"message", message},
          {"firstTimestamp", first},
          {"lastTimestamp", last},
          {"count", count}};
}

std::vector<json> golden_events() {
  return {event("Started", "Normal", "kubelet", "Started container app", "2024-05-01T12:00:02Z",
                "2024-05-01T12:05:00Z", 2),
          event("Scheduled", "Normal", "default-scheduler",
                "Successfully assigned default/web-1 to node-a", "2024-05-01T12:00:00Z",
                "2024-05-01T12:00:00Z", 1),
          event("BackOff", "Warning", "kubelet",
                "Back-off restarting failed container app in pod web-1_default(u1)",
                "2024-05-01T12:04:51Z", "2024-05-01T12:04:51Z", 1)};
}

/// Whether `ev` matches every `field=value` term of `selector`, as the API
/// server applies a field selector.
bool selected(const json& ev, const std::string& selector) {
  std::istringstream terms(selector);
  std::string term;
  while (std::getline(terms, term, ',')) {
    auto eq = term.find('=');
    auto field = term.substr(0, eq);
    auto value = term.substr(eq + 1);
    const std::string prefix = "involvedObject.";
    if (field.rfind(prefix, 0) != 0)
      return false;
    if (ev["involvedObject"].value(field.substr(prefix.size()), "") != value)
      return false;
  }
  return true;
}

/// A stand-in API server with one pod and its events, behind a node data
/// directory whose URL file points at it.
class fake_node {
 public:
  fake_node(json pod, std::vector<json> events) : pod_(std::move(pod)), events_(std::move(events)) {
    srv_.Get(R"(/api/v1/namespaces/default/pods/([^/]+))",
             [this](const httplib::Request&, httplib::Response& res) {
               res.set_content(pod_.dump(), "application/json");
             });
    srv_.Get("/api/v1/namespaces/default/events", [this](const httplib::Request& req,
                                                         httplib::Response& res) {
      selector = req.get_param_value("fieldSelector");
      json items = json::array();
      for (const auto& ev : events_)
        if (selected(ev, selector))
          items.push_back(ev);
      res.set_content(json{{"kind", "EventList"}, {"items", items}}.dump(), "application/json");
    });
    int port = srv_.bind_to_any_port("127.0.0.1");
    BOOST_REQUIRE(port > 0);
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
    for (int i = 0; i < 500 && !srv_.is_running(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    BOOST_REQUIRE(srv_.is_running());
    char tmpl[] = "/tmp/deckhand-describe-XXXXXX";
    dir = ::mkdtemp(tmpl);
    std::filesystem::create_directories(deckhand::paths::run_dir(dir));
    std::ofstream(deckhand::paths::apiserver_url_file(dir)) << "http://127.0.0.1:" << port << "\n";
  }
  ~fake_node() {
    srv_.stop();
    thread_.join();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  fake_node(const fake_node&) = delete;
  fake_node& operator=(const fake_node&) = delete;

  std::filesystem::path dir;
  std::string selector;  ///< the last events request's fieldSelector

 private:
  json pod_;
  std::vector<json> events_;
  httplib::Server srv_;
  std::thread thread_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(describe_suite)

BOOST_AUTO_TEST_CASE(events_are_selected_as_kubectl_selects_them) {
  // kubectl's PodDescriber drops the kind from the reference.
  BOOST_TEST(pod_events_selector(golden_pod()) ==
             "involvedObject.name=web-1,involvedObject.namespace=default,involvedObject.uid=u1");
  // A mirror pod's events are the static pod's: the kubelet records them
  // under the uid in the config.mirror annotation.
  auto mirror = golden_pod();
  mirror["metadata"]["annotations"] = {{"kubernetes.io/config.mirror", "static-uid"}};
  BOOST_TEST(pod_events_selector(mirror) ==
             "involvedObject.name=web-1,involvedObject.namespace=default,"
             "involvedObject.uid=static-uid");
}

BOOST_AUTO_TEST_CASE(describe_pod_command_shows_the_events_the_kubelet_recorded) {
  // A static pod whose liveness probe failed: the kubelet's events name the
  // static pod's uid, the API server's pod is its mirror.
  auto pod = golden_pod();
  pod["metadata"]["uid"] = "mirror-uid";
  pod["metadata"]["annotations"] = {{"kubernetes.io/config.mirror", "u1"}};
  auto unhealthy = event("Unhealthy", "Warning", "kubelet",
                         "Liveness probe failed: cat: can't open '/tmp/healthy'",
                         "2024-05-01T12:04:40Z", "2024-05-01T12:04:48Z", 3);
  auto killing = event("Killing", "Normal", "kubelet",
                       "Container app failed liveness probe, will be restarted",
                       "2024-05-01T12:04:48Z", "2024-05-01T12:04:48Z", 1);
  auto other = event("Started", "Normal", "kubelet", "Started container app",
                     "2024-05-01T12:00:02Z", "2024-05-01T12:00:02Z", 1);
  for (auto* ev : {&unhealthy, &killing})
    (*ev)["involvedObject"]["uid"] = "u1";
  other["involvedObject"]["uid"] = "an-earlier-pod";
  fake_node n(pod, {unhealthy, killing, other});

  std::ostringstream out, err;
  std::istringstream in;
  describe_options opts;
  opts.node.data_dir = n.dir;
  opts.resource = "pod";
  opts.names = {"web-1"};
  BOOST_TEST(describe_command(opts, {out, err, in}) == 0, err.str());
  BOOST_TEST(n.selector ==
             "involvedObject.name=web-1,involvedObject.namespace=default,involvedObject.uid=u1");
  auto text = out.str();
  BOOST_TEST(text.find("Events:           <none>") == std::string::npos, text);
  BOOST_TEST(text.find("Warning  Unhealthy") != std::string::npos, text);
  BOOST_TEST(text.find("Normal   Killing") != std::string::npos, text);
  BOOST_TEST(text.find("Started container app") == std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(tab_align_is_go_tabwriter) {
  // Column blocks end at a line without that column.
  BOOST_TEST(tab_align("a:\t1\nlonger:\t2\nX\nb:\t3\n") == "a:       1\nlonger:  2\nX\nb:  3\n");
  // Nested columns align within their own block only.
  BOOST_TEST(tab_align("  T\tS\n  Ready \tTrue \n") == "  T       S\n  Ready   True \n");
}

BOOST_AUTO_TEST_CASE(describe_pod_matches_kubectl) {
  const std::string want =
      R"(Name:         web-1
Namespace:    default
Priority:     0
Node:         node-a/192.0.2.10
Start Time:   Wed, 01 May 2024 12:00:00 +0000
Labels:       app=web
              tier=front
Annotations:  <none>
Status:       Running
IP:           10.88.0.5
IPs:
  IP:  10.88.0.5
Containers:
  app:
    Container ID:  runc://0123abcd
    Image:         busybox:1.36
    Image ID:      sha256:feed
    Port:          8080/TCP
    Host Port:     0/TCP
    Command:
      sh
      -c
      sleep 1000
    State:          Running
      Started:      Wed, 01 May 2024 12:05:00 +0000
    Last State:     Terminated
      Reason:       Error
      Exit Code:    1
      Started:      Wed, 01 May 2024 12:00:02 +0000
      Finished:     Wed, 01 May 2024 12:04:50 +0000
    Ready:          True
    Restart Count:  1
    Limits:
      cpu:     500m
      memory:  64Mi
    Requests:
      cpu:     250m
      memory:  64Mi
    Liveness:  http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3
    Environment:
      GREETING:  hello
      POD_NAME:  web-1 (v1:metadata.name)
    Mounts:
      /scratch from scratch (rw)
Conditions:
  Type                        Status
  PodReadyToStartContainers   True 
  Initialized                 True 
  Ready                       True 
  ContainersReady             True 
  PodScheduled                True 
Volumes:
  scratch:
    Type:        EmptyDir (a temporary directory that shares a pod's lifetime)
    Medium:      
    SizeLimit:   <unset>
QoS Class:       Burstable
Node-Selectors:  <none>
Tolerations:     <none>
Events:
  Type     Reason     Age                 From               Message
  ----     ------     ----                ----               -------
  Normal   Scheduled  10m                 default-scheduler  Successfully assigned default/web-1 to node-a
  Warning  BackOff    5m9s                kubelet            Back-off restarting failed container app in pod web-1_default(u1)
  Normal   Started    5m (x2 over 9m58s)  kubelet            Started container app
)";
  auto got = describe_pod(golden_pod(), golden_events(), now);
  BOOST_TEST(got == want);
}

BOOST_AUTO_TEST_CASE(describe_without_events_or_status) {
  auto pod = json::parse(R"({"metadata": {"name": "p", "namespace": "default"},
                             "spec": {"containers": [{"name": "c", "image": "busybox"}]}})");
  auto got = describe_pod(pod, {}, now);
  BOOST_TEST(got.find("Node:         <none>\n") != std::string::npos);
  BOOST_TEST(got.find("Events:           <none>\n") != std::string::npos);
  BOOST_TEST(got.find("Container ID") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(get_events_table) {
  table_options opts;
  auto got = format_event_table(golden_events(), opts, now);
  const std::string want =
      R"(LAST SEEN   TYPE      REASON      OBJECT      MESSAGE
10m         Normal    Scheduled   pod/web-1   Successfully assigned default/web-1 to node-a
5m9s        Warning   BackOff     pod/web-1   Back-off restarting failed container app in pod web-1_default(u1)
5m          Normal    Started     pod/web-1   Started container app
)";
  BOOST_TEST(got == want);
}

BOOST_AUTO_TEST_SUITE_END()
